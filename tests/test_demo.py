"""The README's first command, end to end: the shipped theta0 learns five held-out gestures
on chip (Lava), identically to sim/, and above the baselines."""
import json

import pytest

from metaloihi.demo import SHIPPED, run_demo


def test_shipped_demo_checkpoint_is_tensors_only_and_fitted():
    from metaloihi.offline import checkpoint
    state = checkpoint.load(SHIPPED)                      # weights_only=True inside
    assert state["config"]["data"]["dataset"] == "gestures"
    fit = state["soel_fit"]
    assert fit["split"] == "val" and fit["tasks"] >= 20 and fit["val_accuracy"] > 0.5


def test_demo_in_sim_learns_well_above_chance(tmp_path):
    out = run_demo(seed=3, tasks=3, queries=5, out=tmp_path, backend="sim")
    assert out["accuracy"] >= 0.6                          # measured: see README
    assert out["no_adaptation"] <= 0.45 and out["no_meta_training"] <= 0.45
    assert (tmp_path / "demo_seed3.png").stat().st_size > 50_000
    assert json.loads((tmp_path / "demo_seed3.json").read_text())["tasks"] == 3


@pytest.mark.lava
def test_demo_on_lava_equals_sim(tmp_path):
    out = run_demo(seed=1, tasks=1, queries=2, out=tmp_path, backend="lava")
    assert out["identical"] is True                       # spikes, learnt weights, predictions
    assert out["accuracy"] == out["sim_accuracy"]
