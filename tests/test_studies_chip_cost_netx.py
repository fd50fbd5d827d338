"""`metaloihi cost` and the report on netx files made by lava-dl's exporter: the same resource
numbers as the equivalent bundle (one description, sim/network.py's SpikingNet, for both),
activity equal to sim/'s spike counts and to synaptic events counted independently (conv
dilation and groups through torch, recurrent and graded by hand), the command end to end with
the report showing the imported network, and one-line errors for bad files."""
import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from helpers.cli import run_cli
from metaloihi.bridge.attach_head import attach_head
from metaloihi.bridge.bundle import read_bundle
from metaloihi.bridge.netx_read import read_netx
from metaloihi.sim.arch import ConvSpec, DenseSpec
from metaloihi.sim.network import Cuba, NetLayer, SpikingNet
from metaloihi.sim.network_run import run
from metaloihi.studies import chip_resources as cr
from metaloihi.studies.chip_cost import inference_activity, sample_activity

from helpers import netx_files as nf

NUMERIC = ("neurons", "fan_in_axons", "synapses", "synapses_nonzero", "synapses_shared",
           "memory_bytes", "memory_shared_bytes", "cores", "cores_shared", "limited_by")


def test_exported_netx_costs_like_the_equivalent_bundle(tmp_path):
    """slayer's conv -> conv -> flatten -> dense -> dense, and the bundle attach-head makes of
    it (the same four layers frozen, a head on top): every resource number of the four layers
    is the same, and so is their activity on the same input."""
    path = nf.conv_net(tmp_path / "c.net", seed=4, input_neuron=False, groups=1, delay=False)
    bundle = tmp_path / "b.h5"
    attach_head(path, layer=5, ways=3, out=bundle)
    imported = read_netx(path)
    b = read_bundle(bundle)
    ours = cr.layer_resources(imported)
    theirs = cr.layer_resources(b.net, head=True)
    assert [r.kind for r in ours] == ["conv", "conv", "dense", "dense"]
    assert [r.kind for r in theirs] == ["conv", "conv", "dense", "dense", "head"]
    for a, c in zip(ours, theirs[:4]):
        assert [getattr(a, k) for k in NUMERIC] == [getattr(c, k) for k in NUMERIC], a.name
    # hand counts of the first conv: 4x10x12 -> 6x5x6, 3x3 stride 2 padding 1; per axis the
    # (input, tap) pairs that stay inside: rows 5 outputs x 3 taps - 1 clipped = 14, columns
    # 6 x 3 - 1 = 17; synapses 6 out x 4 in channels x 14 x 17
    assert ours[0].synapses == 6 * 4 * 14 * 17 and ours[0].synapses_shared == 6 * 4 * 9
    assert ours[2].synapses == 120 * 10 and ours[2].memory_bytes == 1200
    x = nf.rng_input((4, 10, 12), 12, seed=2, density=0.4, batch=2)
    pops = run(imported, x)["spikes"]
    act = inference_activity(imported, x, pops)
    head = np.zeros((2, 12, 3), bool)
    bact = sample_activity(b, x, head, np.array([-1, -1]), rule=None)
    np.testing.assert_array_equal(act.spikes, bact.spikes[:, :4])
    np.testing.assert_array_equal(act.synops, bact.synops[:, :4])
    assert act.spikes.tolist() == [[1209, 520, 63, 24], [1208, 458, 70, 32]]   # per population


def _conv_events(spec: ConvSpec, s: np.ndarray) -> int:
    """Synaptic events into a conv, counted independently: every active input inside each
    output's receptive field (its group's channels), by a convolution with a kernel of ones."""
    ones = torch.ones(spec.weight_shape, dtype=torch.float64)
    x = torch.from_numpy(s.reshape(-1, *spec.in_shape).astype(np.float64))
    return int(F.conv2d(x, ones, stride=spec.stride, padding=spec.padding,
                        dilation=spec.dilation, groups=spec.groups).sum())


