"""The README's first command, end to end: the shipped theta0 learns five held-out gestures
on chip (Lava), identically to sim/, and above the baselines."""
import dataclasses
import json

import pytest

from metaloihi.base.torch_file import theta0_key
from metaloihi.bridge.bundle import read_bundle
from metaloihi.demo import SHIPPED, SHIPPED_BUNDLE, run_demo
from metaloihi.rules import soel
from metaloihi.sim.float_lif import weight_key


def _leaf_types(x) -> set:
    if isinstance(x, dict):
        return set().union(*map(_leaf_types, x.values())) if x else set()
    if isinstance(x, (list, tuple)):
        return set().union(*map(_leaf_types, x)) if x else set()
    return {type(x)}


def test_shipped_demo_checkpoint_is_tensors_only_and_in_the_current_format():
    import torch
    from metaloihi.offline import checkpoint
    raw = torch.load(SHIPPED, weights_only=True)          # no pickled object can be in it
    assert _leaf_types(raw) == {torch.Tensor, int, float, str, bool, type(None)}
    assert {k: tuple(v.shape) for k, v in raw["meta"].items()} == {
        theta0_key(weight_key(0)): (16, 2, 5, 5), theta0_key(weight_key(1)): (32, 16, 5, 5),
        theta0_key(weight_key(2)): (64, 32, 5, 5), theta0_key(weight_key(3)): (5, 256),
        soel.LOG_THRESHOLD: (), soel.LOG_ETA: (), soel.HEAD_RANGE: ()}
    state = checkpoint.load(SHIPPED)
    assert state["format"] == "metaloihi.maml/1"
    assert state["config"]["data"]["dataset"] == "gestures"
    # the checkpoint records the rule its stage 2 ran inside (the stage-1 body's fitted rule),
    # and fit-soel on its export kept that very rule
    assert "soel_fit" not in state and "rule_fit" not in state
    rule = state["network"]["rule"]
    assert (rule["passes"], rule["theta"], rule["target_on"]) == (8, 1.0, 8)
    fit = read_bundle(SHIPPED_BUNDLE).meta["rule_fit"]
    assert (fit["split"], fit["tasks"], fit["queries"], fit["seed"]) == ("val", 40, 5, 0)
    assert fit["val_accuracy"] == pytest.approx(0.927, abs=1e-12)    # as fit-soel recorded it
    assert (fit["mant"], fit["exp"], fit["theta"], fit["target_on"], fit["passes"]) == \
        (7, -2, 1.0, 8, 8)
    assert fit["before"] == {"mant": 7, "exp": -2, "theta": 1.0, "target_on": 8, "passes": 8}
    # stage 1 (demo_long) + one stage-2 iteration, then 225 of stage 2 with the deployed session
    assert state["made_by"]["stage1"] is True and state["made_by"]["stage2_iterations"] == 226
    assert state["stage2_schedule"] == {"candidate": {
        "name": "mb16_all_3e-4", "lr": 3e-4, "layers": "all", "first_order": False,
        "meta_batch": 16, "iterations": 225, "warmup": 0.05}, "iteration": 225}
    assert state["config"]["pretrain"]["iterations"] == 25000


# every checkpoints/<folder>/ with a bundle beside its theta0
CHECKPOINTS = SHIPPED.parent.parent
SHIPPED_BUNDLES = sorted(p.parent.name for p in CHECKPOINTS.glob("*/bundle.h5")
                         if p.with_name("theta0.pt").exists())


def test_every_theta0_folder_with_a_bundle_is_checked():
    assert {"demo", "demo_long", "demo_short", "double_digits", "double_digits_long",
            "double_digits_short"} <= set(SHIPPED_BUNDLES)


