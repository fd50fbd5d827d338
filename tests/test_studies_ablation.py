"""studies/ablation.py on a tiny random network and data set: every row runs the same tasks (the
draws of sample_task), the head-only session is onchip.session.adapt's, the ceilings equal a
hand computation, the rows' heads and rule are the reference's, CPU seconds come from the logs."""
import gzip
import json

import numpy as np
import pytest
import torch

from metaloihi.base.errors import UserError
from metaloihi.bridge.export import export_bundle, random_float_network
from metaloihi.bridge.bundle import read_bundle
from metaloihi.datasets.tasks import sample_task
from metaloihi.onchip.session import adapt
from metaloihi.rules.soel import ChipRule
from metaloihi.sim import fixed
from metaloihi.sim.float_lif import weight_key
from metaloihi.sim.loihi import LifFloat
from metaloihi.studies import ablation as ab

WAYS, T, SHAPE, PER_CLASS, CLASSES = 3, 8, (2, 6, 6), 6, 5
RULE = ChipRule(mant=1, exp=3, theta=1.0, target_on=8, target_off=0, rng_seed=3, passes=2)
HEAD_RANGE = 0.05


class TinyData:
    """5 classes x 6 samples of [T, 2, 6, 6] event counts, each class its own pixel rates;
    classes 0-1 "train", 2-4 "test"."""
    name = "tiny"

    def __init__(self):
        rng = np.random.default_rng(0)
        rates = (rng.random((CLASSES, *SHAPE)) < 0.3) * 0.12 + 0.08
        self.labels = np.repeat(np.arange(CLASSES), PER_CLASS)
        self.class_names = [f"c{c}" for c in range(CLASSES)]
        self.x = (rng.random((len(self.labels), T, *SHAPE)) < rates[self.labels][:, None]
                  ).astype(np.float32)

    def split_classes(self, split):
        return np.arange(2) if split == "train" else np.arange(2, CLASSES)

    def class_indices(self, c):
        return np.flatnonzero(self.labels == c)

    def frames(self, idx):
        return self.x[np.asarray(idx)]


def body(seed, neurons=None):
    specs, params, nrn = random_float_network(SHAPE, WAYS, (4,), kernel=3, seed=seed)
    params[weight_key(1)] = torch.zeros_like(params[weight_key(1)])
    return specs, params, neurons or nrn


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    d = tmp_path_factory.mktemp("ablation")
    specs, params, neurons = body(0)
    path, _ = export_bundle(d / "ref.h5", specs, params, neurons, rule=RULE,
                            meta={"source": "ref"}, head_range=HEAD_RANGE)
    ref = read_bundle(path)
    rows = []
    for key, seed in (("random", 1), ("stage1", 2), ("same_as_stage1", 2)):
        s, p, n = body(seed)
        b = ab.body_bundle(d / f"{key}.h5", s, p, n, ref, HEAD_RANGE, f"seed {seed}")
        rows.append(ab.Row(key, key, f"seed {seed}", b, cpu_s=float(seed)))
    return TinyData(), ref, rows, d


def test_every_row_runs_the_same_tasks_as_sample_task_draws_them(setup):
    data, _, rows, _ = setup
    ts = ab.draw_tasks(data, "test", 7, WAYS, 1, 2, seed=5)
    rng = np.random.default_rng(5)
    for i in range(7):
        t = sample_task(data, "test", WAYS, 1, 2, rng)
        np.testing.assert_array_equal(t.support_x.numpy(), data.frames(ts.support[i]))
        np.testing.assert_array_equal(t.query_x.numpy(), data.frames(ts.query[i]))
        assert t.support_y.tolist() == ts.support_y[i].tolist() == [0, 1, 2]
        assert t.query_y.tolist() == ts.query_y[i].tolist() == [0, 1, 2, 0, 1, 2]
    res = ab.ablation(rows, data, "test", tasks=7, seed=5, ways=WAYS, queries=2, check_tasks=7)
    assert res["tasks_sha256"] == ts.sha256() and res["distinct_samples"] == len(ts.distinct)
    by = {r["key"]: r for r in res["rows"]}
    # the same body on the same tasks: the same accuracy on every task, a paired gap of 0
    assert by["same_as_stage1"]["per_task"] == by["stage1"]["per_task"]
    assert by["same_as_stage1"]["minus_stage1_pp"] == {"mean": 0.0, "ci95": 0.0}
    assert "minus_stage1_pp" not in by["stage1"]
    # every task of every row also ran through onchip.session.adapt: the same predictions
    assert [r["checked_tasks"] for r in res["rows"]] == [7, 7, 7]
    assert [r["cpu_s"] for r in res["rows"]] == [1.0, 2.0, 2.0]
    assert len(by["random"]["per_task"]) == 7
    assert by["random"]["per_task"] != by["stage1"]["per_task"]     # the bodies differ
    assert res["rule"] == {"name": "soel", "mant": 1, "exp": 3, "theta": 1.0, "target_on": 8,
                           "target_off": 0, "rng_seed": 3, "passes": 2, "label_only": False,
                           "step": 1.0, "dw": "1 * 2^3 * u0 * x1 * y3 - 1 * 2^3 * u0 * x1 * y2",
                           "from": "ref"}
    assert res["head"]["identical_across_rows"] and res["head"]["silent_start"]
    assert "stage1" in ab.format_table(res)
    assert not any("minus_shipped_pp" in r for r in res["rows"])   # no shipped row named
    # with the shipped theta0's row named, every other row's paired difference to it too
    res = ab.ablation(rows, data, "test", tasks=7, seed=5, ways=WAYS, queries=2, check_tasks=0,
                      shipped="same_as_stage1")
    by = {r["key"]: r for r in res["rows"]}
    assert by["stage1"]["minus_shipped_pp"] == {"mean": 0.0, "ci95": 0.0}
    d = 100 * (np.array(by["random"]["per_task"]) - np.array(by["same_as_stage1"]["per_task"]))
    assert by["random"]["minus_shipped_pp"]["mean"] == pytest.approx(d.mean(), abs=0.01)  # rounded
    assert "minus_shipped_pp" not in by["same_as_stage1"]


