"""The deployment gap: the same N-way 1-shot tasks (a) in float, (b) in sim/'s bit-exact fixed
point, (c) on Lava's CPU simulator, with one prediction rule (sim.readout.predict_np: spike
counts, then the membrane at the last step, then the lowest index).

  float   the checkpoint's float network (sim/float_lif.py, float64) with the float SOEL rule on
          the head (rules/soel/float_form.py: adapt_np with soel.OnChip at the bundle's head scale, i.e. the
          chip's eta step and weight limits; head_run_np), the bundle's theta/eta/targets, shots
          one at a time in shot-major order. `float_unconstrained`: the same without OnChip,
          the rule as the interim checkpoints were trained.
  fixed   the exported bundle through onchip.session.adapt(backend="sim"): rules/engine/chip.py,
          which tests hold equal to Lava bit for bit.
  lava    the same session on Lava (backend="lava") for the first tasks; every output spike,
          head v, learnt weight and prediction must equal fixed's.

`causes=True` walks from the unconstrained float rule to fixed one deployment effect at a time
(LADDER) on the same tasks, so each effect's accuracy change and prediction flips are measured.

What it measured, with the commands (the float rule ignoring the chip's eta steps and 8-bit
weights was the software's part of the gap; soel.OnChip now applies both, `[rule] on_chip`
trains with them): docs/deployment.md, "The deployment gap".
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from metaloihi.bridge.bundle import Bundle, read_bundle
from metaloihi.rules.soel import LearntRule
from metaloihi.base.errors import UserError
from metaloihi.sim.readout import ci95
from metaloihi.offline.model import sub_params
from metaloihi.sim.readout import predict_np
from metaloihi.rules.soel import float_form as soel
from metaloihi.sim import fixed, float_lif
from metaloihi.sim.prototype import prototype_accuracy
from metaloihi.sim import loihi as L
from metaloihi.rules.soel import chip as sf
from metaloihi.sim.mapping import fixed_to_float


# --- the deployment ------------------------------------------------------------------------------
@dataclass
class Deployment:
    """A checkpoint's float network and the bundle exported from it, side by side."""
    checkpoint: str
    specs: list
    theta0: dict                 # float64 params of the float network
    neurons: list                # LifFloat per layer
    head: LearntRule             # the float rule; the bundle holds its chip form
    bundle_path: Path
    bundle: Bundle
    rule: sf.SoelRule
    dataset: object
    window: int

    @property
    def scale(self) -> float:    # head mantissa units per float weight unit
        return float(self.bundle.scales[-1])

    @property
    def head_weight(self) -> np.ndarray:
        return self.theta0[float_lif.head_key(self.specs)].numpy()

    def head_neuron(self) -> L.LifFloat:
        i = len(self.specs) - 1
        p = float_lif.layer_neuron(i, self.neurons[i], self.theta0,
                                   torch.zeros((), dtype=torch.float64))
        val = {f: float(np.ravel(np.asarray(getattr(p, f), np.float64))[0])
               if f != "bias" else np.asarray(p.bias, np.float64) for f in float_lif.NEURON_FIELDS}
        return L.LifFloat(**val)

    def encode(self, frames) -> np.ndarray:
        return self.bundle.encode(frames)


def deploy(checkpoint: str | Path, out: str | Path, theta: float | None = None,
           eta: float | None = None, target_on: int | None = None,
           target_off: int | None = None, head_range: float | None = None,
           dataset=None, passes: int | None = None) -> Deployment:
    """Export `checkpoint` to the bundle `out` (bridge.export) with the SOEL parameters given
    (None: the checkpoint's fitted ones, from the checkpoint or else from the fit-soel fit in
    the bundle beside it; without a fit, its learnt or configured ones) and load both sides."""
    from metaloihi.offline import checkpoint as ckpt
    from metaloihi.offline.config import from_dict
    from metaloihi.offline.train import load_data
    from metaloihi.studies.rule_fit import export_fitted

    specs, theta0, neurons, head, _ = export_fitted(
        checkpoint, out, head_range=head_range, theta=theta, eta=eta, target_on=target_on,
        target_off=target_off, passes=passes)
    b = read_bundle(out)
    cfg = from_dict(ckpt.load(checkpoint)["config"])
    dataset = load_data(cfg) if dataset is None else dataset
    window = b.encoding.steps_of(dataset.frame_shape[0])
    return Deployment(str(checkpoint), specs, theta0, neurons, head, Path(out), b,
                      sf.rule_of(b.head.rule, window), dataset, window)


