"""`metaloihi demo`: five-way one-shot gesture learning on Lava, end to end.

  shipped theta0 (checkpoints/demo/theta0.pt, `metaloihi train --config demo`, log beside it;
  --retrain redoes it) -> bundle (bridge/: Loihi 2 fixed point, netx layout, validated) ->
  Lava's CPU simulator (Loihi2SimCfg): per task, one example of each of five gestures never seen
  in meta-training, one at a time, the label driving the error path, SOEL learning the head on
  chip -> learning frozen -> held-out examples of the five classified.

Printed: accuracy on Lava per task and mean +- 95% CI; sim/ on the same tasks (bit-exact: same
spikes, same learnt weights, same predictions, checked); the same network without adaptation
(theta0's uniform head: chance) and without meta-training (a calibrated random theta0 with the
same on-chip rule), both in sim/. Written: a PNG per run (shots, confusion, weight changes,
output raster while learning) and a JSON of every number.
"""
from __future__ import annotations

import json
import time
from importlib import resources
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.live import Live
from rich.table import Table

from metaloihi.base.atomic import write_bytes
from metaloihi.base.errors import UserError

console = Console()
REPO = Path(__file__).resolve().parent.parent
# package data of metaloihi.checkpoints (checkpoints/ in a checkout), so an installed demo finds it
SHIPPED = Path(str(resources.files("metaloihi.checkpoints") / "demo" / "theta0.pt"))
WAYS, SHOTS = 5, 1
FIT_TASKS = 20                   # meta-validation tasks per grid point of the SOEL fit
RETRAIN_SET: dict = {}           # config overrides for --retrain (tests: a tiny budget)
WHERE = {"sim": "sim/", "lava": "Lava (Loihi2SimCfg)", "loihi2": "Loihi 2 (Loihi2HwCfg)"}


def _retrain(out: Path, seed: int) -> Path:
    from metaloihi.offline import config, train
    # the shipped theta0 is the demo recipe's best checkpoint (checkpoints/demo/README.md):
    # both stages on iteration budgets, so a retrain redoes the same run
    cfg = config.load("demo", {"train.seed": seed, **RETRAIN_SET})
    console.print(f"[bold]retraining[/] theta0: metaloihi train --config demo --out {out} "
                  "(both stages of the recipe, ~20 min on 2 cores)")
    train.train(cfg, out)
    return out / "best.pt"


def _baseline_bundle(ckpt: Path, out: Path, rule) -> Path:
    """The same architecture with a calibrated random theta0 (no meta-training) and the same
    on-chip rule (rules.soel.ChipRule: the same step in mantissa units), exported like the
    real one."""
    from metaloihi.bridge import export as ex
    from metaloihi.offline import checkpoint, config, maml, train
    state = checkpoint.load(ckpt)
    cfg = config.from_dict(state["config"])
    s = train.setup(cfg)
    theta0 = {k: v.detach().double() for k, v in maml.theta0_of(train.initial_meta(s)).items()}
    _, _, _, _, meta = ex.from_checkpoint(ckpt)
    meta = {**meta, "source": "calibrated random theta0 (no meta-training)"}
    path, _ = ex.export_bundle(out, s.specs, theta0, s.neurons, rule=rule, meta=meta)
    return path


class LiveView:
    """What the chip is doing, while Lava runs: task, shot being learnt, its error spikes and
    the weight update it caused; then the queries."""

    def __init__(self, names: list[str], n_tasks: int):
        self.names, self.n_tasks = names, n_tasks
        self.rows: list[tuple] = []
        self.status = ""
        self.live = Live(self._render(), console=console, refresh_per_second=4, transient=False)

    def _render(self) -> Table:
        t = Table(title=self.status or "on-chip learning (Lava, Loihi2SimCfg)", expand=False)
        for col in ("task", "shot", "learning", "out spikes", "error n", "dw: #w, sum|dw|"):
            t.add_column(col, no_wrap=True)
        for r in self.rows[-6:]:
            t.add_row(*map(str, r))
        return t

    def shot(self, task: int, k: int, label: int, counts, n, dw) -> None:
        self.rows.append((f"{task + 1}/{self.n_tasks}", f"{k + 1}/{WAYS * SHOTS}",
                          self.names[label], " ".join(map(str, counts)),
                          " ".join(f"{v:+d}" for v in n),
                          f"{int((dw != 0).sum())}, {int(np.abs(dw).sum())}"))
        self.live.update(self._render())

    def say(self, text: str) -> None:
        self.status = text
        self.live.update(self._render())