def test_activity_counts_equal_sim_spikes_with_dilation_groups_delays_and_an_input_neuron(
        tmp_path):
    path = nf.conv_net(tmp_path / "g.net", seed=5, groups=2, dilation=2, delay=True)
    net = read_netx(path)
    assert net.layers[0].spec.dilation == (2, 2) and net.layers[0].spec.groups == 2
    x = nf.rng_input((4, 10, 12), 10, kind="bias", batch=2)
    pops = run(net, x)["spikes"]
    act = inference_activity(net, x, pops)
    counts = np.stack([p.reshape(2, -1).sum(1) for p in pops], 1)
    np.testing.assert_array_equal(act.spikes, counts)          # sim/'s spike counts
    assert counts.tolist() == [[4576, 663, 256, 11, 5], [4631, 668, 262, 12, 4]]
    for s in range(2):
        assert act.synops[s, 0] == 0                           # the input population
        for i, layer in enumerate(net.layers):
            pre = pops[i][s]
            want = (_conv_events(layer.spec, pre) if isinstance(layer.spec, ConvSpec)
                    else int(pre.sum()) * layer.n_out)
            assert act.synops[s, i + 1] == want, (s, layer.name)
    assert act.neuron_updates.tolist() == [480 * 10] + [layer.n_out * 10 for layer in net.layers]
    # bias values written: 480 non-zero at step 0 (the image has few zeros), none after (held)
    assert act.msgs_events["input values written host->chip"].tolist() == \
        (x[:, 0] != 0).reshape(2, -1).sum(1).tolist()
    res = cr.layer_resources(net)
    assert [r.kind for r in res] == ["input", "conv", "conv", "dense", "dense"]
    # dilated, grouped conv 4x10x12 -> 6x4x5 (3x3, stride 2, padding 1, dilation 2, groups 2):
    # each output channel reads 2 input channels; output o reads 2o - 1 + 2t (t = 0..2): rows
    # 0..9 hold all 4 x 3 pairs but (0, 0): 11; columns 0..11, 5 x 3 - 1 = 14
    assert net.layers[0].spec.out_shape == (6, 4, 5)
    assert res[1].synapses == 6 * 2 * 11 * 14 and res[1].synapses_shared == 6 * 2 * 9
    # the dense layer with delays stores 6 delay bits beside each 8-bit weight
    assert res[3].synapses == 64 * 10 and res[3].memory_bytes == 640 * 14 // 8   # 8x4x2 in
    assert res[0].neurons == 480 and res[0].synapses == 0 and res[0].cores == 1


def test_recurrent_and_graded_input_activity_by_hand(tmp_path):
    path = nf.dense_net(tmp_path / "r.net", seed=3)
    net = read_netx(path, input_message_bits=3)
    x = nf.rng_input((20,), 12, kind="graded", batch=3)
    pops = run(net, x)["spikes"]
    act = inference_activity(net, x, pops)
    events = (x != 0).reshape(3, -1).sum(1)                    # a graded value: one event
    sp = [p.reshape(3, -1).sum(1) for p in pops]
    assert act.synops[:, 0].tolist() == (events * 16).tolist()
    assert act.synops[:, 1].tolist() == (sp[0] * 12 + sp[1] * 12).tolist()  # + its own spikes
    assert act.synops[:, 2].tolist() == (sp[1] * 5).tolist()
    assert act.msgs_events["input events host->chip"].tolist() == events.tolist()
    rec = cr.layer_resources(net)[1]
    assert (rec.kind, rec.synapses, rec.synapses_shared, rec.fan_in_axons) == \
        ("dense_rec", 16 * 12 + 12 * 12, 16 * 12 + 12 * 12, 16 + 12)


