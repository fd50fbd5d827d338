"""A bundle's frozen layers as lava-dl's netx builds them (hdf5.Network), its head as Lava
processes (built here once for `deploy` and the on-chip session), and the one home of
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


def frozen_graph(bundle, x: np.ndarray, period: int, flatten: bool = True):
    """The bundle's frozen layers fed by samples x, one per period: (source, netx network, the
    port the head reads: the last frozen layer's spikes, flattened after a conv as netx does)."""
    if bundle.path is None:
        from metaloihi.base.errors import UserError
        raise UserError("Lava builds the frozen layers from the bundle's file (netx): write the "
                        "bundle (bridge.bundle.write_bundle) and read it back first")
    source = period_source(x, period)
    net = netx_network(bundle.path)
    source.s_out.connect(net.inp)
    prev_shape = tuple(bundle.frozen[-1].spec.out_shape)
    # an unconnected flatten port breaks Lava's compiler: make it only for a reader
    flat = flatten and len(prev_shape) == 3
    return source, net, (net.out.flatten() if flat else net.out)


def head_processes(bundle, weights: np.ndarray | None = None, dense_cls=None, lif_cls=None,
                   dense_kw: dict | None = None, lif_kw: dict | None = None):
    """The head as Lava processes, built in this one place: a Dense (the bundle's head weights,
    or `weights`, torch order, over Lava's flatten order; weight_exp) into a LIF (the head's
    neuron), connected. The classes default to Lava's Dense and LIF; the on-chip session
    passes LearningDense and its LIF with the learning rule (dense_kw, lif_kw)."""
    from metaloihi.bridge.lava_net import lava_dense_weight
    head = bundle.net[-1]
    prev_shape = tuple(bundle.frozen[-1].spec.out_shape)
    dense_cls = dense_cls or require_lava("lava.proc.dense.process").Dense
    lif_cls = lif_cls or require_lava("lava.proc.lif.process").LIF
    w = head.weight if weights is None else np.asarray(weights, np.int64)
    n_out, nrn = head.spec.out_features, head.neuron
    dense = dense_cls(weights=lava_dense_weight(w, prev_shape).astype(np.int32),
                      weight_exp=int(head.weight_exp), **(dense_kw or {}))
    lif = lif_cls(shape=(n_out,), du=int(nrn.du), dv=int(nrn.dv), vth=int(nrn.vth),
                  bias_mant=np.broadcast_to(np.asarray(nrn.bias_mant), (n_out,)).astype(
                      np.int32), bias_exp=int(nrn.bias_exp), **(lif_kw or {}))
    dense.a_out.connect(lif.a_in)
    return dense, lif


def replay_source(spikes: np.ndarray):
    """A RingBuffer playing recorded spikes [S, P, n] (flat, the head's input order), one
    sample per period of P steps: step t of sample k at step k*P + t, as they were recorded."""
    s = np.asarray(spikes)
    data = (s.reshape(-1, s.shape[-1]) != 0).astype(np.int32)
    return require_lava("lava.proc.io.source").RingBuffer(data=np.ascontiguousarray(data.T))


def run_frozen(bundle, x: np.ndarray, period: int, target: str = "lava") -> np.ndarray:
    """The bundle's frozen layers in Lava (netx) on samples x [S, T, *in_shape], one per period,
    each from rest: the last frozen layer's spikes [S, period, n] in the flat order the head
    reads (Lava's flatten of its (W, H, C) shape), as sent at each step."""
    import tempfile
    from metaloihi.bridge import spike_recorder as rec
    from metaloihi.bridge.target import run_config
    S = len(x)
    source, net, _ = frozen_graph(bundle, x, period, flatten=False)
    with tempfile.TemporaryDirectory(prefix="metaloihi-frozen-") as d:
        path = rec.create(Path(d) / "spikes.npy", S * period, tuple(net.out.shape))
        sink = rec.SpikeRecorder(shape=net.out.shape, path=str(path))
        net.out.connect(sink.s_in)
        try:
            run_periods(source, S, period, run_config(target, rec.MODELS), netx_rest_vars(net))
        finally:
            source.stop()
        data = np.load(path)
    return data.reshape(S, period, -1)
