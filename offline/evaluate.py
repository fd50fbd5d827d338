"""Meta-test evaluation (`metaloihi evaluate`): N-way K-shot accuracy over many tasks of the
meta-test classes, mean and 95% confidence interval (1.96 standard errors over tasks), for
meta-trained checkpoints and the baselines and ceilings of the same architecture:
  prototype rows  nearest prototype (cosine) on the RAW encoded input and on each checkpoint's
                  penultimate spike counts: what any head rule on those features can reach
                  without learning the features (the ceilings every result is read against)
  random init     calibrated random theta0 + the checkpoint's own inner loop (learnt alpha/SOEL)
  pretrained      theta0 trained conventionally (cross-entropy over all meta-train classes, no
                  meta-learning), a fresh head, then the checkpoint's inner loop, and a
                  prototype on its penultimate counts (its best head)
Other algorithms (FOMAML, SGD-inner vs SOEL-inner) are rows of their own checkpoints: give
several (`metaloihi evaluate a.pt b.pt`); each row is labelled by its config.
"""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from metaloihi.base.torch_file import theta0_key
from metaloihi.offline import checkpoint, maml, pretrain as stage1
from metaloihi.offline.config import from_dict, to_dict
from metaloihi.offline.describe import made_by
from metaloihi.sim.float_lif import head_key
from metaloihi.sim.readout import ci95
from metaloihi.offline.train import (evaluate_split, initial_meta, initial_theta0, setup,
                                     stage2_meta)


def label(cfg, state: dict | None = None) -> str:
    """A checkpoint's row name: what made its theta0 (its own record: describe.made_by), the
    adaptation it is evaluated with, the data set."""
    m = cfg.maml
    made = (state or {}).get("made_by") or made_by(
        to_dict(cfg), (state or {}).get("iteration"), (state or {}).get("init_from"))
    inner = f"{'FOMAML' if m.first_order else 'MAML'} {m.inner_rule.upper()}-inner"
    return f"theta0 {made['label']}, adapted as in {inner}, {cfg.data.dataset}, adapt={m.adapt}"


def pretrain(s, iterations: int = 300, batch: int = 16, seed: int = 0,
             minutes: float | None = None, losses: list | None = None
             ) -> tuple[dict[str, torch.Tensor], int, float]:
    """Conventional (non-meta) training of the same network on all meta-train classes:
    offline.pretrain.pretrain with baseline_recipe (cross-entropy alone through the network's
    head widened to the classes, Adam steps as meta-training takes them), for `iterations`
    steps of `batch` samples or, given `minutes`, for that long (an equal-time budget with a
    meta-training run; `losses`, a list, collects the loss of every step). Returns (theta0 with
    the body trained and the fresh calibrated N-way head of initial_meta, Adam steps taken,
    seconds spent)."""
    calibrated = initial_theta0(s)
    base = stage2_meta(s, calibrated, fit_rule=False)    # initial_meta without recalibrating
    body, summary = stage1.pretrain(
        s, calibrated, stage1.baseline_recipe(s.cfg, iterations, batch, seed, minutes),
        on_record=None if losses is None else (lambda rec: losses.append(rec["loss"])))
    key = head_key(s.specs)
    return ({**body, key: maml.theta0_of(base)[key]}, summary["iterations"],
            summary.get("wall_s", 0.0))


def prototype_rows(s, split: str, shots: tuple[int, ...], tasks: int, seed: int, name: str,
                   params: dict | None) -> list[dict]:
    """Nearest-prototype (cosine) rows on the penultimate counts of params, or on the raw
    encoded input (params None: every input spike counted per input neuron)."""
    if params is None:
        x, y = stage1.encoded_split(s.dataset, split, s.cfg.model)
        feats = x.reshape(len(x), x.shape[1], -1).sum(1).numpy().astype(np.float64)
    else:
        feats, y = stage1.split_features(s, params, split)
    rows = []
    for k in shots:
        accs = stage1.prototype_eval(feats, y, s.cfg.data.ways, k, s.cfg.data.queries, tasks,
                                     seed)
        rows.append({"name": name, "shots": k, "acc": ci95(accs)[0], "ci95": ci95(accs)[1],
                     "tasks": tasks})
    return rows


def evaluate(paths: list[str | Path], tasks: int = 600, shots: tuple[int, ...] = (1, 5),
             split: str | None = None, baselines: bool = True, pretrain_iterations: int = 300,
             seed: int = 1234, report=print, device: str = "cpu",
             pretrain_minutes: float | None = None, data: dict | None = None) -> list[dict]:
    """Rows {name, shots, acc, ci95, tasks}; the baselines use the first checkpoint's setup.
    Runs on `device` ("cpu" or "cuda"), whatever device the checkpoints were trained on.
    data: overrides of the checkpoints' [data] section ({"dataset": ..., "root": ...}), to
    evaluate on a user's folder as `adapt --dataset/--root` does."""
    rows = []
    first = None
    out = rows.append
    for path in paths:
        state = checkpoint.load(path)
        cfg = from_dict(state["config"])
        if data:
            cfg = replace(cfg, data=replace(cfg.data, **data))
        s = setup(cfg, device=device) if first is None or cfg.data != first.cfg.data else \
            setup(cfg, first.dataset, device=device)
        first = first or s
        meta = {name: v.to(s.device) for name, v in state["meta"].items()}
        for k in shots:
            accs = evaluate_split(s, meta, split or cfg.data.test_split, tasks, seed,
                                  shots=k)
            rows.append({"name": f"{label(cfg, state)}: {Path(path).parent.name}/{Path(path).name}",
                         "shots": k,
                         "acc": ci95(accs)[0], "ci95": ci95(accs)[1], "tasks": tasks})
            report(rows[-1])
        for r in prototype_rows(s, split or cfg.data.test_split, shots, tasks, seed,
                                f"prototype (cosine) on the penultimate counts of "
                                f"{Path(path).parent.name}/{Path(path).name}",
                                maml.theta0_of(meta, cfg.maml)):
            out(r)
            report(r)
    if baselines and first is not None:
        for r in prototype_rows(first, split or first.cfg.data.test_split, shots, tasks, seed,
                                "prototype (cosine) on the raw encoded input, no learning", None):
            out(r)
            report(r)
        meta0 = checkpoint.load(paths[0])["meta"]
        learnt = {k: v.to(first.device) for k, v in meta0.items()
                  if not k.startswith(maml.THETA0)}
        rand = {**initial_meta(first), **learnt}
        pre_theta, steps, secs = pretrain(first, pretrain_iterations, minutes=pretrain_minutes)
        pre = {**{theta0_key(k): v for k, v in pre_theta.items()}, **learnt}
        for name, meta in (("random init + same inner loop", rand),
                           (f"pretrained (non-meta, {steps} steps of 16, {secs / 60:.1f} min) "
                            "+ same inner loop", pre)):
            for k in shots:
                accs = evaluate_split(first, meta, split or first.cfg.data.test_split, tasks,
                                      seed, shots=k)
                rows.append({"name": name, "shots": k, "acc": ci95(accs)[0],
                             "ci95": ci95(accs)[1], "tasks": tasks})
                report(rows[-1])
        for r in prototype_rows(first, split or first.cfg.data.test_split, shots, tasks, seed,
                                f"pretrained (non-meta, {steps} steps) + prototype (cosine) "
                                "on its penultimate counts", pre_theta):
            out(r)
            report(r)
    return rows
