"""The `metaloihi` command line. Exit codes: 0 ok, 1 user error (one line), 2 internal error."""
from __future__ import annotations

import errno
import os
import sys
from pathlib import Path
from typing import Literal, Optional

import typer

from metaloihi import __version__
from metaloihi.base.errors import Interrupted, UserError

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="metaloihi: meta-trained spiking networks, one-shot learning on Loihi 2.")
data_app = typer.Typer(no_args_is_help=True, help="Event data sets: inspect and generate.")
app.add_typer(data_app, name="data")
bundle_app = typer.Typer(no_args_is_help=True, help="Deployment bundles (.h5): check them.")
app.add_typer(bundle_app, name="bundle")


@app.command()
def version() -> None:
    """Print metaloihi's version and whether Lava is usable here."""
    from metaloihi.base.lava_support import lava_available
    typer.echo(f"metaloihi {__version__} (Python {sys.version.split()[0]}, "
               f"lava: {'yes' if lava_available() else 'no'})")


@data_app.command("show")
def data_show(
    dataset: str = typer.Argument(..., help="Data set name: digits, double_digits, gestures "
                                  "(embedded), or nmnist, double_nmnist, dvs_gesture, asl_dvs, "
                                  "double_asl_dvs, nomniglot (with --root)."),
    out: Path = typer.Option(Path("runs/data_show.png"), help="PNG file to write."),
    per_class: int = typer.Option(4, min=1, max=64, help="Samples shown per class (a row each "
                                  "class)."),
    classes: int = typer.Option(8, min=1, max=64, help="Number of classes shown (rows)."),
    root: Optional[Path] = typer.Option(None, help="Folder of a real data set's recordings "
                                        "(never downloaded); not for the embedded ones "
                                        "(default: none)."),
    seed: int = typer.Option(0, help="Random seed: which classes and samples are shown."),
) -> None:
    """Write a PNG grid of samples (event frames summed over time, ON red / OFF blue)."""
    from metaloihi.datasets.registry import load_dataset
    from metaloihi.datasets.show import show_dataset
    ds = load_dataset(dataset, root=root)
    path = show_dataset(dataset, out, per_class=per_class, n_classes=classes, seed=seed,
                        dataset=ds)
    typer.echo(f"wrote {path}")


