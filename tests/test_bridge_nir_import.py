"""NIR graphs from a real producer (snnTorch's `export_to_nir`) and from our own export, imported
onto Loihi 2 (bridge/nir_read.py, bridge/nir_import.py): the netx file loads in netx_read and
in lava-dl's netx, sim/ runs it bit-exactly as Lava does, the float model of the mapping is
snnTorch's own model step for step, quantisation keeps the output class, and the CLI prints and
writes the gap. Bad graphs are rows of tests/bad_inputs/test_bad_inputs.py."""
from __future__ import annotations

import json

import nir
import numpy as np
import pytest
import torch

from metaloihi import cli
from metaloihi.base.errors import UserError
from metaloihi.bridge import nir_gap
from metaloihi.bridge.netx_read import read_netx
from metaloihi.bridge.nir_import import import_nir, read_meta
from metaloihi.bridge.nir_read import read_nir
from metaloihi.sim import float_lif
from metaloihi.sim.network import from_fixed
from metaloihi.sim.network_run import run

snn = pytest.importorskip("snntorch")
lava = pytest.mark.lava


def _leaky(shape, beta=0.9):
    return snn.Leaky(beta=torch.full(shape, beta), threshold=torch.ones(shape),
                     reset_mechanism="zero", reset_delay=False, init_hidden=True)


def _synaptic(shape, alpha=0.8, beta=0.9, output=False):
    return snn.Synaptic(alpha=torch.full(shape, alpha), beta=torch.full(shape, beta),
                        threshold=torch.ones(shape), reset_mechanism="zero",
                        reset_delay=False, init_hidden=True, output=output)


def dense_lif(seed=0, bias=False):
    torch.manual_seed(seed)
    net = torch.nn.Sequential(torch.nn.Linear(20, 16, bias=bias), _leaky((16,)),
                              torch.nn.Linear(16, 4, bias=bias), _leaky((4,)))
    with torch.no_grad():
        for m in net:
            if isinstance(m, torch.nn.Linear):
                m.weight.mul_(3.0)           # enough drive that every layer spikes
    return net, (20,)


def conv_cuba(seed=0):
    torch.manual_seed(seed)
    net = torch.nn.Sequential(torch.nn.Conv2d(2, 4, 3, padding=1, bias=False),
                              torch.nn.AvgPool2d((2, 2)), _synaptic((4, 4, 4)),
                              torch.nn.Flatten(), torch.nn.Linear(64, 5, bias=False),
                              _synaptic((5,)))
    with torch.no_grad():
        net[0].weight.mul_(4.0)
        net[4].weight.mul_(3.0)
    return net, (2, 8, 8)


def export(net, shape, path):
    from snntorch.export_nir import export_to_nir
    graph = export_to_nir(net, torch.zeros(1, *shape), ignore_dims=[0])
    nir.write(str(path), graph)
    return path


def snn_counts(net, x: np.ndarray) -> list[np.ndarray]:
    """snnTorch's own run: spike counts [B, n] of every spiking module."""
    from snntorch import utils
    utils.reset(net)
    spiking = [m for m in net if isinstance(m, snn.SpikingNeuron)]
    counts = [0] * len(spiking)
    net = net.double()              # float64 as sim.float_lif: no rounding at the threshold
    xt = torch.as_tensor(x, dtype=torch.float64)
    with torch.no_grad():
        for t in range(xt.shape[1]):
            h = xt[:, t]
            k = 0
            for m in net:
                h = m(h.double())          # snnTorch's spikes come out as float32
                if isinstance(m, snn.SpikingNeuron):
                    h = h[0] if isinstance(h, tuple) else h
                    counts[k] = counts[k] + h.reshape(h.shape[0], -1).numpy()
                    k += 1
    return counts


def spikes(shape, samples=8, steps=12, rate=0.3, seed=1):
    return np.random.default_rng(seed).random((samples, steps, *shape)) < rate


@pytest.mark.parametrize("make", [dense_lif, conv_cuba], ids=["dense-LIF", "conv-CubaLIF"])
def test_snntorch_graph_imports_to_a_netx_file_sim_runs_as_described(make, tmp_path):
    net, shape = make()
    imp = import_nir(export(net, shape, tmp_path / "g.nir"), tmp_path / "net.h5")
    desc = read_netx(tmp_path / "net.h5")
    x = spikes(imp.float_net.input_shape)
    a, b = run(desc, x, record_uv=True), run(from_fixed(imp.net), x, record_uv=True)
    for key in ("spikes", "u", "v"):
        assert all(np.array_equal(p, q) for p, q in zip(a[key], b[key])), key
    # spikes per population on spikes(): seeded torch init and input, integer sim/: exact
    assert [int(s.sum()) for s in a["spikes"]] == {"dense_lif": [83, 47],
                                                   "conv_cuba": [1131, 58]}[make.__name__]
    meta = read_meta(tmp_path / "net.h5")
    assert meta["dt"] == 1e-4 and meta["readout"] == "spikes" and len(meta["scales"]) == 2
    # 8-bit weights on the even grid, one population per neuron node
    assert all(np.abs(layer.weight).max() == 254 for layer in imp.net)
    assert [e.w_rel_rms < 0.01 for e in imp.errors] == [True, True]


