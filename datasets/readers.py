"""Readers for the real recordings in their published formats, one sample (or recording) each.

N-MNIST .bin through tonic.io.read_mnist_file, ASL-DVS .mat as tonic's ASLDVS reads it, DVS128
Gesture AEDAT 3.1 + <name>_labels.csv, N-Omniglot AEDAT4 + csv of sample boundaries. All
return EVENT_DTYPE arrays built by event_checks.checked_events (what a file may hold; label
intervals: event_checks.check_intervals); every failure is a UserError naming the file.
"""
from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from metaloihi.datasets.aedat import read_aedat4, read_aedat31
from metaloihi.datasets.event_checks import check_intervals, checked_events
from metaloihi.base.errors import UserError

NMNIST_SIZE = (34, 34)
GESTURE_SIZE = (128, 128)
ASL_SIZE = (240, 180)
DAVIS346_SIZE = (346, 260)


def read_nmnist_bin(path) -> np.ndarray:
    """One N-MNIST sample: 5 bytes per event (x, y, polarity bit + 23-bit timestamp in us)."""
    from tonic.io import read_mnist_file

    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: file not found")
    size = path.stat().st_size
    if size == 0:
        raise UserError(f"{path}: empty file (0 bytes), no events: not an N-MNIST sample")
    if size % 5:
        raise UserError(f"{path}: {size} bytes is not a whole number of 5-byte N-MNIST events "
                        f"(truncated? the last event starts at byte offset {size - size % 5})")
    # tonic fills fields positionally in x, y, t, p order: pass its NMNIST dtype
    xytp = np.dtype([("x", np.int64), ("y", np.int64), ("t", np.int64), ("p", np.int64)])
    raw = read_mnist_file(str(path), dtype=xytp)
    return checked_events(path, raw["x"], raw["y"], raw["p"], raw["t"], sensor=NMNIST_SIZE,
                          said="N-MNIST", locate=lambda k: f" (byte offset {5 * k})")


def read_asl_mat(path) -> np.ndarray:
    """One ASL-DVS sample (.mat with column vectors ts, x, y, pol); y flipped as tonic does."""
    import scipy.io

    path = Path(path)
    try:
        m = scipy.io.loadmat(str(path))
    except FileNotFoundError:
        raise UserError(f"{path}: file not found") from None
    except Exception as err:  # noqa: BLE001 - scipy raises many types for damaged files
        raise UserError(f"{path}: not a readable MATLAB .mat file ({type(err).__name__}: {err})") \
            from None
    missing = [k for k in ("ts", "x", "y", "pol") if k not in m]
    if missing:
        raise UserError(f"{path}: ASL-DVS .mat lacks variables {missing}; expected ts, x, y, pol")
    ev = checked_events(path, m["x"], m["y"], m["pol"], m["ts"], sensor=ASL_SIZE,
                        said="ASL-DVS", names={"t": "ts", "p": "pol"}, label="variable")
    ev["y"] = ASL_SIZE[1] - 1 - ev["y"]
    return ev


def _csv_rows(path, n_cols: int, what: str) -> list[tuple[int, list[int]]]:
    """(line number, whole numbers) of each data line of a label csv; a first line that is
    not numbers is its header."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: {what} file not found")
    rows = []
    with open(path, newline="") as f:
        for i, row in enumerate(csv.reader(f)):
            row = [c.strip() for c in row if c.strip()]
            if not row:
                continue
            try:
                vals = [float(c) for c in row]
            except ValueError:
                if i == 0:
                    continue  # header line
                raise UserError(f"{path}: line {i + 1} {row!r} is not numeric; expected {what}")\
                    from None
            bad = next((c for c, v in zip(row, vals) if not np.isfinite(v) or v != int(v)), None)
            if bad is not None:
                raise UserError(f"{path}: line {i + 1}: {bad!r} is not a whole number; expected "
                                f"{what}")
            if len(vals) < n_cols:
                raise UserError(f"{path}: line {i + 1} has {len(vals)} columns; expected {n_cols}")
            rows.append((i + 1, [int(v) for v in vals]))
    return rows


def _cut(events, rows, columns, names, labels_path, recording) -> list[np.ndarray]:
    """The events of each row's [start, end) us, t from its start, after check_intervals."""
    (s, e), lines = columns, [line for line, _ in rows]
    starts, ends = [r[s] for _, r in rows], [r[e] for _, r in rows]
    check_intervals(labels_path, lines, starts, ends, names, events, recording)
    out = []
    for start, end in zip(starts, ends):
        seg = events[(events["t"] >= start) & (events["t"] < end)].copy()
        seg["t"] -= start
        out.append(seg)
    return out


