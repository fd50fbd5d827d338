"""attach-head (bridge/attach_head.py, `metaloihi attach-head`): the on-chip learning head on
our own bundles and on netx files written by lava-dl's exporter, at several layers K; the
learner's frozen layers compute what the source's layers 1..K compute (sim/'s general network
description of the source file against the learner's sim.fixed body, spike for spike, and
Lava == sim/ on an adapt session); the head starts silent; fit-soel, adapt and cost take the
result; bad K, unsupported layers and missing files are one line each."""
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from helpers import netx_files as nf  # noqa: E402
from helpers.cli import run_cli  # noqa: E402
from metaloihi.base.errors import UserError  # noqa: E402
from metaloihi.bridge.attach_head import attach_head  # noqa: E402
from metaloihi.bridge.bundle import read_bundle  # noqa: E402
from metaloihi.bridge.netx_read import read_netx  # noqa: E402
from metaloihi.bridge.validate import validate_bundle  # noqa: E402
from metaloihi.sim import fixed, network_run  # noqa: E402


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """lava-dl exports (conv: input -> conv -> conv -> flatten -> dense -> dense; dense:
    input -> dense x3) and one of our bundles (conv -> conv -> head)."""
    from metaloihi.bridge.export import export_bundle, random_float_network
    d = tmp_path_factory.mktemp("attach")
    conv = nf.conv_net(d / "conv.net", input_neuron=False, groups=1, delay=False)
    dense = nf.dense_net(d / "dense.net", recurrent=False)
    specs, params, neurons = random_float_network((2, 8, 8), ways=3, channels=(4, 6), seed=1)
    ours, _ = export_bundle(d / "ours.h5", specs, params, neurons)
    return {"conv": conv, "dense": dense, "ours": ours, "dir": d}


def _x(shape, n=6, steps=12, seed=0):
    return nf.rng_input(shape, steps, seed=seed, density=0.3, batch=n).astype(bool)


CASES = [("conv", 1), ("conv", 2), ("conv", 4), ("conv", 5), ("dense", 1), ("dense", 2),
         ("dense", 3), ("ours", 1), ("ours", 2)]


@pytest.mark.parametrize("name,k", CASES, ids=[f"{n}-K{k}" for n, k in CASES])
def test_the_learners_body_computes_the_sources_layers_up_to_k(files, name, k):
    """Layer K's spikes from the source file run as sim/'s general netx description
    (sim.network_run) equal the learner's last frozen layer run by sim.fixed, every step; the
    learner validates, its head is K's size by `ways`, all zero, and the old head is gone."""
    src = files[name]
    out = files["dir"] / f"{name}-{k}.h5"
    a = attach_head(src, k, 4, out, seed=3)
    assert "valid:" in validate_bundle(out)
    b = read_bundle(out)
    desc = read_netx(src)
    x = _x(desc.input_shape)
    want_layer = [j for j, lay in enumerate(desc.layers) if lay.name.startswith(f"layer {k} ")][0]
    want = network_run.run(desc, x)["spikes"][want_layer]
    got = fixed.run(b.frozen, x, layers="last")["spikes"][-1]
    assert np.array_equal(got, want)
    assert want.any(), "layer K is silent on the input: the comparison would prove nothing"
    head = b.net[-1]
    assert head.weight.shape == (4, a.n_in) and not head.weight.any()
    assert not np.any(head.neuron.bias_mant)
    assert b.head.rule.rng_seed == 3 and b.head.rule.passes == 8
    # the card's silent_rule at its SILENT_STEP: theta 1, target 8, step 0.25 = 4 x 2^(-1-3)
    assert (b.head.rule.theta, b.head.rule.target_on, b.head.rule.mant, b.head.rule.exp) == \
        (1.0, 8, 4, -1)
    assert b.meta["attach_head"]["layer"] == k and b.meta["source_sha256"]
    assert "rule_fit" not in b.meta
    assert a.dropped == len(h5py.File(src, "r")["layer"]) - 1 - k


def test_the_head_starts_silent(files):
    """Before learning the head has zero weights and bias: no output spike, v stays 0."""
    from metaloihi.rules.soel import session_rule, run_session
    b = read_bundle(attach_head(files["conv"], 4, 3, files["dir"] / "silent.h5").path)
    x = _x((4, 10, 12), n=5)
    pre = fixed.run(b.frozen, x, layers="last")["spikes"][-1]
    assert pre.sum() == 207                      # the frozen layers do spike into the head
    tr = run_session(b.frozen, b.net[-1], session_rule(b.head.rule, x.shape[1]), x,
                     np.full(len(x), -1))
    assert tr.head_spikes.sum() == 0 and not tr.v_last.any()