def task_stream(dep: Deployment, split: str, n: int, ways: int, queries: int, seed: int,
                shots: int = 1):
    """n tasks (encoded, support shot-major) from default_rng(seed): (xs, ys, xq, yq)."""
    from metaloihi.datasets.tasks import sample_task
    from metaloihi.datasets.tasks import support_order
    rng = np.random.default_rng(seed)
    for _ in range(n):
        t = sample_task(dep.dataset, split, ways, shots, queries, rng)
        xs, ys = support_order(dep.encode(t.support_x), t.support_y.numpy(), ways)
        yield xs, ys, dep.encode(t.query_x), t.query_y.numpy()


# --- float sessions ------------------------------------------------------------------------------
def float_features(dep: Deployment, x: np.ndarray, deployed: bool = False) -> np.ndarray:
    """Spikes entering the head [B, T, n_in] from the float frozen layers: the checkpoint's
    (deployed=False) or the bundle's parameters run in float (deployed=True)."""
    n = len(dep.specs) - 1
    if deployed:
        specs, params, neurons = fixed_to_float(dep.bundle.frozen, dep.bundle.scales[:-1])
    else:
        specs, params, neurons = dep.specs[:n], sub_params(dep.theta0, 0, n), dep.neurons[:n]
    with torch.no_grad():
        out = float_lif.run(specs, params, neurons, torch.from_numpy(np.asarray(x, np.float64)))
    return out["spikes"][-1].numpy() != 0


def fixed_features(dep: Deployment, x: np.ndarray) -> np.ndarray:
    return fixed.run(dep.bundle.frozen, np.asarray(x, bool), layers="last")["spikes"][-1]


@dataclass
class HeadRun:
    predictions: np.ndarray      # [Q]
    counts: np.ndarray           # [Q, ways]
    v_last: np.ndarray           # [Q, ways]
    weight: np.ndarray           # learnt head weights (float units)


def float_head_session(w0: np.ndarray, pre_s: np.ndarray, ys: np.ndarray, pre_q: np.ndarray,
                       neuron: L.LifFloat, theta: float, eta: float, targets: soel.SoelTargets,
                       chip: soel.OnChip | None = None,
                       engine: tuple[sf.SoelRule, float] | None = None,
                       passes: int = 1) -> HeadRun:
    """The float head learning from the shots pre_s [S, T, n_in] (in order) with rules/soel/float_form.py's
    rule (soel.adapt_np; chip: its on-chip limits), then classifying pre_q [Q, T, n_in]
    (soel.head_run_np, sim.readout.predict_np). engine = (rule, scale): instead, the updates
    as the chip's learning engine computes them (rules.soel.chip.learn_step on the mantissas
    w * scale, on the chip's grid, with its random streams), only the head's LIF staying float:
    a ladder step."""
    if engine is None:
        w = soel.adapt_np(w0, pre_s, ys, neuron, theta, eta, targets, passes=passes, chip=chip)
    else:
        rule, scale = engine
        state = sf.new_state(np.round(np.asarray(w0, np.float64) * scale), rule)
        for x, y in zip(np.concatenate([pre_s] * passes), np.concatenate([ys] * passes)):
            counts, _ = soel.head_run_np(state.w / scale, x, neuron)
            sf.learn_step(state, x, counts, int(y))
        w = state.w / scale
    cv = [soel.head_run_np(w, q, neuron) for q in pre_q]
    counts = np.array([c for c, _ in cv]).reshape(len(pre_q), w.shape[0])
    v = np.array([v for _, v in cv]).reshape(len(pre_q), w.shape[0])
    return HeadRun(predict_np(counts, v), counts, v, w)


def float_session(dep: Deployment, xs, ys, xq, features: np.ndarray | None = None,
                  on_chip: bool = True) -> HeadRun:
    """Row (a) on one task: the float network + the float SOEL rule, with the chip's limits on
    eta and the weights (soel.OnChip at the bundle's head scale), or without (on_chip=False:
    the rule as the interim checkpoints were trained)."""
    h = float_features(dep, np.concatenate([xs, xq])) if features is None else features
    return float_head_session(dep.head_weight, h[:len(xs)], ys, h[len(xs):], dep.head_neuron(),
                              dep.head.theta, dep.head.eta,
                              soel.SoelTargets(dep.head.target_on, dep.head.target_off),
                              chip=soel.OnChip(dep.scale) if on_chip else None,
                              passes=dep.head.passes)