@pytest.mark.parametrize("name", SHIPPED_BUNDLES)
def test_shipped_bundles_are_their_theta0_exported(tmp_path, name):
    """checkpoints/*/bundle.h5 (what the demo deploys, and the double-digits figures) are
    `export` of the shipped theta0.pt, array for array, with the fitted rule and its record."""
    import numpy as np
    from metaloihi.bridge.export import export_bundle, from_checkpoint
    ckpt = CHECKPOINTS / name / "theta0.pt"
    specs, params, neurons, rule, meta = from_checkpoint(ckpt)
    fresh = read_bundle(export_bundle(tmp_path / "b.h5", specs, params, neurons, rule=rule,
                                      meta=meta)[0])
    shipped = read_bundle(ckpt.with_name("bundle.h5"))
    assert shipped.scales == fresh.scales and shipped.head.labels == fresh.head.labels
    assert len(shipped.net) == len(fresh.net) == 4
    for a, b in zip(shipped.net, fresh.net):
        assert a.spec == b.spec and a.weight_exp == b.weight_exp
        assert np.array_equal(a.weight, b.weight)
        assert np.array_equal(a.neuron.effective_bias, b.neuron.effective_bias)
        assert (a.neuron.du, a.neuron.dv, a.neuron.vth) == (b.neuron.du, b.neuron.dv,
                                                            b.neuron.vth)
    assert shipped.meta["source_sha256"] == fresh.meta["source_sha256"]    # this theta0.pt
    fit, r = shipped.meta["rule_fit"], shipped.head.rule
    if "rule_fit" in fresh.meta:               # fitted into the checkpoint (before bundle fits)
        assert fit == fresh.meta["rule_fit"] and shipped.head == fresh.head
    else:                                      # fit-soel on the export: the rule is the fit's
        before = fresh.head.rule
        assert fit["before"] == {"mant": before.mant, "exp": before.exp,
                                 "theta": before.theta, "target_on": before.target_on,
                                 "passes": before.passes}
        assert (r.mant, r.exp, r.theta, r.target_on, r.passes) == \
            (fit["mant"], fit["exp"], fit["theta"], fit["target_on"], fit["passes"])
        assert r == dataclasses.replace(before, mant=r.mant, exp=r.exp, theta=r.theta,
                                        target_on=r.target_on, passes=r.passes)
    assert shipped.head.rule.passes == 8 and shipped.head.rule.theta == 1.0


def test_demo_in_sim_learns_well_above_chance_and_says_what_made_theta0(tmp_path):
    out = run_demo(seed=3, tasks=3, queries=5, out=tmp_path, backend="sim", sim_tasks=60)
    sim = out["sim"]
    assert out["on_chip"]["identical_to_sim"] is True
    # 60 tasks x 25 queries in sim/, integer arithmetic on the embedded gestures: exact counts
    # (measured 95.9% +- 1.1%; the README's 600-task row is the figure)
    assert sim["deployed"]["acc"] == pytest.approx(1439 / 1500, abs=1e-12)
    assert sim["deployed"]["ci95"] == pytest.approx(0.0106222, abs=1e-7)
    # the head starts silent: without adaptation every query ties and goes to class 0
    assert sim["no_adaptation"]["acc"] == pytest.approx(0.2, abs=1e-12)
    assert sim["random_theta0"]["acc"] == pytest.approx(527 / 1500, abs=1e-12)
    assert sim["prototype_features"]["acc"] == pytest.approx(1441 / 1500, abs=1e-12)
    assert sim["prototype_raw"]["acc"] == pytest.approx(1149 / 1500, abs=1e-12)
    # the first task of the sim/ stream is the first on-chip task
    assert sim["deployed"]["per_task_first"][0] == out["on_chip"]["per_task"][0]
    # the shipped theta0 is stage 1 + stage 2: its record says so, and the demo
    assert out["made_by"]["stage1"] is True and out["made_by"]["stage2_iterations"] == 226
    assert "candidate mb16_all_3e-4): 225 iterations" in out["made_by"]["summary"]
    assert (tmp_path / "demo_seed3.png").stat().st_size > 50_000
    saved = json.loads((tmp_path / "demo_seed3.json").read_text())
    assert saved["tasks"] == 3 and saved["sim_tasks"] == 60


def test_demo_of_a_checkpoint_deploys_the_fit_in_the_bundle_beside_it(tmp_path):
    """--checkpoint exports with the fit-soel fit beside it (demo_long: 7 2^-2, 8 passes), not
    the checkpoint's unfitted rule (7 2^-3, 5 passes)."""
    ckpt = SHIPPED.parent.parent / "demo_long" / "theta0.pt"
    run_demo(seed=0, tasks=1, queries=2, out=tmp_path, checkpoint=ckpt, backend="sim",
             sim_tasks=1)
    rule = read_bundle(tmp_path / "bundle.h5").head.rule
    assert rule == read_bundle(ckpt.with_name("bundle.h5")).head.rule
    assert (rule.mant, rule.exp, rule.passes) == (7, -2, 8)


