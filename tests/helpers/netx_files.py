"""netx files made by lava-dl's own exporter: small random slayer networks (slayer.block.cuba
and slayer.block.sigma_delta blocks), run once forward (slayer learns its shapes there) and
written block by block with each block's export_hdf5, the way lava-dl's tutorials export trained
networks; and the checks the netx tests share. Used by tests/test_bridge_netx_read.py,
tests/test_sim_sdnn.py and benchmarks/netx_vs_lava.py."""
from __future__ import annotations

import contextlib
import io
import warnings
from pathlib import Path

import h5py
import numpy as np


def slayer():
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        from lava.lib.dl import slayer as s
    return s


def neuron(threshold=0.4, current_decay=0.25, voltage_decay=0.05, **kw) -> dict:
    return dict(threshold=threshold, current_decay=current_decay, voltage_decay=voltage_decay,
                **kw)


def export(path: str | Path, blocks: list, in_shape: tuple[int, ...], seed: int = 0,
           delays: dict[int, int] | None = None, before_export=None) -> Path:
    """Run the blocks once on a random input [1, *in_shape, 4] (slayer fixes shapes then), set
    random integer axonal delays (0..max) on the blocks listed in `delays`, call
    before_export(), export to `path`."""
    import torch
    torch.manual_seed(seed)
    x = torch.rand(1, *in_shape, 4)
    with torch.no_grad():
        for b in blocks:
            x = b(x)
    for k, hi in (delays or {}).items():
        d = blocks[k].delay.delay
        d.data = torch.randint(0, hi + 1, d.shape).float()
    if before_export is not None:
        before_export()
    with h5py.File(path, "w") as f:
        g = f.create_group("layer")
        for i, b in enumerate(blocks):
            b.export_hdf5(g.create_group(str(i)))
    return Path(path)


def _input(s, params):
    # without a neuron slayer's step delay has nothing to read its state from: no shift
    return s.block.cuba.Input(params, delay_shift=params is not None)


def conv_net(path, seed=0, input_neuron=True, groups=2, dilation=1, delay=True, bias=False):
    """Input (a neuron fed by its bias, or spikes) -> conv (stride, padding, groups, dilation)
    -> conv -> flatten -> dense (axonal delays) -> dense."""
    s = slayer()
    import torch
    torch.manual_seed(seed)
    p = neuron()
    pb = neuron(norm=s.neuron.norm.MeanOnlyBatchNorm) if bias else p
    blocks = [_input(s, p if input_neuron else None),
              s.block.cuba.Conv(pb, 4, 6, 3, stride=2, padding=1, dilation=dilation,
                                groups=groups, weight_scale=4),
              s.block.cuba.Conv(p, 6, 8, (3, 2), stride=(1, 2), padding=(1, 0), weight_scale=4),
              s.block.cuba.Flatten()]
    x = torch.zeros(1, 4, 10, 12, 1)
    with torch.no_grad():
        for b in blocks:
            x = b(x)
    n = x.shape[1]
    blocks += [s.block.cuba.Dense(pb, n, 10, delay=delay, weight_scale=4),
               s.block.cuba.Dense(p, 10, 4, weight_scale=4)]
    return export(path, blocks, (4, 10, 12), seed, delays={4: 5} if delay else None)


def dense_net(path, seed=0, recurrent=True, input_neuron=False):
    """(Input ->) dense -> recurrent dense -> dense: an MNIST-like chain in miniature."""
    s = slayer()
    import torch
    torch.manual_seed(seed)
    p = neuron(threshold=0.3)
    blocks = [_input(s, p if input_neuron else None),
              s.block.cuba.Dense(p, 20, 16, weight_scale=3)]
    blocks.append(s.block.cuba.Recurrent(p, 16, 12, weight_scale=3) if recurrent
                  else s.block.cuba.Dense(p, 16, 12, weight_scale=3))
    blocks.append(s.block.cuba.Dense(p, 12, 5, weight_scale=3))
    return export(path, blocks, (20,), seed)


def rng_input(shape, steps, seed=0, kind="spikes", density=0.3, batch=1) -> np.ndarray:
    """x [batch, steps, *shape]: binary spikes, graded values (1..7), or a constant bias
    mantissa image (0..400) for an input neuron."""
    rng = np.random.default_rng(seed)
    if kind == "bias":
        img = rng.integers(0, 400, (batch, 1, *shape))
        return np.repeat(img, steps, axis=1)
    x = rng.random((batch, steps, *shape)) < density
    if kind == "graded":
        return x * rng.integers(1, 8, x.shape)
    return x



