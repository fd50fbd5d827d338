"""`metaloihi cost` (studies/chip_resources.py, studies/chip_cost.py): resources of a bundle of
known size against hand-counted numbers, activity counts against spikes counted independently,
the command end to end, and bad input."""
import json
from dataclasses import replace

import numpy as np
import pytest

from helpers.cli import run_cli
from metaloihi.bridge.bundle import HeadParams, read_bundle, write_bundle
from metaloihi.sim import fixed
from metaloihi.sim import loihi as L
from metaloihi.sim.arch import ConvSpec, DenseSpec
from metaloihi.sim.fixed import FixedLayer
from metaloihi.rules.soel.chip import ChipRule
from metaloihi.studies import chip_resources as cr
from metaloihi.studies.chip_cost import sample_activity
from metaloihi.studies.loihi2_limits import Figure, Limits, OpCosts

CONV = ConvSpec((2, 8, 8), 4, kernel=(3, 3), stride=(2, 2), padding=(1, 1))   # -> 4 x 4 x 4
HEAD = DenseSpec(64, 3)


@pytest.fixture(scope="module")
def hand_counted(tmp_path_factory):
    """conv (2x8x8 -> 4x4x4, stride 2, padding 1, one zero tap) -> head(3): (path, bundle), small
    enough to count its synapses and messages by hand."""
    rng = np.random.default_rng(0)
    w = 2 * rng.integers(1, 60, CONV.weight_shape)             # no zero weight
    w[0, 0, 0, 0] = 0                                          # one zero kernel tap
    conv = FixedLayer(CONV, w, L.LifFixed(du=409, dv=409, vth=40,
                                          bias_mant=np.zeros(64, np.int64), bias_exp=6))
    head = FixedLayer(HEAD, 2 * rng.integers(-20, 20, HEAD.weight_shape),
                      L.LifFixed(du=409, dv=409, vth=100))
    path = write_bundle(tmp_path_factory.mktemp("cost") / "t.h5", [conv, head],
                        HeadParams(ChipRule(mant=7, exp=-2, theta=1.0, target_on=8),
                                   labels=("a", "b", "c")))
    return path, read_bundle(path)


def test_resources_match_hand_counts(hand_counted):
    _, b = hand_counted
    # conv axis: 8 inputs, out (8 + 2 - 3) // 2 + 1 = 4; output o reads inputs 2o-1 .. 2o+1:
    # o=0 -> {0,1} (2 valid), o=1,2,3 -> 3 each: 11 (input, tap) pairs per axis. Per input index
    # (how many pairs read it): 1,2,1,2,1,2,1,1 (sums to 11).
    assert cr._axis_fanout(8, 4, 3, 2, 1).tolist() == [1, 2, 1, 2, 1, 2, 1, 1]
    conv, head = cr.layer_resources(b.net)
    # real connections: C_out 4 x C_in 2 x 11 x 11 = 968 (unclipped 64 x 2 x 9 = 1152, so
    # padding clips 184); kernel form 4 x 2 x 3 x 3 = 72; memory at 8 bits: 968 B / 72 B
    assert (conv.neurons, conv.synapses, conv.synapses_shared) == (64, 968, 72)
    assert (conv.memory_bytes, conv.memory_shared_bytes, conv.cores) == (968, 72, 1)
    # the zero tap (c_out 0, c_in 0, row 0, col 0) reaches outputs with 2o-1 >= 0 in both
    # axes: o in {1, 2, 3} -> 3 x 3 = 9 connections fewer
    assert conv.synapses_nonzero == 968 - 9
    assert conv.fan_in_axons == 128
    # dense head 64 -> 3: 192 synapses, 192 B
    assert (head.neurons, head.synapses, head.memory_bytes, head.cores) == (3, 192, 192, 1)
    tot = cr.fits([conv, head])
    assert (tot["neurons"], tot["synapses"], tot["cores"], tot["fits_one_chip"]) == \
        (67, 1160, 2, True)
    # 500 B of synaptic memory per core: ceil(968 / 500) = 2 cores, the kernel form 1
    small = replace(Limits(), synapse_memory_per_core=Figure(500, "bytes", "test", False))
    conv2 = cr.layer_resources(b.net, small)[0]
    assert (conv2.cores, conv2.cores_shared, conv2.limited_by) == (2, 1, "synaptic memory")
    # 32 neurons per core: ceil(64 / 32) = 2
    few = replace(Limits(), neurons_per_core=Figure(32, "neurons", "test", False))
    assert cr.layer_resources(b.net, few)[0].cores == 2
    # head state: 64 x1 + 3 x 3 y traces, 7 bits each: (64 + 9) * 7 = 511 bits -> 64 B
    hs = cr.head_state(b.net, "7 * 2^-2 * u0 * x1 * y3 - 7 * 2^-2 * u0 * x1 * y2")
    assert (hs["pre_traces_x1"], hs["post_traces_y1_y2_y3"], hs["trace_bytes"],
            hs["learning_synapses"], hs["dw_product_terms"]) == (64, 9, 64, 192, 2)