def run_demo(seed: int = 0, tasks: int = 5, queries: int = 10, out: str | Path = "runs/demo",
             checkpoint: str | Path | None = None, retrain: bool = False,
             backend: str = "lava") -> dict:
    """The demo; returns every number it prints (tests read them)."""
    from metaloihi.bridge.bundle import read_bundle
    from metaloihi.bridge.export import export_bundle, from_checkpoint
    from metaloihi.bridge.validate import validate_bundle
    from metaloihi.datasets import load_dataset
    from metaloihi.datasets.tasks import sample_task, support_order
    from metaloihi.onchip.session import adapt, same_session
    from metaloihi.plots import demo_figure

    if tasks < 1 or queries < 1:
        raise UserError(f"--tasks and --queries must be >= 1, got {tasks} and {queries}")
    from metaloihi.bridge.target import check_target, run_config
    if check_target(backend) != "sim":
        run_config(backend)        # Lava (and a board for loihi2) or a clear error, up front
    t_start = time.perf_counter()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    ckpt = Path(checkpoint) if checkpoint else SHIPPED
    if retrain:
        ckpt = _retrain(out / "train", seed)
    if not ckpt.exists():
        raise UserError(f"checkpoint {str(ckpt)!r} not found (the shipped one is "
                        f"{SHIPPED.relative_to(REPO)}; --retrain makes a new one)")

    with console.status("embedded DVS gestures (generated on first use, ~15 s, then cached)"):
        ds = load_dataset("gestures", seed=0)
    with console.status(f"exporting {ckpt.name} to a Loihi 2 bundle"):
        specs, params, neurons, learnt, meta = from_checkpoint(ckpt)
        bundle_path, _ = export_bundle(out / "bundle.h5", specs, params, neurons, rule=learnt,
                                       meta=meta)
    if retrain:
        from metaloihi.studies.rule_fit import fit_bundle
        with console.status("fitting the on-chip SOEL step on meta-validation tasks (sim/)"):
            fit_bundle(bundle_path, tasks=FIT_TASKS, dataset=ds)
    console.print(validate_bundle(bundle_path))
    bundle = read_bundle(bundle_path)
    head = bundle.head.rule
    fit = bundle.meta.get("rule_fit") or bundle.meta.get("soel_fit") or {}
    rng = np.random.default_rng(seed)
    task_list = [sample_task(ds, "demo", WAYS, SHOTS, queries, rng) for _ in range(tasks)]
    names = [ds.class_names[c] for c in task_list[0].classes]
    console.print(f"theta0: {ckpt.relative_to(REPO) if ckpt.is_relative_to(REPO) else ckpt} "
                  f"(iteration {meta.get('iteration')}); on-chip rule: theta "
                  f"{head.theta:g}"
                  f" spikes, target {head.target_on}/{head.target_off} spikes"
                  + (f", step fitted on meta-val ({fit.get('val_accuracy', 0):.1%})" if fit
                     else ""))
    console.print(f"{tasks} task(s): 5-way 1-shot on {', '.join(names)} (never seen in "
                  f"meta-training), {queries} held-out queries per class; backend {backend}")

    enc = bundle.encode
    encoded = [(*support_order(enc(t.support_x), t.support_y.numpy(), WAYS), enc(t.query_x),
                t.query_y.numpy()) for t in task_list]
    per_task, sim_acc, identical, frozen_acc = [], [], [], []
    last = None
    view = LiveView(names, tasks)
    with view.live:
        for i, (t, (xs, ys, xq, yq)) in enumerate(zip(task_list, encoded)):
            w0 = (bundle.net[-1].weight >> 1) << 1     # as Lava's first step truncates it
            prev = {"w": w0}

            def on_sample(k, counts, n, w, _i=i, _ys=ys, _yq=yq, _prev=prev):
                if k < len(_ys):
                    view.shot(_i, k, int(_ys[k]), counts, n, w - _prev["w"])
                    _prev["w"] = w
                elif k == len(_ys):
                    view.say(f"task {_i + 1}/{tasks}: learning frozen, classifying "
                             f"{len(_yq)} queries")

            view.say(f"task {i + 1}/{tasks}: learning {WAYS} gestures, one shot each")
            res = adapt(bundle, xs, ys, xq, yq, backend=backend, on_sample=on_sample)
            ref = adapt(bundle, xs, ys, xq, yq, backend="sim") if backend != "sim" else res
            same = same_session(res, ref)
            fro = adapt(bundle, xs[:0], ys[:0], xq, yq, backend="sim")   # no learning
            per_task.append(res.accuracy)
            sim_acc.append(ref.accuracy)
            identical.append(same)
            frozen_acc.append(fro.accuracy)
            view.say(f"task {i + 1}/{tasks}: {backend} {res.accuracy:.0%}, sim/ "
                     f"{ref.accuracy:.0%} ({'identical' if same else 'DIFFERENT'}), "
                     f"{res.seconds:.0f} s")
            last = (t, ys, yq, res, w0)

    with console.status("baseline without meta-training (random theta0, same rule, sim/)"):
        rand = read_bundle(_baseline_bundle(ckpt, out / "bundle_random_theta0.h5", head))
        rand_acc = []
        for xs, ys, xq, yq in encoded:
            rand_acc.append(adapt(rand, xs, ys, xq, yq, backend="sim").accuracy)

    t, ys, yq, res, w0 = last
    conf = np.zeros((WAYS, WAYS), np.int64)
    np.add.at(conf, (yq, res.predictions), 1)
    png = out / f"demo_seed{seed}.png"
    demo_figure(png, support_order(t.support_x.numpy(), t.support_y.numpy(), WAYS)[0],
                ys, conf, w0, res.weights, res.head_spikes[:len(ys)], names,
                title=f"metaloihi demo: 5-way 1-shot learnt on chip "
                      f"({WHERE[backend]}), task {tasks} "
                      f"of {tasks}, seed {seed}: {res.accuracy:.0%}")
    from metaloihi.sim.readout import ci95
    acc, ci = ci95(per_task)
    result = {"backend": backend, "tasks": tasks, "queries_per_class": queries, "seed": seed,
              "classes": names, "checkpoint": str(ckpt), "bundle": str(bundle_path),
              "accuracy": acc, "ci95": None if np.isnan(ci) else ci, "per_task": per_task,
              "sim_accuracy": float(np.mean(sim_acc)), "identical": all(identical),
              "no_adaptation": float(np.mean(frozen_acc)),
              "no_meta_training": float(np.mean(rand_acc)), "chance": 1.0 / WAYS,
              "rule": {"theta": head.theta, "target_on": head.target_on,
                       "dw": res.rule.dw_string()},
              "png": str(png), "seconds": time.perf_counter() - t_start}
    write_bytes(out / f"demo_seed{seed}.json", json.dumps(result, indent=1).encode(),
                "demo results")

    table = Table(title="five-way one-shot on held-out gestures, learnt on chip")
    table.add_column("")
    table.add_column("accuracy", justify="right")
    table.add_row(f"on chip: SOEL in {WHERE[backend]}",
                  f"{acc:.1%}" + (f" +- {ci:.1%}" if tasks > 1 else "") + f"  ({tasks} tasks: "
                  + " ".join(f"{a:.0%}" for a in per_task) + ")")
    if backend != "sim":
        table.add_row("sim/, same tasks", f"{result['sim_accuracy']:.1%}  "
                      + ("identical spikes, weights, predictions" if result["identical"]
                         else "NOT IDENTICAL"))
    table.add_row("without adaptation (theta0's head)", f"{result['no_adaptation']:.1%}")
    table.add_row("without meta-training (random theta0 + same rule)",
                  f"{result['no_meta_training']:.1%}")
    table.add_row("chance", f"{1 / WAYS:.0%}")
    console.print(table)
    console.print(f"wrote {png} and {out / f'demo_seed{seed}.json'}; "
                  f"{result['seconds']:.0f} s in all")
    return result
