"""`metaloihi deploy`: a bundle's network as one Lava graph with learning off, samples through it.

  RingBuffer -> netx network (frozen layers, built by lava-dl from the bundle) -> Dense (the
  head's weights, weight_exp) -> LIF (the head's neuron) -> Monitor

One sample per period of T + 1 steps (the last step has no input): after each period the host
puts every LIF (u, v) and synapse buffer back at rest, as onchip/graph.py does, so each sample
starts from rest exactly as sim.fixed.run's batch does. The output spikes are checked against
sim/ (bit-exact model of Lava's fixed_pt simulator).

Loihi2SimCfg (fixed_pt) runs on this machine's CPU. `hw=True` asks for Loihi2HwCfg: that needs
Intel's lava-loihi extension and a board; without them it is a UserError, never a fallback.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from metaloihi.bridge.bundle import Bundle, read_bundle
from metaloihi.bridge.lava_net import lava_dense_weight
from metaloihi.base.errors import UserError
from metaloihi.base.lava_support import require_lava, require_loihi2_hw
from metaloihi.sim import fixed


@dataclass
class DeployResult:
    config: str                       # "Loihi2SimCfg (fixed_pt)" or "Loihi2HwCfg"
    spikes: np.ndarray                # bool [S, T, ways]: output spikes, every step
    counts: np.ndarray                # int [S, ways]
    sim_spikes: np.ndarray | None     # the same from sim/ (None on hardware)
    sim_counts: np.ndarray | None
    seconds: float


def smoke_input(b: Bundle, samples: int, steps: int, rate: float, seed: int) -> np.ndarray:
    """Random binary input spikes [samples, steps, *input shape], p = rate per neuron and step."""
    if not 0.0 <= rate <= 1.0:
        raise UserError(f"--rate={rate}; expected a probability in [0, 1]")
    shape = tuple(b.net[0].spec.in_shape)
    return np.random.default_rng(seed).random((samples, steps, *shape)) < rate


def load_input(path: str | Path) -> np.ndarray:
    """Samples from a .npy file: binary spikes [N, steps, *input shape] (non-zero = spike)."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"--input {str(path)!r} does not exist")
    with open(path, "rb") as fh:
        magic = fh.read(6)
    if magic != b"\x93NUMPY":
        raise UserError(f"--input {str(path)!r} is not a .npy file (first bytes {magic!r}); "
                        "save the spikes with numpy.save")
    try:
        x = np.load(path, allow_pickle=False)
    except Exception as err:  # noqa: BLE001 - any numpy failure is a bad file
        raise UserError(f"--input {str(path)!r} is not a readable .npy array "
                        f"({type(err).__name__}: {err})") from None
    if x.ndim < 3 or x.shape[0] < 1 or x.shape[1] < 1:
        raise UserError(f"--input {str(path)!r}: shape {x.shape}; expected spikes "
                        "[N, steps, *input shape]")
    if x.dtype.kind == "f" and not np.all(np.isfinite(x)):
        raise UserError(f"--input {str(path)!r} contains {x[~np.isfinite(x)].ravel()[0]}")
    return x != 0


def run_deployed(path: str | Path, x: np.ndarray, hw: bool = False) -> DeployResult:
    """Samples x [S, T, *in_shape] (binary) through the bundle's Lava graph, learning off."""
    t0 = time.perf_counter()
    b = read_bundle(path)
    x = np.asarray(x) != 0
    if x.ndim < 3 or x.shape[0] < 1 or x.shape[1] < 1:
        raise UserError(f"samples must be [N, steps, *input shape], got shape {x.shape}")
    fixed.check_network(b.net, x.shape)
    if hw:
        RunCfg, tag, name = require_loihi2_hw(), None, "Loihi2HwCfg"
    else:
        RunCfg = require_lava("lava.magma.core.run_configs").Loihi2SimCfg
        tag, name = "fixed_pt", "Loihi2SimCfg (fixed_pt)"
    sim_spikes = None if hw else fixed.run(b.net, x, layers="last")["spikes"][-1]
    Monitor = require_lava("lava.proc.monitor.process").Monitor
    Dense = require_lava("lava.proc.dense.process").Dense
    LIF = require_lava("lava.proc.lif.process").LIF
    from metaloihi.bridge.netx_run import (netx_network, netx_rest_vars, period_source,
                                           run_periods)

    S, T = x.shape[:2]
    P = T + 1
    source = period_source(x, P)
    net = netx_network(path)
    source.s_out.connect(net.inp)
    head = b.net[-1]
    prev_shape = tuple(b.frozen[-1].spec.out_shape)
    n_out = head.spec.out_features
    dense = Dense(weights=lava_dense_weight(head.weight, prev_shape).astype(np.int32),
                  weight_exp=int(head.weight_exp))
    nrn = head.neuron
    lif = LIF(shape=(n_out,), du=int(nrn.du), dv=int(nrn.dv), vth=int(nrn.vth),
              bias_mant=np.broadcast_to(np.asarray(nrn.bias_mant), (n_out,)).astype(np.int32),
              bias_exp=int(nrn.bias_exp))
    (net.out.flatten() if len(prev_shape) == 3 else net.out).connect(dense.s_in)
    dense.a_out.connect(lif.a_in)
    mon = Monitor()
    mon.probe(lif.s_out, S * P)
    cfg = RunCfg(select_tag=tag) if tag else RunCfg()
    try:
        try:
            run_periods(source, S, P, cfg, [lif.u, lif.v, dense.a_buff] + netx_rest_vars(net))
            spikes = np.asarray(mon.get_data()[lif.name]["s_out"]).reshape(S, P, n_out)
        except Exception as err:  # noqa: BLE001 - on a board, failures are the setup's
            if not hw:
                raise
            raise UserError(f"--hw: the Loihi 2 run failed ({type(err).__name__}: "
                            f"{str(err).splitlines()[0] if str(err) else ''})") from None
    finally:
        source.stop()
    spikes = spikes[:, :T] != 0
    return DeployResult(name, spikes, spikes.sum(1), sim_spikes,
                        None if sim_spikes is None else sim_spikes.sum(1),
                        time.perf_counter() - t0)
