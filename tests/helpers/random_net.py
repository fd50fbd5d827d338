"""Random networks with realistic activity, for tests and benchmarks: weights on the deployable
grid, each layer's threshold calibrated so that it fires at a target rate on a given input;
and a small float network (torch) for the quantiser, export and NIR tests."""
from __future__ import annotations

import numpy as np
import torch

from metaloihi.sim import loihi as L
from metaloihi.sim.arch import ConvSpec, DenseSpec, SynapseSpec
from metaloihi.sim.float_lif import param_key, weight_key
from metaloihi.sim.fixed import FixedLayer, Network, run


def random_weights(spec: SynapseSpec, rng: np.random.Generator, excitatory_bias: float = 0.2
                   ) -> np.ndarray:
    """Grid mantissas (even, |m| <= 254) from a Gaussian with a slight excitatory mean, so a
    sparse input can drive the layer."""
    z = rng.standard_normal(spec.weight_shape) + excitatory_bias
    return L.weights_to_grid(z, scale=L.GRID_MAX / max(np.abs(z).max(), 1e-9))


def calibrated_network(specs: list[SynapseSpec], x: np.ndarray, rate: float,
                       rng: np.random.Generator, du: int = 409, dv: int = 409,
                       iters: int = 14) -> Network:
    """Build the network layer by layer, bisecting each layer's vth (in log space) until its
    mean firing rate on input x [B, T, *shape] is close to `rate` (spikes per neuron per step)."""
    net: Network = []
    for spec in specs:
        w = random_weights(spec, rng)
        lo, hi = 0.0, np.log2(L.VTH_MAX)
        for _ in range(iters):
            mid = (lo + hi) / 2
            layer = FixedLayer(spec, w, L.LifFixed(du=du, dv=dv, vth=int(2 ** mid)))
            got = run(net + [layer], x, layers="last")["spikes"][-1].mean()
            lo, hi = (mid, hi) if got > rate else (lo, mid)
        net.append(FixedLayer(spec, w, L.LifFixed(du=du, dv=dv, vth=int(2 ** ((lo + hi) / 2)))))
    return net


def small_float_net(seed=0, bias=0.05):
    """conv (2,12,10) -> conv -> dense -> head(3), per-neuron biases, decays of the paper."""
    c1 = ConvSpec((2, 12, 10), 4, kernel=(3, 3), stride=(2, 2), padding=(1, 1))
    c2 = ConvSpec(c1.out_shape, 6, kernel=(3, 3), stride=(1, 1), padding=(0, 1))
    d1 = DenseSpec(int(np.prod(c2.out_shape)), 10)
    specs = [c1, c2, d1, DenseSpec(10, 3)]
    g = torch.Generator().manual_seed(seed)
    params = {}
    for i, s in enumerate(specs):
        params[weight_key(i)] = (torch.randn(s.weight_shape, generator=g, dtype=torch.float64)
                                 + 0.3) * 1.5 / np.sqrt(s.fan_in)
        params[param_key(i, "bias")] = bias * torch.randn(int(np.prod(s.out_shape)), generator=g,
                                                          dtype=torch.float64)
    return specs, params, [L.LifFloat(du=0.2, dv=0.1, vth=1.0) for _ in specs]