# --- the ladder from float to fixed --------------------------------------------------------------
LADDER = ("float, eta as learnt, no weight limits", "+ eta on the chip's step",
          "+ weight limits (= float row)", "+ frozen layers: deployed params, float dynamics",
          "+ frozen layers: integer (sim/)", "+ head theta0 and neuron deployed",
          "+ learning engine arithmetic")


def ladder_task(dep: Deployment, xs, ys, xq, float_feats: np.ndarray | None = None
                ) -> dict[str, np.ndarray]:
    """Predictions of every ladder step but the last (fixed: the integer head LIF) on one
    task, each step adding one deployment effect to the previous one."""
    x = np.concatenate([xs, xq])
    s = len(xs)
    ff = float_features(dep, x) if float_feats is None else float_feats
    feats = [ff, ff, ff, float_features(dep, x, deployed=True)] + [fixed_features(dep, x)] * 3
    head = dep.bundle.net[-1]
    scale = dep.scale
    chip = soel.OnChip(scale)
    w_dep = sf.truncate(head.weight) / scale           # Lava's first-step truncation
    nrn_dep = L.lif_to_float(head.neuron, scale * 2.0 ** head.weight_exp)
    targets = soel.SoelTargets(dep.head.target_on, dep.head.target_off)
    theta, eta = dep.head.theta, dep.head.eta
    out = {}
    for k, name in enumerate(LADDER):
        h = feats[k]
        w0, nrn = (dep.head_weight, dep.head_neuron()) if k < 5 else (w_dep, nrn_dep)
        run = float_head_session(w0, h[:s], ys, h[s:], nrn, theta,
                                 chip.eta(eta) if k == 1 else eta, targets,
                                 chip=chip if 2 <= k < 6 else None,
                                 engine=(dep.rule, scale) if k == 6 else None,
                                 passes=dep.head.passes)
        out[name] = run.predictions
    return out


# --- the whole comparison ------------------------------------------------------------------------
def _acc(values) -> dict:
    m, c = ci95(values)
    return {"acc": m, "ci95": None if np.isnan(c) else c}


def _paired(a, b, agree) -> dict:
    g = ci95(100 * (np.asarray(a) - np.asarray(b)))
    return {"gap_pp": {"fixed_minus_float": g[0], "ci95": g[1]},
            "agreement": {**dict(zip(("mean", "ci95"), ci95(agree))),
                          "min": float(np.min(agree)),
                          "per_task": [round(float(x), 4) for x in agree]}}


