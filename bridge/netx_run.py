"""A bundle's frozen layers as lava-dl's netx builds them (hdf5.Network), and the one home of
"one sample per period, each from rest" that `deploy` (bridge/deploy.py) and the on-chip
session (onchip/graph.py) share: a RingBuffer that plays sample k in steps
k*P .. k*P+T-1 and silence after, and a host loop that runs one period at a time and puts the
listed state variables back at rest between periods (Var.set on the paused runtime)."""
from __future__ import annotations

from pathlib import Path

import warnings

import numpy as np

from metaloihi.bridge.lava_net import to_lava_order
from metaloihi.base.lava_support import require_lava


def netx_network(path: str | Path):
    """lava.lib.dl.netx.hdf5.Network of the bundle (it reads layer/ only)."""
    return require_lava("lava.lib.dl.netx.hdf5").Network(net_config=str(path))


def period_source(x: np.ndarray, period: int):
    """A RingBuffer playing samples x [S, T, *in_shape] (binary) one per `period` steps; the
    period's steps after the window carry no input."""
    x = np.asarray(x)
    S, T = x.shape[:2]
    in_shape = tuple(x.shape[2:])
    data = np.zeros((S, period, *in_shape), np.int32)
    data[:, :T] = x != 0
    data = to_lava_order(data.reshape(S * period, *in_shape), in_shape)
    return require_lava("lava.proc.io.source").RingBuffer(data=np.moveaxis(data, 0, -1))


def netx_rest_vars(net) -> list:
    """The state netx's layers hold across steps: each LIF's u and v, each synapse's buffer."""
    out = []
    for block in net.layers:
        syn = block.synapse
        out += [block.neuron.u, block.neuron.v, syn.a_buff if hasattr(syn, "a_buff") else syn.a_buf]
    return out


def run_periods(source, samples: int, period: int, run_cfg, rest: list, after=None) -> None:
    """Run `samples` periods; after(k) is called after period k (while paused), then every Var
    in `rest` is zeroed before the next one. The caller stops the runtime."""
    RunSteps = require_lava("lava.magma.core.run_conditions").RunSteps
    with warnings.catch_warnings():
        # the compiler imports every module it finds looking for models; ours are mapped
        warnings.filterwarnings("ignore", message="Cannot import module")
        for k in range(samples):
            source.run(condition=RunSteps(num_steps=period), run_cfg=run_cfg)
            if after is not None:
                after(k)
            if k < samples - 1:
                for var in rest:
                    var.set(np.zeros(var.shape, dtype=np.int32))