def sd_neuron(threshold=0.1, bias=False) -> dict:
    """slayer sigma-delta ReLU neuron parameters; bias: a MeanOnlyBatchNorm, whose running mean
    exports (negated, quantised) as the layer's bias."""
    s = slayer()
    import torch
    p = dict(threshold=threshold, activation=torch.nn.functional.relu)
    return dict(p, norm=s.neuron.norm.MeanOnlyBatchNorm) if bias else p


def sdnn_net(path, seed=0, conv=True, bias=True, threshold=0.1, input_neuron=True,
             weight_scale=2, delay=False, bias_size=0.05, in_shape=None) -> Path:
    """lava-dl's sigma-delta blocks, PilotNet SDNN's kinds in miniature. conv: Input (a Delta
    encoder, or none: graded input) -> conv (stride 2, padding 1) -> conv -> flatten -> dense
    (optionally with axonal delays) -> dense -> Output (a Sigma); else Input -> the dense part.
    bias: the first conv and dense get random biases of about +-bias_size (slayer units)."""
    s = slayer()
    import torch
    torch.manual_seed(seed)
    sd = s.block.sigma_delta
    p, pb = sd_neuron(threshold), sd_neuron(threshold, bias=bias)
    in_shape = in_shape or ((2, 6, 7) if conv else (20,))
    blocks = [sd.Input(p) if input_neuron else _input(s, None)]   # sd.Input needs a neuron
    n = int(np.prod(in_shape))
    if conv:
        blocks += [sd.Conv(pb, in_shape[0], 4, 3, stride=2, padding=1, weight_scale=weight_scale),
                   sd.Conv(p, 4, 5, (3, 2), padding=(1, 0), weight_scale=weight_scale),
                   sd.Flatten()]
        x = torch.zeros(1, *in_shape, 1)
        with torch.no_grad():
            for b in blocks[1:]:
                x = b(x)
        n = x.shape[1]
    blocks += [sd.Dense(pb, n, 12, weight_scale=weight_scale, delay=delay),
               sd.Dense(p, 12, 8, weight_scale=weight_scale),
               sd.Output(p, 8, 3, weight_scale=weight_scale)]

    def set_bias():
        g = torch.Generator().manual_seed(seed)
        for b in blocks:
            norm = getattr(getattr(b, "neuron", None), "norm", None)
            if norm is not None:
                m = norm.running_mean
                norm.running_mean = (torch.rand(m.shape, generator=g) * 2 - 1) * bias_size
    return export(path, blocks, in_shape, seed, delays={len(blocks) - 3: 4} if delay else None,
                  before_export=set_bias)


def rng_frames(shape, steps, seed=0, hi=256, batch=1) -> np.ndarray:
    """x [batch, steps, *shape]: a slowly changing integer 'video' in [0, hi), what a Delta
    input layer takes at its a_in (most values repeat from step to step)."""
    rng = np.random.default_rng(seed)
    x = np.empty((batch, steps, *shape), np.int64)
    x[:, 0] = rng.integers(0, hi, (batch, *shape))
    for t in range(1, steps):
        change = rng.random((batch, *shape)) < 0.3
        x[:, t] = np.where(change, rng.integers(0, hi, (batch, *shape)), x[:, t - 1])
    return x


def assert_netx_sim_equals_lava(path, x, **kw):
    """The file read by bridge/netx_read.py and run by sim/ equals lava-dl's netx in Lava: every
    population, every step, s/u/v; returns the spike count per population."""
    from metaloihi.bridge import netx_lava
    from metaloihi.bridge.netx_read import read_netx
    from metaloihi.sim.network_run import run
    net = read_netx(path, **kw)
    ours = run(net, x, record_uv=True)
    ref = netx_lava.run(path, net, x, **kw)
    for i, (name, _) in enumerate(net.populations):
        for key in ("spikes", "u", "v"):
            a, b = ref[key][i], ours[key][i]
            assert a.shape == b.shape, (name, key, a.shape, b.shape)
            bad = np.argwhere(a != b)
            first = tuple(bad[0]) if bad.size else None
            assert bad.size == 0, (f"{name} {key}: first mismatch at (batch, step, neuron) "
                                   f"{first}: lava {a[first]} sim {b[first]}")
    return [int(s.sum()) for s in ours["spikes"]]


def write_layers(path, layers: list[dict]):
    """A netx file written by hand: layer/i/<key> datasets (type as lava-dl stores it)."""
    with h5py.File(path, "w") as f:
        for i, d in enumerate(layers):
            g = f.create_group(f"layer/{i}")
            for k, v in d.items():
                if k == "type":
                    g.create_dataset("type", (1,), "S10", [v.encode()])
                else:
                    g.create_dataset(k, data=v)
    return path


def one_line(err) -> str:
    """The message of a pytest.raises ExceptionInfo, asserted to be one line."""
    msg = str(err.value)
    assert "\n" not in msg
    return msg
