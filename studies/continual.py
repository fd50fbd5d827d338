"""Continual learning of new classes one at a time on the deployed head, measured over many class
orders, beside two references on the same tasks and the same frozen features:

  deployed   the bundle's on-chip rule, bit for bit what onchip.continual's session computes
             (a test holds `deployed_order` equal to it), from a head whose rows start silent
  prototype  nearest prototype (cosine, sim/prototype.py) on the head's input spike counts,
             prototypes = the shots of the classes seen so far: the ceiling of any head rule
  float      rules/soel/float_form.py's float rule (adapt_np with the chip's eta step and weight limits,
             soel.OnChip) on the same features and deployed head neuron, class by class

Speed: the frozen network's output spikes are computed once per sample (the expensive part), and
the head runs on them, with the chip's one learning step (rules/engine/chip.py: present, and
present_frozen for a query block: learning frozen, the weights stay equal bit for bit, the
learning engine's random streams advance by as many samples).

Rule variants (`VARIANTS`) are values of the chip rule's label_only field (rules/soel:
ChipRule): the error path sends the third factor n to every row ("chip", as exported) or to the
labelled row only ("label_only"); the learning engine, traces, 8-bit weights and the mant 2^exp
step are the chip's either way, and the Lava graph runs both bit for bit.
"""
from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from metaloihi.base.atomic import atomic_path
from metaloihi.base.errors import UserError
from metaloihi.bridge.bundle import Bundle, as_bundle
from metaloihi.onchip.continual import check_head, session_rule
from metaloihi.rules.soel import float_form as soel
from metaloihi.sim import fixed, float_lif
from metaloihi.sim import loihi as L
from metaloihi.rules.soel import chip as sf
from metaloihi.sim.arch import DenseSpec
from metaloihi.sim.prototype import prototype_accuracy
from metaloihi.sim.readout import ci95, predict_np

STEPS_REPORTED = (5, 10, 20, 36, 50)


# --- the rule's variants: the chip rule's label_only field (rules/soel: ChipRule) --------------
VARIANTS = {"chip": False, "label_only": True}


@dataclass
class OrderRun:
    accuracy: np.ndarray          # [steps]
    per_class: np.ndarray         # [steps, classes]
    weights: np.ndarray | None = None   # final head weights


def deployed_order(head, rule: sf.SoelRule, shots: list, queries: list, passes: int
                   ) -> OrderRun:
    """The continual session (onchip.continual's order) on frozen features: shots[c] / queries[c]
    [N, T, n_in] bool; the chip's step (rules.soel.chip.present) on each shot, the queries of the
    classes seen so far as one batch (present_frozen); the third factor is the error path's
    (rule.label_only included)."""
    C = len(shots)
    state = sf.new_state(head.weight, rule)
    qx = np.concatenate(queries)
    qy = np.repeat(np.arange(C), [len(q) for q in queries])
    acc, per = np.full(C, np.nan), np.full((C, C), np.nan)
    for k in range(C):
        for pre in list(shots[k]) * passes:
            sf.present(state, head, pre, k)
        m = int(np.sum(qy <= k))
        out, v = sf.present_frozen(state, head, qx[:m])
        _score(predict_np(out.sum(1)[:, :k + 1], v[:, :k + 1]), qy[:m], k, acc, per)
    return OrderRun(acc, per, state.w)


def _score(pred, y, k, acc, per) -> None:
    acc[k] = np.mean(pred == y)
    for c in range(k + 1):
        per[k, c] = np.mean(pred[y == c] == c)


def prototype_order(shots: list, queries: list) -> OrderRun:
    """Nearest prototype (cosine) on the spike counts, prototypes of the classes seen so far."""
    C = len(shots)
    cs = [s.sum(1) for s in shots]
    cq = [q.sum(1) for q in queries]
    acc, per = np.full(C, np.nan), np.full((C, C), np.nan)
    for k in range(C):
        xs = np.concatenate(cs[:k + 1])
        ys = np.repeat(np.arange(k + 1), [len(s) for s in cs[:k + 1]])
        xq = np.concatenate(cq[:k + 1])
        yq = np.repeat(np.arange(k + 1), [len(q) for q in cq[:k + 1]])
        acc[k] = prototype_accuracy(xs, ys, xq, yq, k + 1)
        for c in range(k + 1):
            per[k, c] = prototype_accuracy(xs, ys, xq[yq == c], yq[yq == c], k + 1)
    return OrderRun(acc, per)


