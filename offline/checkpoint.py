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
  network       the deployable network in plain values (offline/describe.py writes it,
                bridge/checkpoint_file.py reads it: export needs neither offline/ nor the data
                set); files from before it existed: studies/upgrade.py adds it
  versions      {"metaloihi", "torch", "python"}
"""
from __future__ import annotations

import platform
from pathlib import Path

import torch

from metaloihi import __version__
from metaloihi.base.atomic import atomic_path
from metaloihi.base.torch_file import CHECKPOINT_FORMAT as FORMAT
from metaloihi.base.torch_file import (REQUIRED, check_finite,  # noqa: F401 (readers)
                                       load_checkpoint_file)



def versions() -> dict:
    return {"metaloihi": __version__, "torch": str(torch.__version__),
            "python": platform.python_version()}


def save(path: str | Path, state: dict) -> None:
    with atomic_path(path, "checkpoint") as tmp:
        torch.save({"format": FORMAT, "versions": versions(), **state}, tmp)




def _tensors(state: dict):
    """(name, tensor) of the meta-parameters and of the optimiser's state (Adam's moments: a
    NaN there poisons a resumed run as surely as one in the weights)."""
    yield from state["meta"].items()
    opt = state.get("optimizer")
    if isinstance(opt, dict) and isinstance(opt.get("state"), dict):
        for idx, slots in opt["state"].items():
            for name, val in (slots.items() if isinstance(slots, dict) else ()):
                if isinstance(val, torch.Tensor):
                    yield f"optimizer state {idx}.{name}", val


def load(path: str | Path) -> dict:
    path = Path(path)
    state = load_checkpoint_file(path)
    # one check at load time for every consumer (evaluate, train --init / --resume): a meta
    # entry that is not a tensor, or a diverged run's NaN/inf, never flows on silently
    check_finite(path, _tensors(state), "a checkpoint with NaN/inf values is refused")
    return state