def deployment_gap(checkpoint: str | Path, bundle_out: str | Path, tasks: int = 100,
                   lava_tasks: int = 5, split: str = "demo", queries: int = 10, seed: int = 0,
                   ways: int = 5, theta: float | None = None, eta: float | None = None,
                   target_on: int | None = None, target_off: int | None = None,
                   head_range: float | None = None, causes: bool = False,
                   report=None, shots: int = 1, passes: int | None = None) -> dict:
    """Rows float / fixed / lava on the same tasks -> a JSON-able dict (metaloihi.report's
    GAP_FORMAT; format_table prints it). "float" is the float rule with the chip's limits
    (float_session), "float_unconstrained" the rule as the interim checkpoints were trained.
    Lava runs the first `lava_tasks` tasks; `identical_to_fixed` says whether every output
    spike, head v, learnt weight and prediction equalled fixed's."""
    from metaloihi.onchip.session import adapt, same_session
    say = report or (lambda *_: None)
    if not 0 <= lava_tasks <= tasks:
        raise UserError(f"lava_tasks={lava_tasks}; expected 0..tasks={tasks}")
    t0 = time.perf_counter()
    dep = deploy(checkpoint, bundle_out, theta, eta, target_on, target_off, head_range,
                 passes=passes)
    secs = {"deploy": time.perf_counter() - t0, "float": 0.0, "fixed": 0.0, "lava": 0.0,
            "causes": 0.0}
    acc = {"float": [], "float_unconstrained": [], "fixed": [], "lava": [],
           "prototype_features": [], "prototype_raw": []}
    agree, agree_u, identical = [], [], True
    steps = {name: [] for name in LADDER} if causes else None
    fixed_preds, labels = [], []
    for i, (xs, ys, xq, yq) in enumerate(task_stream(dep, split, tasks, ways, queries, seed,
                                                              shots)):
        t = time.perf_counter()
        h = float_features(dep, np.concatenate([xs, xq]))
        fl = float_session(dep, xs, ys, xq, features=h)
        fu = float_session(dep, xs, ys, xq, features=h, on_chip=False)
        secs["float"] += time.perf_counter() - t
        t = time.perf_counter()
        fx = adapt(dep.bundle, xs, ys, xq, yq, backend="sim")
        secs["fixed"] += time.perf_counter() - t
        # the ceilings on the same tasks: a nearest prototype (cosine) on the head's input
        # counts and on the raw encoded input (what any head rule could reach on them)
        for name, f in (("prototype_features", h.sum(1)),
                        ("prototype_raw", np.concatenate([xs, xq]).reshape(len(h), h.shape[1],
                                                                           -1).sum(1))):
            acc[name].append(prototype_accuracy(f[:len(xs)], ys, f[len(xs):], yq, ways))
        acc["float"].append(float(np.mean(fl.predictions == yq)))
        acc["float_unconstrained"].append(float(np.mean(fu.predictions == yq)))
        acc["fixed"].append(fx.accuracy)
        agree.append(float(np.mean(fl.predictions == fx.predictions)))
        agree_u.append(float(np.mean(fu.predictions == fx.predictions)))
        fixed_preds.append(fx.predictions)
        labels.append(yq)
        if causes:
            t = time.perf_counter()
            for name, pred in ladder_task(dep, xs, ys, xq, float_feats=h).items():
                steps[name].append(pred)
            secs["causes"] += time.perf_counter() - t
        if i < lava_tasks:
            t = time.perf_counter()
            lv = adapt(dep.bundle, xs, ys, xq, yq, backend="lava")
            secs["lava"] += time.perf_counter() - t
            same = same_session(lv, fx)
            identical &= same
            acc["lava"].append(lv.accuracy)
            say(f"task {i}: Lava {lv.accuracy:.2f}, identical to fixed: {same} "
                f"({lv.seconds:.0f} s)")
        if (i + 1) % 10 == 0:
            say(f"{i + 1}/{tasks} tasks: float {np.mean(acc['float']):.3f} fixed "
                f"{np.mean(acc['fixed']):.3f} agreement {np.mean(agree):.3f}")
    fa, fx_acc = np.array(acc["float"]), np.array(acc["fixed"])
    res = {
        "checkpoint": str(checkpoint), "dataset": dep.bundle.meta.get("dataset"),
        "split": split, "tasks": tasks, "lava_tasks": lava_tasks, "ways": ways, "shots": shots,
        "queries": queries, "seed": seed,
        "soel": {"theta": dep.head.theta, "eta": dep.head.eta,
                 "target_on": dep.head.target_on, "target_off": dep.head.target_off,
                 "passes": dep.head.passes, "eta_chip": soel.OnChip(dep.scale).eta(dep.head.eta),
                 "rule": dep.rule.dw_string(), "head_scale": dep.scale,
                 "head_range": L.GRID_MAX / dep.scale},
        "float": _acc(fa),
        "fixed": _acc(fx_acc),
        "lava": {**_acc(acc["lava"]), "tasks": lava_tasks,
                 "identical_to_fixed": bool(identical) if lava_tasks else None,
                 "fixed_acc_same_tasks": float(fx_acc[:lava_tasks].mean())
                 if lava_tasks else None},
        **_paired(fx_acc, fa, agree),
        "ceilings": {"prototype_features": _acc(acc["prototype_features"]),
                     "prototype_raw": _acc(acc["prototype_raw"])},
        "float_unconstrained": {**_acc(acc["float_unconstrained"]),
                                **_paired(fx_acc, acc["float_unconstrained"], agree_u)},
        "notes": "float: float network + rules/soel/float_form.py's rule with the chip's eta step and "
                 "weight limits (soel.OnChip); float_unconstrained: without them",
        "seconds": secs,
    }
    if causes:
        rows, prev = [], None
        fxp, y = np.array(fixed_preds), np.array(labels)
        for name in LADDER:
            pred = np.array(steps[name])
            m, c = ci95((pred == y).mean(1))
            rows.append({"step": name, "acc": m, "ci95": c,
                         "agree_prev": None if prev is None else float((pred == prev).mean()),
                         "agree_fixed": float((pred == fxp).mean())})
            prev = pred
        rows.append({"step": "+ integer head LIF (= fixed, sim/ == Lava)",
                     "acc": res["fixed"]["acc"], "ci95": res["fixed"]["ci95"],
                     "agree_prev": float((fxp == prev).mean()), "agree_fixed": 1.0})
        res["causes"] = rows
    return res


