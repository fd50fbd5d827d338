"""`metaloihi data ...`: the event data sets."""
from __future__ import annotations

from pathlib import Path

import typer

from metaloihi.cli.app import data_app
from metaloihi.cli.options import RootOption
from metaloihi.datasets.names import EMBEDDED, REAL


@data_app.command("show")
def data_show(
    dataset: str = typer.Argument(..., help=f"Data set name: {', '.join(EMBEDDED)} "
                                  f"(embedded), or {', '.join(REAL)} (with --root)."),
    out: Path = typer.Option(Path("runs/data_show.png"), help="PNG file to write."),
    per_class: int = typer.Option(4, min=1, max=64, help="Samples shown per class (a row each "
                                  "class)."),
    classes: int = typer.Option(8, min=1, max=64, help="Number of classes shown (rows)."),
    root: RootOption = None,
    seed: int = typer.Option(0, help="Random seed: which classes and samples are shown."),
) -> None:
    """Write a PNG grid of samples (event frames summed over time, ON red / OFF blue)."""
    from metaloihi.datasets.registry import load_dataset
    from metaloihi.datasets.show import show_dataset
    ds = load_dataset(dataset, root=root)
    path = show_dataset(dataset, out, per_class=per_class, n_classes=classes, seed=seed,
                        dataset=ds)
    typer.echo(f"wrote {path}")
