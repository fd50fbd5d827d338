"""`metaloihi demo`: five-way one-shot gesture learning on chip, end to end.

  the shipped bundle (checkpoints/demo/bundle.h5: theta0.pt exported to Loihi 2 fixed point,
  netx layout, with its fitted rule; what made theta0 is its own record, printed; --checkpoint
  or --retrain export another) -> validated -> per task, one example of
  each of five gestures never seen in training, one at a time, the label driving the error
  path, the head learning on chip -> learning frozen -> held-out examples classified.

Where each number comes from (every row of the table says it): the first `tasks` tasks run on
the chosen backend (Lava's CPU simulator by default; ~2.5 min a task on 2 cores, nearly all of
it Lava's Conv model) and each is checked against sim/ bit for bit; the same bundle on
`sim_tasks` tasks of the same stream in sim/ (the bit-exact model: the accuracy with its 95%
CI), beside the baselines on those tasks: without adaptation (the head as exported), random
theta0 + the same rule (what training adds), and the nearest-prototype ceilings on theta0's
features and on the raw input. Written: a PNG (shots, confusion, weight change, the output
raster over every pass) and a JSON of every number with the time breakdown.
"""
from __future__ import annotations

import json
import time
from importlib import resources
from pathlib import Path

import numpy as np
from rich import box
from rich.console import Console
from rich.live import Live
from rich.table import Table

from metaloihi.base.atomic import write_bytes
from metaloihi.base.errors import UserError

console = Console()
REPO = Path(__file__).resolve().parent.parent
# package data of metaloihi.checkpoints (checkpoints/ in a checkout), so an installed demo finds it
SHIPPED = Path(str(resources.files("metaloihi.checkpoints") / "demo" / "theta0.pt"))
# theta0.pt exported with its fitted rule (checkpoints/demo/README.md; a test holds it equal to
# `metaloihi export --checkpoint theta0.pt`): what the demo deploys
SHIPPED_BUNDLE = SHIPPED.with_name("bundle.h5")
WAYS, SHOTS = 5, 1
FIT_TASKS = 20                   # meta-validation tasks per grid point of the SOEL fit
RETRAIN_SET: dict = {}           # config overrides for --retrain (tests: a tiny budget)
RETRAIN_STAGE2: dict = {}        # the same for its stage-2 candidate
STAGE2_VAL_TASKS = 150           # meta-val tasks at stage 2's start and end (printed)
WHERE = {"sim": "sim/", "lava": "Lava (Loihi2SimCfg)", "loihi2": "Loihi 2 (Loihi2HwCfg)"}


def _retrain(out: Path, seed: int, ds) -> Path:
    """The shipped recipe (checkpoints/demo/README.md), on iteration budgets so a retrain
    redoes the same run: stage 1 of demo_long, its rule fitted into the bundle beside it, then
    stage 2 with that deployed session inside (the shipped candidate's last iteration)."""
    import dataclasses
    from metaloihi.offline import checkpoint, config, train
    from metaloihi.studies import stage2_schedule as ss
    from metaloihi.studies.rule_fit import export_fitted, fit_bundle
    cfg = config.load("demo_long", {"train.seed": seed, **RETRAIN_SET})
    console.print(f"[bold]retraining[/] theta0: metaloihi train --config demo_long --out {out} "
                  f"then stage 2 ({ss.SHIPPED}), the shipped recipe: ~50 CPU-min on one core")
    train.train(cfg, out)
    body = out / "best.pt"
    with console.status("fitting the on-chip SOEL step of the stage-1 body (sim/)"):
        export_fitted(body, out / "bundle.h5")       # beside the body: deployed_start reads it
        fit_bundle(out / "bundle.h5", tasks=FIT_TASKS, dataset=ds)
    c = dataclasses.replace(ss.CANDIDATES[ss.SHIPPED], **RETRAIN_STAGE2)
    start = ss.deployed_start(str(body))
    res = ss.run_candidate(start, c, val_every=c.iterations,
                           val_tasks=STAGE2_VAL_TASKS, queries=5, seed=seed,
                           log=console.print)
    theta0 = out / "stage2" / "theta0.pt"
    theta0.parent.mkdir(exist_ok=True)
    checkpoint.save(theta0, ss.candidate_state(start, res["_last_meta"], res["candidate"],
                                               c.iterations))
    return theta0


