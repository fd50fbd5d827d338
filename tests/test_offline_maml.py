"""offline/maml.py and offline/quant.py: exact second-order meta-gradients, vmap == loop,
the quantiser on Loihi's grid, thresholded updates."""
import numpy as np
import pytest
import torch

from metaloihi.base.torch_file import theta0_key
from metaloihi.offline import maml, model
from metaloihi.rules.soel import Config as SoelConfig
from metaloihi.offline.quant import levels, quantize, threshold_update
from metaloihi.sim import float_lif
from metaloihi.sim import loihi as L


def net_and_meta_batch(seed=0, dtype=torch.float64, steps=12):
    """A one-conv-layer network (3 ways, 6x6 input) calibrated to fire, and a meta-batch of 2
    tasks x 3 ways (one support and one query sample each)."""
    cfg = model.ModelConfig(channels=(3,), kernel=3, du=0.3, dv=0.2)
    specs, neurons = model.build((steps, 2, 6, 6), 3, cfg)
    g = torch.Generator().manual_seed(seed)
    p = model.init_params(specs, g, dtype)
    x = (torch.rand(12, steps, 2, 6, 6, generator=g, dtype=dtype) < 0.3).to(dtype)
    p = model.calibrate(specs, p, neurons, x, 0.15, 0.2)
    y = torch.tensor([[0, 1, 2]] * 2)
    batch = (x[:6].reshape(2, 3, *x.shape[1:]), y, x[6:].reshape(2, 3, *x.shape[1:]), y)
    return specs, neurons, p, batch


@pytest.fixture
def smooth_spikes(monkeypatch):
    """A smooth network for finite differences: sigmoid spikes and a differentiated reset, so
    the forward pass is the function whose exact gradient autograd computes."""
    orig = float_lif._scan

    def smooth_scan(u, v, a, p, beta, detach, rec):
        with torch.enable_grad():     # no-graph runs would take the hard-threshold fast path
            return orig(u, v, a, p, beta, False, rec)
    monkeypatch.setattr(float_lif, "spike", lambda x, beta=10.0: torch.sigmoid(4.0 * x))
    monkeypatch.setattr(float_lif, "_scan", smooth_scan)


@pytest.mark.parametrize("adapt", ["head", "all"])
def test_second_order_meta_gradient_matches_finite_differences(smooth_spikes, adapt):
    specs, neurons, p, batch = net_and_meta_batch()
    cfg = maml.MamlConfig(inner_steps=2, inner_lr=0.5, adapt=adapt, trunc=None)
    meta = maml.init_meta(p, len(specs), cfg)
    grads, _, _ = maml.meta_gradient(meta, batch, specs, neurons, cfg, "vmap")

    def meta_loss(m):
        with torch.no_grad():
            return float(maml.adapt_and_score(m, batch, specs, neurons, cfg)[0].mean())

    rng = np.random.default_rng(1)
    eps, errs = 1e-6, []
    for _ in range(3):
        d = {k: torch.from_numpy(rng.standard_normal(v.shape)) for k, v in meta.items()}
        plus = meta_loss({k: meta[k] + eps * d[k] for k in meta})
        minus = meta_loss({k: meta[k] - eps * d[k] for k in meta})
        fd = (plus - minus) / (2 * eps)
        an = float(sum((grads[k] * d[k]).sum() for k in meta))
        errs.append(abs(fd - an) / max(abs(fd), 1e-12))
    print(f"\nsecond-order meta-gradient vs central FD, adapt={adapt}: max rel. error {max(errs):.2g}")
    assert max(errs) < 1e-6, errs
    # the second-order terms matter: FOMAML's gradient is measurably different
    fo, _, _ = maml.meta_gradient(meta, batch, specs, neurons,
                                  maml.MamlConfig(**{**cfg.__dict__, "first_order": True}))
    k = theta0_key(float_lif.head_key(specs))
    assert float((fo[k] - grads[k]).norm() / grads[k].norm()) > 1e-3


@pytest.mark.parametrize("rule,adapt,chip", [("sgd", "head", False), ("sgd", "all", False),
                                             ("soel", "head", False), ("soel", "head", True)])
def test_vmap_and_per_task_loop_give_the_same_meta_gradient(rule, adapt, chip):
    specs, neurons, p, batch = net_and_meta_batch()
    cfg = maml.MamlConfig(inner_steps=2, inner_lr=0.05, adapt=adapt, trunc=6, inner_rule=rule,
                          rule=SoelConfig(target_on=3, theta=1.5, eta=0.02, on_chip=chip))
    meta = maml.init_meta(p, len(specs), cfg)
    gv, lv, av = maml.meta_gradient(meta, batch, specs, neurons, cfg, "vmap")
    gl, ll, al = maml.meta_gradient(meta, batch, specs, neurons, cfg, "loop")
    assert torch.allclose(lv, ll, atol=1e-12) and torch.equal(av, al)
    for k in meta:
        assert torch.allclose(gv[k], gl[k], atol=1e-12, rtol=1e-9), k
    assert all(float(gv[k].abs().max()) > 0 for k in maml.learnable(meta, cfg))


def test_truncation_keeps_the_gradient_of_the_last_steps_only():
    specs, neurons, p, batch = net_and_meta_batch()
    w = p[float_lif.weight_key(1)].clone().requires_grad_(True)
    x = batch[0][0]
    early = x.clone().requires_grad_(True)
    out = model.forward(specs, {**p, float_lif.weight_key(1): w}, neurons, early, trunc=4)
    (gx,) = torch.autograd.grad(out.sum(), early)
    # input at step t reaches the head after two connection delays: only the last 4 steps of
    # the head (inputs up to step T-3) carry gradient, and nothing before T-4-2
    assert float(gx[:, : x.shape[1] - 6].abs().max()) == 0.0
    assert float(gx[:, -5:].abs().max()) > 0.0


def test_8bit_quantiser_is_the_loihi_weight_grid():
    assert levels(8) == L.GRID_LEVELS == 255 and levels(2) == 3 and levels(3) == 7
    w = torch.randn(40, 30, dtype=torch.float64)
    q = quantize(w, 8)
    scale = L.grid_scale(float(w.abs().max()))
    mant = L.weights_to_grid(w.numpy(), scale)
    assert np.array_equal(np.round(q.detach().numpy() * scale), mant)
    assert np.abs(q.detach().numpy() - mant / scale).max() < 1e-12
    assert len(np.unique(quantize(w, 2).numpy())) == 3


def test_quantiser_is_straight_through_and_stochastic_rounding_is_unbiased():
    w = torch.linspace(-1, 1, 11, dtype=torch.float64).requires_grad_(True)
    (g,) = torch.autograd.grad((quantize(w, 3) * torch.arange(11.0)).sum(), w)
    assert torch.equal(g, torch.arange(11.0, dtype=torch.float64))
    torch.manual_seed(0)
    x = torch.full((20000,), 0.3, dtype=torch.float64)
    q = quantize(x, 2, stochastic=True, scale=1.0)   # levels {-1, 0, 1}
    assert set(np.unique(q.numpy())) == {0.0, 1.0}
    assert abs(float(q.mean()) - 0.3) < 0.01


def test_thresholded_update_keeps_only_large_entries():
    d = torch.tensor([0.0, 0.04, 0.05, -0.5, 1.0], dtype=torch.float64)
    out = threshold_update(d, 0.05)      # Theta = 5% of the range (1.0 - 0.0) = 0.05
    assert out.tolist() == [0.0, 0.0, 0.05, -0.5, 1.0]
    assert torch.equal(threshold_update(d, 0.0), d)