def test_every_limit_names_its_source_and_assumptions_say_so():
    for name, f in Limits().rows() + OpCosts().rows():
        assert f.source and f.value >= 0, name
        assert f.published or "NOT PUBLISHED" in f.source or "ASSUMPTION" in f.source, name


def test_activity_counts_match_independent_spike_counts(hand_counted):
    _, b = hand_counted
    T = 6
    x = np.zeros((2, T, 2, 8, 8), bool)
    x[0, 0, 0, 0, 0] = True        # fan-out 4 channels x 1 x 1 = 4
    x[0, 3, 1, 1, 3] = True        # 4 x 2 x 2 = 16
    x[1, 2, 0, 5, 7] = True        # 4 x 2 x 1 = 8
    x[1, 4, 1, 6, 1] = True        # 4 x 1 x 2 = 8
    rng = np.random.default_rng(1)
    x[1, 5] |= rng.random((2, 8, 8)) < 0.5
    conv_spikes = fixed.run(b.net[:1], x)["spikes"][0]       # independent: [2, T, 64]
    fo = cr._axis_fanout(8, 4, 3, 2, 1)
    want0 = [4 + 16, 8 + 8 + sum(4 * fo[i] * fo[j] for c, i, j in zip(*np.nonzero(x[1, 5])))]
    head = np.zeros((2, T, 3), bool)
    head[0, 2, 1] = True
    act = sample_activity(b, x, head, np.array([-1, -1]), rule=None)
    assert act.synops[:, 0].tolist() == want0
    assert act.synops[:, 1].tolist() == (3 * conv_spikes.sum((1, 2))).tolist()   # 64 -> 3
    assert act.spikes[:, 0].tolist() == conv_spikes.sum((1, 2)).tolist()
    assert act.spikes[:, 1].tolist() == [1, 0]
    assert act.steps == T + 1 and act.neuron_updates.tolist() == [64 * 7, 3 * 7]
    assert act.learn_all == 0 and act.learn_nonzero.tolist() == [0, 0]
    ev = act.msgs_events
    assert ev["input spikes host->chip"].tolist() == x.reshape(2, -1).sum(1).tolist()
    assert ev["frozen output spikes chip->host"].tolist() == conv_spikes.sum((1, 2)).tolist()
    assert ev["head spikes chip->host"].tolist() == [1, 0]
    assert act.msgs_dense == (2 * 64 + 2 * 3) * 7
    # per step: a spike at step t reaches the next layer's synapses at step t
    assert act.synops_per_step[0, :, 0].tolist() == [4, 0, 0, 16, 0, 0, 0]


def test_cost_command_prints_and_writes_the_numbers(digits_bundle, tmp_path, capsys):
    out_json = digits_bundle.with_name(digits_bundle.stem + ".cost.json")   # the report's name
    code, out, err = run_cli(["cost", digits_bundle, "--dataset", "digits", "--tasks", "1",
                          "--queries", "1", "--json", out_json], capsys)
    assert code == 0, err
    r = json.loads(out_json.read_text())
    b = read_bundle(digits_bundle)
    res = r["resources"]
    assert [x["neurons"] for x in res["layers"]] == [layer.n_out for layer in b.net]
    assert res["totals"]["fits_one_chip"] is True
    assert f"{res['totals']['synapses']:,}" in out and "fits one chip (128 cores): yes" in out
    inf, shot = r["activity"]["inference"], r["activity"]["learning_shot"]
    assert inf["samples"] == 5 and shot["samples"] == 5 * r["passes"]
    assert shot["learning_updates_all"] == b.net[-1].weight.size
    for k in ("inference", "learning_shot"):
        lo, hi = r["estimate"][k]["energy_J"]
        assert 0 < lo < hi
    assert r["cpu"]["fixed_s"] > 0 and r["cpu"]["float_s"] > 0
    assert "anchor CLP-SNN on Loihi 2: 0.33 ms, 0.05 mJ" in " ".join(out.split())
    # the report's "Loihi 2 cost" section: resources of the bundle, the JSON's estimates
    from metaloihi.report import Inputs, build_report
    page = build_report(tmp_path / "rep", Inputs([], [], [digits_bundle], [], [], [])
                        ).read_text()
    sec = page[page.index('<section id="cost">'):]
    assert f"{res['totals']['synapses']:,}" in sec and "fits one chip" in sec
    assert "Loihi 2 energy (estimate)" in sec and digits_bundle.stem + ".cost.json" in sec


def test_cost_of_a_missing_bundle_is_one_clear_line(tmp_path, capsys):
    code, out, err = run_cli(["cost", tmp_path / "nope.h5"], capsys)
    assert code == 1
    assert err.strip().count("\n") == 0 and "nope.h5" in err and "does not exist" in err
