"""Options several commands share, defined once so that the flag, its help and its checks are
the same everywhere: `--root` (the folder of a real data set's recordings), `--device` (a torch
device: cpu, cuda or cuda:K), `--seed` (0 .. 2**32 - 1), positive finite numbers, and each
command's input and output paths (`io_paths`)."""
from __future__ import annotations

import functools
import inspect
import math
from pathlib import Path
from typing import Annotated, Optional

import typer

from metaloihi.datasets.names import EMBEDDED, OWN, REAL

ROOT_HELP = (f"Folder of a real data set's recordings ({', '.join(REAL)}; read as published, "
             f"never downloaded) or of your own ({', '.join(OWN)}: one subfolder per class); "
             f"the embedded ones ({', '.join(EMBEDDED)}) take none")

# `root: RootOption = None` in a command: the data set it names is loaded with root=ROOT
RootOption = Annotated[Optional[Path], typer.Option(
    "--root", metavar="DIR", help=f"{ROOT_HELP} (default: none).")]

DEVICE_METAVAR = "cpu|cuda|cuda:K"
DEVICE_HELP = ("Torch device: cpu, cuda or cuda:K (the K-th GPU); cuda needs a CUDA build of "
               "torch and a GPU, never falls back to the CPU")


def check_device(value: Optional[str]) -> Optional[str]:
    """--device's callback: the value as given, or a one-line UserError naming it (not one of
    cpu, cuda, cuda:K; or CUDA, or GPU K, not usable here). None (the config's) passes."""
    if value is None:
        return None
    from metaloihi.offline.train import resolve_device
    resolve_device(value, "--device")
    return value


def device_option(default: Optional[str], default_text: str):
    """A `--device` typer.Option with the shared help and check; default_text says what the
    default is in words."""
    return typer.Option(default, "--device", metavar=DEVICE_METAVAR, callback=check_device,
                        help=f"{DEVICE_HELP} (default: {default_text}).", show_default=False)


# --- seeds: one range for every command (numpy's generators take 0 .. 2**32 - 1 as given) -----
SEED_MAX = 2 ** 32 - 1


def seed_option(default: int, help: str):
    """A `--seed` typer.Option in [0, 2**32 - 1]: out of range is a usage error naming it."""
    return typer.Option(default, "--seed", min=0, max=SEED_MAX, help=help)


# --- numbers with a physical range (a zero, a denormal or an inf makes a figure meaningless) ---
def finite_in(lo: float, hi: float):
    """A float option's callback: None, or a finite number in [lo, hi] (one-line usage error)."""
    def check(value):
        if value is not None and not (math.isfinite(value) and lo <= value <= hi):
            raise typer.BadParameter(f"{value!r} must be a finite number in [{lo:g}, {hi:g}]")
        return value
    return check


# --- what a command reads and writes (base/paths.py checks it before the command runs) ---------
def _flag(param: inspect.Parameter) -> str:
    """The name a user typed for a parameter: its long flag, or its argument's metavar."""
    info = param.default
    for meta in getattr(param.annotation, "__metadata__", ()):      # Annotated[..., Option]
        info = meta
    decls = [d for d in getattr(info, "param_decls", ()) or () if d.startswith("--")]
    if decls:
        return decls[0]
    if type(info).__name__ == "ArgumentInfo":
        return getattr(info, "metavar", None) or param.name.upper()
    return "--" + param.name.replace("_", "-")


def io_paths(inputs: tuple = (), outputs: tuple = (), folders: tuple = (),
             cleared_if: tuple = ()):
    """Declare a command's path parameters by name: inputs (read), outputs (files written),
    folders (folders written); cleared_if (FOLDER, FLAG): FOLDER is emptied when the bool
    parameter FLAG is set. The command then refuses, before any work, an output that is an
    input or another output, a file output that is a folder and the reverse, and clearing a
    folder that holds an input (base/paths.check_io)."""
    def wrap(fn):
        sig = inspect.signature(fn)

        @functools.wraps(fn)
        def command(*args, **kwargs):
            from metaloihi.base.paths import check_io
            bound = sig.bind_partial(*args, **kwargs).arguments
            named = lambda names: {_flag(sig.parameters[n]): bound.get(n) for n in names}  # noqa: E731
            cleared = [folder for folder, flag in cleared_if if bound.get(flag)]
            check_io(named(inputs), named(outputs), named(folders), named(cleared))
            return fn(*args, **kwargs)
        return command
    return wrap
