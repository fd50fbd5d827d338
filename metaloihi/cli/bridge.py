"""Checkpoint -> bundle: `metaloihi fit-soel`, `export`, `bundle validate`."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from metaloihi.base.errors import UserError
from metaloihi.cli.app import app, bundle_app
from metaloihi.cli.options import RootOption, io_paths, seed_option


@app.command("fit-soel")
@io_paths(inputs=("bundle",), outputs=("out",))
def fit_soel(
    bundle: Path = typer.Argument(..., help="Deployment bundle (.h5) to fit the rule of."),
    out: Optional[Path] = typer.Option(None, help="Write the fitted bundle here (default: "
                                       "rewrite BUNDLE in place, atomically)."),
    tasks: int = typer.Option(20, min=1, help="Meta-validation tasks (5-way 1-shot) per grid "
                                              "point."),
    queries: int = typer.Option(5, min=1, help="Queries per class per task."),
    seed: int = seed_option(0, help="Seed of the meta-validation tasks."),
    dataset: Optional[str] = typer.Option(None, help="Embedded data set to fit on (default: "
                                          "the bundle's)."),
    split: Optional[str] = typer.Option(None, help="Class split to fit on (default: the "
                                        "bundle's meta-validation split)."),
    root: RootOption = None,
) -> None:
    """Fit the bundle's on-chip SOEL rule (theta in spikes, weight step mant 2^(exp-3) in
    mantissa units per n x, target_on in spikes, passes) on meta-validation tasks of its data
    set in sim/ fixed point, and write it into the bundle. Meta-test classes are never used."""
    from metaloihi.studies.rule_fit import fit_bundle, table
    fitted, rows = fit_bundle(bundle, out=out, tasks=tasks, queries=queries, seed=seed,
                              dataset=dataset, split=split, root=root)
    typer.echo(table(rows))
    typer.echo(f"wrote {out or bundle}: theta {fitted['theta']:g}, step {fitted['step']:g} "
               f"mantissa/(n x) (rule {fitted['mant']} * 2^{fitted['exp']}), target_on "
               f"{fitted['target_on']}, passes {fitted['passes']} (meta-val accuracy "
               f"{fitted['val_accuracy']:.3f})")


@app.command("upgrade-checkpoint")
def upgrade_checkpoint(
    checkpoint: Path = typer.Argument(..., help="offline/ checkpoint (.pt) written before "
                                                "checkpoints described their network."),
    force: bool = typer.Option(False, help="Rebuild the description even where one exists."),
) -> None:
    """Add the network description (specs, input shape, encoding, neurons, learnt rule) that
    export reads instead of the trainer and the data set; atomic, idempotent, once per file."""
    from metaloihi.studies.upgrade import upgrade_checkpoint as upgrade
    done = upgrade(checkpoint, force=force)
    typer.echo(f"{checkpoint}: " + ("upgraded" if done else "already describes its network"))


@bundle_app.command("validate")
def bundle_validate(path: Path = typer.Argument(..., help="Bundle file (.h5).")) -> None:
    """Check ranges (8-bit even-grid mantissas, 12-bit decays, 17-bit vth, 13-bit bias), shapes
    and required fields; name the first violation (exit 1) or print a summary (exit 0)."""
    from metaloihi.bridge.validate import validate_bundle
    typer.echo(validate_bundle(path))


def _ints(text: str, name: str, positive: bool = True) -> tuple[int, ...]:
    try:
        vals = tuple(int(v) for v in text.split(","))
    except ValueError:
        raise UserError(f"--{name} must be comma-separated integers, got {text!r}") from None
    if positive and min(vals) < 1:
        raise UserError(f"--{name} must be integers >= 1, got {text!r}")
    return vals


@app.command()
@io_paths(inputs=("checkpoint",), outputs=("out", "nir"))
def export(
    out: Path = typer.Option(Path("runs/bundle.h5"), help="Bundle file to write (HDF5; written "
                             "atomically: no partial file on failure)."),
    checkpoint: Optional[Path] = typer.Option(None, help="offline/ checkpoint (.pt) to deploy "
                                             "(default: none; or --random)."),
    random: bool = typer.Option(False, "--random", help="Deploy a random network instead "
                                                                "(default: off)."),
    nir: Optional[Path] = typer.Option(None, help="Also write the network as a NIR graph "
                                     "(.nir; default: none)."),
    input_shape: str = typer.Option("2,32,32", help="--random: input C,H,W (channels, pixels, "
                                    "pixels)."),
    ways: int = typer.Option(5, min=1, help="--random: output neurons (ways)."),
    channels: str = typer.Option("32,64,128", help="--random: conv channels per layer."),
    seed: int = seed_option(0, help="--random: weight seed (Gaussian weights)."),
) -> None:
    """Quantise a network to Loihi 2 fixed point and write the deployment bundle (netx layout
    + learning head), with the per-layer quantisation error table."""
    from metaloihi.bridge import export as ex
    from metaloihi.bridge.validate import validate_bundle
    if (checkpoint is None) == (not random):
        raise UserError("give exactly one of --checkpoint PATH or --random")
    if random:
        shape = _ints(input_shape, "input-shape")
        if len(shape) != 3:
            raise UserError(f"--input-shape must be C,H,W, got {input_shape!r}")
        specs, params, neurons = ex.random_float_network(shape, ways, _ints(channels, "channels"),
                                                         seed=seed)
        rule, meta = None, {"source": f"random seed {seed}"}
    else:
        specs, params, neurons, rule, meta = ex.from_checkpoint(checkpoint)
    path, q = ex.export_bundle(out, specs, params, neurons, rule=rule, meta=meta, nir_path=nir)
    typer.echo(q.table())
    typer.echo(validate_bundle(path))
    if nir is not None:
        typer.echo(f"wrote {nir}")
