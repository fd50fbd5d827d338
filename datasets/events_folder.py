"""The generic data set `events`: a user's own labelled recordings, one subfolder per class.

    DIR/<class name>/**/<file>.{bin,aedat,aedat4,npy,npz}     (+ DIR/events.toml, optional)

Every file is one sample of its class folder's class (the folder name is the class name;
files in subfolders of a class folder count too; dot-files are skipped; files directly in DIR
are not read). Formats: recording_files.py. Settings and the class split: events_settings.py.

Sensor size: events.toml's sensor_size, else the size the files state (N-MNIST 34x34, AEDAT
2.0 128x128, an AEDAT4 header's, an .npz's sensor_size; they must agree), else the smallest
that holds every event. Time window: events.toml's window_ms, else the longest recording
(last event - time 0, + 1 us); `bins` bins of ceil(window / bins) us from time 0, which is a
sample's first event (start = "first") or its file's t = 0 (start = "zero"). Frames are binary
(an event in the pixel and bin), [bins, 2, H, W], cached bit-packed under $METALOIHI_CACHE
keyed by the files' names, sizes and times and the settings. Bad input (an empty folder, a
class folder with no event files, a file that is not events or holds impossible values
(event_checks.py), mixed sensor sizes, too few classes for the split) is a UserError naming
the file or folder, raised before any frame is made.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from metaloihi.base.errors import UserError
from metaloihi.datasets import store
from metaloihi.datasets.event_checks import check_in_sensor
from metaloihi.datasets.events import FrameSpec, downsample, pack_frames, to_frames
from metaloihi.datasets.events_settings import (SETTINGS_FILE, EventsSettings, class_splits,
                                                read_settings)
from metaloihi.datasets.framesets import FrameDataset
from metaloihi.datasets.recording_files import SUFFIXES, read_recording

READER_VERSION = 2    # 2: events checked by event_checks.py; version 1 caches never were


def find_files(root: Path) -> tuple[list[str], list[Path], list[int]]:
    """(class names sorted, files, their class ids), or a UserError naming the empty folder."""
    classes = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not classes:
        loose = [p.name for p in root.iterdir() if p.is_file() and p.name != SETTINGS_FILE]
        raise UserError(f"{root}: no class folders ({len(loose)} loose files); expected one "
                        "subfolder per class (the folder name is the class name) holding its "
                        f"recordings ({', '.join(SUFFIXES)})")
    files, labels = [], []
    for c, name in enumerate(classes):
        found = sorted(f for f in (root / name).rglob("*") if f.is_file()
                       and not any(part.startswith(".") for part in f.relative_to(root).parts))
        if not found:
            raise UserError(f"{root / name}: class folder {name!r} holds no files; expected its "
                            f"recordings ({', '.join(SUFFIXES)})")
        other = [f for f in found if f.suffix.lower() not in SUFFIXES]
        if other:
            raise UserError(f"{other[0]}: suffix {other[0].suffix!r} is not an event format this "
                            f"data set reads ({', '.join(SUFFIXES)}); {len(other)} such file(s) "
                            f"in class folder {name!r}: move them out")
        files += found
        labels += [c] * len(found)
    return classes, files, labels


@dataclass(frozen=True)
class _Summary:
    """What the scan keeps of one file (not its events: a large folder would not fit)."""
    path: Path
    sensor_size: tuple[int, int] | None
    format: str
    x_max: int
    y_max: int
    t_first: int
    t_last: int


def _summary(path: Path) -> _Summary:
    r = read_recording(path)
    ev = r.events
    return _Summary(path, r.sensor_size, r.format, int(ev["x"].max()), int(ev["y"].max()),
                    int(ev["t"][0]), int(ev["t"][-1]))


def _sensor(files: list[_Summary], settings: EventsSettings, root: Path) -> tuple[int, int]:
    """The data set's sensor size (module docstring); mixed stated sizes are a UserError."""
    stated = [s for s in files if s.sensor_size is not None]
    if settings.sensor_size is not None:
        want = tuple(settings.sensor_size)
        bad = next((s for s in stated if s.sensor_size != want), None)
        if bad:
            w, h = bad.sensor_size
            raise UserError(f"{root}: mixed sensor sizes: {bad.path} is {w}x{h} ({bad.format}) "
                            f"but {SETTINGS_FILE} says sensor_size {want[0]}x{want[1]}")
        return want
    if stated:
        first = stated[0]
        bad = next((s for s in stated if s.sensor_size != first.sensor_size), None)
        if bad:
            (w0, h0), (w, h) = first.sensor_size, bad.sensor_size
            raise UserError(f"{root}: mixed sensor sizes: {first.path} is {w0}x{h0} "
                            f"({first.format}), {bad.path} is {w}x{h} ({bad.format}); give every "
                            "recording one sensor size")
        return first.sensor_size
    return max(s.x_max for s in files) + 1, max(s.y_max for s in files) + 1


