"""Stage 2 with the deployed session inside (studies/stage2_schedule.py)."""
import math

import numpy as np
import pytest
import torch

from metaloihi.base.errors import UserError
from metaloihi.studies import stage2_schedule as ss

DEMO = "checkpoints/demo_short/theta0.pt"     # the theta0 the schedule study started from


def test_schedule_warms_up_then_decays_to_zero():
    c = ss.Candidate("x", iterations=10, warmup=0.2)
    f = [ss.lr_factor(it, c) for it in range(1, 11)]
    assert f[:2] == [0.5, 1.0]
    assert f[2] == pytest.approx(0.5 * (1 + math.cos(math.pi / 8)))
    assert f[-1] == pytest.approx(0.0, abs=1e-12)
    assert all(a >= b for a, b in zip(f[1:], f[2:]))


def test_paired_difference_and_its_interval():
    a, b = np.array([1.0, 1.0, 0.8, 0.9]), np.array([0.8, 1.0, 0.8, 0.7])
    r = ss.paired(a, b)
    d = a - b
    assert r["mean_pp"] == pytest.approx(10.0)
    assert r["ci95_pp"] == pytest.approx(100 * 1.96 * d.std(ddof=1) / 2)
    assert r["excludes_0"] is False        # 10 +- 11.3 pp
    assert ss.paired(a, a)["mean_pp"] == 0.0


def test_candidate_refuses_unknown_layers():
    with pytest.raises(UserError, match="layers='body'"):
        ss.Candidate("x", layers="body")


def test_the_inner_loop_is_the_bundles_session():
    """The shipped demo theta0's fitted rule: 8 passes, eta 5.95e-6 on the chip's step, theta 1,
    head grid edge 0.00691 (its bundle's rule is 7 * 2^-2 at head scale 36736)."""
    st = ss.deployed_start(DEMO)
    assert st.mc.inner_steps == 8 and st.mc.head_start == "zero"
    assert st.mc.rule.on_chip and not st.mc.rule.learn
    assert float(st.meta["soel.log_eta"]) == pytest.approx(math.log(5.954631164717657e-06))
    assert float(st.meta["soel.log_threshold"]) == 0.0
    assert float(st.meta["soel.head_range"]) == pytest.approx(0.006914177443832159)
    keys, _ = ss.outer_keys(st, ss.Candidate("x", layers="last2"))
    assert keys == ["theta0.layers.2.weight", "theta0.layers.3.weight"]
    keys, mc = ss.outer_keys(st, ss.Candidate("x", layers="rule"))
    assert sorted(keys) == ["soel.log_eta", "soel.log_threshold"] and mc.rule.learn


def test_a_candidate_run_records_its_curve_from_the_start():
    torch.set_num_threads(1)
    st = ss.deployed_start(DEMO)
    start_acc = ss.meta_val(st, st.meta, st.mc, 3, 2, seed=1)
    c = ss.Candidate("x", lr=1e-4, layers="last2", iterations=2, meta_batch=1)
    r = ss.run_candidate(st, c, val_every=2, val_tasks=3, queries=2, log=lambda m: None)
    assert [p["iteration"] for p in r["curve"]] == [0, 2]
    assert r["curve"][0]["meta_val"] == float(start_acc.mean())
    assert r["start_per_task"] == start_acc.tolist()
    assert r["curve"][1]["cpu_s"] > 0
    assert r["best_iteration"] in (0, 2)
    # the start is never changed by a run
    again = ss.meta_val(st, st.meta, st.mc, 3, 2, seed=1)
    assert np.array_equal(again, start_acc)


def test_gradient_snr_derives_every_meta_batch_from_one_set_of_gradients():
    torch.set_num_threads(1)
    st = ss.deployed_start(DEMO)
    r = ss.gradient_snr(st, ss.Candidate("x", layers="last2"), tasks=3, meta_batches=(4, 16))
    a, b = r["meta_batch_4"], r["meta_batch_16"]
    assert sorted(a) == ["theta0.layers.2.weight", "theta0.layers.3.weight"]
    for k in a:
        assert b[k]["signal"] == a[k]["signal"]
        assert b[k]["noise"] == pytest.approx(a[k]["noise"] / 4)


