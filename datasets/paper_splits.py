"""The paper's few-shot constructions over real recordings in a local folder (never downloaded).

- double N-MNIST: two N-MNIST digits side by side, 100 classes, 64/16/20; meta-train/val pairs
  from the Train folder (disjoint 80/20 image pools), meta-test pairs from the Test folder;
  frames [100, 2, 16, 32] (each digit cropped to 32x32, the pair pooled 2x); 300 ms -> 100 bins.
- double ASL-DVS: 24 letters -> 576 ordered pairs, 369/92/115 classes, disjoint source pools
  (60/15/25 %); each 240x180 letter pooled 6x -> pair frames [100, 2, 30, 80].
- N-Omniglot: background alphabets = train, evaluation = val (no test), DAVIS346 /10 -> 34x26,
  one bin per 100 ms of recording (the paper's 100x acceleration).
- DVS128 Gesture: 128x128 /4 -> 32x32; 6 classes to meta-train, 5 held out for 5-way meta-test.
Frames are binary (an event in the pixel and bin) and cached on disk, keyed by the folder's
file names, sizes and times.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from metaloihi.datasets import store
from metaloihi.datasets.events import FrameSpec, downsample, pack_frames, to_frames
from metaloihi.datasets.framesets import (FrameDataset, PairedFrameDataset, make_pairs,
                                          split_classes, split_pools)
from metaloihi.datasets.readers import (ASL_SIZE, DAVIS346_SIZE, GESTURE_SIZE, NMNIST_SIZE,
                                        read_asl_mat, read_gesture_recording, read_nmnist_bin,
                                        read_nomniglot_character)
from metaloihi.base.errors import UserError

READER_VERSION = 2    # 2: events checked by event_checks.py; version 1 caches never were
SPLIT_SEED = 2022
ASL_LETTERS = [c for c in "abcdefghiklmnopqrstuvwxy"]  # A-Y without J (motion letter)
GESTURE_CLASSES = ["hand_clap", "right_hand_wave", "left_hand_wave", "right_arm_cw",
                   "right_arm_ccw", "left_arm_cw", "left_arm_ccw", "arm_roll", "air_drums",
                   "air_guitar", "other_gestures"]
GESTURE_HELD_OUT = [0, 4, 6, 7, 9]  # clap, right/left arm ccw, roll, guitar: 5-way meta-test
NOMNIGLOT_SPLITS = {"dvs_background_1": "train", "dvs_background_2": "train",
                    "dvs_background": "train", "dvs_evaluation": "val"}


def _root(root) -> Path:
    root = Path(root).expanduser()
    if not root.is_dir():
        raise UserError(f"{root}: data folder not found")
    return root


def _fingerprint(files: list[Path], root: Path) -> list:
    return [[str(f.relative_to(root)), f.stat().st_size, f.stat().st_mtime_ns] for f in files]


def _to_packed(events, sensor, factor: int, spec: FrameSpec) -> np.ndarray:
    ev, size = downsample(events, sensor, factor)
    return pack_frames(to_frames(ev, size, spec, binary=True))


def _build(kind, root, files, spec, extra, build, use_cache):
    params = {"kind": kind, "version": READER_VERSION, "root": str(root.resolve()),
              "files": _fingerprint(files, root), "spec": [spec.n_bins, spec.dt_us,
                                                           spec.t_start_us], **extra}
    return store.cached(kind, params, build, use_cache)


def _only_digit_folders(part: Path) -> None:
    """N-MNIST has one folder per digit 0-9: any other folder (a 26-class letter set, '10')
    would be skipped without a word, so it is refused by name."""
    other = sorted(p.name for p in part.iterdir()
                   if p.is_dir() and not p.name.startswith(".") and p.name not in
                   {str(d) for d in range(10)})
    if other:
        n_bin = sum(len(list((part / name).glob("*.bin"))) for name in other)
        shown = ", ".join(repr(o) for o in other[:5]) + (", ..." if len(other) > 5 else "")
        raise UserError(f"{part}: folder(s) {shown} ({len(other)} folders, {n_bin} .bin files) "
                        "are not N-MNIST digit classes 0-9; move them out of the data set (your "
                        "own classes: --dataset events, one folder per class)")


def nmnist(root, seed: int = 0, spec: FrameSpec = FrameSpec(100, 3000),
           per_class: int | None = None, use_cache: bool = True) -> FrameDataset:
    """N-MNIST from <root>/{Train,Test}/<digit>/*.bin -> frames [100, 2, 34, 34].

    meta["test_folder"][i] says whether sample i came from Test/; split "all" = digits 0-9."""
    root = _root(root)
    files, labels, is_test = [], [], []
    for part in ("Train", "Test"):
        if not (root / part).is_dir():
            raise UserError(f"{root}: no {part}/ folder; expected N-MNIST's Train/ and Test/ "
                            "with one folder per digit")
        _only_digit_folders(root / part)
        for d in range(10):
            found = sorted((root / part / str(d)).glob("*.bin"))[:per_class]
            files += found
            labels += [d] * len(found)
            is_test += [part == "Test"] * len(found)
    if not files:
        raise UserError(f"{root}: no N-MNIST .bin files under Train/<digit>/ or Test/<digit>/")

    def build():
        frames = np.stack([_to_packed(read_nmnist_bin(f), NMNIST_SIZE, 1, spec) for f in files])
        return {"frames": frames, "labels": np.array(labels, np.int64),
                "test": np.array(is_test)}, {"width": NMNIST_SIZE[0]}

    arrays, meta = _build("nmnist", root, files, spec, {}, build, use_cache)
    return FrameDataset("nmnist", arrays["frames"], np.asarray(arrays["labels"]),
                        [str(d) for d in range(10)], {"all": np.arange(10)}, width=meta["width"],
                        packed=True, meta={"test_folder": np.asarray(arrays["test"])})


def double_nmnist(root, seed: int = 0, spec: FrameSpec = FrameSpec(100, 3000),
                  per_class: int | None = None, pairs_per_class: int = 100,
                  use_cache: bool = True) -> PairedFrameDataset:
    """Double N-MNIST (paper): 100 classes 64/16/20, frames [100, 2, 16, 32]."""
    base = nmnist(root, seed, spec, per_class, use_cache)
    test = base.meta["test_folder"]
    train_idx = np.flatnonzero(~test)
    inner = split_pools(base.labels[train_idx], {"train": 0.8, "val": 0.2}, SPLIT_SEED)
    pools = {"train": train_idx[inner["train"]], "val": train_idx[inner["val"]],
             "test": np.flatnonzero(test)}
    splits = split_classes(100, {"train": 64, "val": 16, "test": 20}, SPLIT_SEED)
    pairs, labels = make_pairs(base, splits, pools, pairs_per_class, SPLIT_SEED + seed)
    names = [f"{a}{b}" for a in range(10) for b in range(10)]
    return PairedFrameDataset("double_nmnist", base, pairs, labels, names, splits, crop=1, pool=2,
                              meta={"pools": pools})


def asl_dvs(root, seed: int = 0, spec: FrameSpec = FrameSpec(100, 1000), factor: int = 6,
            per_class: int | None = None, use_cache: bool = True) -> FrameDataset:
    """ASL-DVS from <root>/<letter>/*.mat (24 letter folders) -> frames [100, 2, 30, 40]."""
    root = _root(root)
    dirs = {p.name.lower(): p for p in root.rglob("*") if p.is_dir() and len(p.name) == 1}
    missing = [c for c in ASL_LETTERS if c not in dirs]
    if missing:
        raise UserError(f"{root}: no letter folders {missing}; expected ASL-DVS's 24 folders "
                        "a..y (no j) of .mat files")
    files, labels = [], []
    for i, c in enumerate(ASL_LETTERS):
        found = sorted(dirs[c].glob("*.mat"))[:per_class]
        if not found:
            raise UserError(f"{dirs[c]}: no .mat files")
        files += found
        labels += [i] * len(found)

    def build():
        frames = np.stack([_to_packed(read_asl_mat(f), ASL_SIZE, factor, spec) for f in files])
        return {"frames": frames, "labels": np.array(labels, np.int64)}, \
            {"width": ASL_SIZE[0] // factor}

    arrays, meta = _build("asl_dvs", root, files, spec, {"factor": factor}, build, use_cache)
    return FrameDataset("asl_dvs", arrays["frames"], np.asarray(arrays["labels"]),
                        [c.upper() for c in ASL_LETTERS], {"all": np.arange(24)},
                        width=meta["width"], packed=True)


def double_asl_dvs(root, seed: int = 0, spec: FrameSpec = FrameSpec(100, 1000), factor: int = 6,
                   per_class: int | None = None, pairs_per_class: int = 20,
                   use_cache: bool = True) -> PairedFrameDataset:
    """Double ASL-DVS (paper): 576 letter pairs, 369/92/115 classes, frames [100, 2, 30, 80]."""
    base = asl_dvs(root, seed, spec, factor, per_class, use_cache)
    pools = split_pools(base.labels, {"train": 0.6, "val": 0.15, "test": 0.25}, SPLIT_SEED)
    splits = split_classes(576, {"train": 369, "val": 92, "test": 115}, SPLIT_SEED)
    pairs, labels = make_pairs(base, splits, pools, pairs_per_class, SPLIT_SEED + seed)
    names = [a.upper() + b.upper() for a in ASL_LETTERS for b in ASL_LETTERS]
    return PairedFrameDataset("double_asl_dvs", base, pairs, labels, names, splits,
                              meta={"pools": pools})


def dvs_gesture(root, seed: int = 0, spec: FrameSpec = FrameSpec(100, 10000), factor: int = 4,
                use_cache: bool = True) -> FrameDataset:
    """DVS128 Gesture from the *.aedat + *_labels.csv under root -> frames [100, 2, 32, 32]
    of the first second of each gesture; splits train (6 classes) / test (5 held out)."""
    root = _root(root)
    files = sorted(p for p in root.rglob("*.aedat"))
    if not files:
        raise UserError(f"{root}: no .aedat recordings; expected DVS128 Gesture's "
                        "userXX_<lighting>.aedat with userXX_<lighting>_labels.csv")
    labels_files = [f.with_name(f.stem + "_labels.csv") for f in files]

    def build():
        frames, labels = [], []
        for f in files:
            for ev, cls in read_gesture_recording(f):
                frames.append(_to_packed(ev, GESTURE_SIZE, factor, spec))
                labels.append(cls)
        return {"frames": np.stack(frames), "labels": np.array(labels, np.int64)}, \
            {"width": GESTURE_SIZE[0] // factor}

    for lf in labels_files:
        if not lf.is_file():
            raise UserError(f"{lf}: labels file not found (every .aedat needs its _labels.csv)")
    arrays, meta = _build("dvs_gesture", root, files + labels_files, spec, {"factor": factor},
                          build, use_cache)
    held = np.array(GESTURE_HELD_OUT)
    splits = {"train": np.setdiff1d(np.arange(11), held), "test": held}
    return FrameDataset("dvs_gesture", arrays["frames"], np.asarray(arrays["labels"]),
                        list(GESTURE_CLASSES), splits, width=meta["width"], packed=True)


def nomniglot(root, seed: int = 0, spec: FrameSpec = FrameSpec(100, 100_000), factor: int = 10,
              use_cache: bool = True) -> FrameDataset:
    """N-Omniglot from <root>/dvs_background_{1,2}|dvs_evaluation/<alphabet>/<character>/
    -> frames [100, 2, 26, 34]; splits train (background) and val (evaluation), as Omniglot."""
    root = _root(root)
    parts = [p for p in sorted(root.iterdir()) if p.name in NOMNIGLOT_SPLITS and p.is_dir()]
    if not parts:
        raise UserError(f"{root}: no dvs_background_1/, dvs_background_2/ or dvs_evaluation/ "
                        "folder (N-Omniglot layout)")
    chars = [(part, c) for part in parts for c in sorted(part.glob("*/*")) if c.is_dir()]
    if not chars:
        raise UserError(f"{root}: no <alphabet>/<character>/ folders under {parts[0].name}/")
    files = [f for _, c in chars for f in sorted(c.iterdir()) if f.suffix in (".aedat4", ".csv")]

    def build():
        frames, labels = [], []
        for i, (_, c) in enumerate(chars):
            for ev in read_nomniglot_character(c):
                frames.append(_to_packed(ev, DAVIS346_SIZE, factor, spec))
                labels.append(i)
        return {"frames": np.stack(frames), "labels": np.array(labels, np.int64)}, \
            {"width": DAVIS346_SIZE[0] // factor}

    arrays, meta = _build("nomniglot", root, files, spec, {"factor": factor}, build, use_cache)
    names = [os.path.join(c.parent.name, c.name) for _, c in chars]
    split_of = np.array([NOMNIGLOT_SPLITS[p.name] for p, _ in chars])
    splits = {s: np.flatnonzero(split_of == s) for s in ("train", "val") if (split_of == s).any()}
    return FrameDataset("nomniglot", arrays["frames"], np.asarray(arrays["labels"]), names,
                        splits, width=meta["width"], packed=True)
