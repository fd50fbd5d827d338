"""`metaloihi report`: the HTML page of results (metaloihi/report.py)."""
from __future__ import annotations

from pathlib import Path

import typer

from metaloihi.cli.options import io_paths
from metaloihi.cli.app import app


@app.command()
@io_paths(inputs=("log", "eval_", "bundle", "gap", "speed", "figure", "continual", "ablation"),
          folders=("out",))
def report(
    out: Path = typer.Option(Path("runs/report"), help="Folder for index.html and its PNGs."),
    log: list[Path] = typer.Option([], help="Meta-training log, metrics.jsonl[.gz] (repeat)."),
    eval_: list[Path] = typer.Option([], "--eval",
                                     help="`metaloihi evaluate --out` JSON (repeat)."),
    bundle: list[Path] = typer.Option([], help="Deployment bundle .h5, or a netx file (.net: "
                                      "its layers and cost, no head) (repeat)."),
    gap: list[Path] = typer.Option([], help="Deployment-gap JSON (benchmarks/deployment_gap.py "
                                   "--json; metaloihi.report.GAP_FORMAT)."),
    speed: list[Path] = typer.Option([], help="sim/-vs-Lava speed JSON (benchmarks/"
                                     "sim_vs_lava.py --json, or metaloihi.report.SPEED_FORMAT)."),
    figure: list[Path] = typer.Option([], help="A PNG to show as is, e.g. the demo's (repeat)."),
    continual: list[Path] = typer.Option([], help="`metaloihi continual --json` file (repeat)."),
    ablation: list[Path] = typer.Option([], help="benchmarks/ablation.py --json file: what made "
                                        "theta0 (repeat)."),
    title: str = typer.Option("metaloihi report", help="Page title."),
) -> None:
    """One self-contained HTML page (+ PNGs beside it): accuracy against the paper, training
    curves, deployment gap, the ablation of what made theta0, sim/ vs Lava speed, SOEL
    theta/eta, bundles, Loihi 2 cost, continual learning. With no input named,
    it takes what it finds under ./checkpoints/; anything absent shows as "not measured"."""
    from metaloihi import report as rp
    inputs = rp.Inputs(list(log), list(eval_), list(bundle), list(gap), list(speed), list(figure),
                       list(continual), list(ablation))
    if not inputs.all():
        inputs = rp.default_inputs("checkpoints")
        typer.echo(f"no inputs named: using {len(inputs.all())} file(s) under checkpoints/")
    typer.echo(f"wrote {rp.build_report(out, inputs, title=title)}")