@app.command()
def demo(
    seed: int = typer.Option(0, help="Seed of the tasks (which shots and queries are drawn)."),
    tasks: int = typer.Option(5, min=1, help="5-way 1-shot tasks, each learnt from scratch "
                                             "on chip (~1 min each in Lava on 2 cores)."),
    queries: int = typer.Option(10, min=1, help="Held-out queries per class per task."),
    backend: str = typer.Option("lava", help="'lava' (Loihi2SimCfg, checked against sim/) or "
                                             "'sim' (bit-exact, seconds)."),
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


@app.command("fit-soel")
def fit_soel(
    checkpoint: Path = typer.Argument(..., help="offline/ checkpoint (.pt); rewritten in place "
                                                "(atomically) with the fitted values."),
    tasks: int = typer.Option(20, min=1, help="Meta-validation tasks (5-way 1-shot) per grid "
                                              "point."),
    queries: int = typer.Option(5, min=1, help="Queries per class per task."),
    seed: int = typer.Option(0, help="Seed of the meta-validation tasks."),
) -> None:
    """Fit the on-chip SOEL rule (theta in spikes, weight step in mantissa units per n x,
    target_on in spikes) of a checkpoint on meta-validation tasks in sim/ fixed point; export
    then uses it. Classes of the meta-test split are never used."""
    from metaloihi.studies.rule_fit import fit_checkpoint, table
    fitted, rows = fit_checkpoint(checkpoint, tasks=tasks, queries=queries, seed=seed)
    typer.echo(table(rows))
    typer.echo(f"stored in {checkpoint}: theta {fitted['soel_threshold']:g}, step "
               f"{fitted['step']:g} mantissa/(n x), target_on {fitted['target_on']} "
               f"(meta-val accuracy {fitted['val_accuracy']:.3f})")


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
    seed: int = typer.Option(0, help="--random: weight seed (Gaussian weights)."),
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
        head, meta = None, {"source": f"random seed {seed}"}
    else:
        specs, params, neurons, head, meta = ex.from_checkpoint(checkpoint)
    path, q = ex.export_bundle(out, specs, params, neurons, head=head, meta=meta, nir_path=nir)
    typer.echo(q.table())
    typer.echo(validate_bundle(path))
    if nir is not None:
        typer.echo(f"wrote {nir}")


@app.command()
def deploy(
    bundle: Path = typer.Argument(..., help="Deployment bundle (.h5)."),
    samples: int = typer.Option(2, min=1, help="Samples to run (each from rest)."),
    dataset: Optional[str] = typer.Option(None, help="Draw the samples from this data set "
                                          "(frames encoded as the bundle says); default: "
                                          "random input spikes, a smoke run."),
    split: str = typer.Option("test", help="--dataset: class split the samples come from."),
    inputs: Optional[Path] = typer.Option(None, "--input", help="Run these samples instead: a "
                                          ".npy of binary spikes [N, steps, *input shape] "
                                          "(default: none)."),
    steps: int = typer.Option(20, min=1, help="Smoke run: time steps per sample (1 ms each)."),
    rate: float = typer.Option(0.1, min=0.0, max=1.0, help="Smoke run: input spike "
                               "probability per input neuron and step."),
    hw: bool = typer.Option(False, "--hw", help="Run on a Loihi 2 board (Loihi2HwCfg; needs "
                            "Intel's lava-loihi and a board: fails, never falls back, without "
                            "them) instead of Lava's CPU simulator (Loihi2SimCfg, the "
                            "default)."),
    seed: int = typer.Option(0, help="Seed of the smoke run's input spikes / of the samples "
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
    if inputs is not None:
        from metaloihi.bridge.deploy import load_input
        x = load_input(inputs)[:samples]
        what = f"{len(x)} sample(s) of {inputs}"
    elif dataset is not None:
        from metaloihi.datasets.registry import load_dataset
        ds = load_dataset(dataset)
        idx = np.flatnonzero(np.isin(ds.labels, ds.split_classes(split)))
        if len(idx) < samples:
            raise UserError(f"--samples={samples} but split {split!r} of {dataset!r} has "
                            f"{len(idx)} samples")
        pick = np.sort(np.random.default_rng(seed).choice(idx, samples, replace=False))
        x = b.encode(ds.frames(pick))
        labels = [ds.class_names[int(ds.labels[i])] for i in pick]
        what = f"{samples} sample(s) of {dataset}/{split}"
    else:
        x = smoke_input(b, samples, steps, rate, seed)
        what = f"smoke run: {samples} sample(s) of random input spikes (p={rate}, seed {seed})"
    res = run_deployed(bundle, x, hw=hw)
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
    backend: Literal["sim", "lava"] = typer.Option("sim", help="'sim' (bit-exact, fast) or "
                                                   "'lava' (Lava's CPU simulator)."),
    seed: int = typer.Option(0, help="Seed of the task (classes, samples) and of the embedded "
                             "data set's generator."),
    root: Optional[Path] = typer.Option(None, help="Folder of a real data set's recordings "
                                        "(default: none, embedded data sets need none)."),
) -> None:
    """Learn one task on chip with SOEL (one shot at a time), then classify its queries."""
    import numpy as np

    from metaloihi.datasets.registry import load_dataset
    from metaloihi.datasets.tasks import sample_task
    from metaloihi.bridge.bundle import read_bundle
    from metaloihi.onchip.session import adapt as run_adapt
    from metaloihi.datasets.tasks import support_order
    b = read_bundle(bundle)
    n_out = b.net[-1].spec.out_features
    if ways != n_out:
        raise UserError(f"--ways={ways} but the bundle's head has {n_out} output neurons")
    dataset = dataset or b.meta.get("dataset", "digits")
    task = sample_task(load_dataset(dataset, seed=seed, root=root), split, ways, shots, queries,
                       np.random.default_rng(seed))
    xs, ys = support_order(b.encode(task.support_x), task.support_y.numpy(), ways)
    res = run_adapt(bundle, xs, ys, b.encode(task.query_x), task.query_y.numpy(),
                    backend=backend)
    r = res.rule
    typer.echo(f"{ways}-way {shots}-shot on {dataset}/{split} ({backend}): accuracy "
               f"{res.accuracy:.3f} on {len(res.predictions)} queries ({res.silent} silent); "
               f"rule dw = {r.dw_string()}, window {r.window} + 1 steps, {res.seconds:.1f} s")


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
    seed: Optional[int] = typer.Option(None, help="Seed of theta0's initialisation, the tasks "
                                       "and stochastic rounding: train.seed (default: the "
                                       "config's, 0)."),
    device: Optional[Literal["cpu", "cuda"]] = typer.Option(
        None, help="Torch device: train.device (default: the config's, cpu); cuda needs a "
                   "CUDA build of torch and a GPU."),
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
    seed: int = typer.Option(1234, min=0, help="Seed of the meta-test tasks drawn."),
    dataset: Optional[str] = typer.Option(None, help="Data set to evaluate on (default: the "
                                          "checkpoint's); same frame shape as trained on."),
    root: Optional[Path] = typer.Option(None, help="Folder of a real data set's recordings "
                                        "(default: the checkpoint's data.root)."),
    device: Literal["cpu", "cuda"] = typer.Option("cpu", help="Torch device; cuda needs a "
                                                  "CUDA build of torch and a GPU."),
) -> None:
    """N-way K-shot test accuracy with 95% confidence intervals over many meta-test tasks."""
    import json
    from rich.console import Console
    from rich.table import Table
    from metaloihi.offline.evaluate import evaluate as run_eval
    from metaloihi.offline.train import resolve_device
    if tasks < 2:
        raise UserError(f"--tasks={tasks}; expected >= 2 (a confidence interval needs two)")
    try:
        k_shots = tuple(int(k) for k in shots.split(","))
    except ValueError:
        raise UserError(f"--shots={shots!r}; expected a comma list of integers") from None
    if min(k_shots) < 1:
        raise UserError(f"--shots={shots!r}; expected integers >= 1")
    resolve_device(device, "--device")
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


def _one_line(text: str) -> str:
    return " ".join(part.strip() for part in str(text).splitlines() if part.strip())


def _usage_message(err) -> str:
    """A click/typer usage error as one line, with the offending value where typer's message
    leaves it out (its pydantic coercion keeps the input on the chained error)."""
    msg = _one_line(err.format_message()).replace("Value error, ", "")
    errors = getattr(err.__cause__, "errors", None)
    if callable(errors):
        try:
            got = errors()[0].get("input")
        except Exception:  # noqa: BLE001 - only decoration
            got = None
        if got is not None and repr(str(got)) not in msg:
            msg = f"{msg.rstrip('.')}, got {str(got)!r}"
    ctx = getattr(err, "ctx", None)
    if ctx is not None:
        msg += f" (see '{ctx.command_path} --help')"
    return msg


def _memory_limit() -> str:
    """The address-space limit (ulimit -v) in words, when one is set: the usual reason a
    MemoryError hits long before the machine's memory is used up."""
    import resource
    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    if soft == resource.RLIM_INFINITY:
        return ""
    return f" (address-space limit `ulimit -v` {soft // 1024} KiB = {soft / 2 ** 30:.1f} GiB)"


# the file system refusing a write: the user's disk, folder or permissions, not a bug
_FS_ERRNOS = {errno.ENOSPC, errno.EROFS, errno.EDQUOT, errno.EACCES, errno.EPERM, errno.EFBIG,
              errno.ENAMETOOLONG}


def _fs_failure(err: OSError) -> str | None:
    """An OSError of the file system (full disk, read-only folder, permissions) in one line
    naming the file; None for other OSErrors (those stay internal errors)."""
    if err.errno not in _FS_ERRNOS:
        return None
    where = f" {str(err.filename)!r}" if err.filename else ""
    return f"cannot write{where}: {err.strerror or os.strerror(err.errno)}"


def guarded(fn) -> int:
    """Run fn() and turn what it raises into an exit code and at most one line on stderr:
    0 ok, 1 the user's mistake (UserError, a usage error, missing Lava, an interrupt), 2 a bug
    (with the traceback and a hint to report it). `main` runs the CLI through it. A watchdog
    (metaloihi/watchdog.py) ends a Lava run whose worker died; SIGTERM/SIGHUP interrupt like
    Ctrl-C, and an interrupted Lava run's workers and shared memory are reaped."""
    from metaloihi.watchdog import Watchdog, signals_interrupt
    with Watchdog() as dog, signals_interrupt():
        return _guarded(fn, lambda: _end_lava_run(dog))


def _end_lava_run(dog) -> None:
    """After an interrupt in a Lava run: kill its workers, unlink its segments, exit now (its
    runtime's threads could hold the interpreter's shutdown forever)."""
    from metaloihi.watchdog import lava_active
    if not lava_active():
        return
    procs, _ = dog.reap(everything=True)
    if not procs:       # no Lava run was under way (e.g. an in-process test after a Lava one)
        return
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(1)


def _guarded(fn, interrupted) -> int:
    from metaloihi.base.lava_support import LavaUnavailable
    from typer._click.exceptions import ClickException, NoArgsIsHelpError
    try:
        rv = fn()
    except UserError as err:
        typer.echo(f"error: {_one_line(err)}", err=True)
        return 1
    except LavaUnavailable as err:
        typer.echo(f"error: {_one_line(err)}", err=True)
        return 1
    except (typer.Abort, KeyboardInterrupt):
        typer.echo("aborted", err=True)
        interrupted()
        return 1
    except Interrupted as err:          # a signal that stopped a command at once
        typer.echo(f"aborted ({_one_line(err)})", err=True)
        interrupted()
        return 1
    except MemoryError:
        typer.echo(f"error: out of memory{_memory_limit()}; use a smaller meta_batch, "
                   "val_tasks or data set, or raise the limit", err=True)
        return 1
    except NoArgsIsHelpError as err:    # a bare `metaloihi` or group: the help, exit 1
        err.show()
        return 1
    except ClickException as err:       # click/typer usage errors: unknown command/option, ...
        typer.echo(f"error: {_usage_message(err)}", err=True)
        return 1
    except OSError as err:
        if _fs_failure(err) is None:
            return _internal(err)
        typer.echo(f"error: {_fs_failure(err)}", err=True)
        return 1
    except Exception as err:  # noqa: BLE001 - the last line of defence
        cause = _interrupt_behind(err)
        if cause is not None:     # cleanup (e.g. Lava's stop) failed after a signal: the signal
            typer.echo(f"aborted ({_one_line(cause) or 'interrupted'})", err=True)
            interrupted()
            return 1
        return _internal(err)
    if rv == 130:       # typer turns Ctrl-C inside a command into Exit(130)
        typer.echo("aborted (interrupted)", err=True)
        interrupted()
        return 1
    return rv if isinstance(rv, int) and not isinstance(rv, bool) else 0


def _interrupt_behind(err: BaseException):
    """The Interrupted / KeyboardInterrupt an exception was raised while handling, if any."""
    seen = set()
    cur = err.__context__
    while cur is not None and id(cur) not in seen:
        if isinstance(cur, (Interrupted, KeyboardInterrupt)):
            return cur
        seen.add(id(cur))
        cur = cur.__context__
    return None


def _internal(err: BaseException) -> int:
    """A bug: the traceback, a hint to report it, exit 2."""
    import traceback
    traceback.print_exception(type(err), err, err.__traceback__)
    typer.echo(f"internal error: {type(err).__name__}: {err}\n"
               "This is a bug in metaloihi: please report it with the traceback above.",
               err=True)
    return 2


@app.command()
def report(
    out: Path = typer.Option(Path("runs/report"), help="Folder for index.html and its PNGs."),
    log: list[Path] = typer.Option([], help="Meta-training log, metrics.jsonl[.gz] (repeat)."),
    eval_: list[Path] = typer.Option([], "--eval",
                                     help="`metaloihi evaluate --out` JSON (repeat)."),
    bundle: list[Path] = typer.Option([], help="Deployment bundle .h5 (repeat)."),
    gap: list[Path] = typer.Option([], help="Deployment-gap JSON (benchmarks/deployment_gap.py "
                                   "--json; metaloihi.report.GAP_FORMAT)."),
    speed: list[Path] = typer.Option([], help="sim/-vs-Lava speed JSON (benchmarks/"
                                     "sim_vs_lava.py --json, or metaloihi.report.SPEED_FORMAT)."),
    figure: list[Path] = typer.Option([], help="A PNG to show as is, e.g. the demo's (repeat)."),
    title: str = typer.Option("metaloihi report", help="Page title."),
) -> None:
    """One self-contained HTML page (+ PNGs beside it): accuracy against the paper, training
    curves, deployment gap, sim/ vs Lava speed, SOEL theta/eta, bundles. With no input named,
    it takes what it finds under ./checkpoints/; anything absent shows as "not measured"."""
    from metaloihi import report as rp
    inputs = rp.Inputs(list(log), list(eval_), list(bundle), list(gap), list(speed), list(figure))
    if not inputs.all():
        inputs = rp.default_inputs("checkpoints")
        typer.echo(f"no inputs named: using {len(inputs.all())} file(s) under checkpoints/")
    typer.echo(f"wrote {rp.build_report(out, inputs, title=title)}")


def main(argv: list[str] | None = None) -> None:
    sys.exit(guarded(lambda: app(args=argv, standalone_mode=False, prog_name="metaloihi")))
