"""`metaloihi import GRAPH.nir --out net.h5`: an NIR graph (snnTorch, Norse, ... `export_to_nir`)
onto Loihi 2 fixed point as a netx file, with the import's gap printed (and in --json)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import numpy as np
import typer

from metaloihi.base.errors import UserError
from metaloihi.cli.options import io_paths, seed_option
from metaloihi.cli.app import app


def _shape(text: Optional[str]) -> Optional[tuple[int, ...]]:
    if text is None:
        return None
    try:
        vals = tuple(int(v) for v in text.split(","))
    except ValueError:
        raise UserError(f"--input-shape must be comma-separated integers, got {text!r}") from None
    if not vals or min(vals) < 1:
        raise UserError(f"--input-shape must be integers >= 1, got {text!r}")
    return vals


@app.command("import")
@io_paths(inputs=("graph", "calibrate"), outputs=("out", "json_out"))
def import_(
    graph: Path = typer.Argument(..., metavar="GRAPH", help="NIR graph (.nir, nir.write's HDF5)."),
    out: Path = typer.Option(..., help="netx file to write (.h5; atomic)."),
    dt: Optional[float] = typer.Option(None, help="Seconds per Loihi step: the decays are "
                                       "dt/tau (default: the graph's metadata, else 1e-4 s, "
                                       "snnTorch's export)."),
    input_shape: Optional[str] = typer.Option(None, help="C,H,W or N where the graph's Input "
                                              "node has no shape."),
    calibrate: Optional[Path] = typer.Option(None, help="Inputs for the gap: .npy spikes "
                                             "[samples, steps, *input shape] (default: random "
                                             "spikes, --samples x --steps at --rate)."),
    samples: int = typer.Option(32, min=1, help="Random inputs for the gap."),
    steps: int = typer.Option(50, min=2, help="Steps per random input."),
    rate: float = typer.Option(0.2, min=0.0, max=1.0, help="Spike probability per input and "
                               "step of the random inputs."),
    seed: int = seed_option(0, help="Seed of the random inputs."),
    lava_samples: int = typer.Option(2, min=0, help="Inputs Lava runs to hold sim/ == Lava "
                                     "(0: skip Lava)."),
    json_out: Optional[Path] = typer.Option(None, "--json", help="Also write the gap as JSON."),
) -> None:
    """Map an NIR graph onto Loihi 2's CUBA LIF, quantise it (8-bit weights, 12-bit decays),
    write a netx file, and print the gap: per layer the weight quantisation error and, on
    inputs, float vs deployed spike-count correlation, output agreement and sim/ == Lava."""
    from metaloihi.base.atomic import regular_input, write_bytes
    from metaloihi.base.lava_support import lava_available
    from metaloihi.bridge import nir_gap
    from metaloihi.bridge.nir_import import import_nir
    regular_input(graph, "NIR graph")
    x = None
    if calibrate is not None:
        regular_input(calibrate, "--calibrate")
        try:
            x = np.load(calibrate, allow_pickle=False)
        except (OSError, ValueError) as err:
            raise UserError(f"--calibrate {str(calibrate)!r}: not a .npy array ({err})") from None
    imp = import_nir(graph, out, dt=dt, input_shape=_shape(input_shape))
    if x is None:
        x = nir_gap.random_spikes(imp.float_net, samples, steps, rate, seed)
        source = f"random spikes (rate {rate:g}, seed {seed})"
    else:
        source = str(calibrate)
    if lava_samples and not lava_available():
        typer.echo("Lava is not importable here: sim/ == Lava skipped")
        lava_samples = 0
    gap = nir_gap.measure(imp, x, lava_samples=lava_samples)
    typer.echo(f"wrote {out}: {len(imp.net)} layers from {graph}")
    typer.echo(f"inputs: {source}")
    typer.echo(nir_gap.report(imp, gap))
    if json_out is not None:
        res = {"command": "metaloihi import", "graph": str(graph), "out": str(out),
               "inputs": source, "dt": imp.float_net.dt, "dt_source": imp.float_net.dt_source,
               "notes": imp.float_net.notes,
               **{k: v for k, v in gap.items() if not k.startswith("pred_")}}
        write_bytes(json_out, (json.dumps(res, indent=1) + "\n").encode(), "gap JSON")
        typer.echo(f"wrote {json_out}")
    if "lava" in gap and not gap["lava"]["identical"]:
        raise typer.Exit(1)