@pytest.mark.parametrize("make", [dense_lif, conv_cuba], ids=["dense-LIF", "conv-CubaLIF"])
def test_the_float_mapping_is_snntorchs_own_model_step_for_step(make, tmp_path):
    """NIR -> sim.float_lif (Lava's timing) equals snnTorch's forward once the input is followed
    by one silent step per layer (Lava's synaptic delay), every spike count of every layer."""
    net, shape = make()
    fnet = read_nir(export(net, shape, tmp_path / "g.nir"))
    x = spikes(shape, samples=16, steps=15)
    layers = len(fnet.specs)
    xp = np.concatenate([x, np.zeros((16, layers, *shape), bool)], axis=1)
    with torch.no_grad():
        rec = float_lif.run(fnet.specs, fnet.params, fnet.neurons,
                            torch.as_tensor(nir_gap.as_input(xp, fnet), dtype=torch.float64))
    # layer k (from 1) sees the input k steps late: its window is steps k .. k + T - 1
    ours = [s[:, k + 1: k + 1 + x.shape[1]].sum(dim=1).numpy()
            for k, s in enumerate(rec["spikes"])]
    theirs = snn_counts(net, x)
    same = [float(np.mean(a == b)) for a, b in zip(ours, theirs)]
    assert same == [1.0, 1.0], same
    assert [int(b.sum()) for b in theirs] == {"dense_lif": [229, 151],
                                              "conv_cuba": [3163, 231]}[make.__name__]


@pytest.mark.parametrize("make", [dense_lif, conv_cuba], ids=["dense-LIF", "conv-CubaLIF"])
def test_quantisation_keeps_the_output_class_on_random_inputs(make, tmp_path):
    net, shape = make()
    imp = import_nir(export(net, shape, tmp_path / "g.nir"), tmp_path / "net.h5")
    gap = nir_gap.measure(imp, spikes(shape, samples=64, steps=20, seed=3), lava_samples=0)
    # measured: 62 / 64 samples keep their class (dense), 64 / 64 (conv); the per-layer count
    # correlations of the float and the integer model to 1e-6 (float64 sums of integers)
    want = {"dense_lif": (62 / 64, [0.9995558, 0.9969154]),
            "conv_cuba": (1.0, [0.9998840, 0.9982868])}[make.__name__]
    assert gap["agreement"] == want[0]
    assert [r["count_corr"] for r in gap["layers"]] == pytest.approx(want[1], abs=1e-6)


def test_biases_and_scaled_inputs_fold_into_weights_and_the_v_bias(tmp_path):
    """Affine biases (a constant input) become Loihi's v bias; r and tau scale the weights."""
    net, shape = dense_lif(seed=2, bias=True)
    path = export(net, shape, tmp_path / "g.nir")
    fnet = read_nir(path)
    w0 = net[0].weight.detach().double().numpy()
    assert np.allclose(fnet.params[float_lif.weight_key(0)].numpy(), w0, rtol=1e-6)
    assert np.allclose(fnet.neurons[0].bias, net[0].bias.detach().double().numpy(), rtol=1e-6)
    assert fnet.neurons[0].du == 1.0 and abs(fnet.neurons[0].dv - 0.1) < 1e-6


def test_round_trip_through_our_own_nir_export_keeps_every_integer(tmp_path):
    """bundle -> bridge/nir_export -> import: the same mantissas, decays and thresholds, so the
    same spikes, u and v (the head too: it becomes a netx dense layer)."""
    from metaloihi.bridge.export import random_float_network
    from metaloihi.bridge.nir_export import write_nir
    from metaloihi.bridge.quantize import quantize
    specs, params, neurons = random_float_network((2, 8, 8), ways=3, channels=(2, 4), seed=1)
    q = quantize(specs, params, neurons, head_weight_exp=0)
    write_nir(tmp_path / "ours.nir", q.net, q.scales, dt=1e-3)
    imp = import_nir(tmp_path / "ours.nir", tmp_path / "back.h5")
    assert imp.float_net.dt_source == "the graph's metadata"
    for a, b in zip(q.net, imp.net):
        assert np.array_equal(a.weight, b.weight)
        assert (a.neuron.du, a.neuron.dv, a.neuron.vth) == (b.neuron.du, b.neuron.dv,
                                                            b.neuron.vth)
    x = spikes((2, 8, 8), samples=4, steps=10)
    frozen = run(from_fixed(q.net[:-1]), x, record_uv=True)
    back = run(read_netx(tmp_path / "back.h5"), x, record_uv=True)
    for key in ("spikes", "u", "v"):
        assert all(np.array_equal(p, r) for p, r in zip(frozen[key], back[key])), key