def float_order(head, scale: float, rule: sf.SoelRule, shots: list, queries: list,
                passes: int) -> OrderRun:
    """rules/soel/float_form.py's float rule, class by class (adapt_np continues from the weights it is
    given), the chip's eta step and weight limits (soel.OnChip), the deployed head neuron in
    float; queries run with sim/float_lif (the same LIF as soel.head_run_np)."""
    C = len(shots)
    chip = soel.OnChip(scale)
    w = sf.truncate(head.weight) / scale
    nrn = L.lif_to_float(head.neuron, scale * 2.0 ** head.weight_exp)
    targets = soel.SoelTargets(rule.target_on, rule.target_off)
    qx = np.concatenate(queries)
    qy = np.repeat(np.arange(C), [len(q) for q in queries])
    spec = [DenseSpec(w.shape[1], w.shape[0])]
    acc, per = np.full(C, np.nan), np.full((C, C), np.nan)
    for k in range(C):
        w = soel.adapt_np(w, shots[k], np.full(len(shots[k]), k), nrn, rule.theta,
                          rule.step / scale, targets, passes=passes, chip=chip)
        m = int(np.sum(qy <= k))
        with torch.no_grad():
            out = float_lif.run(spec, {float_lif.weight_key(0): torch.from_numpy(w)}, [nrn],
                                torch.from_numpy(qx[:m].astype(np.float64)))
        pred = predict_np(out["counts"].numpy()[:, :k + 1], out["v_last"].numpy()[:, :k + 1])
        _score(pred, qy[:m], k, acc, per)
    return OrderRun(acc, per, w)


# --- the measurement -----------------------------------------------------------------------------
@dataclass
class Pool:
    """The frozen network's output spikes of every sample of the chosen classes, once."""
    features: list                # per class, bool [n_samples, T, n_in]
    class_ids: np.ndarray         # data set class id of each pool class
    names: list


def feature_pool(b: Bundle, dataset, splits=("test", "val"), per_class: int | None = None,
                 report=None) -> Pool:
    ids = np.concatenate([dataset.split_classes(s) for s in splits])
    feats = []
    for i, c in enumerate(ids):
        idx = dataset.class_indices(int(c))[:per_class]
        x = b.encode(dataset.frames(idx))
        feats.append(fixed.run(b.frozen, x, layers="last")["spikes"][-1])
        if report:
            report(i + 1, len(ids))
    return Pool(feats, ids, [dataset.class_names[int(c)] for c in ids])


def draw(pool: Pool, classes: int, shots: int, queries: int, rng: np.random.Generator):
    """One class order: `classes` pool classes in random order, each with distinct shot and
    query samples -> (pool class indices, shots per class, queries per class)."""
    order = rng.choice(len(pool.features), classes, replace=False)
    xs, xq = [], []
    for c in order:
        f = pool.features[c]
        if len(f) < shots + queries:
            raise UserError(f"class {pool.names[c]} has {len(f)} samples; shots + queries = "
                            f"{shots + queries}")
        pick = rng.choice(len(f), shots + queries, replace=False)
        xs.append(f[pick[:shots]])
        xq.append(f[pick[shots:]])
    return order, xs, xq


def check_splits(b: Bundle, splits) -> None:
    """Continual learning measures classes unseen in meta-training: one or more splits, never
    the bundle's training split (UserError naming them)."""
    seen = (b.meta.get("splits") or {}).get("train", "train")
    if not splits or seen in splits:
        raise UserError(f"--splits {','.join(splits)!r}: give class splits unseen in "
                        f"meta-training, comma-separated (e.g. test,val; not the training "
                        f"split {seen!r})")


