"""Fit the on-chip SOEL parameters (theta, the chip's weight step, target_on) of a checkpoint on
meta-VALIDATION tasks, in sim/'s fixed point (what Lava computes, bit for bit).

Why: a theta0 meta-trained with the SGD inner loop has no learnt SOEL parameters, and one
meta-trained with SOEL learnt them in float units before the chip's quantisation (eta becomes a
4-bit mantissa times a power of two, weights round stochastically). The accuracy on chip is
steep in the step size (measured on the interim demo checkpoint, 20 demo tasks: step 0.31 ->
75%, 0.63 -> 71%, 2.5 -> 45%, 0.15 -> silent head), so the step is chosen where it will run.
Only meta-validation classes are used: the meta-test classes (and the demo's five) stay unseen.

The grid is over what the chip can represent: steps m 2^(e-3) mantissa units per n x (sim/
soel_fixed.SoelRule.step), thresholds theta (integers: the error is a spike count) and
target_on. The frozen network runs once per task; only the head is re-run per setting.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from metaloihi.bridge.bundle import HeadParams
from metaloihi.datasets.encoding import Encoding, encode
from metaloihi.datasets.tasks import sample_task, support_order
from metaloihi.sim.readout import predict_np
from metaloihi.sim import fixed
from metaloihi.sim import soel_fixed as sf

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


def fit(net: fixed.Network, scales: list[float], head: HeadParams, encoding: Encoding,
        dataset, split: str = "val", tasks: int = 20, queries: int = 5, seed: int = 0,
        steps=STEPS, thetas=THETAS, targets_on=TARGETS_ON, progress=None,
        passes=PASSES) -> tuple[HeadParams, list[FitRow]]:
    """Grid search; returns head params with the best (theta, eta, target_on) (ties: the first
    in grid order) and every row, best first. net: the quantised network (frozen + head)."""
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
        hp = dataclasses.replace(head, soel_threshold=float(theta), target_on=int(target_on),
                                 soel_eta=float(step) / float(scales[-1]), passes=int(n_pass))
        rule = sf.rule_of(hp, scales, head_layer, T)
        accs, silent, n_q = [], 0, 0
        for pre, labels, yq in runs:
            shot = labels >= 0          # the support set, presented n_pass times
            tr = sf.run_session([], head_layer, rule,
                                np.concatenate([pre[shot]] * n_pass + [pre[~shot]]),
                                np.concatenate([labels[shot]] * n_pass + [labels[~shot]]))
            q = np.arange(len(tr.counts)) >= int(shot.sum()) * n_pass
            pred = predict_np(tr.counts[q], tr.v_last[q])
            accs.append(float(np.mean(pred == yq)))
            silent += int((tr.counts[q].sum(1) == 0).sum())
            n_q += int(q.sum())
        rows.append(FitRow(float(theta), rule.step, int(target_on), float(np.mean(accs)),
                           silent / n_q, int(n_pass)))
        if progress is not None:
            progress(k + 1, len(grid), rows[-1])
    best = max(rows, key=lambda r: r.accuracy)     # max keeps the first of equals
    rows.sort(key=lambda r: -r.accuracy)
    return dataclasses.replace(head, soel_threshold=best.theta, target_on=best.target_on,
                               soel_eta=best.step / float(scales[-1]), passes=best.passes), rows


def table(rows: list[FitRow], top: int = 8) -> str:
    lines = ["theta  step(mant/nx)  target_on  passes  val acc  silent"]
    for r in rows[:top]:
        lines.append(f"{r.theta:5.0f}  {r.step:13.4f}  {r.target_on:9d}  {r.passes:6d}  "
                     f"{r.accuracy:7.3f}  {r.silent:6.3f}")
    return "\n".join(lines)


def fit_checkpoint(path, tasks: int = 20, queries: int = 5, seed: int = 0, progress=None
                   ) -> tuple[dict, list[FitRow]]:
    """Fit the SOEL parameters of an offline/ checkpoint on its meta-validation split and store
    them in the checkpoint (key "soel_fit", atomic rewrite), where bridge/export.py takes them
    from. Returns the stored dict and the rows."""
    from metaloihi.bridge import export
    from metaloihi.bridge.quantize import quantize
    from metaloihi.offline import checkpoint, config, train

    specs, params, neurons, head, meta = export.from_checkpoint(path, use_fit=False)
    state = checkpoint.load(path)
    cfg = config.from_dict(state["config"])
    q = quantize(specs, params, neurons, head_range=meta.get("head_range"))
    grid = {}
    if meta.get("head_range") is not None:     # the recipe: search around the trained rule
        step0 = float(head.soel_eta) * float(q.scales[-1])
        grid = {"steps": sorted({sf.SoelRule(*sf.eta_to_rule(step0 * f), 1, 0, 0, 1, 0).step
                                 for f in STEP_FACTORS}),
                "thetas": (1,) if head.soel_threshold < 1.5 else (1, 2),
                "targets_on": (int(head.target_on), 2 * int(head.target_on)),
                "passes": RECIPE_PASSES}
    best, rows = fit(q.net, q.scales, head, Encoding.from_dict(meta["encoding"]),
                     train.load_data(cfg), split=cfg.data.val_split, tasks=tasks,
                     queries=queries, seed=seed, progress=progress, **grid)
    state["soel_fit"] = {"soel_threshold": float(best.soel_threshold),
                         "soel_eta": float(best.soel_eta), "target_on": int(best.target_on),
                         "passes": int(best.passes),
                         "step": float(rows[0].step), "val_accuracy": float(rows[0].accuracy),
                         "split": cfg.data.val_split, "tasks": int(tasks),
                         "queries": int(queries), "seed": int(seed)}
    checkpoint.save(path, state)
    return state["soel_fit"], rows
