"""The `events` data set's settings and its class split rule.

The settings live beside the recordings, in DIR/events.toml (`metaloihi data events DIR ...`
writes it; without it the defaults below hold), so that every command and training config that
names the folder (--root DIR, data.root) sees the same classes in the same splits: a split
given per command could differ between fit-soel and adapt and leak meta-test classes.

Split rule: the class folders sorted by name (Python string order) are numbered 0..n-1,
shuffled with numpy.random.default_rng(seed).permutation(n) and cut in order train, val,
test; each split gets floor(n * percent / 100) classes and the classes left over by rounding go
to the first split with a percentage > 0. A split of 0 % is absent; every other split must
hold at least `ways` classes (the classes of one task), else a UserError before any work.
"""
from __future__ import annotations

import math
import sys
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np

from metaloihi.base.errors import UserError
from metaloihi.datasets.framesets import split_classes

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib

SETTINGS_FILE = "events.toml"
SPLITS = ("train", "val", "test")
STARTS = ("first", "zero")


def parse_split(text: str, what: str = "--split-classes") -> tuple[int, int, int]:
    """'60/20/20' -> (60, 20, 20): percent of the classes for train, val, test."""
    try:
        pct = tuple(int(v) for v in str(text).split("/"))
    except ValueError:
        pct = ()
    if len(pct) != 3 or min(pct) < 0 or sum(pct) != 100:
        raise UserError(f"{what} {text!r}; expected three whole percentages TRAIN/VAL/TEST "
                        "that sum to 100, e.g. 60/20/20")
    return pct


def parse_size(text: str, what: str = "--sensor-size") -> tuple[int, int]:
    """'34x34' -> (34, 34): width x height in pixels."""
    try:
        w, h = (int(v) for v in str(text).lower().split("x"))
    except ValueError:
        w = h = 0
    if w < 1 or h < 1:
        raise UserError(f"{what} {text!r}; expected WIDTHxHEIGHT in pixels, e.g. 34x34")
    return w, h


@dataclass(frozen=True)
class EventsSettings:
    split_classes: tuple[int, int, int] = (60, 20, 20)   # percent of classes: train/val/test
    seed: int = 0                     # of the class shuffle (not the tasks' seed)
    ways: int = 5                     # classes every split must hold at least
    sensor_size: tuple[int, int] | None = None   # (W, H); None: from the files
    window_ms: float | None = None    # None: the longest recording
    bins: int = 100                   # time bins (network steps) per sample
    start: str = "first"              # time 0 of a sample: its first event, or its file's t = 0
    downsample: int = 1               # spatial factor (tonic's Downsample) before binning

    def check(self, where: str) -> "EventsSettings":
        """self, or a UserError naming `where` (the file or the flags), the key and value."""
        parse_split("/".join(map(str, self.split_classes)), f"{where}: split_classes")
        for key in ("seed", "ways", "bins", "downsample"):
            v = getattr(self, key)
            if not isinstance(v, int) or isinstance(v, bool) or v < (0 if key == "seed" else 1):
                raise UserError(f"{where}: {key} = {v!r}; expected an integer >= "
                                f"{0 if key == 'seed' else 1}")
        if self.sensor_size is not None:
            parse_size("x".join(map(str, self.sensor_size)), f"{where}: sensor_size")
        if self.window_ms is not None and not (isinstance(self.window_ms, (int, float))
                                               and math.isfinite(self.window_ms)
                                               and self.window_ms > 0):
            raise UserError(f"{where}: window_ms = {self.window_ms!r}; expected a number > 0")
        if self.start not in STARTS:
            raise UserError(f"{where}: start = {self.start!r}; expected one of {', '.join(STARTS)}")
        return self

    def to_toml(self) -> str:
        """The settings file's text (keys left at None are written as comments)."""
        lines = ["# The metaloihi `events` data set of this folder (docs/data.md, \"Your own "
                 "recordings\");", "# written by `metaloihi data events`."]
        for key, value in asdict(self).items():
            if value is None:
                lines.append(f"# {key}: from the files")
            elif isinstance(value, str):
                lines.append(f'{key} = "{value}"')
            elif isinstance(value, (tuple, list)):
                lines.append(f"{key} = [{', '.join(str(v) for v in value)}]")
            else:
                lines.append(f"{key} = {value}")
        return "\n".join(lines) + "\n"


def read_settings(root: Path) -> EventsSettings:
    """DIR/events.toml, or the defaults where there is none."""
    path = Path(root) / SETTINGS_FILE
    if not path.exists():
        return EventsSettings()
    try:
        raw = tomllib.loads(path.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise UserError(f"{path}: not a readable TOML file ({err})") from None
    known = {f.name for f in fields(EventsSettings)}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise UserError(f"{path}: unknown key(s) {unknown}; expected some of {sorted(known)}")
    for key in ("split_classes", "sensor_size"):
        if key in raw:
            if not isinstance(raw[key], list):
                raise UserError(f"{path}: {key} = {raw[key]!r}; expected a list of integers")
            raw[key] = tuple(raw[key])
    return EventsSettings(**raw).check(str(path))


def split_sizes(n: int, percent: tuple[int, int, int]) -> dict[str, int]:
    """Classes per split: floor(n * percent / 100) each, the rest to the first split with a
    percentage > 0."""
    sizes = {s: n * p // 100 for s, p in zip(SPLITS, percent)}
    first = next(s for s, p in zip(SPLITS, percent) if p > 0)
    sizes[first] += n - sum(sizes.values())
    return sizes


def class_splits(n_classes: int, settings: EventsSettings, where: str) -> dict[str, np.ndarray]:
    """The split rule (module docstring) -> split name -> class ids; a split short of
    `settings.ways` classes is a UserError naming `where`, the sizes and how to change them."""
    pct = settings.split_classes
    sizes = split_sizes(n_classes, pct)
    short = [s for s, p in zip(SPLITS, pct) if p > 0 and sizes[s] < settings.ways]
    if short:
        got = ", ".join(f"{s} {sizes[s]}" for s in SPLITS)
        raise UserError(f"{where}: {n_classes} classes split {'/'.join(map(str, pct))} give "
                        f"{got} classes; split {short[0]!r} needs >= {settings.ways} (ways): add "
                        "classes or change the split or the ways (metaloihi data events DIR "
                        "--split-classes A/B/C --ways N)")
    splits = split_classes(n_classes, sizes, settings.seed)
    return {s: splits[s] for s, p in zip(SPLITS, pct) if p > 0}