def _baseline_bundle(ckpt: Path, out: Path, bundle) -> Path:
    """The same architecture (ckpt's config) with a calibrated random theta0 (no training) and
    the bundle's on-chip rule (rules.soel.ChipRule: the same step in mantissa units), exported
    like the real one."""
    from metaloihi.bridge.bundle import default_meta
    from metaloihi.bridge.export import export_bundle
    from metaloihi.offline import checkpoint, config, maml, train
    cfg = config.from_dict(checkpoint.load(ckpt)["config"])
    s = train.setup(cfg)
    theta0 = {k: v.detach().double() for k, v in maml.theta0_of(train.initial_meta(s)).items()}
    keep = ("split", "dataset", "splits", "encoding", "head_range")
    meta = {**default_meta(), **{k: bundle.meta[k] for k in keep if k in bundle.meta},
            "source": "calibrated random theta0 (no training)",
            "made_by": {"label": "random", "summary": "calibrated random theta0 (no training)"}}
    path, _ = export_bundle(out, s.specs, theta0, s.neurons, rule=bundle.head.rule, meta=meta)
    return path


class LiveView:
    """What the chip is doing, while Lava runs: task, shot being learnt, its output spikes, the
    error it sent and the weight update it caused; then the queries. Fits 80 columns."""

    def __init__(self, names: list[str], n_tasks: int, passes: int):
        self.names, self.n_tasks, self.passes = names, n_tasks, passes
        self.rows: list[tuple] = []
        self.status = ""
        self.live = Live(self._render(), console=console, refresh_per_second=4, transient=False)

    def _render(self) -> Table:
        t = Table(title=self.status or "on-chip learning", box=box.SIMPLE_HEAD, expand=False,
                  padding=(0, 1))
        for col in ("task", "pass", "class learnt", "out spikes", "error n", "dw: #, sum"):
            t.add_column(col, no_wrap=True, overflow="fold")
        for r in self.rows[-6:]:
            t.add_row(*map(str, r))
        return t

    def shot(self, task: int, k: int, label: int, counts, n, dw) -> None:
        self.rows.append((f"{task + 1}/{self.n_tasks}", f"{k // WAYS + 1}/{self.passes}",
                          self.names[label], " ".join(map(str, counts)),
                          " ".join(f"{v:+d}" for v in n),
                          f"{int((dw != 0).sum())}, {int(np.abs(dw).sum())}"))
        self.live.update(self._render())

    def say(self, text: str) -> None:
        self.status = text
        self.live.update(self._render())


def sim_statistics(bundle, random_bundle, ds, tasks) -> dict:
    """The rows computed in sim/ over every task of the stream: the bundle, no adaptation,
    random theta0 + the same rule, the prototype ceilings (theta0's features, raw input).
    Each distinct sample is encoded and run through the frozen layers once (every sample
    starts from rest), then only the head runs per task."""
    from metaloihi.sim import fixed
    from metaloihi.sim.prototype import prototype_accuracy
    from metaloihi.sim.readout import ci95
    from metaloihi.studies.ablation import encoded, head_session
    t0 = time.perf_counter()
    uniq = tasks.distinct
    s_at, q_at = np.searchsorted(uniq, tasks.support), np.searchsorted(uniq, tasks.query)
    x = np.concatenate([xb for _, xb in encoded(bundle, ds, uniq)])
    raw = x.reshape(len(x), x.shape[1], -1).sum(1).astype(np.float64)
    feats, rfeats = (np.concatenate([fixed.run(b.frozen, x[lo:lo + 64], layers="last")
                                     ["spikes"][-1] for lo in range(0, len(x), 64)])
                     for b in (bundle, random_bundle))
    counts = feats.sum(1).astype(np.float64)
    rows: dict[str, list] = {k: [] for k in ("deployed", "no_adaptation", "random_theta0",
                                             "prototype_features", "prototype_raw")}
    for i in range(len(tasks)):
        ys, yq, si, qi = tasks.support_y[i], tasks.query_y[i], s_at[i], q_at[i]
        rows["deployed"].append(np.mean(head_session(bundle, feats[si], ys, feats[qi]) == yq))
        rows["no_adaptation"].append(np.mean(
            head_session(bundle, feats[si][:0], ys[:0], feats[qi]) == yq))
        rows["random_theta0"].append(np.mean(
            head_session(random_bundle, rfeats[si], ys, rfeats[qi]) == yq))
        rows["prototype_features"].append(prototype_accuracy(counts[si], ys, counts[qi], yq, WAYS))
        rows["prototype_raw"].append(prototype_accuracy(raw[si], ys, raw[qi], yq, WAYS))
    out = {}
    for k, v in rows.items():
        m, c = ci95([float(a) for a in v])
        out[k] = {"acc": m, "ci95": None if np.isnan(c) else c,
                  "per_task_first": [float(a) for a in v[:10]]}
    out["seconds"] = time.perf_counter() - t0
    return out


