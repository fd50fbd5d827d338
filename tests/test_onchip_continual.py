"""Continual on-chip learning (onchip/continual.py, bridge/widen.py, studies/continual.py): classes
taught one at a time into the rows of a wide head; untaught rows stay exactly zero and silent,
accuracy is over the classes seen so far, the study's order is the session bit for bit, and
Lava equals sim/ on a whole 10-class order."""
from dataclasses import replace

import numpy as np
import pytest

from metaloihi.base.errors import UserError
from metaloihi.bridge.bundle import HeadParams, read_bundle, write_bundle
from metaloihi.bridge.widen import widen, write_widened
from metaloihi.onchip.continual import continual, same_continual, score, session_rule
from metaloihi.sim import fixed
from metaloihi.sim import loihi as L
from metaloihi.rules.soel import chip as sf
from metaloihi.sim.arch import DenseSpec
from metaloihi.sim.fixed import FixedLayer
from metaloihi.studies import continual as study

from helpers.random_net import calibrated_network

T, N_IN, N_HID, WAYS, N_MAX, CLASSES = 16, 40, 30, 5, 12, 10
# step = mant 2^(exp-3) = 1 mantissa per n x, theta 1, target_on 8: the first shot's update of
# row 0 is exactly 8 x its input counts (the product's >> 3 drops nothing), no rounding
RULE = sf.ChipRule(mant=1, exp=3, theta=1.0, target_on=8, target_off=0, rng_seed=7, passes=1)


def class_samples(rng, n_classes, n, p=0.25):
    """n noisy samples [n, T, N_IN] of each class: a class-specific input rate pattern."""
    rates = (rng.random((n_classes, N_IN)) < 0.3) * p + 0.02
    return [rng.random((n, T, N_IN)) < rates[c] for c in range(n_classes)]


@pytest.fixture(scope="module")
def widened(tmp_path_factory):
    """A dense random frozen layer and a silent 5-row head widened to 12 rows: (the 5-row
    bundle's path, the widened bundle, one shot per class, the other samples per class)."""
    rng = np.random.default_rng(0)
    calib = rng.random((8, T, N_IN)) < 0.15
    frozen = calibrated_network([DenseSpec(N_IN, N_HID)], calib, rate=0.15, rng=rng)
    head = FixedLayer(DenseSpec(N_HID, WAYS), np.zeros((WAYS, N_HID), np.int64),
                      L.LifFixed(du=400, dv=300, vth=200))
    path = tmp_path_factory.mktemp("continual") / "five.h5"
    write_bundle(path, frozen + [head], HeadParams(RULE), scales=[1.0, 1.0])
    wide = write_widened(path, path.parent / "wide.h5", N_MAX)
    data = class_samples(np.random.default_rng(1), CLASSES, 4)
    return path, read_bundle(wide), [d[:1] for d in data], [d[1:] for d in data]


def test_widen_adds_silent_labelled_rows_and_keeps_the_rest(widened):
    path, wide, _, _ = widened
    five = read_bundle(path)
    h = wide.net[-1]
    assert h.weight.shape == (N_MAX, N_HID) and not h.weight.any()
    assert wide.head.labels == tuple(str(i) for i in range(WAYS)) + tuple(
        f"slot{k}" for k in range(WAYS, N_MAX))
    assert wide.head.rule == five.head.rule == RULE
    assert np.array_equal(np.broadcast_to(h.neuron.bias_mant, (N_MAX,)), np.zeros(N_MAX))
    assert (h.neuron.du, h.neuron.dv, h.neuron.vth) == (400, 300, 200)
    assert wide.scales == five.scales
    assert all(np.array_equal(a.weight, b.weight) for a, b in zip(wide.frozen, five.frozen))
    with pytest.raises(UserError, match="n_max=3"):
        widen(five, 3)


