"""Float network <-> fixed-point network, through sim/loihi.py's mapping only.

float -> fixed: per layer, the scale (mantissa units per float weight unit) puts the largest
|w| on the grid's edge (grid_scale), weights go onto the deployable grid (weights_to_grid) and
the neuron follows the same scale (lif_to_fixed: vth and bias in those units). Conv layers use
weight_exp = 0 because Lava's CPU Conv ignores it; the scale lives in vth instead.
fixed -> float: the float parameters that reproduce the fixed weights, thresholds and biases
exactly in float units, so a float model can be evaluated on exactly the deployed grid.
"""
from __future__ import annotations

import numpy as np
import torch

from metaloihi.base.errors import UserError
from metaloihi.sim import loihi as L
from metaloihi.sim.arch import ConvSpec, DenseSpec, SynapseSpec
from metaloihi.sim.fixed import FixedLayer, Network, dense_effective_weights
from metaloihi.sim.float_lif import check_params, layer_neuron, weight_key


def _to_numpy(x) -> np.ndarray | float:
    if torch.is_tensor(x):
        x = x.detach().cpu().double().numpy()
    if isinstance(x, np.ndarray):
        return x if x.ndim else float(x)
    return float(x)


def _float_neuron(i: int, neuron: L.LifFloat, params: dict) -> L.LifFloat:
    """Layer i's neuron as plain numbers (params entries override the LifFloat fields)."""
    p = layer_neuron(i, neuron, params, torch.zeros((), dtype=torch.float64))
    fields = {f: _to_numpy(getattr(p, f)) for f in ("du", "dv", "vth", "bias")}
    for f, val in fields.items():
        if not np.all(np.isfinite(val)):
            raise UserError(f"layer {i}: {f} must be finite, got {val}")
        if f != "bias" and np.size(val) != 1:     # Lava's LIF has one du, dv, vth per population
            raise UserError(f"layer {i}: {f} must be one number per layer, got shape "
                            f"{np.shape(val)}")
        if f != "bias":
            fields[f] = float(np.ravel(val)[0])
    return L.LifFloat(**fields)


def float_to_fixed(specs: list[SynapseSpec], params: dict, neurons: list[L.LifFloat],
                   weight_exps: list[int] | None = None,
                   ranges: list[float | None] | None = None) -> tuple[Network, list[float]]:
    """Map a float network (sim.float_lif's params dict + LifFloat per layer) to a sim.fixed
    Network. Returns (network, scales): scales[i] is layer i's mantissa units per float weight
    unit; with weight_exp e the neuron's u/v units are scale * 2**e per float unit.
    weight_exps: per layer, 0 by default; only Dense layers may use another (a negative one
    shrinks vth for layers whose vth/max|w| is too large for 17 bits, at the price of Lava's
    floor shift of the synaptic sum, which the float model does not have).
    ranges: per layer, the float |weight| the grid's edge stands for (None: the layer's max |w|,
    the finest grid); a larger one leaves headroom, e.g. for weights that learn on chip."""
    check_params(specs, params, neurons)
    weight_exps = [0] * len(specs) if weight_exps is None else list(weight_exps)
    if len(weight_exps) != len(specs):
        raise UserError(f"{len(specs)} layers but {len(weight_exps)} weight exponents")
    if ranges is not None and len(ranges) != len(specs):
        raise UserError(f"{len(specs)} layers but {len(ranges)} weight ranges")
    net: Network = []
    scales: list[float] = []
    for i, spec in enumerate(specs):
        exp = int(weight_exps[i])
        if isinstance(spec, ConvSpec) and exp != 0:
            raise UserError(f"layer {i} (conv): weight_exp={exp}, but Lava's Conv CPU model "
                            "ignores weight_exp; conv layers carry their scale in vth (use 0)")
        w = _to_numpy(params[weight_key(i)])
        if not np.all(np.isfinite(w)):
            bad = w[~np.isfinite(w)].ravel()[0]
            raise UserError(f"layer {i}: weights contain {bad} (NaN or inf)")
        max_abs = float(np.abs(w).max(initial=0.0))
        edge = None if ranges is None else ranges[i]
        if edge is not None and not (np.isfinite(edge) and edge >= max_abs and edge > 0):
            raise UserError(f"layer {i}: range {edge} must be finite and cover the layer's "
                            f"max |w| = {max_abs:.4g}")
        scale = L.grid_scale(max_abs if edge is None else float(edge))
        mant = L.weights_to_grid(w, scale)
        neuron = _float_neuron(i, neurons[i], params)
        if np.any(np.asarray(neuron.vth) < 0):
            raise UserError(f"layer {i}: vth={neuron.vth} is negative; Loihi's threshold is "
                            "unsigned")
        units = scale * 2.0 ** exp
        try:
            fixed = L.lif_to_fixed(neuron, units, n=int(np.prod(spec.out_shape)))
        except UserError as err:
            raise UserError(f"layer {i}: {err}") from None
        _check_bias(i, neuron, fixed, units)
        net.append(FixedLayer(spec, mant, fixed, weight_exp=exp))
        scales.append(scale)
    return net, scales


def _check_bias(i: int, neuron: L.LifFloat, fixed: L.LifFixed, units: float) -> None:
    """lif_to_fixed clips a bias beyond 13-bit mantissa << 7; refuse rather than clip."""
    want = np.asarray(neuron.bias, dtype=np.float64) * units * 2 ** L.ACT_SHIFT
    err = np.abs(fixed.effective_bias - want)
    if np.any(err > 2 ** fixed.bias_exp):    # more than rounding: the mantissa was clipped
        j = int(np.argmax(err))
        raise UserError(f"layer {i}: bias {np.ravel(neuron.bias)[j if np.ndim(neuron.bias) else 0]}"
                        f" x scale {units:.4g} does not fit Loihi's 13-bit mantissa << 7")


def fixed_to_float(net: Network, scales: list[float] | None = None,
                   dtype: torch.dtype = torch.float64
                   ) -> tuple[list[SynapseSpec], dict, list[L.LifFloat]]:
    """The float network that computes exactly what `net`'s weights, thresholds and biases
    say, in float units of 1/scales[i] mantissa (scales default to 1: float unit = mantissa).
    Dense weights are Lava's effective ones (mixed-sign lose their LSB). Returns (specs,
    params, neurons) for sim.float_lif.run. Exact for weight_exp >= 0; a negative Dense
    weight_exp's floor shift of the sum is not modelled."""
    scales = [1.0] * len(net) if scales is None else list(scales)
    if len(scales) != len(net):
        raise UserError(f"{len(net)} layers but {len(scales)} scales")
    specs, params, neurons = [], {}, []
    for i, (layer, scale) in enumerate(zip(net, scales)):
        if not (np.isfinite(scale) and scale > 0):
            raise UserError(f"layer {i}: scale must be positive and finite, got {scale}")
        w = layer.weight
        if isinstance(layer.spec, DenseSpec):
            w = dense_effective_weights(w)
        specs.append(layer.spec)
        params[weight_key(i)] = torch.as_tensor(w / scale, dtype=dtype)
        neurons.append(L.lif_to_float(layer.neuron, scale * 2.0 ** layer.weight_exp))
    return specs, params, neurons
