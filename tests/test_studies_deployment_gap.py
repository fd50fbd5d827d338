"""The deployment gap on a trained bundle (checkpoints/interim/demo_soel_best.pt exported in the
test): float (float network + float SOEL with the chip's limits) and fixed (sim/) predict alike
on the measured fraction of queries, the limits are what closes the gap, and Lava equals sim/
on whole tasks: every output spike, head v, learnt weight and prediction."""
from pathlib import Path

import numpy as np
import pytest

from metaloihi.bridge.bundle import read_bundle
from metaloihi.bridge.quantize import quantize
from metaloihi.base.errors import UserError
from metaloihi.rules.soel.chip import truncate
from metaloihi.sim.readout import predict_np

CKPT = Path(__file__).parent.parent / "checkpoints" / "interim" / "demo_soel_best.pt"


@pytest.fixture(scope="module")
def dep(tmp_path_factory):
    from metaloihi.studies.deployment_gap import deploy
    if not CKPT.exists():
        pytest.skip(f"{CKPT} is not in this checkout")
    return deploy(CKPT, tmp_path_factory.mktemp("gap") / "demo_soel.h5")


def test_float_and_fixed_agree_on_a_trained_bundle(dep):
    """Measured on these 6 tasks x 25 queries (seed 3): float/fixed identical predictions 94.0%
    with the chip's limits in the float rule, 75.3% without them (the float rule's weights
    outgrow the 8-bit range the chip keeps them in); accuracy float 63.3%, fixed 64.0%.
    100 tasks x 50 queries: studies/deployment_gap.py's docstring."""
    from metaloihi.studies.deployment_gap import float_session, ladder_task, task_stream, LADDER
    from metaloihi.onchip.session import adapt
    same, same_free, acc_f, acc_x = [], [], [], []
    for k, (xs, ys, xq, yq) in enumerate(task_stream(dep, "demo", 6, 5, 5, seed=3)):
        fx = adapt(dep.bundle_path, xs, ys, xq, yq, backend="sim")
        fl = float_session(dep, xs, ys, xq)
        free = float_session(dep, xs, ys, xq, on_chip=False)
        same.append(fl.predictions == fx.predictions)
        same_free.append(free.predictions == fx.predictions)
        acc_f.append(np.mean(fl.predictions == yq))
        acc_x.append(fx.accuracy)
        np.testing.assert_array_equal(fx.predictions, predict_np(fx.query_counts, fx.query_v))
        if k == 0:              # the ladder's "+ weight limits" step is the float row
            steps = ladder_task(dep, xs, ys, xq)
            np.testing.assert_array_equal(steps[LADDER[2]], fl.predictions)
            np.testing.assert_array_equal(steps[LADDER[0]], free.predictions)
    agree, agree_free = np.mean(same), np.mean(same_free)
    print(f"\nfloat/fixed identical predictions: {agree:.3f} (without the chip's limits "
          f"{agree_free:.3f}); accuracy float {np.mean(acc_f):.3f} fixed {np.mean(acc_x):.3f}")
    # sim/ is integer arithmetic: its accuracy exactly (96 of 150 queries); the float side may
    # move 2 of the 150 predictions with another CPU's float summation order
    assert np.mean(acc_x) == pytest.approx(96 / 150, abs=1e-12)
    assert agree == pytest.approx(141 / 150, abs=2 / 150)
    assert agree_free == pytest.approx(113 / 150, abs=2 / 150)   # the limits close the gap
    assert np.mean(acc_f) == pytest.approx(95 / 150, abs=2 / 150)


def test_head_range_leaves_headroom_on_the_grid(dep):
    w = dep.head_weight
    q = quantize(dep.specs, dep.theta0, dep.neurons, head_range=4 * np.abs(w).max())
    assert q.scales[-1] == pytest.approx(dep.scale / 4)
    assert np.abs(q.head.weight).max() in (62, 64)                 # 254 / 4 on the even grid
    assert q.scales[:-1] == dep.bundle.scales[:-1]                 # frozen layers unchanged
    with pytest.raises(UserError, match="cover"):
        quantize(dep.specs, dep.theta0, dep.neurons, head_range=0.5 * np.abs(w).max())


@pytest.mark.slow                      # 114 s alone on 2 cores
@pytest.mark.lava
def test_lava_equals_sim_on_five_tasks_of_a_trained_bundle(dep):
    """5 demo tasks, 5 shots + 10 queries each, in Lava and in sim/ (~80 s on 2 cores)."""
    from metaloihi.studies.deployment_gap import task_stream
    from metaloihi.onchip.session import adapt
    ties = 0
    for k, (xs, ys, xq, yq) in enumerate(task_stream(dep, "demo", 5, 5, 2, seed=0)):
        a = adapt(dep.bundle_path, xs, ys, xq, yq, backend="sim")
        b = adapt(dep.bundle_path, xs, ys, xq, yq, backend="lava")
        for s in range(len(xs) + len(xq)):
            bad = np.argwhere(a.head_spikes[s] != b.head_spikes[s])
            assert bad.size == 0, f"task {k} sample {s}: spikes differ at step/neuron {bad[0]}"
        for s, (wa, wb) in enumerate(zip(a.weights_per_shot, b.weights_per_shot)):
            np.testing.assert_array_equal(wa, wb, err_msg=f"task {k}: weights after shot {s}")
        np.testing.assert_array_equal(a.query_v, b.query_v, err_msg=f"task {k}: v_last")
        np.testing.assert_array_equal(a.predictions, b.predictions)
        w0 = truncate(dep.bundle.net[-1].weight)
        assert np.abs(a.weights - w0).sum() > 0                     # the head learnt
        top = a.query_counts == a.query_counts.max(1, keepdims=True)
        ties += int((top.sum(1) > 1).sum())
    assert ties > 0                             # some predictions were decided by v


def test_a_checkpoint_fitted_in_its_bundle_deploys_with_that_fit(tmp_path):
    """The demo_long theta0 keeps its rule as trained (7 2^-3, 5 passes); fit-soel fitted
    the bundle beside it (7 2^-2, 8 passes): the deployment gap runs the fitted one unless
    told otherwise, and an option still overrides it."""
    from metaloihi.studies.deployment_gap import deploy
    demo = Path(__file__).parent.parent / "checkpoints" / "demo_long" / "theta0.pt"
    dep = deploy(demo, tmp_path / "fitted.h5")
    shipped = read_bundle(demo.with_name("bundle.h5"))
    assert dep.bundle.head.rule == shipped.head.rule and dep.head.passes == 8
    assert (dep.bundle.head.rule.mant, dep.bundle.head.rule.exp) == (7, -2)
    assert dep.head.eta == pytest.approx(0.21875 / 31616.3585560529, rel=1e-12)
    dep = deploy(demo, tmp_path / "five.h5", passes=5, dataset=dep.dataset)
    assert dep.bundle.head.rule.passes == 5 and dep.bundle.head.rule.mant == 7