def test_first_step_by_hand_and_untaught_rows_stay_zero_and_silent(widened):
    _, wide, shots, queries = widened
    res = continual(wide, shots, queries)
    pre0 = fixed.run(wide.frozen, shots[0], layers="last")["spikes"][-1][0]
    # shot 0: every row silent -> n_0 = trunc((0 - 8) / 1) = -8, n_i = 0 elsewhere ->
    # w_0j = 8 x_j (x_j = input j's spike count), all other rows 0
    expect = np.zeros((N_MAX, N_HID), np.int64)
    expect[0] = 8 * pre0.sum(0)
    np.testing.assert_array_equal(res.weights_per_shot[0], expect)
    assert pre0.sum() == 27                                  # the first shot's input spikes
    shot_rows = np.flatnonzero(res.labels >= 0)
    assert len(res.weights_per_shot) == len(shot_rows) == CLASSES
    for k, w in enumerate(res.weights_per_shot):
        assert not w[k + 1:].any()                           # untaught: exactly zero
        assert w[k].any()                                    # taught on arrival
        # rows beyond the last class taught never spike and rest at v = 0 up to this shot
        upto = shot_rows[k] + 1
        assert not res.head_spikes[:upto, :, k + 1:].any()
        assert not res.v_last[:upto, k + 1:].any()
    assert not res.head_spikes[:, :, CLASSES:].any()         # rows 10, 11: never taught


def test_accuracy_counts_only_the_classes_seen(widened):
    _, wide, shots, queries = widened
    res = continual(wide, shots, queries)
    assert res.accuracy[0] == 1.0                            # one active row: all say class 0
    assert np.isnan(res.per_class[0, 1:]).all()
    for k, (pred, y) in enumerate(zip(res.predictions, res.query_labels)):
        assert len(pred) == 3 * (k + 1) and pred.max() <= k
        assert res.accuracy[k] == pytest.approx(np.mean(pred == y))
    # by hand: an untaught row (2) with the highest count is ignored; the tie between rows 0
    # and 1 goes to the higher v, then to the lower index
    # sequence: shot 0, query of class 0, shot 1, queries of classes 0 and 1
    counts = np.array([[0, 0, 0], [3, 3, 9], [0, 0, 0], [3, 3, 9], [1, 1, 9]])
    v = np.array([[0, 0, 0], [5, 7, 0], [0, 0, 0], [5, 7, 0], [4, 4, 0]])
    acc, per, preds, ys = score(counts, v, np.array([0, -1, 1, -1, -1]), [1, 1])
    assert preds[0].tolist() == [0] and preds[1].tolist() == [1, 0]
    assert ys[1].tolist() == [0, 1]
    assert acc[0] == 1.0 and acc[1] == 0.0 and per[1].tolist() == [0.0, 0.0]


def test_refuses_heads_that_cannot_hold_the_classes(widened):
    path, wide, shots, queries = widened
    with pytest.raises(UserError, match="widen"):
        continual(path, shots, queries)                      # 5 rows, 10 classes
    off = replace(wide, head=replace(wide.head, rule=replace(RULE, target_off=1)))
    with pytest.raises(UserError, match="target_off"):
        continual(off, shots, queries)


def test_study_order_is_the_session_bit_for_bit(widened):
    """The study's class order (deployed_order: the chip's step per shot, each query block as
    one batch) is onchip.continual's session on the same features, and the session on given
    features is the session on the samples."""
    _, wide, shots, queries = widened
    head = wide.net[-1]
    feat = lambda xs: [fixed.run(wide.frozen, x, layers="last")["spikes"][-1] for x in xs]
    fs, fq = feat(shots), feat(queries)
    ses = continual(wide, fs, fq, features=True, passes=2)
    assert same_continual(ses, continual(wide, shots, queries, passes=2))
    run = study.deployed_order(head, session_rule(wide, T), fs, fq, passes=2)
    np.testing.assert_array_equal(run.weights, ses.weights_per_shot[-1])
    np.testing.assert_array_equal(run.accuracy, ses.accuracy)
    np.testing.assert_array_equal(run.per_class, ses.per_class)
    assert run.weights[:CLASSES].any(1).all() and 0 < run.accuracy[-1] < 1


