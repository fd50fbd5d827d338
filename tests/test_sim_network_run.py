"""sim/network_run.py runs a plain conv layer on one of two exact paths: the fused event-driven
kernel (work per input spike) or a dense float32 convolution fed into the same LIF update
(work per synapse), chosen by dense_wins on cost. Both give the same spikes, u and v in every
combination along a network (stride, padding, dilation, groups, a per-channel bias, the fused
kernel's (H, W, C) spikes handed to the dense path and back, steps cut in chunks); the cost
model sends a busy wide conv to the dense path and a sparse or narrow one to the event kernel;
and a network whose first conv takes the dense path equals lava-dl's netx in Lava."""
import numpy as np
import pytest

from metaloihi.sim import network_run as nr
from metaloihi.sim.arch import ConvSpec, DenseSpec
from metaloihi.sim.network import Cuba, NetLayer, SpikingNet

from helpers import netx_files as nf


def _conv(rng, in_shape, out_channels, kernel, bias=False, **kw) -> NetLayer:
    spec = ConvSpec(in_shape, out_channels, kernel, **kw)
    w = rng.integers(-40, 60, spec.weight_shape)
    b = rng.integers(-200, 400, spec.out_shape[0]).repeat(int(np.prod(spec.out_shape[1:]))) \
        if bias else np.zeros(1, np.int64)
    return NetLayer(spec, w, Cuba(du=1024, dv=205, vth=40, bias=b))


def _net(seed: int) -> SpikingNet:
    """Input neuron fed by a bias image -> five convs (stride, padding, dilation, groups, a
    per-channel bias) -> dense."""
    rng = np.random.default_rng(seed)
    c1 = _conv(rng, (3, 20, 24), 8, (5, 5), bias=True, padding=(2, 2))
    c2 = _conv(rng, c1.spec.out_shape, 12, (3, 3), stride=(2, 2), padding=(1, 1), groups=2)
    c3 = _conv(rng, c2.spec.out_shape, 12, (3, 2), dilation=(2, 1), bias=True)
    c4 = _conv(rng, c3.spec.out_shape, 8, (3, 3), stride=(1, 2), padding=(1, 0), groups=4)
    c5 = _conv(rng, c4.spec.out_shape, 8, (1, 1))
    n = int(np.prod(c5.spec.out_shape))
    dense = NetLayer(DenseSpec(n, 5), rng.integers(-60, 80, (5, n)),
                     Cuba(du=1024, dv=205, vth=40))
    inp = Cuba(du=4095, dv=4095, vth=30, bias=np.zeros(3 * 20 * 24, np.int64))
    return SpikingNet((3, 20, 24), (c1, c2, c3, c4, c5, dense), input_neuron=inp)


def _run_with(monkeypatch, net, x, dense_layers: set[int]):
    order = [net.layers.index(layer) for layer in net.layers]
    ids = {id(net.layers[i]) for i in dense_layers}
    monkeypatch.setattr(nr, "dense_wins", lambda layer, density: id(layer) in ids)
    assert order == list(range(len(net.layers)))
    return nr.run(net, x, record_uv=True)


@pytest.mark.parametrize("dense_layers", [{0, 2, 4}, {1, 3}, {0, 1, 2, 3, 4}])
@pytest.mark.parametrize("seed", [0, 1])
def test_dense_conv_path_equals_the_fused_kernel(monkeypatch, seed, dense_layers):
    net = _net(seed)
    x = nf.rng_input(net.input_shape, 12, seed=seed, kind="bias", batch=3)
    fused = _run_with(monkeypatch, net, x, set())
    mixed = _run_with(monkeypatch, net, x, dense_layers)
    for key in ("spikes", "u", "v"):
        for i, (a, b) in enumerate(zip(fused[key], mixed[key])):
            assert a.shape == b.shape and a.dtype == b.dtype, (key, i)
            assert np.array_equal(a, b), (key, i, int((a != b).sum()))
    assert fused["paths"] == ["fused"] * 5 + ["fused"]          # run() says which path ran
    assert mixed["paths"][:5] == ["dense" if i in dense_layers else "fused" for i in range(5)]
    counts = [int(s.sum()) for s in fused["spikes"]]
    assert all(c > 0 for c in counts[1:]), counts          # every layer is active
    assert min(float(s.mean()) for s in fused["spikes"][1:6]) > 0.02, counts


def test_dense_conv_path_carries_its_state_across_chunks_of_steps(monkeypatch):
    net = _net(2)
    x = nf.rng_input(net.input_shape, 9, seed=2, kind="bias", batch=2)
    whole = _run_with(monkeypatch, net, x, {0, 1, 2, 3, 4})
    n0 = net.layers[0].n_out
    monkeypatch.setattr(nr, "_CHUNK", 2 * n0)            # layer 0: chunks of 2 steps
    chunked = nr.run(net, x, record_uv=True)
    for key in ("spikes", "u", "v"):
        assert all(np.array_equal(a, b) for a, b in zip(whole[key], chunked[key])), key


def test_cost_model_sends_busy_wide_convs_to_the_dense_path():
    rng = np.random.default_rng(0)
    # PilotNet's first two layers, as benchmarks/netx_vs_lava.py builds them
    first = _conv(rng, (3, 66, 200), 24, (5, 5), stride=(2, 2))
    second = _conv(rng, first.spec.out_shape, 36, (5, 5), stride=(2, 2))
    assert nr.dense_wins(first, 0.98) and nr.dense_wins(second, 0.49)
    assert not nr.dense_wins(first, 0.05) and not nr.dense_wins(second, 0.1)
    # a narrow conv (fan-in 2 x 3 x 3) never pays a convolution per synapse
    narrow = _conv(rng, (4, 10, 12), 6, (3, 3), groups=2)
    assert not nr.dense_wins(narrow, 1.0)
    assert not nr.dense_wins(NetLayer(DenseSpec(100, 10), np.ones((10, 100)),
                                      Cuba(du=0, dv=0, vth=1)), 1.0)


@pytest.mark.lava
def test_a_conv_on_the_dense_path_equals_lava(tmp_path):
    """A 3x16x16 bias image through a 12c5 conv (fan-in 75, about every input spiking: the
    dense path) and an 8c3 conv with groups, then dense: s/u/v at every step == netx in
    Lava."""
    s = nf.slayer()
    p = nf.neuron(threshold=0.3, current_decay=0.5, voltage_decay=0.1)
    c = s.block.cuba
    blocks = [c.Input(p), c.Conv(p, 3, 12, 5, padding=2, weight_scale=3),
              c.Conv(p, 12, 8, 3, stride=2, groups=2, weight_scale=3), c.Flatten(),
              c.Dense(p, 8 * 7 * 7, 4, weight_scale=3)]
    path = nf.export(tmp_path / "wide.net", blocks, (3, 16, 16), seed=4)
    from metaloihi.bridge.netx_read import read_netx
    net = read_netx(path)
    x = nf.rng_input((3, 16, 16), 8, seed=4, kind="bias")
    ours = nr.run(net, x)
    assert nr.plain(net.layers[0])
    assert nr.dense_wins(net.layers[0], float(np.mean(ours["spikes"][0])))
    assert ours["paths"] == ["dense", "fused", "fused"]
    counts = nf.assert_netx_sim_equals_lava(path, x)
    assert all(k > 0 for k in counts), counts
