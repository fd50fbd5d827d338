"""Stage 2 with the deployed session in its inner loop, its schedule chosen on meta-validation.

The inner loop is the session the bundle runs: the checkpoint's fitted rule (network.rule: theta,
eta, passes, head_range, as the fit wrote it) applied as the chip applies it (OnChip: eta on the
learning engine's nearest step, the 16-bit accumulator, the 8-bit weights), from the silent head,
the support set shot-major `passes` times. The float form of that session equals sim/'s fixed
point to 0.1 pp on the theta0 the study started from (checkpoints/demo_short/
deployment_gap.json), so meta-val here is deployed meta-val. Only the head adapts, so the
frozen layers run once per task.

A candidate is one schedule: outer Adam lr (relative to each tensor's initial RMS, as training's
relative_lr), a linear warm-up then cosine decay over its iterations, the meta-batch, first or
second order, and which parameters the outer loop moves ("all" the body and the head's start,
"last2" the last conv and the head's start, "rule" the rule's theta and eta only). Each runs
from the same start for a fixed number of iterations (so a rerun repeats it) and records its
meta-val accuracy on the same tasks at every evaluation, with the CPU seconds spent so far.
The start is every candidate's first point: a candidate wins only where it beats it.
"""
from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass
from functools import partial

import numpy as np
import torch

from metaloihi import rules
from metaloihi.base.errors import UserError
from metaloihi.offline import checkpoint, config, maml, seeds, train
from metaloihi.studies.rule_fit import checkpoint_fit
from metaloihi.sim.readout import ci95

LAYERS = ("all", "last2", "rule")


@dataclass(frozen=True)
class Candidate:
    name: str
    lr: float = 3e-4                 # Adam, times each tensor's initial RMS (scalars: as is)
    layers: str = "all"              # LAYERS
    first_order: bool = False
    meta_batch: int = 4
    iterations: int = 900
    warmup: float = 0.05             # fraction of the iterations with a linearly rising lr

    def __post_init__(self):
        if self.layers not in LAYERS:
            raise UserError(f"candidate {self.name}: layers={self.layers!r}; expected one of "
                            f"{', '.join(LAYERS)}")
        if not (self.lr > 0 and self.iterations >= 1 and self.meta_batch >= 1
                and 0 <= self.warmup < 1):
            raise UserError(f"candidate {self.name}: lr={self.lr}, iterations="
                            f"{self.iterations}, meta_batch={self.meta_batch}, warmup="
                            f"{self.warmup}: expected lr > 0, iterations >= 1, meta_batch >= 1, "
                            "0 <= warmup < 1")


CANDIDATES = {c.name: c for c in (
    Candidate("all_1e-4", lr=1e-4),
    Candidate("all_3e-4", lr=3e-4),
    Candidate("all_1e-3", lr=1e-3),
    Candidate("last2_3e-4", lr=3e-4, layers="last2"),
    # measured: first order is no cheaper per iteration than second order
    Candidate("fo_all_3e-4", lr=3e-4, first_order=True, iterations=800),
    Candidate("rule_1e-2", lr=1e-2, layers="rule"),
    # four times the tasks per step (the meta-gradient's SNR at 4 is below 1), a quarter of
    # the steps
    Candidate("mb16_all_3e-4", lr=3e-4, meta_batch=16, iterations=225),
)}
SHIPPED = "mb16_all_3e-4"       # the shipped demo theta0's stage 2 (checkpoints/demo/README.md)


def lr_factor(it: int, c: Candidate) -> float:
    """Iteration it (1..c.iterations): linear warm-up, then cosine decay to 0."""
    warm = max(1, round(c.warmup * c.iterations))
    if it <= warm:
        return it / warm
    return 0.5 * (1 + math.cos(math.pi * (it - warm) / max(1, c.iterations - warm)))


@dataclass
class Start:
    """What every candidate starts from: the checkpoint's setup, its meta-parameters with the
    fitted rule's eta, and the deployed session as a MamlConfig."""
    setup: train.Setup
    meta: dict
    mc: maml.MamlConfig
    rule: dict
    path: str


def deployed_start(path: str) -> Start:
    """The deployed session as stage 2's inner loop: the checkpoint's fitted rule (recorded in
    the checkpoint by an older fit, else the fit in the bundle beside it)."""
    st = checkpoint.load(path)
    cfg = config.from_dict(st["config"])
    rule = dict(st.get("network", {}).get("rule") or {})
    if st.get("rule_fit") is None:              # fitted by today's fit-soel: in the bundle
        fit = checkpoint_fit(path)
        if fit is None:
            raise UserError(f"checkpoint {str(path)!r} records no fitted rule and no bundle.h5 "
                            "beside it holds a fit-soel fit: export it there and fit it "
                            "(metaloihi export, then metaloihi fit-soel)")
        rule = {**rule, **fit}
    mc = dataclasses.replace(
        cfg.maml, inner_steps=int(rule["passes"]), head_start="zero",
        rule=dataclasses.replace(cfg.maml.rule, learn=False, on_chip=True, fit_start=False,
                                 theta=float(rule["theta"]), eta=float(rule["eta"])))
    meta = {k: v.detach().clone() for k, v in st["meta"].items()}
    like = next(iter(meta.values()))
    scalar = partial(torch.tensor, dtype=like.dtype)
    card = rules.get(mc.rule.name)      # the fitted rule's entries, named by its card
    meta.update(card.meta_params(mc.rule, scalar))
    meta.update(card.start_values(float(rule["eta"]), float(rule["head_range"]), scalar))
    return Start(train.setup(cfg), meta, mc, rule, str(path))