def continual_study(bundle: Bundle | str | Path, dataset, classes: int = 36, orders: int = 100,
                    shots: int = 1, queries: int = 10, seed: int = 0,
                    splits=("test", "val"), variants=("chip",), passes: int | None = None,
                    references: bool = True, progress: bool = True) -> dict:
    """The measurement: `orders` random class orders of `classes` classes from `splits`, K
    shots each, `queries` queries per class after every arrival -> a JSON-able dict."""
    from tqdm import tqdm
    b = as_bundle(bundle)
    check_head(b, classes)
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown:
        raise UserError(f"rule variants {unknown}; expected some of {sorted(VARIANTS)}")
    check_splits(b, splits)
    t0 = time.perf_counter()
    bar = tqdm(total=None, desc="frozen features", unit="class", disable=not progress,
               dynamic_ncols=True)

    def tick(i, n):
        bar.total = n
        bar.update(1)
    pool = feature_pool(b, dataset, splits, report=tick)
    bar.close()
    if classes > len(pool.features):
        raise UserError(f"classes={classes} but splits {list(splits)} of {dataset.name!r} "
                        f"have {len(pool.features)}")
    t_feat = time.perf_counter() - t0
    head = b.net[-1]
    T = pool.features[0].shape[1]
    rule = session_rule(b, T)
    passes = b.head.passes if passes is None else int(passes)
    rows = {f"deployed_{v}": [] for v in variants}
    if references:
        rows.update(prototype=[], float=[])
    rng = np.random.default_rng(seed)
    secs = {k: 0.0 for k in rows}
    for _ in tqdm(range(orders), desc="class orders", unit="order", disable=not progress,
                  dynamic_ncols=True):
        _, xs, xq = draw(pool, classes, shots, queries, rng)
        for v in variants:
            t = time.perf_counter()
            rows[f"deployed_{v}"].append(deployed_order(
                head, dataclasses.replace(rule, label_only=VARIANTS[v]), xs, xq, passes))
            secs[f"deployed_{v}"] += time.perf_counter() - t
        if references:
            t = time.perf_counter()
            rows["prototype"].append(prototype_order(xs, xq))
            secs["prototype"] += time.perf_counter() - t
            t = time.perf_counter()
            rows["float"].append(float_order(head, b.scales[-1], rule, xs, xq, passes))
            secs["float"] += time.perf_counter() - t
    return summarise(rows, {
        "bundle": str(b.path or ""), "dataset": dataset.name, "splits": list(splits),
        "classes": classes, "orders": orders, "shots": shots, "queries": queries, "seed": seed,
        "passes": passes, "rule": {"dw": rule.dw_string(), "theta": rule.theta,
                                   "target_on": rule.target_on, "target_off": rule.target_off,
                                   "step_mant": rule.step, "window": rule.window},
        "seconds": {"features": t_feat, **secs}})


def summarise(rows: dict, info: dict) -> dict:
    """Mean +- 95% CI over orders of the accuracy after each step, the first five classes'
    accuracy after each step, the forgetting between step 5 and step 20 (or the last), and the
    gap to the prototype ceiling at every step."""
    C = info["classes"]
    first = min(5, C)
    late = min(20, C)
    out = {**info, "rows": {}}
    for name, runs in rows.items():
        acc = np.array([r.accuracy for r in runs])                 # [orders, steps]
        f5 = np.array([np.nanmean(r.per_class[:, :first], 1) for r in runs])
        forget = 100 * (f5[:, first - 1] - f5[:, late - 1])
        curve = [ci95(acc[:, k]) for k in range(C)]
        out["rows"][name] = {
            "accuracy": [m for m, _ in curve], "ci95": [c for _, c in curve],
            "first5": [float(v) for v in f5.mean(0)],
            "forgetting_pp": {"from_step": first, "to_step": late,
                              **dict(zip(("mean", "ci95"), ci95(forget)))},
            "at": {str(k): curve[k - 1][0] for k in STEPS_REPORTED if k <= C}}
    if "prototype" in rows:
        proto = np.array([r.accuracy for r in rows["prototype"]])
        for name, runs in rows.items():
            if name == "prototype":
                continue
            gap = 100 * (np.array([r.accuracy for r in runs]) - proto)
            g = [ci95(gap[:, k]) for k in range(C)]
            out["rows"][name]["gap_to_prototype_pp"] = [m for m, _ in g]
            out["rows"][name]["worst_gap_pp"] = float(min(m for m, _ in g))
    return out


def format_table(res: dict) -> str:
    steps = [k for k in STEPS_REPORTED if k <= res["classes"]]
    lines = [f"continual learning: {res['dataset']} {'+'.join(res['splits'])} classes, "
             f"{res['classes']} classes one at a time, {res['shots']} shot(s) x {res['passes']} "
             f"pass(es) each, {res['queries']} queries/class, {res['orders']} orders (seed "
             f"{res['seed']}); rule dw = {res['rule']['dw']}, theta {res['rule']['theta']:g}, "
             f"targets {res['rule']['target_on']}/{res['rule']['target_off']}",
             f"{'row':<22}" + "".join(f"{'acc@' + str(k):>14}" for k in steps)
             + f"{'worst gap':>11}{'forget 5->' + str(min(20, res['classes'])):>16}"]
    for name, r in res["rows"].items():
        cells = "".join(f"{100 * r['accuracy'][k - 1]:>8.1f}+-{100 * (r['ci95'][k - 1] or 0):<4.1f}"
                        for k in steps)
        gap = f"{r['worst_gap_pp']:+.1f} pp" if "worst_gap_pp" in r else ""
        f = r["forgetting_pp"]
        lines.append(f"{name:<22}{cells}{gap:>11}{f['mean']:>10.1f}+-{f['ci95']:.1f} pp")
    return "\n".join(lines)


def write_json(res: dict, path: str | Path) -> Path:
    import json
    with atomic_path(path, "JSON") as tmp:
        Path(tmp).write_text(json.dumps(res, indent=1))
    return Path(path)
