"""The one check of what an event file may hold: every reader builds its events here.

Each reader (readers.py, aedat.py) hands its raw columns x, y, p, t to `checked_events`,
before any cast (a float x of 1e6 would wrap in int16, a NaN timestamp become -2^63); label
files' sample intervals go through `check_intervals`. A real sensor file holds:

- numbers: integer, unsigned, boolean (polarity only) or floating columns whose values are
  whole (MATLAB, hence ASL-DVS, stores doubles); text, cells, records or complex numbers are
  refused by the name of the column. One value per event in every column, vectors only.
- pixels: x, y whole numbers >= 0, inside the sensor where the format, the file or the caller
  states its size (N-MNIST 34x34, DVS128 128x128, ASL-DVS 240x180, an AEDAT4 header, an .npz
  sensor_size, DAVIS346 for N-Omniglot), else at most 32767 (what events store).
- polarity: 0/1 (OFF/ON), -1/1 or booleans; one file uses one coding (0 and -1 together are
  refused).
- time: whole microseconds, finite, >= 0 (a sensor's clock counts up from 0; a negative
  value is a wrapped 32-bit clock or a bad conversion) and at most 2^62. The clock only runs
  forward, but drivers deliver events in packets and neighbouring packets can interleave a
  little (jAER and libcaer report such "non-monotonic timestamps"): an event up to
  TIME_JITTER_US before the latest earlier one is tolerated and the events are sorted by time
  (stable); a larger step back is a clock reset, recordings joined together or damaged bytes,
  and is refused.

Every refusal is one UserError naming the file, the column, the first bad event's index (and
where the reader knows it, its byte offset) and its value.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from metaloihi.base.errors import UserError
from metaloihi.datasets.events import EVENT_DTYPE

TIME_JITTER_US = 10_000          # the largest step back in time taken as packet interleaving
MAX_T_US = 2 ** 62               # time differences stay inside int64
MAX_PIXEL = int(np.iinfo(EVENT_DTYPE["x"]).max)
FIELDS = ("x", "y", "p", "t")
_KINDS = {"x": "iuf", "y": "iuf", "p": "biuf", "t": "iuf"}
_WHAT = {"U": "text", "S": "text", "O": "objects: a cell array or struct",
         "c": "complex numbers", "V": "records", "M": "dates", "m": "time spans",
         "b": "booleans"}


def _show(v) -> str:
    """A value as the user would write it: whole floats without '.0', NaN as nan."""
    v = v.item() if hasattr(v, "item") else v
    if isinstance(v, float) and np.isfinite(v) and v == int(v):
        return str(int(v))
    return str(v)


def _column(where, name: str, label: str, field: str, a) -> np.ndarray:
    a = np.asarray(a)
    if a.dtype.kind not in _KINDS[field]:
        what = _WHAT.get(a.dtype.kind, "values")
        raise UserError(f"{where}: {label} {name!r} holds {what} ({a.dtype}); expected "
                        "numbers, one per event")
    if sum(d > 1 for d in a.shape) > 1:
        raise UserError(f"{where}: {label} {name!r} has shape {a.shape}; expected a vector, "
                        "one value per event")
    return a.ravel()


def _first(mask) -> int | None:
    bad = np.flatnonzero(mask)
    return int(bad[0]) if bad.size else None


def _whole(a: np.ndarray, lo: int, hi: int):
    """Index of the first value that is not a whole number in [lo, hi], or None."""
    if a.dtype.kind == "f":
        with np.errstate(invalid="ignore"):
            bad = ~np.isfinite(a) | (a != np.floor(a)) | (a < lo) | (a > hi)
    else:
        bad = (a < lo) | (a > hi)
    return _first(bad)


def check_in_sensor(where, ev: np.ndarray, sensor: tuple[int, int], said: str,
                    names: dict | None = None, locate: Callable[[int], str] | None = None):
    """Every event's pixel inside the (W, H) sensor that `said` states, else a UserError
    naming the first one outside."""
    w, h = sensor
    k = _first((ev["x"] >= w) | (ev["y"] >= h))
    if k is not None:
        nx, ny = (names or {}).get("x", "x"), (names or {}).get("y", "y")
        raise UserError(f"{where}: event {k}{locate(k) if locate else ''} at pixel "
                        f"({_show(ev['x'][k])}, {_show(ev['y'][k])}) is outside the {w}x{h} "
                        f"sensor ({said}; {nx} in 0..{w - 1}, {ny} in 0..{h - 1})")


def checked_events(where, x, y, p, t, *, sensor: tuple[int, int] | None = None,
                   said: str = "", names: dict | None = None, label: str = "field",
                   locate: Callable[[int], str] | None = None) -> np.ndarray:
    """Raw columns of one file -> EVENT_DTYPE events sorted by time, after the module's checks.

    where: the file (messages start with it). sensor (W, H): the size the format, the file or
    the caller states, `said` saying which. names: the file's own names of the columns
    ({"t": "ts", "p": "pol"} for a .mat), label what a column is ("field", "variable").
    locate(k): where event k sits in the file, e.g. " (byte offset 10)"."""
    names = {f: (names or {}).get(f, f) for f in FIELDS}
    at = locate or (lambda k: "")
    cols = {f: _column(where, names[f], label, f, a) for f, a in zip(FIELDS, (x, y, p, t))}
    lengths = [len(cols[f]) for f in FIELDS]
    if len(set(lengths)) != 1:
        raise UserError(f"{where}: {label}s {', '.join(names[f] for f in FIELDS)} have "
                        f"lengths {lengths}; expected one value per event in each")
    for f in ("x", "y"):
        k = _whole(cols[f], 0, np.inf)
        if k is not None:
            raise UserError(f"{where}: event {k}{at(k)}: {names[f]} = {_show(cols[f][k])}; "
                            "pixel coordinates are whole numbers >= 0")
    if sensor is not None:
        check_in_sensor(where, cols, sensor, said, names, locate)
    for f in ("x", "y"):
        k = _first(cols[f] > MAX_PIXEL)
        if k is not None:
            raise UserError(f"{where}: event {k}{at(k)}: {names[f]} = {_show(cols[f][k])}; "
                            f"beyond {MAX_PIXEL}, the largest pixel coordinate events hold")
    pol = cols["p"]
    if pol.dtype.kind != "b":
        minus = _first(pol == -1)
        k = _first((pol != 1) & (pol != (-1 if minus is not None else 0)))
        if k is not None:
            v = _show(pol[k])
            if minus is not None and pol[k] == 0:
                raise UserError(f"{where}: event {k}{at(k)}: {names['p']} = 0 but event "
                                f"{minus}{at(minus)}: {names['p']} = -1; a file codes polarity "
                                "0/1 or -1/1, not both")
            raise UserError(f"{where}: event {k}{at(k)}: {names['p']} = {v}; polarity is 0/1 "
                            "(OFF/ON), -1/1 or true/false")
    t = cols["t"]
    k = _whole(t, 0, MAX_T_US)
    if k is not None:
        raise UserError(f"{where}: event {k}{at(k)}: {names['t']} = {_show(t[k])}; timestamps "
                        "are whole microseconds, finite, >= 0 and <= 2^62")
    t = t.astype(np.int64)
    ev = np.empty(len(t), EVENT_DTYPE)
    ev["x"], ev["y"], ev["p"], ev["t"] = cols["x"], cols["y"], pol > 0, t
    if len(t) > 1:
        latest = np.maximum.accumulate(t)
        k = _first(latest[:-1] - t[1:] > TIME_JITTER_US)
        if k is not None:
            k += 1
            j = int(np.flatnonzero(t[:k] == latest[k - 1])[0])
            raise UserError(f"{where}: event {k}{at(k)} has timestamp {names['t']} = {t[k]} "
                            f"us, {latest[k - 1] - t[k]} us before event {j}'s {t[j]} us; a "
                            f"step back of more than {TIME_JITTER_US} us is a clock reset, "
                            "recordings joined together or damaged data")
        if (latest[:-1] > t[1:]).any():    # packet jitter: sorted, as the clock ran
            ev = ev[np.argsort(t, kind="stable")]
    return ev


def check_intervals(where, lines, starts, ends, names: tuple[str, str], events: np.ndarray,
                    recording) -> None:
    """Sample intervals [start, end) us of a label file (lines: their line numbers) against
    the recording they cut: start >= 0, end > start, and some overlap with the recording's
    events (an interval outside them would be an empty sample, a blank picture)."""
    sname, ename = names
    t0, t1 = (int(events["t"][0]), int(events["t"][-1])) if len(events) else (None, None)
    for line, s, e in zip(lines, starts, ends):
        if s < 0:
            raise UserError(f"{where}: line {line}: {sname} = {s}; times are microseconds >= 0")
        if e <= s:
            raise UserError(f"{where}: line {line}: {ename} = {e} <= {sname} = {s}; a sample "
                            "ends after it starts")
        if t0 is None:
            raise UserError(f"{where}: line {line}: [{sname} = {s}, {ename} = {e}) us, but "
                            f"{recording} holds no events")
        if s > t1 or e <= t0:
            raise UserError(f"{where}: line {line}: [{sname} = {s}, {ename} = {e}) us is "
                            f"outside the recording: the events of {recording} run from "
                            f"{t0} to {t1} us")
