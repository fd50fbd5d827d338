"""Fit the on-chip SOEL rule (theta, the chip's weight step, target_on, passes) of a deployment
bundle on meta-VALIDATION tasks, in sim/'s fixed point (what Lava computes, bit for bit), and
write it into a bundle (never into the offline checkpoint: a later stage does not write an
earlier stage's file).

Why: a theta0 meta-trained with the SGD inner loop has no learnt SOEL parameters, and one
meta-trained with SOEL learnt them in float units before the chip's quantisation (eta becomes a
4-bit mantissa times a power of two, weights round stochastically); accuracy on chip is steep in
the step size, so the step is chosen where it will run. Only meta-validation classes are used:
the meta-test classes (and the demo's five) stay unseen.

The grid is over what the chip can represent: steps m 2^(e-3) mantissa units per n x
(rules/soel/chip.ChipRule.step), thresholds theta (integers: the error is a spike count),
target_on and passes. The frozen network runs once per task; only the head is re-run per
setting.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from metaloihi.base.errors import UserError
from metaloihi.bridge.bundle import as_bundle, check_bundle_target, write_bundle
from metaloihi.rules.soel import at_step
from metaloihi.datasets.encoding import Encoding, encode
from metaloihi.datasets.tasks import sample_task, support_order
from metaloihi.sim.readout import predict_np
from metaloihi.sim import fixed
from metaloihi.rules.soel import chip as sf

STEPS = (0.125, 0.1875, 0.25, 0.375, 0.5, 0.625, 0.75, 1.0)   # each exactly m 2^(e-3)
THETAS = (1, 2)
TARGETS_ON = (8, 16)
PASSES = (1,)
# a head that starts silent (the recipe's stage 2) has its grid set from the rule's own
# weights, so its step is searched around the trained one instead of on the absolute grid
STEP_FACTORS = (0.5, 0.71, 1.0, 1.41, 2.0)
RECIPE_PASSES = (3, 5, 8)


@dataclass(frozen=True)
class FitRow:
    theta: float
    step: float                 # weight mantissa units per n x, as the chip applies it
    target_on: int
    accuracy: float             # mean over the fit tasks
    silent: float               # fraction of queries with no output spike
    passes: int = 1             # presentations of the support set


def fit(net: fixed.Network, rule: sf.ChipRule, encoding: Encoding, dataset, split: str = "val",
        tasks: int = 20, queries: int = 5, seed: int = 0, steps=STEPS, thetas=THETAS,
        targets_on=TARGETS_ON, progress=None, passes=PASSES) -> tuple[sf.ChipRule, list[FitRow]]:
    """Grid search; returns `rule` with the best (step, theta, target_on, passes) (ties: the
    first in grid order) and every row, best first. net: the quantised network (frozen +
    head)."""
    frozen, head_layer = net[:-1], net[-1]
    ways = head_layer.spec.out_features
    rng = np.random.default_rng(seed)
    runs = []
    for _ in range(tasks):
        t = sample_task(dataset, split, ways, 1, queries, rng)
        xs, ys = support_order(encode(t.support_x, encoding), t.support_y.numpy(), ways)
        x = np.concatenate([xs, encode(t.query_x, encoding)])
        pre = fixed.run(frozen, x, layers="last")["spikes"][-1]
        labels = np.concatenate([ys, np.full(len(t.query_y), -1)])
        runs.append((pre, labels, t.query_y.numpy()))
    T = runs[0][0].shape[1]
    rows = []
    grid = [(th, st, to, p) for th in thetas for st in steps for to in targets_on for p in passes]
    for k, (theta, step, target_on, n_pass) in enumerate(grid):
        chip = at_step(rule, step, theta=float(theta), target_on=int(target_on),
                       passes=int(n_pass))
        sess = sf.rule_of(chip, T)
        accs, silent, n_q = [], 0, 0
        for pre, labels, yq in runs:
            shot = labels >= 0          # the support set, presented n_pass times
            tr = sf.run_session([], head_layer, sess,
                                np.concatenate([pre[shot]] * n_pass + [pre[~shot]]),
                                np.concatenate([labels[shot]] * n_pass + [labels[~shot]]))
            q = np.arange(len(tr.counts)) >= int(shot.sum()) * n_pass
            pred = predict_np(tr.counts[q], tr.v_last[q])
            accs.append(float(np.mean(pred == yq)))
            silent += int((tr.counts[q].sum(1) == 0).sum())
            n_q += int(q.sum())
        rows.append(FitRow(float(theta), chip.step, int(target_on), float(np.mean(accs)),
                           silent / n_q, int(n_pass)))
        if progress is not None:
            progress(k + 1, len(grid), rows[-1])
    best = max(rows, key=lambda r: r.accuracy)     # max keeps the first of equals
    rows.sort(key=lambda r: -r.accuracy)
    return at_step(rule, best.step, theta=best.theta, target_on=best.target_on,
                   passes=best.passes), rows


def table(rows: list[FitRow], top: int = 8) -> str:
    lines = ["theta  step(mant/nx)  target_on  passes  val acc  silent"]
    for r in rows[:top]:
        lines.append(f"{r.theta:5.0f}  {r.step:13.4f}  {r.target_on:9d}  {r.passes:6d}  "
                     f"{r.accuracy:7.3f}  {r.silent:6.3f}")
    return "\n".join(lines)


def checkpoint_fit(path) -> dict | None:
    """The fit this module wrote into the bundle beside the checkpoint at `path` (bundle.h5,
    exported from that very file), as the float rule's fields: theta, eta (the chip's step
    over the head's scale), target_on, passes, head_range. None where no bundle there holds a
    fit; a bundle exported from another file is refused by name."""
    from pathlib import Path
    from metaloihi.base.atomic import file_sha256
    from metaloihi.bridge.bundle import read_bundle
    where = Path(path).with_name("bundle.h5")
    b = read_bundle(where) if where.is_file() else None
    fit = b.meta.get("rule_fit") if b is not None else None
    if not fit or "step" not in fit:
        return None
    if b.meta.get("source_sha256") != file_sha256(path):
        raise UserError(f"{str(where)!r} was not exported from {str(path)!r} (source_sha256 "
                        "differs): its fit is another theta0's")
    return {"theta": float(fit["theta"]), "eta": float(fit["step"]) / b.scales[-1],
            "target_on": int(fit["target_on"]), "passes": int(fit["passes"]),
            "head_range": float(b.meta["head_range"])}


def export_fitted(checkpoint, out, head_range: float | None = None, **given):
    """Export `checkpoint` to the bundle `out` with its fitted rule: the fit recorded in the
    checkpoint (an older fit-soel), else the one in the bundle beside it (checkpoint_fit), else
    its learnt or configured rule; `given` (theta, eta, target_on, target_off, passes; None:
    not given) overrides any of them. Returns from_checkpoint's (specs, theta0, neurons, head
    rule as exported, meta)."""
    from dataclasses import replace
    from metaloihi.bridge.export import export_bundle, from_checkpoint
    specs, theta0, neurons, head, meta = from_checkpoint(checkpoint)
    fit = {} if meta.get("rule_fit") else (checkpoint_fit(checkpoint) or {})
    over = {k: fit[k] for k in ("theta", "eta", "target_on", "passes") if k in fit}
    over.update({k: v for k, v in given.items() if v is not None})
    head = replace(head, **over)
    export_bundle(out, specs, theta0, neurons, rule=head, meta=meta,
                  head_range=head_range if head_range is not None else meta.get("head_range"))
    return specs, theta0, neurons, head, meta


def fit_bundle(path, out=None, tasks: int = 20, queries: int = 5, seed: int = 0,
               dataset=None, split: str | None = None, progress=None, root=None
               ) -> tuple[dict, list[FitRow]]:
    """Fit the chip rule of the bundle at `path` on its data set's meta-validation split and
    write the bundle with it to `out` (None: `path` itself, atomically), its meta "rule_fit"
    saying how. dataset: the data set object or name (None: the bundle's; embedded ones only
    by name; root: a real one's folder); split: its class split (None: the bundle's
    meta-validation split, else "val").
    A bundle from a silent-start head (meta head_range) is searched around its own step,
    else on the absolute grid. Returns the stored dict and the rows."""
    from metaloihi.datasets.registry import load_dataset
    b = as_bundle(path)
    if out is not None:
        check_bundle_target(out)
    rule, meta = b.head.rule, b.meta
    split = split or (meta.get("splits") or {}).get("val", "val")
    if split in {"test", (meta.get("splits") or {}).get("test", "test")}:
        raise UserError(f"--split {split!r} holds the meta-test classes, which fitting never "
                        "uses (the rule would be chosen on the classes it is measured on); "
                        "give a validation split")
    if dataset is None or isinstance(dataset, str):
        dataset = load_dataset(dataset or meta.get("dataset") or "digits", seed=0, root=root)
    dataset.split_classes(split)       # a split the data set lacks: its error, before any work
    grid = {}
    if meta.get("head_range") is not None:     # the recipe: search around the trained rule
        grid = {"steps": sorted({at_step(rule, rule.step * f).step for f in STEP_FACTORS}),
                "thetas": (1,) if rule.theta < 1.5 else (1, 2),
                "targets_on": (int(rule.target_on), 2 * int(rule.target_on)),
                "passes": RECIPE_PASSES}
    best, rows = fit(b.net, rule, b.encoding, dataset, split=split, tasks=tasks,
                     queries=queries, seed=seed, progress=progress, **grid)
    fitted = {"theta": float(best.theta), "step": float(best.step), "mant": int(best.mant),
              "exp": int(best.exp), "target_on": int(best.target_on),
              "passes": int(best.passes), "val_accuracy": float(rows[0].accuracy),
              "split": split, "tasks": int(tasks), "queries": int(queries), "seed": int(seed),
              "before": {"mant": int(rule.mant), "exp": int(rule.exp), "theta": rule.theta,
                         "target_on": int(rule.target_on), "passes": int(rule.passes)}}
    write_bundle(out or b.path, b.net, dataclasses.replace(b.head, rule=best), b.scales,
                 {**meta, "rule_fit": fitted})
    return fitted, rows