def run_demo(seed: int = 0, tasks: int = 1, queries: int = 10, out: str | Path = "runs/demo",
             checkpoint: str | Path | None = None, retrain: bool = False,
             backend: str = "lava", sim_tasks: int = 600) -> dict:
    """The demo; returns every number it prints (tests read them)."""
    from metaloihi.bridge.bundle import read_bundle
    from metaloihi.bridge.validate import validate_bundle
    from metaloihi.datasets import load_dataset
    from metaloihi.onchip.session import adapt, same_session
    from metaloihi.plots import demo_figure
    from metaloihi.rules.soel.chip import truncate
    from metaloihi.sim.readout import ci95
    from metaloihi.studies.ablation import draw_tasks
    from metaloihi.studies.rule_fit import export_fitted, fit_bundle

    if tasks < 1 or queries < 1 or sim_tasks < tasks:
        raise UserError(f"--tasks, --queries must be >= 1 and --sim-tasks >= --tasks, got "
                        f"{tasks}, {queries} and {sim_tasks}")
    from metaloihi.bridge.target import check_target, run_config
    if check_target(backend) != "sim":
        run_config(backend)        # Lava (and a board for loihi2) or a clear error, up front
    t_start = time.perf_counter()
    timings: dict = {}
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    ckpt = Path(checkpoint) if checkpoint else SHIPPED
    if not retrain and not ckpt.exists():
        raise UserError(f"checkpoint {str(ckpt)!r} not found (the shipped one is "
                        f"{SHIPPED.relative_to(REPO)}; --retrain makes a new one)")

    t = time.perf_counter()
    with console.status("embedded DVS gestures (generated on first use, ~15 s, then cached)"):
        ds = load_dataset("gestures", seed=0)
    if retrain:
        t_train = time.perf_counter()
        ckpt = _retrain(out / "train", seed, ds)
        timings["retrain_s"] = time.perf_counter() - t_train
        t += timings["retrain_s"]            # setup_s stays the setup alone
    bundle_path = SHIPPED_BUNDLE
    if checkpoint or retrain:
        # with the fit beside the checkpoint where one is (the shipped theta0: its bundle's)
        with console.status(f"exporting {ckpt.name} to a Loihi 2 bundle"):
            bundle_path = out / "bundle.h5"
            export_fitted(ckpt, bundle_path)
    if retrain:
        with console.status("fitting the on-chip SOEL step on meta-validation tasks (sim/)"):
            fit_bundle(bundle_path, tasks=FIT_TASKS, dataset=ds)
    console.print(validate_bundle(bundle_path))
    bundle = read_bundle(bundle_path)
    head = bundle.head.rule
    fit = bundle.meta.get("rule_fit") or {}
    made = (bundle.meta.get("made_by") or {}).get("summary", "not recorded")
    stream = draw_tasks(ds, "demo", sim_tasks, WAYS, SHOTS, queries, seed)
    names = [ds.class_names[c] for c in ds.split_classes("demo")]
    timings["setup_s"] = time.perf_counter() - t
    shown = [p.relative_to(REPO) if p.is_relative_to(REPO) else p for p in (bundle_path, ckpt)]
    console.print(f"bundle: {shown[0]}, theta0 from {shown[1]}, made by {made}")
    console.print(f"on-chip rule: SOEL, theta {head.theta:g} spikes, target "
                  f"{head.target_on}/{head.target_off} spikes, {head.passes} passes"
                  + (f", step fitted on meta-val ({fit.get('val_accuracy', 0):.1%})" if fit
                     else ""))
    console.print(f"{tasks} task(s) on {WHERE[backend]}, {sim_tasks} in sim/: 5-way 1-shot on "
                  f"held-out gestures (never seen in training), {queries} queries per class")

    per_task, identical, chip_s = [], [], []
    last = None
    view = LiveView(names, tasks, head.passes)
    with view.live:
        for i in range(tasks):
            xs, xq = (bundle.encode(np.ascontiguousarray(ds.frames(part)))
                      for part in (stream.support[i], stream.query[i]))
            ys, yq = stream.support_y[i], stream.query_y[i]
            # label c is the class of shot c (support is shot-major)
            task_names = [ds.class_names[int(ds.labels[j])] for j in stream.support[i][:WAYS]]
            view.names = task_names
            w0 = truncate(bundle.net[-1].weight)  # the weights as the chip starts learning
            prev = {"w": w0}

            def on_sample(k, counts, n, w, _i=i, _ys=ys, _yq=yq, _prev=prev):
                nshots = len(_ys) * head.passes
                if k < nshots:
                    view.shot(_i, k, int(_ys[k % len(_ys)]), counts, n, w - _prev["w"])
                    _prev["w"] = w
                elif k == nshots:
                    view.say(f"task {_i + 1}/{tasks}: learning frozen, classifying "
                             f"{len(_yq)} queries")

            view.say(f"task {i + 1}/{tasks}: learning {WAYS} gestures, one shot each")
            res = adapt(bundle, xs, ys, xq, yq, backend=backend, on_sample=on_sample)
            ref = adapt(bundle, xs, ys, xq, yq, backend="sim") if backend != "sim" else res
            same = same_session(res, ref)
            per_task.append(res.accuracy)
            identical.append(same)
            chip_s.append({"seconds": res.seconds, **(res.timings or {})})
            view.say(f"task {i + 1}/{tasks}: {backend} {res.accuracy:.0%}, sim/ "
                     f"{ref.accuracy:.0%} ({'identical' if same else 'DIFFERENT'}), "
                     f"{res.seconds:.0f} s")
            last = (task_names, i, ys, yq, res, w0)
    timings["on_chip"] = chip_s

    with console.status(f"sim/: the same bundle and the baselines on {sim_tasks} tasks"):
        t = time.perf_counter()
        rand = read_bundle(_baseline_bundle(ckpt, out / "bundle_random_theta0.h5", bundle))
        timings["random_theta0_export_s"] = time.perf_counter() - t
        stats = sim_statistics(bundle, rand, ds, stream)
        timings["sim_tasks_s"] = stats.pop("seconds")

    task_names, i, ys, yq, res, w0 = last
    conf = np.zeros((WAYS, WAYS), np.int64)
    np.add.at(conf, (yq, res.predictions), 1)
    png = out / f"demo_seed{seed}.png"
    shots_frames = np.ascontiguousarray(ds.frames(stream.support[i]))
    demo_figure(png, shots_frames, ys, conf, w0, res.weights,
                res.head_spikes[:len(ys) * head.passes], task_names,
                title=f"metaloihi demo: 5-way 1-shot learnt on chip ({WHERE[backend]}), task "
                      f"{i + 1} of {tasks}, seed {seed}: {res.accuracy:.0%}")
    acc, ci = ci95(per_task)
    timings["total_s"] = time.perf_counter() - t_start
    result = {"backend": backend, "tasks": tasks, "sim_tasks": sim_tasks,
              "queries_per_class": queries, "seed": seed, "classes": names,
              "checkpoint": str(ckpt), "made_by": bundle.meta.get("made_by"),
              "bundle": str(bundle_path),
              "on_chip": {"where": WHERE[backend], "accuracy": acc,
                          "ci95": None if np.isnan(ci) else ci, "per_task": per_task,
                          "identical_to_sim": all(identical)},
              "sim": stats, "chance": 1.0 / WAYS,
              "rule": {"theta": head.theta, "target_on": head.target_on, "passes": head.passes,
                       "dw": res.rule.dw_string()},
              "timings": timings, "png": str(png), "seconds": timings["total_s"]}
    write_bytes(out / f"demo_seed{seed}.json", json.dumps(result, indent=1).encode(),
                "demo results")
    console.print(result_table(result))
    console.print(f"wrote {png} and {out / f'demo_seed{seed}.json'}; "
                  f"{result['seconds']:.0f} s in all")
    return result