def _origin(t_first: int, start: str) -> int:
    return t_first if start == "first" else 0


def _check_inside(s: _Summary, w: int, h: int, settings: EventsSettings) -> None:
    """A file with events outside the data set's sensor is read again, for the error naming
    its first such event (event_checks.check_in_sensor)."""
    if s.x_max >= w or s.y_max >= h:
        said = (f"sensor_size of {SETTINGS_FILE}" if settings.sensor_size
                else "the size the files state")
        check_in_sensor(s.path, read_recording(s.path).events, (w, h), said)


def scan(root: Path, files: list[Path], settings: EventsSettings) -> dict:
    """Read every file once, check it, and fix what the frames need: sensor size (W, H),
    bins and bin width. Errors name the file; nothing is binned yet."""
    summaries = [_summary(f) for f in files]
    w, h = _sensor(summaries, settings, root)
    span = 1
    for s in summaries:      # times >= 0 and each file's own sensor: event_checks.py
        _check_inside(s, w, h, settings)
        span = max(span, s.t_last - _origin(s.t_first, settings.start) + 1)
    window_us = span if settings.window_ms is None else max(1, round(settings.window_ms * 1000))
    dt = math.ceil(window_us / settings.bins)
    return {"sensor": [w, h], "bins": settings.bins, "dt_us": dt, "window_us": window_us}


def _frames(path: Path, sensor, spec_of, factor: int) -> np.ndarray:
    ev = read_recording(path).events
    ev, size = downsample(ev, tuple(sensor), factor)
    return pack_frames(to_frames(ev, size, spec_of(ev), binary=True))


def events_dataset(root, seed: int = 0, use_cache: bool = True,
                   settings: EventsSettings | None = None) -> FrameDataset:
    """The `events` data set of DIR -> FrameDataset with splits train/val/test (those with a
    percentage > 0). seed (the tasks' seed of the commands) does not change the split: that is
    events.toml's seed. settings: instead of DIR/events.toml (`metaloihi data events` checks
    new settings this way before it writes them)."""
    root = Path(root).expanduser()
    if not root.is_dir():
        raise UserError(f"{root}: data folder not found")
    settings = read_settings(root) if settings is None else settings
    classes, files, labels = find_files(root)
    splits = class_splits(len(classes), settings, str(root))
    params = {"kind": "events", "version": READER_VERSION, "root": str(root.resolve()),
              "files": [[str(f.relative_to(root)), f.stat().st_size, f.stat().st_mtime_ns]
                        for f in files],
              "settings": {k: v for k, v in vars(settings).items()
                           if k not in ("split_classes", "seed", "ways")}}

    def build():
        info = scan(root, files, settings)

        def spec_of(ev):
            return FrameSpec(info["bins"], info["dt_us"], _origin(int(ev["t"][0]),
                                                                  settings.start))
        frames = np.stack([_frames(f, info["sensor"], spec_of, settings.downsample)
                           for f in files])
        return {"frames": frames, "labels": np.array(labels, np.int64)}, \
            {**info, "width": info["sensor"][0] // settings.downsample}

    arrays, meta = store.cached("events", params, build, use_cache)
    return FrameDataset("events", arrays["frames"], np.asarray(arrays["labels"]), classes,
                        splits, width=meta["width"], packed=True,
                        meta={"root": str(root), "files": [str(f.relative_to(root))
                                                            for f in files],
                              "sensor_size": tuple(meta["sensor"]), "bins": meta["bins"],
                              "dt_us": meta["dt_us"], "window_us": meta["window_us"],
                              "settings": settings})
