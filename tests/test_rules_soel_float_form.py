"""rules/soel/float_form.py: the rule by hand, numpy reference == differentiable torch version."""
import numpy as np
import pytest
import torch

from metaloihi.rules.soel import float_form as soel
from metaloihi.sim.loihi import LifFloat


def test_rule_by_hand():
    e = np.array([5.0, -3.0, 1.0, -1.9])
    dw = soel.delta_np(e, np.array([1.0, 2.0]), theta=2.0, eta=0.1)
    # trunc(e / 2) = [2, -1, 0, 0]: only |e| >= theta updates
    assert np.allclose(dw, [[-0.2, -0.4], [0.1, 0.2], [0, 0], [0, 0]])
    err = soel.error_np(np.array([4, 0, 9]), 1, soel.SoelTargets(target_on=6, target_off=1))
    assert err.tolist() == [3.0, -6.0, 8.0]


def test_pre_trace_saturates_at_seven_bits():
    x = torch.zeros(300, 3, dtype=torch.float64)
    x[:200, 0] = 1
    x[:5, 1] = 1
    x.requires_grad_(True)
    tr = soel.pre_trace(x)
    assert tr.tolist() == [127.0, 5.0, 0.0]
    assert soel.pre_trace_np(x.detach().numpy()).tolist() == [127.0, 5.0, 0.0]
    (g,) = torch.autograd.grad(tr.sum(), x)
    assert torch.equal(g, torch.ones_like(x))   # straight-through past the clip


def test_numpy_reference_and_torch_version_agree():
    rng = np.random.default_rng(3)
    n_in, n_out, shots, steps = 40, 5, 10, 60
    neuron = LifFloat(du=0.2, dv=0.1, vth=1.0)
    w = rng.normal(0.02, 0.05, (n_out, n_in))
    pre = (rng.random((shots, steps, n_in)) < 0.15).astype(np.float64)
    pre[0, :, 0] = 1      # one input saturates nothing but is dense
    labels = np.tile(np.arange(n_out), 2)
    targets = soel.SoelTargets(target_on=6, target_off=0)
    ref = soel.adapt_np(w, pre, labels, neuron, theta=1.5, eta=0.002, targets=targets, passes=2)
    ours = soel.adapt(torch.from_numpy(w), torch.from_numpy(pre), torch.from_numpy(labels),
                      neuron, 1.5, 0.002, targets, passes=2)
    assert np.abs(ours.numpy() - ref).max() < 1e-12
    # the rule fired: 199 of the 200 weights moved, by at most 4.216 (float64, measured)
    assert np.count_nonzero(ref != w) == 199
    assert np.abs(ref - w).max() == pytest.approx(4.216, abs=1e-9)
    # the first shot's errors: the label row's count minus target_on, the others' counts
    counts, _ = soel.head_run_np(w, pre[0], neuron)
    assert counts.tolist() == [39, 23, 49, 24, 56]
    assert soel.error_np(counts, 0, targets).tolist() == [33, 23, 49, 24, 56]


def test_theta_and_eta_get_meta_gradients():
    rng = np.random.default_rng(0)
    w = torch.from_numpy(rng.normal(0.02, 0.05, (3, 20)))
    pre = torch.from_numpy((rng.random((3, 40, 20)) < 0.2).astype(np.float64))
    theta = torch.tensor(1.5, dtype=torch.float64, requires_grad=True)
    eta = torch.tensor(0.01, dtype=torch.float64, requires_grad=True)
    out = soel.adapt(w, pre, torch.tensor([0, 1, 2]), LifFloat(du=0.2, dv=0.1, vth=1.0),
                     theta, eta, soel.SoelTargets(target_on=5))
    g_theta, g_eta = torch.autograd.grad(out.pow(2).sum(), [theta, eta])
    # eta: the loss's slope, as central differences measure it (2996.8 at h = 1e-7; the
    # truncation makes the loss piecewise, hence 1%); theta: the straight-through slope of
    # the truncation (the loss is flat in theta between its steps), -8.046 in float64
    h = 1e-7

    def loss(eta_value):
        with torch.no_grad():
            return float(soel.adapt(w, pre, torch.tensor([0, 1, 2]),
                                    LifFloat(du=0.2, dv=0.1, vth=1.0), theta.detach(),
                                    torch.tensor(eta_value, dtype=torch.float64),
                                    soel.SoelTargets(target_on=5)).pow(2).sum())
    assert float(g_eta) == pytest.approx((loss(0.01 + h) - loss(0.01 - h)) / (2 * h), rel=1e-2)
    assert float(g_theta) == pytest.approx(-8.046224517678416, rel=1e-9)


def test_on_chip_eta_is_the_step_the_learning_engine_takes():
    from metaloihi.rules.soel import chip as sf
    rng = np.random.default_rng(0)
    for scale in (1.0, 57250.0, 72400.0):
        for eta_mant in np.exp(rng.uniform(np.log(4.5e-3), np.log(200.0), 60)):
            chip = soel.OnChip(scale)
            m, e = sf.eta_to_rule(eta_mant)
            want = sf.SoelRule(m, e, 1.0, 8, 0, 10, 0).step / scale
            got = chip.eta(eta_mant / scale)
            assert got == pytest.approx(want, rel=1e-12)
            assert abs(got * scale - eta_mant) <= 0.12 * eta_mant          # <= ~1/9 off
            t = torch.tensor(eta_mant / scale, dtype=torch.float64, requires_grad=True)
            q = soel.OnChip(torch.tensor(scale, dtype=torch.float64)).eta(t)
            assert float(q) == pytest.approx(want, rel=1e-12)
            (g,) = torch.autograd.grad(q, t)
            assert float(g) == 1.0                                          # straight-through


def test_on_chip_rule_keeps_the_chips_weight_range_numpy_equals_torch():
    rng = np.random.default_rng(5)
    n_in, n_out, steps = 30, 5, 40
    neuron = LifFloat(du=0.2, dv=0.1, vth=1.0)
    w = rng.normal(0.05, 0.05, (n_out, n_in))
    pre = (rng.random((5, steps, n_in)) < 0.2).astype(np.float64)
    labels = np.arange(5)
    scale = 254 / np.abs(w).max()                  # bridge/'s head scale
    chip = soel.OnChip(scale)
    args = (neuron, 1.0, 0.05, soel.SoelTargets(target_on=12))
    free = soel.adapt_np(w, pre, labels, *args)
    ours = soel.adapt_np(w, pre, labels, *args, chip=chip)
    assert np.abs(free).max() * scale > 300                 # unconstrained: beyond 8 bits
    assert ours.min() * scale >= -256 - 1e-9 and ours.max() * scale <= 255 + 1e-9
    assert np.isclose(ours * scale, 255).any() or np.isclose(ours * scale, -256).any()
    tw = soel.adapt(torch.from_numpy(w), torch.from_numpy(pre), torch.from_numpy(labels), *args,
                    chip=soel.OnChip(torch.tensor(scale, dtype=torch.float64)))
    assert np.abs(tw.numpy() - ours).max() < 1e-12