def test_cost_command_on_a_netx_file_and_the_report_shows_it(tmp_path, capsys):
    path = nf.conv_net(tmp_path / "imported.net", seed=1, bias=True)
    net = read_netx(path)
    x = nf.rng_input((4, 10, 12), 8, kind="bias", batch=2)
    np.save(tmp_path / "x.npy", x)
    out_json = tmp_path / "imported.cost.json"
    code, out, err = run_cli(["cost", path, "--input", tmp_path / "x.npy", "--json", out_json],
                          capsys)
    assert code == 0, err
    r = json.loads(out_json.read_text())
    assert r["kind"] == "netx" and r["samples"] == 2 and r["steps"] == 8
    pops = run(net, x)["spikes"]
    want = [float(p.reshape(2, -1).sum(1).mean()) for p in pops]
    assert r["activity"]["inference"]["spikes"] == want
    assert r["populations"][0] == "input" and "layer 5 (dense)" in r["populations"]
    tot = r["resources"]["totals"]
    assert tot["neurons"] == 480 + sum(layer.n_out for layer in net.layers)
    assert "fits one chip (128 cores): yes" in out and f"{tot['synapses']:,}" in out
    lo, hi = r["estimate"]["inference"]["energy_J"]
    assert 0 < lo < hi and r["cpu"]["sim_s"] > 0
    # random input when none is given: seeded, the same twice
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    for j in (a, b):
        code, _, err = run_cli(["cost", path, "--samples", "2", "--steps", "5", "--json", j],
                               capsys)
        assert code == 0, err
    ra, rb = json.loads(a.read_text()), json.loads(b.read_text())
    assert ra["activity"] == rb["activity"] and "random bias image" in ra["input"]
    # the report: the network's populations and its cost JSON beside it
    from metaloihi.report import Inputs, build_report
    page = build_report(tmp_path / "rep", Inputs([], [], [path], [], [], [])).read_text()
    sec = page[page.index('<section id="bundles">'):page.index('<section id="cost">')]
    assert "imported.net" in sec and "layer 1 (conv)" in sec and "groups 2" in sec
    d = net.layers[2].delay
    assert f"delays {d.min()}..{d.max()}" in sec and d.max() > 1 and "no learning head" in sec
    cost = page[page.index('<section id="cost">'):]
    assert f"{tot['synapses']:,}" in cost and "imported.cost.json" in cost
    assert "Loihi 2 energy (estimate)" in cost and "layer 4 (dense)" in cost


def test_bad_files_and_inputs_are_one_line_errors(tmp_path, capsys):
    junk = tmp_path / "junk.net"
    junk.write_bytes(b"not hdf5")
    code, _, err = run_cli(["cost", junk], capsys)
    assert code == 1 and err.strip().count("\n") == 0 and "not an HDF5 file" in err
    s = nf.slayer()
    pool = nf.export(tmp_path / "pool.net", [s.block.cuba.Pool(nf.neuron(), 2)], (2, 4, 4))
    code, _, err = run_cli(["cost", pool], capsys)
    assert code == 1 and err.strip().count("\n") == 0 and "layer 0 (pool): not supported" in err
    path = nf.dense_net(tmp_path / "d.net", seed=3)
    np.save(tmp_path / "bad.npy", np.zeros((1, 4, 7)))
    code, _, err = run_cli(["cost", path, "--input", tmp_path / "bad.npy"], capsys)
    assert code == 1 and err.strip().count("\n") == 0 and "expected [batch, steps, 20]" in err
    from metaloihi.report import Inputs, build_report
    from metaloihi.base.errors import UserError
    with pytest.raises(UserError, match="pool.net: layer 0 \\(pool\\)"):
        build_report(tmp_path / "rep", Inputs([], [], [pool], [], [], []))


def test_own_networks_cost_through_the_same_description():
    """A sim.fixed network and its from_fixed SpikingNet give the same rows (as_net)."""
    from metaloihi.sim.network import from_fixed
    from metaloihi.sim import loihi as L
    from metaloihi.sim.fixed import FixedLayer
    rng = np.random.default_rng(0)
    conv = ConvSpec((2, 8, 8), 3, (3, 3), stride=(2, 2), padding=(1, 1))
    net = [FixedLayer(conv, 2 * rng.integers(-5, 6, conv.weight_shape), L.LifFixed(100, 100, 50)),
           FixedLayer(DenseSpec(48, 4), 2 * rng.integers(-5, 6, (4, 48)), L.LifFixed(100, 100, 50))]
    a, b = cr.layer_resources(net), cr.layer_resources(from_fixed(net))
    assert cr.as_dicts(a) == cr.as_dicts(b)
    # a hand-made recurrent SpikingNet without an input neuron: no input row
    rec = SpikingNet((6,), (NetLayer(DenseSpec(6, 3), np.ones((3, 6)), Cuba(0, 0, 10),
                                     weight_rec=np.ones((3, 3))),))
    (r,) = cr.layer_resources(rec)
    assert (r.index, r.kind, r.synapses, r.fan_in_axons) == (0, "dense_rec", 18 + 9, 9)
