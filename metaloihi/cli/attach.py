"""`metaloihi attach-head`: the on-chip learning head on any network (bridge/attach_head.py)."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from metaloihi.cli.options import io_paths, seed_option
from metaloihi.cli.app import app


@app.command("attach-head")
@io_paths(inputs=("net",), outputs=("out",))
def attach_head(
    net: Path = typer.Argument(..., help="Network: a bundle (.h5), a netx file written by "
                               "lava-dl, or an imported NIR graph's bundle."),
    layer: int = typer.Option(..., "--layer", help="K: the file's layer (netx numbering, 0 is "
                              "the input) whose spikes the head reads; layers 1..K stay "
                              "frozen, later ones are dropped."),
    ways: int = typer.Option(..., "--ways", min=1, help="Output neurons of the head (classes)."),
    out: Path = typer.Option(..., "--out", help="Learner bundle to write (atomically; never "
                             "the input; no default)."),
    rule: str = typer.Option("soel", "--rule", help="The head's on-chip learning rule."),
    seed: int = seed_option(0, help="The learning engine's rng_seed."),
    vth: Optional[int] = typer.Option(None, "--vth", help="Head threshold mantissa (default: "
                                      "127 x the head's inputs, at most 2^17 - 1)."),
    step: float = typer.Option(0.25, "--step", help="Rule's weight step, mantissa units per "
                               "n x (the chip's nearest m 2^(e-3)); fit-soel refits it."),
    data: Optional[str] = typer.Option(None, "--data", metavar="NAME", help="Data set the "
                                       "network takes, recorded as the learner's default for "
                                       "fit-soel, adapt and cost (default: a bundle's own; "
                                       "none for a netx file)."),
    pool: Optional[int] = typer.Option(None, "--pool", min=1, help="Frames' spatial "
                                       "sum-pool to the network's input (default: a bundle's "
                                       "encoding; 1 for a netx file)."),
    time_pool: Optional[int] = typer.Option(None, "--time-pool", min=1, help="Frames' time "
                                            "sum-pool (default: as --pool)."),
) -> None:
    """Keep a network's layers up to K frozen and add a silent-start dense head of N neurons
    that learns on chip (the rule in the chip's units); write it as a bundle that fit-soel,
    adapt, continual, deploy, cost and the report take."""
    from metaloihi.bridge.attach_head import attach_head as attach
    meta = {}
    if data is not None:
        meta["dataset"] = data
    if pool is not None or time_pool is not None:
        meta["encoding"] = {"pool": pool or 1, "time_pool": time_pool or 1, "steps": None}
    a = attach(net, layer, ways, out, rule=rule, seed=seed, vth=vth, step=step, meta=meta)
    typer.echo(f"wrote {a.path}: {a.source_kind} layers 1..{a.layer} frozen "
               f"({' -> '.join(a.kinds)}), {a.dropped} later layer(s) dropped; head "
               f"{a.n_in}->{a.ways} silent (zero weights), vth {a.vth}, rule {a.rule.name} "
               f"dw = {a.rule.mant} * 2^{a.rule.exp} (step {a.rule.step:g} mantissa/(n x)), "
               f"theta {a.rule.theta:g}, target_on {a.rule.target_on}, passes {a.rule.passes}")
