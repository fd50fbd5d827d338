"""offline/: `metaloihi train` (MAML meta-training) and `evaluate` (N-way K-shot accuracy)."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from metaloihi.base.errors import UserError
from metaloihi.cli.app import app
from metaloihi.cli.options import ROOT_HELP, device_option, io_paths, seed_option


def _overrides(items: list[str]) -> dict:
    """--set section.key=value (value parsed as TOML: numbers, true/false, "strings", [lists])."""
    from metaloihi.offline.config import tomllib
    out = {}
    for item in items:
        key, sep, val = item.partition("=")
        sec, dot, name = key.strip().partition(".")
        if not sep or not dot or not sec or not name:
            raise UserError(f"--set {item!r}: expected section.key=value")
        try:
            out[key.strip()] = tomllib.loads(f"v = {val}")["v"]
        except tomllib.TOMLDecodeError:
            out[key.strip()] = val    # a bare word: a string
    return out


@app.command()
@io_paths(inputs=("init",), folders=("out",), cleared_if=(("out", "overwrite"),))
def train(
    config: str = typer.Option("demo", "--config", "-c",
                               help="Shipped config name (demo, gestures, double_digits, ...) "
                                    "or a .toml file."),
    out: Optional[Path] = typer.Option(None, help="Run folder (default: runs/<config name>)."),
    resume: bool = typer.Option(False, help="Continue from <out>/last.pt (an error if there "
                                "is none)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Start a new run in a folder that "
                                   "already holds files, removing the earlier run's last.pt, "
                                   "best.pt, stage1.pt and metrics.jsonl (default: refuse)."),
    set_: list[str] = typer.Option([], "--set", help="Override a key: section.key=value "
                                   "(e.g. train.iterations=100, train.time_limit_min=5: "
                                   "minutes); repeatable (default: none)."),
    seed: Optional[int] = seed_option(None, help="Seed of theta0's initialisation, the tasks "
                                       "and stochastic rounding: train.seed (default: the "
                                       "config's, 0)."),
    device: Optional[str] = device_option(None, "the config's train.device, cpu"),
    progress: bool = typer.Option(True, help="Show the progress bar."),
    init: Optional[Path] = typer.Option(None, help="Start from this checkpoint's "
                                        "meta-parameters (a second training stage with other "
                                        "settings; default: a fresh calibrated theta0)."),
) -> None:
    """Meta-train theta0 (+ inner learning rate or SOEL threshold/eta) with MAML.
    Under `torchrun --nproc_per_node=K` the meta-batch is split over K processes. The run
    folder is locked while training; SIGINT/SIGTERM/SIGHUP save last.pt, then stop (exit 1)."""
    from metaloihi.base.atomic import regular_input
    from metaloihi.offline import config as cfgmod
    from metaloihi.offline.train import train as run_train
    if resume and overwrite:
        raise UserError("give at most one of --resume and --overwrite")
    if Path(config).suffix:
        regular_input(config, "config file")       # a FIFO would block the read forever
    over = _overrides(set_)
    if seed is not None:
        over["train.seed"] = seed
    if device is not None:
        over["train.device"] = device
    cfg = cfgmod.load(config, over)
    out = out or Path("runs") / Path(config).stem
    res = run_train(cfg, out, resume=resume, progress=progress, init=init,
                    overwrite=overwrite)
    if res.get("rank", 0) == 0:
        typer.echo(f"{res['iterations']} iterations in {res['wall_s'] / 60:.1f} min "
                   f"(stopped: {res['stopped']}); best meta-val accuracy {res['best_val']:.3f} "
                   f"at iteration {res['best_iteration']}; checkpoints in {res['out']}")
    if str(res["stopped"]).startswith("signal"):
        typer.echo(f"stopped by {res['stopped'].split()[-1]} at iteration {res['iterations']}: "
                   f"{Path(res['out']) / 'last.pt'} saved; continue with --resume", err=True)
        raise typer.Exit(1)


@app.command()
@io_paths(inputs=("checkpoints",), outputs=("out",))
def evaluate(
    checkpoints: list[Path] = typer.Argument(..., help="Checkpoints (.pt) to compare."),
    tasks: int = typer.Option(600, help="Tasks per row (>= 2)."),
    shots: str = typer.Option("1,5", help="Comma list of shots per class (each >= 1)."),
    split: Optional[str] = typer.Option(None, help="Class split (default: the config's test "
                                        "split)."),
    baselines: bool = typer.Option(True, help="Add random-init and pretrained baselines."),
    pretrain_iterations: int = typer.Option(300, min=0, help="Iterations (Adam steps of 16 "
                                            "samples) of the pretrained baseline."),
    pretrain_minutes: Optional[float] = typer.Option(
        None, min=0.0, help="Train the pretrained baseline for this many minutes instead of "
        "--pretrain-iterations (an equal-time budget with the meta-training runs; default: "
        "none, count iterations)."),
    out: Optional[Path] = typer.Option(None, help="Also write the rows as JSON here "
                                               "(default: no file)."),
    seed: int = seed_option(1234, help="Seed of the meta-test tasks drawn."),
    dataset: Optional[str] = typer.Option(None, help="Data set to evaluate on (default: the "
                                          "checkpoint's); same frame shape as trained on."),
    root: Optional[Path] = typer.Option(None, "--root", metavar="DIR", help=f"{ROOT_HELP} "
                                        "(default: the checkpoint's data.root)."),
    device: str = device_option("cpu", "cpu"),
) -> None:
    """N-way K-shot test accuracy with 95% confidence intervals over many meta-test tasks."""
    import json
    from rich.console import Console
    from rich.table import Table
    from metaloihi.offline.evaluate import evaluate as run_eval
    if tasks < 2:
        raise UserError(f"--tasks={tasks}; expected >= 2 (a confidence interval needs two)")
    try:
        k_shots = tuple(int(k) for k in shots.split(","))
    except ValueError:
        raise UserError(f"--shots={shots!r}; expected a comma list of integers") from None
    if min(k_shots) < 1:
        raise UserError(f"--shots={shots!r}; expected integers >= 1")
    console = Console()
    rows = run_eval(checkpoints, tasks, k_shots, split, baselines, pretrain_iterations, seed,
                    report=lambda r: console.print(f"  {r['name']}, {r['shots']}-shot: "
                                                   f"{100 * r['acc']:.1f}%"), device=device,
                    pretrain_minutes=pretrain_minutes,
                    **({"data": {k: v for k, v in (("dataset", dataset),
                                                   ("root", None if root is None else str(root)))
                                 if v is not None}} if dataset or root else {}))
    table = Table(title=f"{tasks} tasks per row, 95% confidence intervals")
    for col in ("model", "shots", "accuracy"):
        table.add_column(col)
    for r in rows:
        table.add_row(r["name"], str(r["shots"]), f"{100 * r['acc']:.1f} ± {100 * r['ci95']:.1f}%")
    console.print(table)
    if out:
        from metaloihi.base.atomic import write_bytes
        write_bytes(out, json.dumps(rows, indent=1).encode(), "evaluation JSON")
