"""Options several commands share, defined once so that the flag, its help and its checks are
the same everywhere: `--root` (the folder of a real data set's recordings) and `--device`
(a torch device: cpu, cuda or cuda:K)."""
from __future__ import annotations

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
