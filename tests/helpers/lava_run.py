"""Running a network in Lava's CPU simulator (Loihi2SimCfg, fixed_pt) to hold sim/ against it:
a sim/ fixed-point network built as plain Lava processes (RingBuffer -> Conv/Dense -> LIF, with
Monitors), and a bundle's frozen layers as lava-dl's netx builds them; and
assert_sim_identical_to_lava, which holds the two to every spike, u and v. Used by the Lava
cross-check tests and benchmarks/sim_vs_lava.py; the library deploys through bridge/ and onchip/.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from metaloihi.base.lava_support import require_lava
from metaloihi.bridge.bundle import read_bundle
from metaloihi.bridge.lava_net import (from_lava_order, lava_conv_weight, lava_dense_weight,
                                       lava_shape, to_lava_order)
from metaloihi.bridge.netx_run import netx_network
from metaloihi.sim.arch import ConvSpec, DenseSpec
from metaloihi.sim import fixed
from metaloihi.sim.fixed import FixedLayer, Network, check_network


@dataclass
class LavaGraph:
    source: object
    synapses: list
    neurons: list
    monitors: list            # per layer: dict name -> Monitor


def _neuron(layer: FixedLayer, shape: tuple[int, ...], lava):
    nrn = layer.neuron
    bias = np.broadcast_to(np.asarray(nrn.bias_mant), (int(np.prod(shape)),))
    return lava.LIF(shape=lava_shape(shape), du=int(nrn.du), dv=int(nrn.dv), vth=int(nrn.vth),
                    bias_mant=to_lava_order(bias.astype(np.int32), shape),
                    bias_exp=int(nrn.bias_exp))


def _synapse(layer: FixedLayer, prev_shape: tuple[int, ...], lava):
    spec = layer.spec
    w = layer.weight.astype(np.int32)
    if isinstance(spec, ConvSpec):
        return lava.Conv(weight=lava_conv_weight(w), input_shape=lava_shape(spec.in_shape),
                         stride=spec.stride[::-1], padding=spec.padding[::-1])
    return lava.Dense(weights=lava_dense_weight(w, prev_shape), weight_exp=int(layer.weight_exp),
                      num_weight_bits=int(layer.num_weight_bits))


class _Lava:
    """The Lava classes we use, imported on first use (Lava is optional)."""

    def __init__(self):
        self.LIF = require_lava("lava.proc.lif.process").LIF
        self.Dense = require_lava("lava.proc.dense.process").Dense
        self.Conv = require_lava("lava.proc.conv.process").Conv
        self.RingBuffer = require_lava("lava.proc.io.source").RingBuffer
        self.Monitor = require_lava("lava.proc.monitor.process").Monitor
        self.RunSteps = require_lava("lava.magma.core.run_conditions").RunSteps
        self.Loihi2SimCfg = require_lava("lava.magma.core.run_configs").Loihi2SimCfg


def build(net: Network, x: np.ndarray, record_uv: bool, probe: str = "all"
          ) -> tuple[LavaGraph, _Lava]:
    """Processes for one sample x [T, *in_shape] (binary spikes), with Monitors on every
    layer (probe="all") or on the output layer only (probe="last")."""
    lava = _Lava()
    steps = x.shape[0]
    in_shape = tuple(x.shape[1:])
    data = to_lava_order(np.asarray(x != 0, dtype=np.int32), in_shape)
    source = lava.RingBuffer(data=np.moveaxis(data, 0, -1))   # RingBuffer wants time last
    port, prev_shape = source.s_out, in_shape
    graph = LavaGraph(source, [], [], [])
    for layer in net:
        syn = _synapse(layer, prev_shape, lava)
        if isinstance(layer.spec, DenseSpec) and len(prev_shape) == 3:
            port = port.flatten()
        port.connect(syn.s_in)
        out_shape = tuple(layer.spec.out_shape)
        lif = _neuron(layer, out_shape, lava)
        syn.a_out.connect(lif.a_in)
        mons = {}
        if probe == "all" or layer is net[-1]:
            mons["spikes"] = lava.Monitor()
            mons["spikes"].probe(lif.s_out, steps)
        if record_uv and mons:
            for var in ("u", "v"):
                mons[var] = lava.Monitor()
                mons[var].probe(getattr(lif, var), steps)
        graph.synapses.append(syn)
        graph.neurons.append(lif)
        graph.monitors.append(mons)
        port, prev_shape = lif.s_out, out_shape
    return graph, lava


def run_in_lava(net: Network, x: np.ndarray, record_uv: bool = True, probe: str = "all",
                timings: dict | None = None) -> dict[str, list]:
    """Run one sample x [T, *in_shape] in Lava (Loihi2SimCfg, fixed_pt). Returns the same
    structure as sim.fixed.run with batch 1: {"spikes"/"u"/"v": per probed layer [1, T, n]}.
    If `timings` is given, it receives the seconds of the first step (which includes Lava's
    compile and process start-up) and of the remaining T-1 steps."""
    x = np.asarray(x)
    check_network(net, (1, *x.shape))
    graph, lava = build(net, x, record_uv, probe)
    steps = x.shape[0]
    rec: dict[str, list] = {"spikes": [], "u": [], "v": []}
    cfg = lava.Loihi2SimCfg(select_tag="fixed_pt")
    try:
        t0 = time.perf_counter()
        graph.source.run(condition=lava.RunSteps(num_steps=1), run_cfg=cfg)
        t1 = time.perf_counter()
        if steps > 1:
            graph.source.run(condition=lava.RunSteps(num_steps=steps - 1), run_cfg=cfg)
        if timings is not None:
            timings.update(first_step_s=t1 - t0, rest_s=time.perf_counter() - t1)
        for layer, lif, mons in zip(net, graph.neurons, graph.monitors):
            if not mons:
                continue
            shape = tuple(layer.spec.out_shape)
            for name, mon in mons.items():
                target = "s_out" if name == "spikes" else name
                data = mon.get_data()[lif.name][target]          # [T, *lava_shape]
                arr = from_lava_order(np.asarray(data), shape)[None]
                rec[name].append(arr.astype(bool) if name == "spikes" else
                                 np.rint(arr).astype(np.int64))
    finally:
        graph.source.stop()
    return rec


def run_netx(path: str | Path, x: np.ndarray, record_v: bool = True) -> dict[str, list]:
    """One sample x [T, *in_shape] (binary) through netx's network of the bundle. Returns
    {"spikes": [per frozen layer bool [1, T, n]], "v": [int64 [1, T, n]]} in torch's flatten
    order, as sim.fixed.run(bundle.frozen, x[None], record_uv=True) returns them."""
    frozen = read_bundle(path).frozen
    x = np.asarray(x)
    steps = x.shape[0]
    RingBuffer = require_lava("lava.proc.io.source").RingBuffer
    Monitor = require_lava("lava.proc.monitor.process").Monitor
    RunSteps = require_lava("lava.magma.core.run_conditions").RunSteps
    Loihi2SimCfg = require_lava("lava.magma.core.run_configs").Loihi2SimCfg
    net = netx_network(path)
    data = to_lava_order(np.asarray(x != 0, dtype=np.int32), tuple(x.shape[1:]))
    source = RingBuffer(data=np.moveaxis(data, 0, -1))      # time last
    source.s_out.connect(net.inp)
    names = ("s_out", "v") if record_v else ("s_out",)
    mons = []
    for block in net.layers:
        m = {}
        for var in names:
            m[var] = Monitor()
            m[var].probe(getattr(block.neuron, var), steps)
        mons.append(m)
    rec: dict[str, list] = {"spikes": [], "v": []}
    try:
        net.run(condition=RunSteps(num_steps=steps), run_cfg=Loihi2SimCfg(select_tag="fixed_pt"))
        for layer, block, m in zip(frozen, net.layers, mons):
            shape = tuple(layer.spec.out_shape)
            for var, mon in m.items():
                a = from_lava_order(np.asarray(mon.get_data()[block.neuron.name][var]), shape)[None]
                if var == "s_out":
                    rec["spikes"].append(a.astype(bool))
                else:
                    rec["v"].append(np.rint(a).astype(np.int64))
    finally:
        net.stop()
    return rec


def assert_sim_identical_to_lava(net: Network, x: np.ndarray):
    """Run x [T, *shape] in Lava and in sim/ (fast path and step-by-step reference): every layer's
    spikes, u and v identical at every step; returns (Lava's, sim/'s) records."""
    lava = run_in_lava(net, x, record_uv=True)
    ours = fixed.run(net, x[None], record_uv=True)
    state, steps = fixed.init_state(net, 1), []
    for t in range(x.shape[0]):
        state, out = fixed.step(state, net, x[None, t])
        steps.append(out)
    for i in range(len(net)):
        for key in ("spikes", "u", "v"):
            a, b = lava[key][i], ours[key][i]
            assert a.shape == b.shape
            bad = np.argwhere(a != b)
            first = tuple(bad[0]) if bad.size else None
            assert bad.size == 0, (f"layer {i} {key}: first mismatch at (batch, step, neuron) "
                                   f"{first}: lava {a[first]} sim {b[first]}")
        stepped = np.stack([s[i] for s in steps], axis=1)
        np.testing.assert_array_equal(stepped, lava["spikes"][i])
    return lava, ours
