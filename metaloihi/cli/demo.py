"""`metaloihi demo`: the README's first command (metaloihi/demo.py)."""
from __future__ import annotations

from pathlib import Path

import typer

from metaloihi.cli.options import io_paths, seed_option
from metaloihi.cli.app import app


@app.command()
@io_paths(inputs=("checkpoint",), folders=("out",))
def demo(
    seed: int = seed_option(0, help="Seed of the tasks (which shots and queries are drawn)."),
    tasks: int = typer.Option(1, min=1, help="5-way 1-shot tasks learnt on the backend, each "
                                             "checked against sim/ (~2.5 min each on Lava, "
                                             "2 cores)."),
    sim_tasks: int = typer.Option(600, "--sim-tasks", min=1,
                                  help="Tasks of the same stream (the first --tasks included) "
                                       "in sim/ for the accuracy's CI and the baselines."),
    queries: int = typer.Option(10, min=1, help="Held-out queries per class per task."),
    backend: str = typer.Option("lava", help="'lava' (Loihi2SimCfg, checked against sim/), "
                                             "'sim' (bit-exact, seconds) or 'loihi2' (a "
                                             "board, Loihi2HwCfg, checked against sim/)."),
    checkpoint: Path = typer.Option(None, help="A theta0 checkpoint to export and deploy "
                                               "(default: the shipped checkpoints/demo/"
                                               "bundle.h5, theta0.pt exported and fitted)."),
    retrain: bool = typer.Option(False, "--retrain", help="First redo the shipped recipe "
                                 "(stage 1 of `--config demo_long`, the rule's fit, stage 2 "
                                 "with the deployed session inside; ~50 CPU-min on one core) "
                                 "and use its theta0."),
    out: Path = typer.Option(Path("runs/demo"), help="Folder for the bundle, PNG and JSON."),
) -> None:
    """Five-way one-shot gesture learning on chip: the shipped Loihi 2 bundle (theta0 exported,
    what made it from its record) -> one example of each of five gestures never seen in training,
    learnt on chip by SOEL -> held-out examples classified; the same bundle over --sim-tasks
    tasks in sim/ beside no adaptation, random theta0 + the same rule and the prototype
    ceilings. Every row says where it ran. Writes a PNG and a JSON per run."""
    from metaloihi.demo import run_demo
    run_demo(seed=seed, tasks=tasks, queries=queries, out=out, checkpoint=checkpoint,
             retrain=retrain, backend=backend, sim_tasks=sim_tasks)
