"""Run a netx file in Lava's CPU simulator (Loihi2SimCfg, fixed_pt) through lava-dl's own
``netx.hdf5.Network``, recording every population's spikes (and u, v) at every step: the
reference that sim/'s run of the same file (bridge/netx_read.py + sim/network_run.py) is held
to, and `metaloihi sim --backend lava`. One sample at a time, each on a fresh network.
"""
from __future__ import annotations

import time
import warnings
from pathlib import Path

import numpy as np

from metaloihi.base.errors import UserError
from metaloihi.base.lava_support import require_lava
from metaloihi.bridge.lava_net import from_lava_order, to_lava_order
from metaloihi.sim import sdnn
from metaloihi.sim.network import SpikingNet

# what sim/ records as (spikes, u, v) for each sigma-delta process: its Lava Vars (sim/sdnn.py)
SDNN_VARS = {sdnn.SIGMA_DELTA: ("s_out", "sigma", "residue"),
             sdnn.DELTA: ("s_out", "act", "residue"),
             sdnn.SIGMA: ("s_out", "sigma", None)}


def _network(path, reset_interval, reset_offset, input_message_bits):
    hdf5 = require_lava("lava.lib.dl.netx.hdf5")
    kw = dict(reset_interval=reset_interval, reset_offset=reset_offset,
              input_message_bits=input_message_bits)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return hdf5.Network(net_config=str(path), **kw)


def run_sample(path: str | Path, net_desc: SpikingNet, x: np.ndarray, record_uv: bool = True,
               probe: str = "all", reset_interval: int | None = None, reset_offset: int = 0,
               input_message_bits: int = 0, timings: dict | None = None) -> dict[str, list]:
    """One sample x [T, *input_shape] (as sim.network_run.run takes it, without the batch).
    Returns {"spikes", "u", "v": per population [1, T, n]} in torch flatten order (a
    sigma-delta population: graded messages, sigma or act, residue: SDNN_VARS), every
    population (probe="all") or the last one ("last"). `timings` gets build_s, first_step_s
    (Lava's compile and start-up included) and rest_s (the other steps)."""
    Monitor = require_lava("lava.proc.monitor.process").Monitor
    RingBuffer = require_lava("lava.proc.io.source").RingBuffer
    RunSteps = require_lava("lava.magma.core.run_conditions").RunSteps
    Loihi2SimCfg = require_lava("lava.magma.core.run_configs").Loihi2SimCfg
    x = np.asarray(x)
    steps, shape = x.shape[0], net_desc.input_shape
    t0 = time.perf_counter()
    net = _network(path, reset_interval, reset_offset, input_message_bits)
    pops = net_desc.populations
    if len(net.layers) != len(pops):
        raise UserError(f"{path}: netx built {len(net.layers)} blocks, sim/ {len(pops)}")
    neurons = ([net_desc.input_neuron] if net_desc.input_neuron is not None else []) + \
        [layer.neuron for layer in net_desc.layers]
    if isinstance(net_desc.input_neuron, sdnn.SigmaDelta):
        # a Delta input: fed at its a_in, as lava-dl's own tests do (netx leaves the Input
        # block's port unconnected)
        source = RingBuffer(data=np.moveaxis(to_lava_order(x.astype(np.int32), shape), 0, -1))
        source.s_out.connect(net.in_layer.neuron.a_in)
    elif net_desc.input_neuron is not None:
        if steps > 1 and np.any(x != x[:1]):
            raise UserError("Lava takes an input-layer bias that is constant over the steps")
        net.in_layer.neuron.bias_mant.init = to_lava_order(x[0].astype(np.int32), shape)
    else:
        data = x.astype(np.int32) if net_desc.graded_input else (x != 0).astype(np.int32)
        source = RingBuffer(data=np.moveaxis(to_lava_order(data, shape), 0, -1))
        source.s_out.connect(net.inp)
    chosen = range(len(pops)) if probe == "all" else [len(pops) - 1]
    keys = ("spikes", "u", "v") if record_uv else ("spikes",)

    def lava_var(k, key):
        names = (SDNN_VARS[neurons[k].kind] if isinstance(neurons[k], sdnn.SigmaDelta)
                 else ("s_out", "u", "v"))
        return names[("spikes", "u", "v").index(key)]
    mons = {}
    for k in chosen:
        for key in keys:
            var = lava_var(k, key)
            if var is not None:
                m = Monitor()
                m.probe(getattr(net.layers[k].neuron, var), steps)
                mons[k, key] = m
    rec: dict[str, list] = {"spikes": [], "u": [], "v": []}
    try:
        cfg = Loihi2SimCfg(select_tag="fixed_pt")
        t1 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Cannot import module")
            # the first step apart: it includes Lava's compile and process start-up
            net.run(condition=RunSteps(num_steps=1), run_cfg=cfg)
            t2 = time.perf_counter()
            if steps > 1:
                net.run(condition=RunSteps(num_steps=steps - 1), run_cfg=cfg)
        t3 = time.perf_counter()
        for k in chosen:
            neuron = net.layers[k].neuron
            graded = isinstance(neurons[k], sdnn.SigmaDelta)
            for key in keys:
                var = lava_var(k, key)
                if var is None:                    # a Sigma has no residue: sim/ records 0
                    rec[key].append(np.zeros((1, steps, int(np.prod(pops[k][1]))), np.int64))
                    continue
                data = np.asarray(mons[k, key].get_data()[neuron.name][var])
                a = from_lava_order(data, pops[k][1])[None]
                spikes = key == "spikes" and not graded
                rec[key].append(a != 0 if spikes else np.rint(a).astype(np.int64))
    finally:
        net.stop()
    if timings is not None:
        timings.update(build_s=t1 - t0, first_step_s=t2 - t1, rest_s=t3 - t2)
    return rec


def run(path: str | Path, net_desc: SpikingNet, x: np.ndarray, **kw) -> dict[str, list]:
    """A batch x [B, T, *input_shape], sample by sample: the layout of sim.network_run.run."""
    outs = [run_sample(path, net_desc, xb, **kw) for xb in np.asarray(x)]
    return {key: [np.concatenate([o[key][i] for o in outs]) for i in range(len(outs[0][key]))]
            for key in ("spikes", "u", "v")}
