"""The one strict reader of checkpoint files, shared by offline/ (training, evaluation) and
bridge/ (export), which may not import each other: torch.load(weights_only=True), so a file
holding anything but tensors and plain values is refused, never unpickled; every failure is one
line naming the file. torch is imported here lazily: the base layer itself needs only numpy."""
from __future__ import annotations

from pathlib import Path

from metaloihi.base.atomic import regular_input
from metaloihi.base.errors import UserError

CHECKPOINT_FORMAT = "metaloihi.maml/1"
REQUIRED = ("meta", "config")    # what every reader needs (export, evaluate, resume)


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
