"""Run a bundle's frozen layers as lava-dl's netx builds them (hdf5.Network), in Lava's CPU
simulator (Loihi2SimCfg, fixed_pt): the check that netx computes what sim/ computes."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from metaloihi.bridge.lava_net import from_lava_order, to_lava_order
from metaloihi.lava_support import require_lava


def netx_network(path: str | Path):
    """lava.lib.dl.netx.hdf5.Network of the bundle (it reads layer/ only)."""
    return require_lava("lava.lib.dl.netx.hdf5").Network(net_config=str(path))


def run_netx(path: str | Path, x: np.ndarray, record_v: bool = True) -> dict[str, list]:
    """One sample x [T, *in_shape] (binary) through netx's network of the bundle. Returns
    {"spikes": [per frozen layer bool [1, T, n]], "v": [int64 [1, T, n]]} in torch's flatten
    order, as sim.fixed.run(bundle.frozen, x[None], record_uv=True) returns them."""
    from metaloihi.bridge.bundle import read_bundle

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