def made_by(start_record: dict, candidate: str, iteration: int) -> dict:
    """The "made_by" record of a candidate's checkpoint: its start's, plus `iteration` stage-2
    iterations of `candidate` with the deployed session inside."""
    rec = dict(start_record)
    before = int(rec.get("stage2_iterations") or 0)
    # a start with no stage-2 update is named by what made it ("stage 1"), not "no update"
    label = rec.get("label", "not recorded") if before or not rec.get("stage1") else "stage 1"
    summary = rec.get("summary", "not recorded") if before else rec.get("start", "not recorded")
    rec["stage2_iterations"] = before + int(iteration)
    rec["label"] = f"{label} + stage 2, deployed session x{iteration}"
    rec["summary"] = (f"{summary}; then stage 2 with the deployed session inside "
                      f"(benchmarks/stage2_schedule.py, candidate {candidate}): {iteration} "
                      "iterations")
    return rec


def candidate_state(start: Start, meta: dict, candidate: dict, iteration: int) -> dict:
    """The checkpoint of a candidate's iteration: the start's, its meta-parameters replaced, its
    network record's rule the deployed session it was meta-trained with (so an export carries
    that rule), with the candidate and a true made_by record."""
    from metaloihi.offline.describe import network_description
    st = checkpoint.load(start.path)
    st["meta"] = {k: v.detach() for k, v in meta.items()}
    cfg = dataclasses.replace(start.setup.cfg, maml=start.mc)
    st["network"] = network_description(cfg, st["network"]["frame_shape"], start.setup.specs,
                                        start.setup.neurons, st["meta"])
    st["stage2_schedule"] = {"candidate": candidate, "iteration": iteration}
    st["made_by"] = made_by(st.get("made_by") or {}, candidate["name"], iteration)
    return st


def outer_keys(start: Start, c: Candidate) -> tuple[list[str], maml.MamlConfig]:
    """The meta keys the candidate's outer loop moves, and the MamlConfig it trains with."""
    mc = dataclasses.replace(start.mc, first_order=c.first_order)
    if c.layers == "rule":
        mc = dataclasses.replace(mc, rule=dataclasses.replace(mc.rule, learn=True))
        return rules.get(mc.rule.name).learnable(start.meta, mc.rule), mc
    keys = [k for k in maml.learnable(start.meta, mc) if k.startswith("theta0.")]
    if c.layers == "last2":
        keys = keys[-2:]
    return keys, mc


def meta_val(start: Start, meta: dict, mc: maml.MamlConfig, tasks: int, queries: int,
             seed: int, chunk: int = 10) -> np.ndarray:
    """Per-task query accuracy of the deployed session on `tasks` meta-val tasks (the same
    tasks for every call with the same seed)."""
    s = start.setup
    accs = []
    for lo in range(0, tasks, chunk):
        batch = train.task_batch(s, s.cfg.data.val_split, min(chunk, tasks - lo),
                                 seeds.evaluation(seed, lo), queries=queries)
        _, acc = maml.adapt_and_score(meta, batch, s.specs, s.neurons, mc)
        accs.append(acc.cpu().numpy())
    return np.concatenate(accs).astype(np.float64)


def paired(a: np.ndarray, b: np.ndarray) -> dict:
    """a - b over the same tasks: mean, its 95% CI half-width, whether the CI excludes 0."""
    d = np.asarray(a, np.float64) - np.asarray(b, np.float64)
    half = ci95(d)[1]
    return {"mean_pp": 100 * float(d.mean()), "ci95_pp": 100 * half,
            "excludes_0": bool(abs(d.mean()) > half)}