def test_a_checkpoint_without_a_fit_takes_the_fit_of_its_bundle(tmp_path):
    """The demo_long theta0 keeps its rule as trained (5 passes); fit-soel fitted its bundle
    (7 2^-2 at head scale 31616.36, 8 passes): stage 2's inner loop is the bundle's session."""
    import shutil
    st = ss.deployed_start("checkpoints/demo_long/theta0.pt")
    assert st.mc.inner_steps == 8 and st.rule["passes"] == 8 and st.rule["theta"] == 1.0
    assert st.rule["eta"] == pytest.approx(0.21875 / 31616.3585560529, rel=1e-12)
    assert st.rule["head_range"] == pytest.approx(0.008033815771341324)
    # a bundle exported from another theta0 is refused, and so is a missing one
    shutil.copy("checkpoints/demo_long/theta0.pt", tmp_path / "theta0.pt")
    with pytest.raises(UserError, match="records no fitted rule"):
        ss.deployed_start(str(tmp_path / "theta0.pt"))
    shutil.copy("checkpoints/demo_short/bundle.h5", tmp_path / "bundle.h5")
    with pytest.raises(UserError, match="source_sha256 differs"):
        ss.deployed_start(str(tmp_path / "theta0.pt"))


def test_a_candidates_checkpoint_says_what_made_it():
    stage1 = {"stage1": True, "stage2_iterations": 0, "start": "stage 1 (x)",
              "label": "stage 1, no MAML update", "summary": "stage 1 (x); no stage-2 update"}
    rec = ss.made_by(stage1, "mb16_all_3e-4", 225)
    assert rec["stage2_iterations"] == 225 and rec["stage1"] is True
    assert rec["label"] == "stage 1 + stage 2, deployed session x225"
    assert rec["summary"].startswith("stage 1 (x); then stage 2 with the deployed session")
    after = ss.made_by({**stage1, "stage2_iterations": 1, "label": "stage 1 + MAML x1",
                        "summary": "s"}, "c", 10)
    assert after["stage2_iterations"] == 11 and after["label"] == "stage 1 + MAML x1 + stage 2, " \
        "deployed session x10"


def test_a_candidates_checkpoint_records_the_rule_its_inner_loop_ran(tmp_path):
    """candidate_state writes the deployed session's rule into the network record, so that
    `metaloihi export` of a candidate carries the rule it was meta-trained with (the start's
    record had the stage-1 body's unfitted 7 2^-3 and 5 passes)."""
    from metaloihi.bridge.bundle import read_bundle
    from metaloihi.bridge.export import export_bundle, from_checkpoint
    from metaloihi.offline import checkpoint
    st = ss.deployed_start("checkpoints/demo_long/theta0.pt")
    assert checkpoint.load(st.path)["network"]["rule"]["passes"] == 5
    state = ss.candidate_state(st, st.meta, {"name": "c"}, 3)
    rule = state["network"]["rule"]
    assert (rule["passes"], rule["theta"], rule["target_on"]) == (8, 1.0, 8)
    assert rule["eta"] == pytest.approx(st.rule["eta"], rel=1e-6)
    assert state["stage2_schedule"] == {"candidate": {"name": "c"}, "iteration": 3}
    checkpoint.save(tmp_path / "c.pt", state)
    specs, params, neurons, learnt, meta = from_checkpoint(tmp_path / "c.pt")
    chip = read_bundle(export_bundle(tmp_path / "c.h5", specs, params, neurons, rule=learnt,
                                     meta=meta)[0]).head.rule
    assert (chip.mant, chip.exp, chip.passes) == (7, -2, 8)