@pytest.mark.lava
def test_lava_equals_sim_on_a_whole_10_class_order(widened):
    _, wide, shots, queries = widened
    qs = [q[:1] for q in queries]
    lv = continual(wide, shots, qs, backend="lava")
    sm = continual(wide, shots, qs, backend="sim")
    assert same_continual(lv, sm)
    assert len(lv.weights_per_shot) == CLASSES and lv.head_spikes.shape == (
        CLASSES + sum(range(1, CLASSES + 1)), T, N_MAX)
    assert lv.weights_per_shot[-1][:CLASSES].any(1).all()    # every class's row was taught
    # measured (seeded): 2 of the 10 queries right after the 10th class (chance: 1)
    assert lv.accuracy[-1] == pytest.approx(0.2)


def label_only(b):
    return replace(b, head=replace(b.head, rule=replace(b.head.rule, label_only=True)))


def test_label_only_rule_never_changes_an_older_row(widened):
    """The rule's label_only field: the error path sends n to the labelled row alone, so each
    class's row is written by its own shot and never again; the rule as exported does rewrite
    older rows (what makes it forget)."""
    _, wide, shots, queries = widened
    lo = continual(label_only(wide), shots, queries).weights_per_shot
    for k in range(1, CLASSES):
        np.testing.assert_array_equal(lo[k][:k], lo[k - 1][:k])
        assert lo[k][k].any() and not lo[k][k + 1:].any()
    chip = continual(wide, shots, queries).weights_per_shot
    # every later shot rewrites some older row
    assert sum(not np.array_equal(chip[k][:k], chip[k - 1][:k]) for k in range(1, CLASSES)) == \
        CLASSES - 1
    np.testing.assert_array_equal(lo[0], chip[0])      # the first shot: no older row to differ


@pytest.mark.lava
def test_lava_equals_sim_with_the_label_only_rule(widened):
    _, wide, shots, queries = widened
    b, qs = label_only(wide), [q[:1] for q in queries[:4]]
    assert same_continual(continual(b, shots[:4], qs, backend="lava"),
                          continual(b, shots[:4], qs, backend="sim"))


def test_continual_command_writes_the_curves_json_and_a_deployable_bundle(tmp_path, capsys):
    """`metaloihi continual` on a random digits bundle with a 3-row head: 4 classes widen it,
    the JSON holds a curve per row, the saved bundle has 4 rows and the label_only rule."""
    import json

    from metaloihi import cli
    from metaloihi.bridge.export import export_bundle, random_float_network
    specs, params, neurons = random_float_network((2, 34, 34), ways=3, channels=(4,), seed=1)
    head = max(k for k in params if k.endswith(".weight"))
    params = {**params, head: params[head] * 0}                # a head that starts silent
    path, _ = export_bundle(tmp_path / "d.h5", specs, params, neurons, head_range=0.5)
    with pytest.raises(SystemExit) as exc:
        cli.main(["continual", str(path), "--dataset", "digits", "--splits", "test",
                  "--classes", "4", "--orders", "2", "--queries", "1", "--variant", "chip",
                  "--variant", "label_only", "--json", str(tmp_path / "c.json"), "--plot",
                  str(tmp_path / "c.png"), "--save-bundle", str(tmp_path / "wide.h5")])
    out, err = capsys.readouterr()
    assert exc.value.code == 0, err
    assert "head widened from 3 to 4 rows" in out
    res = json.loads((tmp_path / "c.json").read_text())
    assert set(res["rows"]) == {"deployed_chip", "deployed_label_only", "prototype", "float"}
    assert all(len(r["accuracy"]) == 4 for r in res["rows"].values())
    assert res["rows"]["prototype"]["accuracy"][0] == 1.0     # one class seen: always right
    assert (tmp_path / "c.png").stat().st_size > 10_000
    wide = read_bundle(tmp_path / "wide.h5")
    assert wide.net[-1].weight.shape[0] == 4 and wide.head.rule.label_only