def test_demo_table_fits_80_columns():
    from rich.console import Console
    from metaloihi.demo import result_table
    row = {"acc": 0.9155, "ci95": 0.0044}
    r = {"on_chip": {"where": "Lava (Loihi2SimCfg)", "accuracy": 0.96, "identical_to_sim": True},
         "sim": {k: row for k in ("deployed", "no_adaptation", "random_theta0",
                                  "prototype_features", "prototype_raw")},
         "sim_tasks": 600, "tasks": 1, "backend": "lava", "chance": 0.2}
    console = Console(width=80, record=True)
    console.print(result_table(r))
    text = console.export_text()
    assert max(len(line) for line in text.splitlines()) <= 80
    assert "…" not in text and "91.5% +- 0.4%" in text and "Lava, 1 task" in text


@pytest.mark.slow                      # 37 s alone on 2 cores
@pytest.mark.lava
def test_demo_on_lava_equals_sim(tmp_path):
    out = run_demo(seed=1, tasks=1, queries=2, out=tmp_path, backend="lava", sim_tasks=3)
    assert out["on_chip"]["identical_to_sim"] is True      # spikes, learnt weights, predictions
    assert out["on_chip"]["per_task"][0] == out["sim"]["deployed"]["per_task_first"][0]


@pytest.mark.slow                      # 72-146 s alone on 2 cores
def test_retrain_path_trains_fits_exports_and_runs(tmp_path, monkeypatch):
    """--retrain end to end on a tiny stand-in of the recipe (both stages, a silent head whose
    grid comes from the fitted rule), fitted, exported and run."""
    import metaloihi.demo as demo
    from metaloihi.offline import checkpoint
    monkeypatch.setattr(demo, "RETRAIN_SET", {
        "pretrain.iterations": 3, "pretrain.val_tasks": 10, "train.iterations": 3,
        "train.val_tasks": 4, "train.val_every": 3})
    monkeypatch.setattr(demo, "RETRAIN_STAGE2", {"iterations": 2, "meta_batch": 2})
    monkeypatch.setattr(demo, "STAGE2_VAL_TASKS", 2)
    monkeypatch.setattr(demo, "FIT_TASKS", 2)
    out = run_demo(seed=0, tasks=1, queries=2, out=tmp_path, retrain=True, backend="sim",
                   sim_tasks=2)
    state = checkpoint.load(tmp_path / "train" / "stage2" / "theta0.pt")
    assert "soel_fit" not in state and out["checkpoint"].endswith("stage2/theta0.pt")
    body = read_bundle(tmp_path / "train" / "bundle.h5")     # stage 2 ran the body's fitted rule
    assert body.meta["rule_fit"]["tasks"] == 2
    assert state["stage2_schedule"]["candidate"]["name"] == "mb16_all_3e-4"
    assert state["stage2_schedule"]["iteration"] == 2
    fit = read_bundle(tmp_path / "bundle.h5").meta["rule_fit"]       # the bundle holds the fit
    assert fit["tasks"] == 2 and fit["split"] == "val"
    assert out["on_chip"]["identical_to_sim"] is True
    assert out["made_by"]["stage1"] is True and out["made_by"]["stage2_iterations"] == 2
    assert out["timings"]["retrain_s"] > 0


def test_export_picks_a_head_weight_exponent_only_when_the_threshold_needs_it():
    from metaloihi.bridge.export import random_float_network
    from metaloihi.bridge.quantize import quantize
    specs, params, neurons = random_float_network((2, 8, 8), 5, (4, 8), seed=0)
    assert quantize(specs, params, neurons).net[-1].weight_exp == 0
    key = max(params)                                  # the head's weight
    params = {**params, key: params[key] * 1e-4}      # tiny head: vth x scale > 17 bits at 0
    q = quantize(specs, params, neurons)
    assert q.net[-1].weight_exp < 0
    assert q.net[-1].neuron.vth <= 2 ** 17 - 1
    with pytest.raises(Exception, match="17-bit"):
        quantize(specs, params, neurons, head_weight_exp=0)
