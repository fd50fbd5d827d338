"""`metaloihi deploy`: a bundle's network as one Lava graph with learning off, samples through it.

  RingBuffer -> netx network (frozen layers, built by lava-dl from the bundle) -> Dense (the
  head's weights, weight_exp) -> LIF (the head's neuron) -> Monitor

One sample per period of T + 1 steps (the last step has no input): after each period the host
puts every LIF (u, v) and synapse buffer back at rest, as onchip/graph.py does, so each sample
starts from rest exactly as sim.fixed.run's batch does. The output spikes are checked against
sim/ (bit-exact model of Lava's fixed_pt simulator).

Targets (bridge/target.py): sim/ alone, Loihi2SimCfg (fixed_pt, this machine's CPU), or
Loihi2HwCfg (a board: Intel's lava-loihi and a board, else a UserError, never a fallback).
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from metaloihi.base.atomic import regular_input
from metaloihi.base.errors import UserError
from metaloihi.base.lava_support import require_lava
from metaloihi.bridge.bundle import Bundle, as_bundle
from metaloihi.bridge.netx_run import frozen_graph, head_processes, netx_rest_vars, run_periods
from metaloihi.bridge.target import NAMES, board_errors, check_target, run_config
from metaloihi.sim import fixed


@dataclass
class DeployResult:
    config: str                       # bridge.target.NAMES[target]
    spikes: np.ndarray                # bool [S, T, ways]: output spikes, every step
    counts: np.ndarray                # int [S, ways]
    sim_spikes: np.ndarray | None     # the same from sim/ (None on hardware and for sim itself)
    sim_counts: np.ndarray | None
    seconds: float


def smoke_input(b: Bundle, samples: int, steps: int, rate: float, seed: int) -> np.ndarray:
    """Random binary input spikes [samples, steps, *input shape], p = rate per neuron and step."""
    if not 0.0 <= rate <= 1.0:
        raise UserError(f"--rate={rate}; expected a probability in [0, 1]")
    shape = tuple(b.net[0].spec.in_shape)
    return np.random.default_rng(seed).random((samples, steps, *shape)) < rate


def read_npy(path: str | Path) -> np.ndarray:
    """The array of an --input .npy file, refused in one line unless it is a regular .npy file
    of finite numbers (no pickles)."""
    path = regular_input(path, "--input")
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
    if x.dtype.kind not in "biuf":
        raise UserError(f"--input {str(path)!r}: dtype {x.dtype}; expected numbers (spikes: "
                        "non-zero = spike)")
    if x.dtype.kind == "f" and not np.all(np.isfinite(x)):
        raise UserError(f"--input {str(path)!r} contains {x[~np.isfinite(x)].ravel()[0]}")
    return x


def load_input(path: str | Path) -> np.ndarray:
    """Samples from a .npy file: binary spikes [N, steps, *input shape] (non-zero = spike)."""
    x = read_npy(path)
    if x.ndim < 3 or x.shape[0] < 1 or x.shape[1] < 1:
        raise UserError(f"--input {str(path)!r}: shape {x.shape}; expected spikes "
                        "[N, steps, *input shape]")
    return x != 0


def load_net_input(path: str | Path, net, steps: int | None) -> np.ndarray:
    """The .npy input of a netx network `net` (sim.network.SpikingNet) as `metaloihi sim
    --input` and `cost --input` take it: [batch, steps, *input shape], or [batch, *input
    shape] held for `steps`; cut or extended to `steps` where given."""
    x = read_npy(path)
    shape = net.input_shape
    if x.ndim == len(shape) + 1 and tuple(x.shape[1:]) == shape:   # [batch, *shape]: held
        x = np.repeat(x[:, None], steps or 1, axis=1)
    if x.ndim != len(shape) + 2 or tuple(x.shape[2:]) != shape:
        raise UserError(f"{path}: input of shape {x.shape}; expected [batch, steps, "
                        f"{', '.join(map(str, shape))}] (or [batch, {', '.join(map(str, shape))}]"
                        " held for --steps)")
    if steps is not None and steps != x.shape[1]:
        if steps < x.shape[1]:
            x = x[:, :steps]
        else:      # beyond the input: silence, or the last bias held for an input neuron
            last = x[:, -1:] if net.input_neuron is not None else np.zeros_like(x[:, -1:])
            x = np.concatenate([x, np.repeat(last, steps - x.shape[1], axis=1)], axis=1)
    return x


def run_deployed(bundle: Bundle | str | Path, x: np.ndarray, target: str = "lava"
                 ) -> DeployResult:
    """Samples x [S, T, *in_shape] (binary) through the bundle's network, learning off, on
    `target` (bridge.target: sim, lava or loihi2). On Lava's simulator the output spikes are
    also computed by sim/ for the caller to compare; on a board they cannot be read back
    bit for bit from anything else, so sim_* is None."""
    t0 = time.perf_counter()
    b = as_bundle(bundle)
    check_target(target)
    x = np.asarray(x) != 0
    if x.ndim < 3 or x.shape[0] < 1 or x.shape[1] < 1:
        raise UserError(f"samples must be [N, steps, *input shape], got shape {x.shape}")
    fixed.check_network(b.net, x.shape)
    sim_spikes = None if target == "loihi2" else fixed.run(b.net, x, layers="last")["spikes"][-1]
    if target == "sim":
        return DeployResult(NAMES["sim"], sim_spikes, sim_spikes.sum(1), None, None,
                            time.perf_counter() - t0)
    cfg = run_config(target)
    Monitor = require_lava("lava.proc.monitor.process").Monitor
    S, T = x.shape[:2]
    P = T + 1
    source, net, out = frozen_graph(b, x, P)
    dense, lif = head_processes(b)
    out.connect(dense.s_in)
    n_out = b.net[-1].spec.out_features
    mon = Monitor()
    mon.probe(lif.s_out, S * P)
    try:
        with board_errors(target):
            run_periods(source, S, P, cfg, [lif.u, lif.v, dense.a_buff] + netx_rest_vars(net))
            spikes = np.asarray(mon.get_data()[lif.name]["s_out"]).reshape(S, P, n_out)
    finally:
        source.stop()
    spikes = spikes[:, :T] != 0
    return DeployResult(NAMES[target], spikes, spikes.sum(1), sim_spikes,
                        None if sim_spikes is None else sim_spikes.sum(1),
                        time.perf_counter() - t0)