def test_the_learner_learns_in_sim(files):
    """One shot per class through adapt: the labelled rows grow from zero (silent start, error
    -target_on on the first pass), the weights are the chip's integers."""
    from metaloihi.onchip.session import adapt
    b = read_bundle(attach_head(files["conv"], 4, 2, files["dir"] / "learns.h5").path)
    x = _x((4, 10, 12), n=4, steps=10)
    res = adapt(b, x[:2], np.array([0, 1]), x[2:], np.array([0, 1]), passes=2)
    row0 = res.weights_per_shot[0][0]            # shot 0 (label 0), integer sim/: exact
    assert (row0.max(), np.count_nonzero(row0), row0.sum()) == (14, 7, 56)
    assert not res.weights_per_shot[0][1].any()
    assert res.weights.dtype.kind == "i"


@pytest.mark.lava
@pytest.mark.parametrize("name,k", [("conv", 4), ("ours", 1)])
def test_lava_equals_sim_on_an_adapt_session(files, name, k):
    """The learner in Lava (netx frozen layers, replayed into the learning head) == sim/, bit
    for bit: every output spike, v, the weights after every shot, the predictions."""
    from metaloihi.onchip.session import adapt, same_session
    b = read_bundle(attach_head(files[name], k, 2, files["dir"] / f"lava-{name}.h5").path)
    x = _x(tuple(b.net[0].spec.in_shape), n=4, steps=6, seed=1)
    args = (x[:2], np.array([0, 1]), x[2:], np.array([1, 0]))
    sim = adapt(b, *args, passes=2)
    lava = adapt(b, *args, passes=2, backend="lava")
    assert any(w.any() for w in sim.weights_per_shot), "nothing learnt: the check is empty"
    assert same_session(sim, lava)


# --- the commands on the result ----------------------------------------------------------------
@pytest.fixture(scope="module")
def digits_net(tmp_path_factory):
    """A lava-dl conv network taking the embedded digits pooled by 2 (2 x 17 x 17)."""
    s = nf.slayer()
    import torch
    torch.manual_seed(0)
    p = nf.neuron(threshold=0.3)
    blocks = [s.block.cuba.Input(None, delay_shift=False),
              s.block.cuba.Conv(p, 2, 4, 3, stride=2, padding=1, weight_scale=6),
              s.block.cuba.Conv(p, 4, 6, 3, stride=2, padding=1, weight_scale=6),
              s.block.cuba.Flatten(), s.block.cuba.Dense(p, 150, 10, weight_scale=4)]
    return nf.export(tmp_path_factory.mktemp("digits") / "digits.net", blocks, (2, 17, 17))


def test_adapt_fit_soel_cost_deploy_continual_and_report_take_a_netx_learner(digits_net, tmp_path, capsys):
    out = tmp_path / "learner.h5"
    code, text, err = run_cli(["attach-head", digits_net, "--layer", "2", "--ways", "5", "--out",
                           out, "--data", "digits", "--pool", "2"], capsys)
    assert code == 0, err
    assert "netx layers 1..2 frozen (conv -> conv), 2 later layer(s) dropped; head 150->5" \
        in text
    code, text, err = run_cli(["adapt", out, "--shots", "1", "--queries", "2"], capsys)
    assert code == 0, err
    assert text.startswith("5-way 1-shot on digits/test (sim): accuracy")
    fitted = tmp_path / "fitted.h5"
    code, text, err = run_cli(["fit-soel", out, "--out", fitted, "--split", "train", "--tasks", "1",
                           "--queries", "1"], capsys)
    assert code == 0, err
    assert read_bundle(fitted).meta["rule_fit"]["passes"] in (3, 5, 8)   # the silent-head grid
    code, text, err = run_cli(["cost", fitted, "--tasks", "1"], capsys)
    assert code == 0, err
    code, text, err = run_cli(["deploy", fitted, "--dataset", "digits", "--samples", "2",
                           "--backend", "sim"], capsys)
    assert code == 0 and "output spike counts" in text, err
    code, text, err = run_cli(["continual", fitted, "--splits", "test", "--classes", "5",
                           "--orders", "1", "--queries", "1", "--json", tmp_path / "c.json"],
                              capsys)
    assert code == 0 and (tmp_path / "c.json").is_file(), err
    code, text, err = run_cli(["report", "--bundle", fitted, "--out", tmp_path / "report"], capsys)
    assert code == 0 and (tmp_path / "report" / "index.html").is_file(), err


