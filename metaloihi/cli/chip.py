"""The bundle in Lava (or sim/): `metaloihi deploy` (frozen network) and `adapt` (one task
learnt on chip)."""
from __future__ import annotations

from pathlib import Path
from typing import Literal, Optional

import typer

from metaloihi.base.errors import UserError
from metaloihi.cli.app import app
from metaloihi.cli.options import RootOption, seed_option


@app.command()
def deploy(
    bundle: Path = typer.Argument(..., help="Deployment bundle (.h5)."),
    samples: int = typer.Option(2, min=1, help="Samples to run (each from rest)."),
    dataset: Optional[str] = typer.Option(None, help="Draw the samples from this data set "
                                          "(frames encoded as the bundle says); default: "
                                          "random input spikes, a smoke run."),
    split: str = typer.Option("test", help="--dataset: class split the samples come from."),
    root: RootOption = None,
    inputs: Optional[Path] = typer.Option(None, "--input", help="Run these samples instead: a "
                                          ".npy of binary spikes [N, steps, *input shape] "
                                          "(default: none)."),
    steps: int = typer.Option(20, min=1, help="Smoke run: time steps per sample (1 ms each)."),
    rate: float = typer.Option(0.1, min=0.0, max=1.0, help="Smoke run: input spike "
                               "probability per input neuron and step."),
    backend: Literal["sim", "lava", "loihi2"] = typer.Option(
        "lava", help="Where to run: 'lava' (Lava's CPU simulator, Loihi2SimCfg, checked "
        "against sim/), 'sim' (sim/ alone) or 'loihi2' (a Loihi 2 board, Loihi2HwCfg; needs "
        "Intel's lava-loihi and a board: fails, never falls back, without them)."),
    seed: int = seed_option(0, help="Seed of the smoke run's input spikes / of the samples "
                             "drawn from --dataset."),
) -> None:
    """Build the bundle's network in Lava (netx frozen layers + head Dense/LIF, learning off),
    run the samples and print the output spike counts, checked against sim/ bit for bit."""
    import numpy as np

    from metaloihi.bridge.deploy import run_deployed, smoke_input
    from metaloihi.bridge.bundle import read_bundle
    b = read_bundle(bundle)
    labels = None
    if inputs is not None and dataset is not None:
        raise UserError("give at most one of --input FILE and --dataset NAME")
    if root is not None and dataset is None:
        raise UserError(f"--root {str(root)!r} is the folder of --dataset's recordings; give "
                        "--dataset NAME too")
    if inputs is not None:
        from metaloihi.bridge.deploy import load_input
        x = load_input(inputs)[:samples]
        what = f"{len(x)} sample(s) of {inputs}"
    elif dataset is not None:
        from metaloihi.datasets.registry import load_dataset
        from metaloihi.datasets.tasks import split_samples
        ds = load_dataset(dataset, root=root)
        pick = split_samples(ds, split, samples, np.random.default_rng(seed))
        x = b.encode(ds.frames(pick))
        labels = [ds.class_names[int(ds.labels[i])] for i in pick]
        what = f"{samples} sample(s) of {dataset}/{split}"
    else:
        x = smoke_input(b, samples, steps, rate, seed)
        what = f"smoke run: {samples} sample(s) of random input spikes (p={rate}, seed {seed})"
    res = run_deployed(b, x, target=backend)
    names = list(b.head.labels)
    typer.echo(f"{res.config}: {what}, {x.shape[1]} steps each, {res.seconds:.1f} s")
    for k, counts in enumerate(res.counts):
        tag = f" ({labels[k]})" if labels else ""
        top = names[int(np.argmax(counts))] if counts.any() else "silent"
        typer.echo(f"  sample {k}{tag}: output spike counts {counts.tolist()} -> {top}")
    if res.sim_counts is not None:
        same = np.array_equal(res.spikes, res.sim_spikes)
        typer.echo("  sim/ (bit-exact model): " + ("identical, spike for spike" if same else
                   "DIFFERENT: this is a bug in metaloihi, please report it"))
        if not same:
            raise typer.Exit(2)


@app.command()
def adapt(
    bundle: Path = typer.Argument(..., help="Deployment bundle (.h5)."),
    dataset: Optional[str] = typer.Option(None, help="Data set to draw the task from (default: "
                                          "the bundle's training data set, else digits)."),
    split: str = typer.Option("test", help="Class split (classes unseen in meta-training)."),
    ways: int = typer.Option(5, min=1, help="Classes per task (the head's output neurons)."),
    shots: int = typer.Option(1, min=1, help="Examples per class presented for learning."),
    queries: int = typer.Option(10, min=1, help="Query examples per class."),
    backend: Literal["sim", "lava", "loihi2"] = typer.Option(
        "sim", help="'sim' (bit-exact, fast), 'lava' (Lava's CPU simulator, Loihi2SimCfg) or "
        "'loihi2' (a board, Loihi2HwCfg; needs Intel's lava-loihi)."),
    seed: int = seed_option(0, help="Seed of the task (classes, samples) and of the embedded "
                             "data set's generator."),
    root: RootOption = None,
) -> None:
    """Learn one task on chip with SOEL (one shot at a time), then classify its queries."""
    import numpy as np

    from metaloihi.bridge.bundle import read_bundle
    from metaloihi.datasets.registry import load_dataset
    from metaloihi.datasets.tasks import encoded_task
    from metaloihi.onchip.session import adapt as run_adapt
    from metaloihi.bridge.target import run_config
    if backend != "sim":
        run_config(backend)       # Lava (and a board for loihi2) or a clear error, before any work
    b = read_bundle(bundle)
    n_out = b.net[-1].spec.out_features
    if ways != n_out:
        raise UserError(f"--ways={ways} but the bundle's head has {n_out} output neurons")
    dataset = dataset or b.meta.get("dataset", "digits")
    ds = load_dataset(dataset, seed=seed, root=root)
    b.encode(np.zeros((0, *ds.frame_shape), np.uint8))   # the bundle refuses frames it can't take
    task = encoded_task(ds, split, ways, shots, queries, np.random.default_rng(seed), b.encoding)
    res = run_adapt(b, task.support_x, task.support_y, task.query_x, task.query_y,
                    backend=backend)
    r = res.rule
    typer.echo(f"{ways}-way {shots}-shot on {dataset}/{split} ({backend}): accuracy "
               f"{res.accuracy:.3f} on {len(res.predictions)} queries ({res.silent} silent); "
               f"rule dw = {r.dw_string()}, window {r.window} + 1 steps, {res.seconds:.1f} s")
