"""Checkpoints: tensors and plain values only (loadable with torch.load(weights_only=True)),
written atomically (temporary file in the same folder, then os.replace), so a kill -9 at any
moment leaves the previous checkpoint whole.

Layout (a dict):
  format        "metaloihi.maml/1"
  meta          the meta-parameters (offline.maml: theta0.*, inner_lr.*, soel.*)
  optimizer     Adam's state_dict (absent in exported/best-only files is fine)
  iteration     outer iterations done
  best_val      best meta-validation accuracy so far (and best_iteration)
  config        offline.config.to_dict(cfg)
  split         {split name: [class ids]} of the data set trained on
  versions      {"metaloihi", "torch", "python"}
"""
from __future__ import annotations

import os
import platform
from pathlib import Path

import torch

from metaloihi import __version__
from metaloihi.errors import UserError

FORMAT = "metaloihi.maml/1"


def versions() -> dict:
    return {"metaloihi": __version__, "torch": str(torch.__version__),
            "python": platform.python_version()}


def save(path: str | Path, state: dict) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    torch.save({"format": FORMAT, "versions": versions(), **state}, tmp)
    with open(tmp, "rb") as fh:   # data on disk before the rename makes it visible
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def load(path: str | Path) -> dict:
    path = Path(path)
    if not path.exists():
        raise UserError(f"checkpoint {str(path)!r} does not exist")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - any unpickling failure is a bad file
        raise UserError(f"checkpoint {str(path)!r} cannot be read: {err}") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise UserError(f"checkpoint {str(path)!r} is not a {FORMAT} file")
    return state
