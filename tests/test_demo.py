"""The README's first command, end to end: held-out gestures in sim/ and Lava, identical."""
import pytest

from metaloihi.demo import run_demo


@pytest.mark.lava
def test_demo_runs_gestures_identically_in_sim_and_lava():
    out = run_demo(seed=1, steps=60, lava_samples=1)
    assert out["identical"] is True
    assert len(out["lava_s_per_sample"]) == 1
    assert out["output_spikes"] > 0          # the comparison is not between two silent nets