def read_gesture_recording(aedat_path) -> list[tuple[np.ndarray, int]]:
    """A DVS128 Gesture recording (userXX_<light>.aedat + userXX_<light>_labels.csv) ->
    [(events of one gesture with t from its start, class 0..10)], classes as tonic's DVSGesture."""
    aedat_path = Path(aedat_path)
    labels_path = aedat_path.with_name(aedat_path.stem + "_labels.csv")
    rows = _csv_rows(labels_path, 3, "class,startTime_usec,endTime_usec")
    for line, (cls, *_) in rows:
        if not 1 <= cls <= 11:
            raise UserError(f"{labels_path}: line {line}: class = {cls}; expected 1..11")
    ev = read_aedat31(aedat_path, sensor=GESTURE_SIZE, said="DVS128 Gesture")
    segs = _cut(ev, rows, (1, 2), ("startTime_usec", "endTime_usec"), labels_path, aedat_path)
    return [(seg, r[0] - 1) for seg, (_, r) in zip(segs, rows)]


def read_nomniglot_character(folder) -> list[np.ndarray]:
    """An N-Omniglot character folder (one .aedat4 with the 20 drawings + a .csv of their
    [index, start, end] timestamps) -> one event array per drawing, t from its start."""
    folder = Path(folder)
    aedats, csvs = sorted(folder.glob("*.aedat4")), sorted(folder.glob("*.csv"))
    if len(aedats) != 1 or len(csvs) != 1:
        raise UserError(f"{folder}: expected one .aedat4 and one .csv (N-Omniglot layout); found "
                        f"{len(aedats)} .aedat4 and {len(csvs)} .csv")
    ev = read_aedat4(aedats[0], sensor=DAVIS346_SIZE, said="N-Omniglot's DAVIS346")
    rows = _csv_rows(csvs[0], 3, "index,start,end timestamps")
    return _cut(ev, rows, (1, 2), ("start", "end"), csvs[0], aedats[0])


def _structured_events(arr, path, sensor=None) -> np.ndarray:
    """A structured array with fields x, y, t, p (tonic's dtypes) -> checked EVENT_DTYPE
    events (event_checks.py)."""
    names = getattr(arr.dtype, "names", None) or ()
    missing = [f for f in ("x", "y", "t", "p") if f not in names]
    if missing:
        what = f"fields {list(names)}" if names else f"a plain {arr.dtype} array {arr.shape}"
        raise UserError(f"{path}: not events ({what}; lacks {missing}): expected a structured "
                        "array with fields x, y, t, p as tonic writes them")
    arr = arr.ravel()
    return checked_events(path, arr["x"], arr["y"], arr["p"], arr["t"], sensor=sensor,
                          said="its sensor_size")


def read_numpy_events(path) -> tuple[np.ndarray, tuple[int, int] | None]:
    """tonic-style events saved with NumPy -> (EVENT_DTYPE array, sensor size (W, H) or None).

    .npy: one structured array with fields x, y, t (us), p. .npz: that array under the key
    "events" (or as its only array), and optionally "sensor_size" = [W, H] or tonic's
    [W, H, 2]. Nothing is unpickled."""
    import zipfile

    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: file not found")
    try:
        loaded = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as err:
        raise UserError(f"{path}: not a readable NumPy {path.suffix} file ({err})") from None
    if isinstance(loaded, np.ndarray):
        return _structured_events(loaded, path), None
    with loaded:
        keys = list(loaded.files)
        arrays = [k for k in keys if k != "sensor_size"]
        key = "events" if "events" in keys else (arrays[0] if len(arrays) == 1 else None)
        if key is None:
            raise UserError(f"{path}: .npz holds {keys}; expected an array 'events' (fields x, "
                            "y, t, p) and optionally 'sensor_size'")
        try:
            events, size = loaded[key], loaded["sensor_size"] if "sensor_size" in keys else None
        except (ValueError, OSError, zipfile.BadZipFile) as err:
            raise UserError(f"{path}: damaged .npz ({err})") from None
    if size is not None:
        size = np.asarray(size).ravel()
        if size.dtype.kind not in "iu" or len(size) not in (2, 3) or (size[:2] < 1).any():
            raise UserError(f"{path}: sensor_size {size.tolist()}; expected [W, H] (or tonic's "
                            "[W, H, 2]) of integers >= 1")
        size = (int(size[0]), int(size[1]))
    return _structured_events(events, f"{path} [{key}]", size), size
