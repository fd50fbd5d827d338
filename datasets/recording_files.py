"""One recording file in any format the readers know -> its events and the sensor size it
states: the `events` data set's (events_folder.py) view of readers.py and aedat.py.

| suffix | format | sensor size stated |
|---|---|---|
| .bin | N-MNIST (readers.read_nmnist_bin, through tonic.io.read_mnist_file) | 34 x 34 |
| .aedat | AEDAT 2.0 (jAER, DVS128) or 3.1, told apart by the first line | 128 x 128 for 2.0 |
| .aedat4 | AEDAT 4.0 (DV software) | sizeX/sizeY of its header, if there |
| .npy, .npz | tonic-style structured events x, y, t, p (readers.read_numpy_events) | .npz's |

Every reader builds its events through event_checks.checked_events (what a file may hold;
sorted by time); a file with no events is a UserError naming it.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from metaloihi.base.errors import UserError
from metaloihi.datasets.aedat import DVS128_SIZE, read_aedat2, read_aedat31, read_aedat4_sized
from metaloihi.datasets.readers import NMNIST_SIZE, read_nmnist_bin, read_numpy_events

SUFFIXES = (".bin", ".aedat", ".aedat4", ".npy", ".npz")


@dataclass(frozen=True)
class Recording:
    events: np.ndarray                    # EVENT_DTYPE, sorted by t
    sensor_size: tuple[int, int] | None   # (W, H) the file states, None where it states none
    format: str                           # "N-MNIST", "AEDAT 2.0", ... (for messages)


def _aedat(path: Path) -> tuple[np.ndarray, tuple[int, int] | None, str]:
    with open(path, "rb") as f:
        head = f.read(12)
    if head.startswith(b"#!AER-DAT2"):
        return read_aedat2(path), DVS128_SIZE, "AEDAT 2.0"
    if head.startswith(b"#!AER-DAT3"):
        return read_aedat31(path), None, "AEDAT 3.1"
    if head.startswith(b"#!AER-DAT4"):
        ev, size = read_aedat4_sized(path)
        return ev, size, "AEDAT 4.0"
    raise UserError(f"{path}: not an AEDAT file (first bytes {head!r}); expected "
                    "'#!AER-DAT2.0', '#!AER-DAT3.1' or '#!AER-DAT4.0'")


def read_recording(path) -> Recording:
    """The events of one file (format by suffix, AEDAT's version by its first line)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".bin":
        ev, size, fmt = read_nmnist_bin(path), NMNIST_SIZE, "N-MNIST"
    elif suffix in (".aedat", ".aedat4"):
        if not path.is_file():
            raise UserError(f"{path}: file not found")
        ev, size, fmt = _aedat(path)
    elif suffix in (".npy", ".npz"):
        ev, size = read_numpy_events(path)
        fmt = f"NumPy {suffix}"
    else:
        raise UserError(f"{path}: suffix {path.suffix!r} is not an event format this data set "
                        f"reads ({', '.join(SUFFIXES)}); move the file out of the class folder")
    if len(ev) == 0:
        raise UserError(f"{path}: no events ({fmt}): nothing to learn from")
    return Recording(ev, size, fmt)