def test_an_own_bundles_learner_keeps_its_data_set_and_encoding(files, tmp_path):
    src = read_bundle(files["ours"])
    b = read_bundle(attach_head(files["ours"], 1, 2, tmp_path / "o.h5",
                                meta={"dataset": "digits"}).path)
    assert b.encoding == src.encoding and b.meta["dataset"] == "digits"
    assert b.scales[0] == src.scales[0] and b.scales[-1] == b.net[-1].neuron.vth


# --- one line each -----------------------------------------------------------------------------
@pytest.mark.parametrize("k,words", [
    (9, "--layer 9: "), (-1, "--layer -1: "), (0, "layer 0 (input) is the network's input"),
    (3, "layer 3 (flatten) has no neurons of its own; its spikes are layer 2's")])
def test_a_bad_k_is_one_line(files, tmp_path, capsys, k, words):
    out = tmp_path / "bad.h5"
    code, _, err = run_cli(["attach-head", files["conv"], "--layer", k, "--ways", "2",
                            "--out", out], capsys)
    assert code == 1 and words in err and len(err.strip().splitlines()) == 1
    assert not out.exists()


@pytest.mark.parametrize("make,k,words", [
    (lambda p: nf.conv_net(p, input_neuron=False, groups=2, delay=False), 1,
     "layer 1 (conv): conv dilation (1, 1) / groups 2"),
    (lambda p: nf.conv_net(p, input_neuron=False, groups=1, delay=True), 4,
     "layer 4 (dense): axonal delays"),
    (lambda p: nf.dense_net(p, recurrent=True), 2, "layer 2 (dense_rec): a recurrent dense"),
    (lambda p: nf.conv_net(p, input_neuron=True, groups=1, delay=False), 1,
     "layer 0 (input): an input layer with a neuron")],
    ids=["groups", "delays", "recurrent", "input-neuron"])
def test_a_layer_the_session_cannot_freeze_is_refused_by_index_type_and_reason(
        tmp_path, capsys, make, k, words):
    src = make(tmp_path / "src.net")
    out = tmp_path / "l.h5"
    code, _, err = run_cli(["attach-head", src, "--layer", k, "--ways", "2", "--out", out], capsys)
    assert code == 1 and words in err and len(err.strip().splitlines()) == 1, err
    assert not out.exists()


def test_a_layer_after_k_may_be_anything_the_reader_takes(tmp_path):
    """Delays after K are dropped with the layers that hold them."""
    src = nf.conv_net(tmp_path / "d.net", input_neuron=False, groups=1, delay=True)
    assert attach_head(src, 2, 2, tmp_path / "ok.h5").dropped == 3


def test_missing_file_and_overwriting_the_input_are_one_line(files, tmp_path, capsys):
    code, _, err = run_cli(["attach-head", tmp_path / "nope.net", "--layer", "1", "--ways", "2",
                        "--out", tmp_path / "o.h5"], capsys)
    assert code == 1 and "network" in err and "nope.net' does not exist" in err
    before = files["dense"].read_bytes()
    code, _, err = run_cli(["attach-head", files["dense"], "--layer", "1", "--ways", "2", "--out",
                        files["dense"]], capsys)
    assert code == 1 and "is also the input NET" in err and files["dense"].read_bytes() == before
    with pytest.raises(UserError, match="--rule 'stdp'"):
        attach_head(files["dense"], 1, 2, tmp_path / "r.h5", rule="stdp")


def test_a_rule_whose_card_has_no_silent_head_is_refused(files, tmp_path, monkeypatch):
    import types
    from metaloihi import rules
    monkeypatch.setitem(sys.modules, "bare_card", types.ModuleType("bare_card"))
    monkeypatch.setitem(rules.RULES, "bare", "bare_card")
    with pytest.raises(UserError, match=r"--rule 'bare': its card \(rules/bare\) has no "
                       "silent_rule"):
        attach_head(files["dense"], 1, 2, tmp_path / "b.h5", rule="bare")
    assert not (tmp_path / "b.h5").exists()
    with pytest.raises(UserError, match="--step 1000: the chip's SOEL steps are"):
        attach_head(files["dense"], 1, 2, tmp_path / "b.h5", step=1000)
