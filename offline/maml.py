"""MAML (Stewart & Neftci 2022, eq. 1-3) as functions over a flat meta-parameter dict.

Meta-parameters (one flat dict of tensors, what Adam optimises and checkpoints hold):
  ``theta0.layers.{i}.weight``   the initialisation theta0 (float_lif keys under "theta0.")
  ``log_inner_lr.{i}``           log of the per-layer inner learning rate alpha (SGD rule)
  the chip rule's entries    its card's meta_params (rules/<name>; SOEL: ``soel.log_threshold``,
                             ``soel.log_eta``), and its HEAD_RANGE where stage 2 fitted the grid
Rates and the threshold are learnt in log space: they stay positive, and an Adam step changes
them by a fraction of their value whatever their scale (alpha ~ 1e-3 here, theta ~ 1).

task_loss: theta0 -> (Q_outer) -> N inner steps on the support set (SGD with thresholded
updates and Q_inner, or SOEL one shot at a time) -> cross-entropy on the query set. Layers before
the first adapted one do not change in the inner loop, so their spikes are computed once per
task (support and query together; in vmap mode once per meta-batch) and the inner loop re-runs
only the adapted tail.
meta_gradient: over a meta-batch of tasks, either the frozen layers once for the whole batch and
torch.func.vmap of the inner loops (inner gradients by torch.func.grad, outer by
torch.autograd.grad through them: second order), or a per-task Python loop with
torch.autograd.grad(create_graph=True) (the reference code's way).
Truncated BPTT: every run keeps the graph for the last `trunc` steps only.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial

import torch
import torch.nn.functional as F

from metaloihi.base.bounds import bounded, check_fields, refuse
from metaloihi.base.errors import UserError
from metaloihi.base.torch_file import THETA0, theta0_key, theta0_params
from metaloihi.offline import model
from metaloihi.offline.quant import grid_scale, quantize, threshold_update
from metaloihi import rules
from metaloihi.sim.float_lif import key_layer, weight_key
from metaloihi.sim.loihi import GRID_MAX


@dataclass(frozen=True)
class MamlConfig:
    inner_steps: int = bounded(1, 0, 1000)      # N of eq. 1 (SOEL: passes over the shots)
    inner_lr: float = bounded(3e-4, 0.0, 1e3)   # initial alpha (per adapted layer, learnt if
                                                # learn_inner_lr)
    learn_inner_lr: bool = True
    adapt: str = "head"               # "head" (as on chip) | "all" | comma list of layer indices
    trunc: int | None = bounded(30, 1)          # truncated BPTT: graph over the last `trunc`
                                                # steps (none: all)
    first_order: bool = False         # FOMAML
    update_threshold: float = bounded(0.0, 0.0, 1.0)   # eq. 6: fraction of the update-magnitude
                                                       # range (0: off)
    q_inner_bits: int | None = bounded(None, 2, 8)   # Q_{C,S} after each inner update (None:
                                                     # float)
    q_inner_stochastic: bool = False
    q_outer_bits: int | None = bounded(None, 2, 8)   # Q_{C,S} of theta0 before use
    q_outer_stochastic: bool = False
    inner_rule: str = "sgd"           # "sgd", or the chip's rule ([rule]'s name): rules/
    loss_scale: float = bounded(1.0, 1e-9)   # cross-entropy on loss_scale * logits (a
                                             # temperature)
    learn_head_init: bool = True      # false: theta0's head stays at its calibrated start
                                      # (the "zero trick": the outer loop cannot shrink it)
    head_start: str = "theta0"        # "theta0": the calibrated head; "zero": a silent head
                                      # the rule writes into (stage 2 of the recipe)
    rule: object = field(default_factory=lambda: rules.get(rules.DEFAULT).Config())
                                      # the [rule] section (config.from_dict puts it here)

    def __post_init__(self):
        if self.inner_rule not in ("sgd", self.rule.name):
            refuse("config key maml.inner_rule", self.inner_rule,
                   f"'sgd' or the [rule] section's rule {self.rule.name!r}")
        check_fields(self, "config key maml.")
        if self.head_start not in ("theta0", "zero"):
            refuse("config key maml.head_start", self.head_start, "'theta0' or 'zero'")


def adapted_layers(n_layers: int, cfg: MamlConfig) -> list[int]:
    if cfg.adapt == "head":
        layers = [n_layers - 1]
    elif cfg.adapt == "all":
        layers = list(range(n_layers))
    else:
        try:
            layers = sorted({int(s) for s in str(cfg.adapt).split(",")})
        except ValueError:
            raise UserError(f"adapt={cfg.adapt!r}; expected 'head', 'all' or layer indices "
                            "like '2,3'") from None
        if not layers or layers[0] < 0 or layers[-1] >= n_layers:
            raise UserError(f"adapt={cfg.adapt!r}: layers must be in 0..{n_layers - 1}")
    if cfg.inner_rule != "sgd" and layers != [n_layers - 1]:
        raise UserError(f"inner_rule={cfg.inner_rule!r} adapts the head only; got "
                        f"adapt={cfg.adapt!r}")
    return layers


def init_meta(theta0: dict, n_layers: int, cfg: MamlConfig) -> dict[str, torch.Tensor]:
    like = next(iter(theta0.values()))
    meta = {theta0_key(k): v.detach().clone() for k, v in theta0.items()}
    scalar = partial(torch.tensor, dtype=like.dtype, device=like.device)
    if cfg.inner_rule == "sgd":
        for i in adapted_layers(n_layers, cfg):
            meta[f"log_inner_lr.{i}"] = scalar(cfg.inner_lr).log()
    else:
        meta.update(rules.get(cfg.inner_rule).meta_params(cfg.rule, scalar))
    return meta


def head_range(meta: dict, theta: dict, key: str, cfg: MamlConfig):
    """The float |w| the deployed head's grid edge stands for: meta's entry of the rule's
    HEAD_RANGE where set (a head that starts silent has no range of its own), else theta0's
    head max |w|."""
    k = rules.get(cfg.rule.name).HEAD_RANGE
    if k in meta:
        return meta[k].detach()
    return grid_scale(theta[key])


def learnt_values(meta: dict) -> dict[str, float]:
    """The scalar meta-parameters in natural units: inner_lr.{i}, the rule's (SOEL:
    soel.threshold, soel.eta), and its head range where fitted."""
    out = {k.replace("log_", ""): float(v.detach().exp()) for k, v in meta.items()
           if "log_" in k}
    for name in rules.names():
        k = rules.get(name).HEAD_RANGE
        if k in meta:
            out[k] = float(meta[k])
    return out


def learnable(meta: dict, cfg: MamlConfig) -> list[str]:
    """Keys the outer optimiser updates."""
    keys = [k for k in meta if k.startswith(THETA0)]
    if not cfg.learn_head_init:
        head = max(key_layer(k)[0] for k in theta0_params(meta))
        keys = [k for k in keys if k != theta0_key(weight_key(head))]
    if cfg.learn_inner_lr:
        keys += [k for k in meta if k.startswith("log_inner_lr.")]
    keys += rules.get(cfg.rule.name).learnable(meta, cfg.rule)
    return keys


def theta0_of(meta: dict, cfg: MamlConfig | None = None) -> dict[str, torch.Tensor]:
    """theta0 as a float_lif params dict (Q_outer applied when cfg asks for it)."""
    theta = theta0_params(meta)
    if cfg is not None and cfg.q_outer_bits is not None:
        theta = {k: quantize(v, cfg.q_outer_bits, cfg.q_outer_stochastic)
                 if k.endswith(".weight") else v for k, v in theta.items()}
    return theta


def inner_loop(meta: dict, theta: dict, specs, neurons, h_support: torch.Tensor,
               y_support: torch.Tensor, cfg: MamlConfig, use_autograd: bool = False) -> dict:
    """theta_N from theta_0 = theta on the support set. h_support: spikes entering the first
    adapted layer [S, T, n]. Returns the full params dict with adapted weights replaced."""
    layers = adapted_layers(len(specs), cfg)
    first = layers[0]
    keys = [weight_key(i) for i in layers]
    # Q_inner's grid is fixed by theta0's (the chip cannot rescale a layer while learning)
    qs = {k: partial(quantize, bits=cfg.q_inner_bits, stochastic=cfg.q_inner_stochastic,
                     scale=head_range(meta, theta, k, cfg) if cfg.inner_rule != "sgd"
                     else grid_scale(theta[k])) for k in keys}
    if cfg.inner_rule != "sgd":                 # the chip's rule, from its card (rules/)
        k = keys[0]
        # the bundle's head scale (bridge/ puts theta0's max |w| on the grid's edge)
        w = rules.get(cfg.inner_rule).inner_adapt(
            theta[k], h_support, y_support, neurons[-1], meta, cfg.rule,
            passes=cfg.inner_steps, trunc=cfg.trunc, quantize=qs[k],
            head_scale=GRID_MAX / head_range(meta, theta, k, cfg))
        return {**theta, k: w}

    fast = dict(theta)

    def support_loss(adapt_params: dict) -> torch.Tensor:
        logits = model.forward_from(specs, {**fast, **adapt_params}, neurons, h_support, first,
                                    cfg.trunc)
        return F.cross_entropy(cfg.loss_scale * logits, y_support)

    for _ in range(cfg.inner_steps):
        current = {k: fast[k] for k in keys}
        if use_autograd:
            grads = torch.autograd.grad(support_loss(current), list(current.values()),
                                        create_graph=not cfg.first_order)
            grads = dict(zip(keys, grads))
        else:
            grads = torch.func.grad(support_loss)(current)
        for i, k in zip(layers, keys):
            g = grads[k].detach() if cfg.first_order else grads[k]
            step = threshold_update(meta[f"log_inner_lr.{i}"].exp() * g, cfg.update_threshold)
            fast[k] = qs[k](fast[k] - step)
    return fast


def head_loss(meta: dict, theta: dict, h_support, support_y, h_query, query_y, *, specs,
              neurons, cfg: MamlConfig, use_autograd: bool = False):
    """Eq. 2 for one task given theta0 (theta0_of(meta, cfg), drawn once with the frozen
    layers' run) and the spikes entering the first adapted layer ([S or Q, T, n]): inner loop
    on the support, then query cross-entropy -> (loss, accuracy)."""
    first = adapted_layers(len(specs), cfg)[0]
    fast = inner_loop(meta, theta, specs, neurons, h_support, support_y, cfg, use_autograd)
    logits = model.forward_from(specs, fast, neurons, h_query, first, cfg.trunc)
    loss = F.cross_entropy(cfg.loss_scale * logits, query_y)
    acc = (logits.argmax(-1) == query_y).to(logits.dtype).mean()
    return loss, acc


def task_loss(meta: dict, support_x, support_y, query_x, query_y, *, specs, neurons,
              cfg: MamlConfig, use_autograd: bool = False):
    """Eq. 2 for one task: query cross-entropy after adaptation -> (loss, accuracy).
    Inputs are encoded spikes [S or Q, T, C, H, W] and labels."""
    first = adapted_layers(len(specs), cfg)[0]
    n_s = support_x.shape[0]
    theta = theta0_of(meta, cfg)
    h = model.features(specs, theta, neurons, torch.cat([support_x, query_x]), first, cfg.trunc)
    return head_loss(meta, theta, h[:n_s], support_y, h[n_s:], query_y, specs=specs,
                     neurons=neurons, cfg=cfg, use_autograd=use_autograd)


def _vmapped(meta, batch, specs, neurons, cfg):
    """Per-task (losses [M], accuracies [M]): the layers before the first adapted one run once
    for the whole meta-batch (they are the same theta0 for every task), then the inner loop and
    the query logits run vmapped over the tasks."""
    support_x, support_y, query_x, query_y = batch
    m, n_s = support_x.shape[:2]
    x = torch.cat([support_x, query_x], 1)
    theta = theta0_of(meta, cfg)
    h = model.features(specs, theta, neurons, x.flatten(0, 1),
                       adapted_layers(len(specs), cfg)[0], cfg.trunc)
    h = h.reshape(m, x.shape[1], *h.shape[1:])
    fn = partial(head_loss, specs=specs, neurons=neurons, cfg=cfg)
    return torch.func.vmap(fn, in_dims=(None, None, 0, 0, 0, 0), randomness="different")(
        meta, theta, h[:, :n_s], support_y, h[:, n_s:], query_y)


def meta_gradient(meta: dict, batch: tuple, specs, neurons, cfg: MamlConfig,
                  mode: str = "vmap") -> tuple[dict, torch.Tensor, torch.Tensor]:
    """Gradient of the mean query loss over a meta-batch (eq. 3) w.r.t. every meta-parameter.

    batch = (support_x [M, S, ...], support_y [M, S], query_x [M, Q, ...], query_y [M, Q]).
    mode "vmap": the frozen layers once for the meta-batch, the tasks' inner loops vmapped
    (inner gradients by torch.func.grad), the outer gradient by torch.autograd.grad (cheaper
    than an outer torch.func.grad transform, which wraps every op of the frozen layers too);
    "loop": one task at a time, everything by torch.autograd.grad (the reference code's way).
    Returns (grads, per-task losses [M], per-task accuracies [M])."""
    if mode == "auto":      # measured: the per-task loop is faster on the CPU, vmap on CUDA
        mode = "vmap" if next(iter(meta.values())).is_cuda else "loop"
    if mode not in ("vmap", "loop"):
        raise UserError(f"meta-gradient mode={mode!r}; expected 'vmap', 'loop' or 'auto'")
    leaves = {k: v.detach().requires_grad_(True) for k, v in meta.items()}
    if mode == "vmap":
        losses, accs = _vmapped(leaves, batch, specs, neurons, cfg)
        gs = torch.autograd.grad(losses.mean(), list(leaves.values()), allow_unused=True)
        grads = {k: torch.zeros_like(v) if g is None else g
                 for (k, v), g in zip(leaves.items(), gs)}
        return grads, losses.detach(), accs.detach()
    grads = {k: torch.zeros_like(v) for k, v in meta.items()}
    n = batch[0].shape[0]
    losses, accs = [], []
    for t in range(n):
        loss, acc = task_loss(leaves, *(b[t] for b in batch), specs=specs, neurons=neurons,
                              cfg=cfg, use_autograd=True)
        gs = torch.autograd.grad(loss / n, list(leaves.values()), allow_unused=True)
        for k, g in zip(leaves, gs):
            if g is not None:
                grads[k] += g
        losses.append(loss.detach())
        accs.append(acc.detach())
    return grads, torch.stack(losses), torch.stack(accs)


def adapt_and_score(meta: dict, batch: tuple, specs, neurons, cfg: MamlConfig
                    ) -> tuple[torch.Tensor, torch.Tensor]:
    """Meta-test: per-task query loss and accuracy after the inner loop, no outer graph."""
    with torch.no_grad():   # torch.func.grad inside vmap still differentiates the inner loop
        detached = {k: v.detach() for k, v in meta.items()}
        return _vmapped(detached, batch, specs, neurons, cfg)