def result_table(r: dict) -> Table:
    """The demo's closing table (80 columns): what each row is, where it ran, its accuracy."""
    def pm(row: dict) -> str:
        return f"{row['acc']:.1%}" + (f" +- {row['ci95']:.1%}" if row.get("ci95") else "")
    chip, sim, n = r["on_chip"], r["sim"], r["sim_tasks"]
    t = Table(title="five-way one-shot on held-out gestures", box=box.SIMPLE_HEAD,
              padding=(0, 1))
    t.add_column("", no_wrap=True)
    t.add_column("where", no_wrap=True)
    t.add_column("accuracy", justify="right", no_wrap=True)
    where = chip["where"].split(" ")[0]
    t.add_row("learnt on chip (SOEL head)", f"{where}, {r['tasks']} task" + "s" * (r['tasks'] > 1),
              f"{chip['accuracy']:.1%}")
    if r["backend"] != "sim":
        t.add_row("  the same tasks in sim/", "sim/", "identical" if chip["identical_to_sim"]
                  else "NOT IDENTICAL")
    t.add_row("the same bundle", f"sim/, {n} tasks", pm(sim["deployed"]))
    t.add_row("no adaptation (head as exported)", f"sim/, {n} tasks", pm(sim["no_adaptation"]))
    t.add_row("random theta0 + same rule (untrained)", f"sim/, {n} tasks",
              pm(sim["random_theta0"]))
    t.add_row("prototype on theta0's features", f"sim/, {n} tasks", pm(sim["prototype_features"]))
    t.add_row("prototype on the raw input", f"sim/, {n} tasks", pm(sim["prototype_raw"]))
    t.add_row("chance", "", f"{r['chance']:.0%}")
    return t
