"""The one strict reader of checkpoint files, shared by offline/ (training, evaluation) and
bridge/ (export), which may not import each other: torch.load(weights_only=True), so a file
holding anything but tensors and plain values is refused, never unpickled; every failure is one
line naming the file. torch is imported here lazily: the base layer itself needs only numpy."""
from __future__ import annotations

from pathlib import Path

from metaloihi.base.atomic import regular_input
from metaloihi.base.bounds import refuse
from metaloihi.base.errors import UserError

CHECKPOINT_FORMAT = "metaloihi.maml/1"
REQUIRED = ("meta", "config")    # what every reader needs (export, evaluate, resume)
# the deployable network's description: offline/describe.py writes it, bridge/checkpoint_file.py
# reads it
NETWORK_KEY = "network"
NETWORK_FORMAT = "metaloihi.network/1"
# meta's prefix of theta0's tensors (sim/float_lif.py's parameter keys under it): offline/maml.py
# writes them, bridge/checkpoint_file.py reads them
THETA0 = "theta0."


def theta0_key(key: str) -> str:
    """meta's key of theta0's parameter `key` (a sim.float_lif key)."""
    return THETA0 + key


def theta0_params(meta: dict) -> dict:
    """theta0's entries of a checkpoint's meta, under their sim.float_lif keys."""
    return {k[len(THETA0):]: v for k, v in meta.items() if k.startswith(THETA0)}


def _why(err: Exception) -> str:
    """torch's unpickling error in one line, without its advice to re-run unsafely."""
    text = " ".join(str(err).split())
    for marker in ("WeightsUnpickler error:", "Weights only load failed."):
        if marker in text:
            return text.split(marker, 1)[1].strip() or text
    return text or type(err).__name__


def load_checkpoint_file(path: str | Path) -> dict:
    """The checkpoint's dict, checked for its format and the REQUIRED keys."""
    import torch
    path = Path(path)
    if path.is_dir():
        raise UserError(f"checkpoint {str(path)!r} is a folder, expected a .pt file")
    regular_input(path, "checkpoint")      # a FIFO would block torch.load forever
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - any unpickling failure is a bad file
        why = _why(err)
        if "Unsupported class" in why or "Unsupported global" in why:
            raise UserError(f"checkpoint {str(path)!r} refused: it holds more than tensors and "
                            f"plain values ({why}); checkpoints are loaded with "
                            "torch.load(weights_only=True), never as arbitrary pickles") from None
        raise UserError(f"checkpoint {str(path)!r} cannot be read (not a torch checkpoint, or "
                        f"damaged/truncated): {why}") from None
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        got = state.get("format") if isinstance(state, dict) else type(state).__name__
        raise UserError(f"checkpoint {str(path)!r} is not a {CHECKPOINT_FORMAT} file "
                        f"(format {got!r})")
    missing = [k for k in REQUIRED if not isinstance(state.get(k), dict)]
    if missing:
        raise UserError(f"checkpoint {str(path)!r} lacks required key(s) {missing} (a "
                        f"{CHECKPOINT_FORMAT} file has meta, config, iteration, split, ...)")
    return state


def check_finite(path: str | Path, named, consequence: str) -> None:
    """The one NaN/inf check of checkpoints (training, evaluation and export read through it):
    NaN/inf in any floating (or complex) tensor of `named` ((name, value) pairs) is one
    UserError naming the file, the tensor, the index and the value, then `consequence`. A value
    that is not a tensor is refused too (a checkpoint's parameters are tensors)."""
    import torch
    for key, val in named:
        where = f"checkpoint {str(path)!r}: {key}"
        if not isinstance(val, torch.Tensor):
            refuse(where, val, "a tensor")
        if not (val.is_floating_point() or val.is_complex()):
            continue
        bad = ~torch.isfinite(val.detach())
        if bad.any():
            at = [int(i) for i in torch.nonzero(bad)[0]] if bad.dim() else []
            refuse(f"{where}{at if at else ''}", float(val.detach()[bad].flatten()[0].real),
                   f"a finite number (a diverged run?); {consequence}")
