"""`metaloihi data ...`: the event data sets (show; events: a folder of your own recordings)."""
from __future__ import annotations

from pathlib import Path
from typing import Literal, Optional

import typer

from metaloihi.cli.app import data_app
from metaloihi.cli.options import RootOption, io_paths, seed_option
from metaloihi.datasets.names import EMBEDDED, OWN, REAL


@data_app.command("show")
@io_paths(outputs=("out",))
def data_show(
    dataset: str = typer.Argument(..., help=f"Data set name: {', '.join(EMBEDDED)} "
                                  f"(embedded), or {', '.join(REAL + OWN)} (with --root)."),
    out: Path = typer.Option(Path("runs/data_show.png"), help="PNG file to write."),
    per_class: int = typer.Option(4, min=1, max=64, help="Samples shown per class (a row each "
                                  "class)."),
    classes: int = typer.Option(8, min=1, max=64, help="Number of classes shown (rows)."),
    root: RootOption = None,
    seed: int = seed_option(0, help="Random seed: which classes and samples are shown."),
) -> None:
    """Write a PNG grid of samples (event frames summed over time, ON red / OFF blue)."""
    from metaloihi.datasets.registry import load_dataset
    from metaloihi.datasets.show import show_dataset
    ds = load_dataset(dataset, root=root)
    path = show_dataset(dataset, out, per_class=per_class, n_classes=classes, seed=seed,
                        dataset=ds)
    typer.echo(f"wrote {path}")


@data_app.command("events")
def data_events(
    folder: Path = typer.Argument(..., metavar="DIR", help="Folder of your recordings: one "
                                  "subfolder per class (the folder name is the class name)."),
    split_classes: str = typer.Option(
        "60/20/20", "--split-classes", metavar="TRAIN/VAL/TEST", help="Percent of the classes "
        "for meta-training, meta-validation and meta-test: the class folders sorted by name, "
        "shuffled with --seed, cut in that order; each split gets floor(n x percent / 100) "
        "classes, the rest go to the first split above 0 %; a 0 split is absent."),
    seed: int = seed_option(0, help="Seed of the class shuffle (the split; the "
                             "commands' --seed draws tasks and leaves it alone)."),
    ways: int = typer.Option(5, min=1, help="Classes every split must hold at least (the "
                             "classes per task you will draw)."),
    sensor_size: Optional[str] = typer.Option(
        None, metavar="WxH", help="Sensor width x height in pixels (default: the size the "
        "files state, else the smallest holding every event).", show_default=False),
    window_ms: Optional[float] = typer.Option(
        None, help="Time window per sample in ms (default: the longest recording).",
        show_default=False),
    bins: int = typer.Option(100, min=1, help="Time bins per sample (network steps; each "
                             "window / bins wide)."),
    start: Literal["first", "zero"] = typer.Option(
        "first", help="Time 0 of a sample: its first event ('first') or its file's t = 0 "
        "('zero': N-MNIST, samples cut from one clock)."),
    downsample: int = typer.Option(1, min=1, help="Spatial downsampling factor (tonic's "
                                   "Downsample) before binning."),
) -> None:
    """Check a folder of your own labelled recordings (every file read, frames made and
    cached) and write its settings DIR/events.toml, which `--dataset events --root DIR` then
    reads in every command (and data.root in training configs). Prints each split's classes."""
    import numpy as np

    from metaloihi.base.atomic import write_bytes
    from metaloihi.datasets.events_folder import events_dataset
    from metaloihi.datasets.events_settings import (SETTINGS_FILE, EventsSettings, parse_size,
                                                    parse_split)
    settings = EventsSettings(
        split_classes=parse_split(split_classes), seed=seed, ways=ways,
        sensor_size=None if sensor_size is None else parse_size(sensor_size),
        window_ms=window_ms, bins=bins, start=start, downsample=downsample).check("flags")
    ds = events_dataset(folder, settings=settings)
    m = ds.meta
    w, h = m["sensor_size"]
    origin = "each sample's first event" if start == "first" else "each file's t = 0"
    typer.echo(f"events in {folder}: {len(ds.class_names)} classes, {len(ds)} samples, frames "
               f"{list(ds.frame_shape)} (sensor {w}x{h}, {m['bins']} bins of {m['dt_us']} us "
               f"from {origin})")
    for split, ids in ds.splits.items():
        n = int(np.isin(ds.labels, ids).sum())
        names = ", ".join(ds.class_names[int(c)] for c in ids)
        typer.echo(f"  {split}: {len(ids)} classes, {n} samples: {names}")
    path = write_bytes(folder / SETTINGS_FILE, settings.to_toml().encode(), "events settings")
    typer.echo(f"wrote {path}")