def test_an_li_output_integrator_reads_out_by_membrane(tmp_path):
    w1 = np.random.default_rng(0).normal(size=(6, 10)) * 2
    w2 = np.random.default_rng(1).normal(size=(3, 6))
    g = nir.NIRGraph.from_list(
        nir.Input(input_type=np.array([10])), nir.Linear(weight=w1),
        nir.IF(r=np.ones(6), v_threshold=np.ones(6)), nir.Linear(weight=w2),
        nir.LI(tau=np.full(3, 1e-3), r=np.full(3, 1.0), v_leak=np.zeros(3)),
        nir.Output(output_type=np.array([3])))
    nir.write(str(tmp_path / "g.nir"), g)
    imp = import_nir(tmp_path / "g.nir", tmp_path / "n.h5", dt=1e-4)
    assert imp.float_net.readout == "membrane" and imp.net[-1].neuron.vth == 2 ** 17 - 1
    assert imp.net[0].neuron.dv == 0 and imp.net[1].neuron.dv == 410   # dt/tau = 0.1
    gap = nir_gap.measure(imp, spikes((10,), samples=32, steps=15), lava_samples=0)
    assert gap["layers"][-1]["rate_fixed"] == 0.0 and gap["agreement"] == 1.0   # 32 of 32


def test_a_reset_loihi_lacks_is_refused_naming_the_node(tmp_path):
    g = nir.NIRGraph.from_list(
        nir.Input(input_type=np.array([4])), nir.Linear(weight=np.ones((2, 4))),
        nir.LIF(tau=np.full(2, 1e-3), r=np.ones(2), v_leak=np.zeros(2),
                v_threshold=np.ones(2), v_reset=np.full(2, -0.5)),
        nir.Output(output_type=np.array([2])))
    nir.write(str(tmp_path / "g.nir"), g)
    with pytest.raises(UserError, match=r"node 'lif' \(LIF\): v_reset=-0.5: Loihi resets v to 0"):
        import_nir(tmp_path / "g.nir", tmp_path / "n.h5")
    assert not (tmp_path / "n.h5").exists()


def test_the_cli_prints_and_writes_the_gap(tmp_path, capsys):
    net, shape = conv_cuba()
    export(net, shape, tmp_path / "g.nir")
    with pytest.raises(SystemExit) as exc:
        cli.main(["import", str(tmp_path / "g.nir"), "--out", str(tmp_path / "n.h5"),
                  "--samples", "16", "--steps", "10", "--lava-samples", "0",
                  "--json", str(tmp_path / "gap.json")])
    out = capsys.readouterr().out
    assert exc.value.code == 0, out
    assert "output agreement (class by spikes)" in out and "w relRMS" in out
    res = json.loads((tmp_path / "gap.json").read_text())
    assert res["samples"] == 16 and res["steps"] == 10 and len(res["layers"]) == 2
    assert res["agreement"] == 15 / 16 and "lava" not in res                   # measured


@lava
@pytest.mark.parametrize("make", [dense_lif, conv_cuba], ids=["dense-LIF", "conv-CubaLIF"])
def test_lava_runs_the_imported_netx_file_as_sim_does(make, tmp_path):
    """lava-dl's netx.hdf5.Network loads the file; 1 input x 8 steps, every population's
    spikes, u and v identical."""
    net, shape = make()
    imp = import_nir(export(net, shape, tmp_path / "g.nir"), tmp_path / "net.h5")
    x = spikes(imp.float_net.input_shape, samples=1, steps=8, rate=0.5)
    desc, rec, counts, _ = nir_gap.run_deployed(imp.path, x)
    lv = nir_gap.compare_lava(imp.path, desc, rec, x)
    assert lv["identical"] and sum(int(c.sum()) for c in counts) > 0


def test_a_batch_of_one_in_the_input_and_output_shapes_is_dropped(tmp_path):
    """nirtorch-based exporters (Norse 1.1's to_nir) write the sample data's batch of one into
    the Input's and Output's shapes ([1, 6] feeding an Affine that takes [6]); nir.read refuses
    the graph, the import reads it as [6]. Any other mismatch stays an error."""
    w = np.random.default_rng(0).normal(size=(3, 6))
    lif = nir.LIF(tau=np.full(3, 1e-2), r=np.ones(3), v_leak=np.zeros(3),
                  v_threshold=np.ones(3))
    def graph(shape_in, shape_out):
        return nir.NIRGraph(nodes={"input": nir.Input(input_type=np.array(shape_in)),
                                   "fc": nir.Affine(weight=w, bias=np.zeros(3)), "lif": lif,
                                   "output": nir.Output(output_type=np.array(shape_out))},
                            edges=[("input", "fc"), ("fc", "lif"), ("lif", "output")],
                            type_check=False)
    nir.write(str(tmp_path / "b.nir"), graph([1, 6], [1, 3]))
    fnet = read_nir(tmp_path / "b.nir", dt=1e-3)
    assert fnet.input_shape == (6,) and fnet.specs[0].weight_shape == (3, 6)
    nir.write(str(tmp_path / "bad.nir"), graph([2, 6], [1, 3]))
    with pytest.raises(UserError, match="shape mismatch"):
        read_nir(tmp_path / "bad.nir", dt=1e-3)