def _pm(r: dict) -> str:
    ci = r.get("ci95")
    return f"{100 * r['acc']:5.1f} +- " + ("n/a" if ci is None else f"{100 * ci:.1f}%")


def format_table(res: dict) -> str:
    s = res["soel"]
    lines = [f"{res['checkpoint']}: {res['ways']}-way {res.get('shots', 1)}-shot, split "
             f"{res['split']}, {res['queries']} queries/class, seed {res['seed']}",
             f"SOEL theta {s['theta']:.4g}, eta {s['eta']:.4g} (chip step {s['eta_chip']:.4g}),"
             f" targets {s['target_on']}/{s['target_off']}, {s.get('passes', 1)} pass(es) over "
             f"the shots; head grid edge {s['head_range']:.4g}"
             f" float units; rule dw = {s['rule']}",
             f"{'row':<46} {'tasks':>5} {'accuracy':>14} {'vs float':>9} {'same pred. as fixed':>20}"]
    fl = res["float"]["acc"]
    u = res["float_unconstrained"]
    rows = [("float (float SOEL, chip's eta step + limits)", res["tasks"], res["float"],
             res["agreement"]["mean"]),
            ("fixed (sim/, bit-exact)", res["tasks"], res["fixed"], 1.0),
            ("Lava (CPU simulator, == fixed)", res["lava_tasks"], res["lava"], 1.0),
            ("float, eta as learnt, no weight limits", res["tasks"], u, u["agreement"]["mean"])]
    for label, n, r, ag in rows:
        if not n:
            continue
        gap = "" if r is res["float"] else f"{100 * (r['acc'] - fl):+.1f} pp"
        lines.append(f"{label:<46} {n:>5} {_pm(r):>14} {gap:>9} {100 * ag:>19.1f}%")
    for key, label in (("prototype_features", "ceiling: prototype (cos) on the head's input"),
                       ("prototype_raw", "ceiling: prototype (cos) on the raw input")):
        if key in res.get("ceilings", {}):
            r = res["ceilings"][key]
            lines.append(f"{label:<46} {res['tasks']:>5} {_pm(r):>14} "
                         f"{100 * (r['acc'] - fl):+8.1f} pp")
    g, a = res["gap_pp"], res["agreement"]
    lines.append(f"paired gap fixed - float: {g['fixed_minus_float']:+.1f} +- {g['ci95']:.1f} pp"
                 f" over {res['tasks']} tasks; identical predictions per task {100 * a['mean']:.1f}"
                 f" +- {100 * a['ci95']:.1f}% (min {100 * a['min']:.0f}%); without the limits: "
                 f"{u['gap_pp']['fixed_minus_float']:+.1f} +- {u['gap_pp']['ci95']:.1f} pp")
    if res["lava_tasks"]:
        lines.append(f"Lava == fixed on all {res['lava_tasks']} tasks (every output spike, v, "
                     f"learnt weight, prediction): {res['lava']['identical_to_fixed']}; fixed "
                     f"on those tasks {100 * res['lava']['fixed_acc_same_tasks']:.1f}%")
    if "causes" in res:
        lines.append(f"{'ladder: each step adds one deployment effect':<50} {'accuracy':>14} "
                     f"{'same as prev':>12} {'same as fixed':>13}")
        for r in res["causes"]:
            prev = "" if r["agree_prev"] is None else f"{100 * r['agree_prev']:.1f}%"
            lines.append(f"{r['step']:<50} {_pm(r):>14} {prev:>12} "
                         f"{100 * r['agree_fixed']:>12.1f}%")
    secs = res["seconds"]
    lines.append("seconds: " + ", ".join(f"{k} {v:.1f}" for k, v in secs.items() if v))
    return "\n".join(lines)
