"""`metaloihi demo`: the README's first command (metaloihi/demo.py)."""
from __future__ import annotations

from pathlib import Path

import typer

from metaloihi.cli.app import app


@app.command()
def demo(
    seed: int = typer.Option(0, help="Seed of the tasks (which shots and queries are drawn)."),
    tasks: int = typer.Option(5, min=1, help="5-way 1-shot tasks, each learnt from scratch "
                                             "on chip (~1 min each in Lava on 2 cores)."),
    queries: int = typer.Option(10, min=1, help="Held-out queries per class per task."),
    backend: str = typer.Option("lava", help="'lava' (Loihi2SimCfg, checked against sim/), "
                                             "'sim' (bit-exact, seconds) or 'loihi2' (a "
                                             "board, Loihi2HwCfg, checked against sim/)."),
    checkpoint: Path = typer.Option(None, help="theta0 checkpoint (default: the shipped "
                                               "checkpoints/demo/theta0.pt)."),
    retrain: bool = typer.Option(False, "--retrain", help="First redo `metaloihi train "
                                 "--config demo` (~30 min on 2 cores) and use its theta0."),
    out: Path = typer.Option(Path("runs/demo"), help="Folder for the bundle, PNG and JSON."),
) -> None:
    """Five-way one-shot gesture learning on Lava: the shipped meta-trained theta0 -> Loihi 2
    bundle -> one example of each of five gestures never seen in meta-training, learnt on
    chip by SOEL -> held-out examples classified; compared with sim/ (identical), no adaptation
    and no meta-training. Writes a PNG and a JSON per run."""
    from metaloihi.demo import run_demo
    run_demo(seed=seed, tasks=tasks, queries=queries, out=out, checkpoint=checkpoint,
             retrain=retrain, backend=backend)