def run_candidate(start: Start, c: Candidate, val_every: int, val_tasks: int, queries: int,
                  seed: int = 0, base_val: np.ndarray | None = None, log=print) -> dict:
    """One candidate from the start: its curve [(iteration, cpu_s, meta-val)], its best
    iteration's meta-parameters (None where no evaluation beat the start) and per-task meta-val
    accuracies, and its last iteration's meta-parameters."""
    s = start.setup
    keys, mc = outer_keys(start, c)
    meta = {k: v.detach().clone() for k, v in start.meta.items()}
    for k in keys:
        meta[k].requires_grad_(True)
    from metaloihi.offline.pretrain import adam_groups
    opt = torch.optim.Adam(adam_groups(meta, keys, c.lr, relative_from=2))
    base_lr = [g["lr"] for g in opt.param_groups]
    vseed = seeds.validation(seed)
    if base_val is None:
        base_val = meta_val(start, meta, mc, val_tasks, queries, vseed)
    curve = [{"iteration": 0, "cpu_s": 0.0, "meta_val": float(base_val.mean())}]
    best = {"iteration": 0, "acc": base_val, "meta": None}
    cpu, losses = 0.0, []
    for it in range(1, c.iterations + 1):
        batch = train.task_batch(s, s.cfg.data.train_split, c.meta_batch,
                                 seeds.meta_batch(seed, it))
        t0 = time.process_time()
        torch.manual_seed(seeds.rounding(seed, it))
        grads, loss, _ = maml.meta_gradient(meta, batch, s.specs, s.neurons, mc, mode="loop")
        f = lr_factor(it, c)
        for g, lr in zip(opt.param_groups, base_lr):
            g["lr"] = lr * f
        for k in keys:
            meta[k].grad = grads[k].detach()
        opt.step()
        opt.zero_grad(set_to_none=True)
        cpu += time.process_time() - t0
        losses.append(float(loss.mean()))
        if it % val_every == 0 or it == c.iterations:
            acc = meta_val(start, meta, mc, val_tasks, queries, vseed)
            curve.append({"iteration": it, "cpu_s": cpu, "meta_val": float(acc.mean()),
                          "meta_loss": float(np.mean(losses[-val_every:]))})
            log(f"{c.name}: iteration {it}, {cpu:.0f} CPU s, meta-val {acc.mean():.4f} "
                f"(start {base_val.mean():.4f})")
            if acc.mean() > best["acc"].mean():
                best = {"iteration": it, "acc": acc,
                        "meta": {k: v.detach().clone() for k, v in meta.items()}}
    return {"candidate": dataclasses.asdict(c), "curve": curve, "train_cpu_s": cpu,
            "cpu_s_per_iteration": cpu / c.iterations,
            "best_iteration": best["iteration"], "best_meta_val": float(best["acc"].mean()),
            "vs_start": paired(best["acc"], base_val),
            "best_per_task": best["acc"].tolist(), "start_per_task": base_val.tolist(),
            "_best_meta": best["meta"],
            "_last_meta": {k: v.detach().clone() for k, v in meta.items()}}


def prototype_val(start: Start, meta: dict, tasks: int, queries: int, seed: int,
                  chunk: int = 10, raw: bool = False) -> np.ndarray:
    """Per-task nearest-prototype (cosine) accuracy on the spike counts entering the head, on
    the same tasks as meta_val with the same seed: what any head rule could reach with these
    features (the ceiling the deployed session is measured against); raw: on the encoded input
    itself (the ceiling without any body)."""
    from metaloihi.offline import model
    from metaloihi.offline.maml import theta0_of
    from metaloihi.sim.prototype import prototype_accuracy
    s = start.setup
    theta, head = theta0_of(meta), 0 if raw else len(s.specs) - 1
    ways, accs = s.cfg.data.ways, []
    with torch.no_grad():
        for lo in range(0, tasks, chunk):
            sx, sy, qx, qy = train.task_batch(s, s.cfg.data.val_split, min(chunk, tasks - lo),
                                              seeds.evaluation(seed, lo), queries=queries)
            for t in range(len(sx)):
                h = model.features(s.specs, theta, s.neurons, torch.cat([sx[t], qx[t]]), head,
                                   None).sum(1).cpu().numpy()
                n = len(sx[t])
                accs.append(prototype_accuracy(h[:n], sy[t].cpu().numpy(), h[n:],
                                               qy[t].cpu().numpy(), ways))
    return np.asarray(accs, np.float64)


def gradient_snr(start: Start, c: Candidate, tasks: int = 32, seed: int = 0,
                 meta_batches: tuple[int, ...] = (4,)) -> dict:
    """The meta-gradient's signal-to-noise at the start, per tensor the outer loop moves: from
    `tasks` single-task gradients g_t (computed once), for each meta-batch size m,
    |mean g|^2 / (the variance of the mean over m tasks, sum over elements of var(g_t) / m).
    Below 1, one meta-batch's gradient is mostly noise. (|mean g|^2 is corrected for its own
    noise, var / tasks.) Returns {"meta_batch_m": {key: {signal, noise, snr}}}."""
    s = start.setup
    keys, mc = outer_keys(start, c)
    batch = train.task_batch(s, s.cfg.data.train_split, tasks, seeds.meta_batch(seed, 10 ** 6))
    per_task = []
    for t in range(tasks):
        one = tuple(b[t:t + 1] for b in batch)
        torch.manual_seed(seeds.rounding(seed, t))
        g, _, _ = maml.meta_gradient(start.meta, one, s.specs, s.neurons, mc, mode="loop")
        per_task.append({k: g[k].detach().double().flatten() for k in keys})
    out = {f"meta_batch_{m}": {} for m in meta_batches}
    for k in keys:
        g = torch.stack([p[k] for p in per_task])
        mean, var = g.mean(0), float(g.var(0, unbiased=True).sum())
        # |mean|^2 over `tasks` overstates |E g|^2 by var / tasks: removed
        signal = max(float(mean.pow(2).sum()) - var / tasks, 0.0)
        for m in meta_batches:
            out[f"meta_batch_{m}"][k] = {"signal": signal, "noise": var / m,
                                         "snr": signal / max(var / m, 1e-300)}
    return out