def cosine_by_hand(fs, ys, fq, yq, ways):
    right = 0
    for q, y in zip(fq, yq):
        best, best_c = -2.0, -1
        for c in range(ways):
            p = [sum(f[j] for f, lab in zip(fs, ys) if lab == c) for j in range(len(q))]
            n = sum(v * v for v in p) ** 0.5 * sum(v * v for v in q) ** 0.5
            cos = sum(a * b for a, b in zip(p, q)) / n if n else 0.0
            if cos > best:
                best, best_c = cos, c
        right += best_c == y
    return right / len(yq)


def test_ceilings_equal_a_hand_computation(setup):
    data, _, rows, _ = setup
    res = ab.ablation(rows[:2], data, "test", tasks=4, seed=1, ways=WAYS, queries=3,
                      check_tasks=0)
    ts = ab.draw_tasks(data, "test", 4, WAYS, 1, 3, seed=1)
    raw, feat = [], []
    b = rows[1].bundle
    for i in range(4):
        xs, xq = data.frames(ts.support[i]) > 0, data.frames(ts.query[i]) > 0
        raw.append(cosine_by_hand(xs.reshape(len(xs), T, -1).sum(1).tolist(), ts.support_y[i],
                                  xq.reshape(len(xq), T, -1).sum(1).tolist(), ts.query_y[i],
                                  WAYS))
        fs = fixed.run(b.frozen, xs, layers="last")["spikes"][-1].sum(1)
        fq = fixed.run(b.frozen, xq, layers="last")["spikes"][-1].sum(1)
        feat.append(cosine_by_hand(fs.tolist(), ts.support_y[i], fq.tolist(), ts.query_y[i],
                                   WAYS))
    assert res["prototype_raw"]["acc"] == pytest.approx(np.mean(raw), abs=1e-12)
    row = res["rows"][1]
    assert row["prototype_features"]["acc"] == pytest.approx(np.mean(feat), abs=1e-12)
    # 4 tasks x 3 queries x 3 ways = 36 queries, counted by hand above: a non-trivial case
    assert np.mean(raw) == pytest.approx(20 / 36, abs=1e-12)
    assert [x["prototype_features"]["acc"] for x in res["rows"]] == pytest.approx(
        [13 / 36, 16 / 36], abs=1e-12)


def test_head_session_is_the_bundles_sim_session(setup):
    data, _, rows, _ = setup
    b = rows[0].bundle
    ts = ab.draw_tasks(data, "test", 3, WAYS, 2, 2, seed=9)      # 2 shots: shot-major support
    for i in range(3):
        xs, xq = b.encode(data.frames(ts.support[i])), b.encode(data.frames(ts.query[i]))
        ses = adapt(b, xs, ts.support_y[i], xq, ts.query_y[i], backend="sim")
        feats = lambda x: fixed.run(b.frozen, x, layers="last")["spikes"][-1]   # noqa: E731
        pred = ab.head_session(b, feats(xs), ts.support_y[i], feats(xq))
        np.testing.assert_array_equal(pred, ses.predictions)
        assert ts.support_y[i].tolist() == [0, 1, 2, 0, 1, 2]


def test_a_body_with_another_head_neuron_is_refused(setup):
    _, ref, _, d = setup
    s, p, n = body(4, neurons=[LifFloat(du=0.2, dv=0.1, vth=1.0),
                               LifFloat(du=0.2, dv=0.1, vth=2.0)])
    with pytest.raises(UserError, match="head differs from the reference"):
        ab.body_bundle(d / "other.h5", s, p, n, ref, HEAD_RANGE, "vth 2")


def test_cpu_seconds_come_from_the_logs(tmp_path):
    recs = [{"stage": 1, "iteration": 1, "cpu_s": 1.5}, {"stage": 1, "iteration": 2, "cpu_s": 3.25},
            {"stage": 2, "iteration": 0, "rule_start": {"eta": 1e-6}},
            {"stage": 2, "iteration": 0, "meta_val_acc": 0.5},
            {"stage": 2, "iteration": 1, "cpu_s": 10.0, "meta_val_acc": 0.7},
            {"stage": 2, "iteration": 2, "cpu_s": 20.5, "meta_val_acc": 0.7},
            {"stage": 2, "iteration": 3, "cpu_s": 31.0, "meta_val_acc": 0.6}]
    log = tmp_path / "m.jsonl.gz"
    with gzip.open(log, "wt") as fh:
        fh.write("\n".join(json.dumps(r) for r in recs) + "\n")
    assert ab.cpu_seconds(((log, "stage1"), (log, 2)))[0] == 23.75
    total, detail = ab.cpu_seconds(((log, "best"),))     # the first of the best (as best.pt)
    assert total == 10.0 and detail[0]["iteration"] == 1
    assert ab.cpu_seconds(((log, "stage1"), (log, 0)))[0] == 3.25
    assert ab.cpu_seconds(()) == (None, [])
    with pytest.raises(UserError, match="no stage-2 record of iteration 7"):
        ab.cpu_seconds(((log, 7),))
