"""Frame data sets: samples as frames [T, 2, H, W], labels, class names and class splits.

A FrameDataset holds its frames in memory (bit-packed when binary, so a few tens of MB for a
whole embedded set). A PairedFrameDataset builds "double" samples (double N-MNIST, double ASL-DVS)
lazily from a base set: two base samples side by side, cropped and sum-pooled; its pair table
fixes which base samples make each double sample, drawn from disjoint source pools per split.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from metaloihi.datasets.events import pool_frames, unpack_frames
from metaloihi.base.errors import UserError


class _ClassIndex:
    """Shared helpers: sample indices per class and split lookup."""
    labels: np.ndarray
    splits: dict[str, np.ndarray]
    class_names: list[str]
    name: str

    def class_indices(self, c: int) -> np.ndarray:
        if not hasattr(self, "_by_class"):
            order = np.argsort(self.labels, kind="stable")
            bounds = np.searchsorted(self.labels[order], np.arange(len(self.class_names) + 1))
            self._by_class = [order[bounds[i]:bounds[i + 1]] for i in range(len(bounds) - 1)]
        return self._by_class[c]

    def split_classes(self, split: str) -> np.ndarray:
        if split not in self.splits:
            raise UserError(f"data set {self.name!r}: no split {split!r}; "
                            f"expected one of {sorted(self.splits)}")
        return self.splits[split]

    def __len__(self) -> int:
        return len(self.labels)


@dataclass
class FrameDataset(_ClassIndex):
    """Frames of every sample; `packed` means bit-packed binary frames along W."""
    name: str
    data: np.ndarray                 # [N, T, 2, H, W] uint8, or [N, T, 2, H, ceil(W/8)] packed
    labels: np.ndarray               # [N] int64 class ids
    class_names: list[str]
    splits: dict[str, np.ndarray]    # split name -> class ids
    width: int
    packed: bool = False
    meta: dict = field(default_factory=dict)

    @property
    def frame_shape(self) -> tuple[int, int, int, int]:
        t, c, h, _ = self.data.shape[1:]
        return (t, c, h, self.width)

    def frames(self, indices) -> np.ndarray:
        """uint8 frames [len(indices), T, 2, H, W] (0/1 when packed, counts otherwise)."""
        chunk = self.data[np.asarray(indices)]
        return unpack_frames(chunk, self.width) if self.packed else np.asarray(chunk)


@dataclass
class PairedFrameDataset(_ClassIndex):
    """Double samples: base samples pairs[i, 0] (left) and pairs[i, 1] (right) side by side.

    Each base frame is cropped by `crop` pixels on every side, then sum-pooled by `pool`; class of
    a pair (a, b) is a * n_base_classes + b ("37" for digits 3 and 7)."""
    name: str
    base: FrameDataset
    pairs: np.ndarray                # [N, 2] base sample indices
    labels: np.ndarray
    class_names: list[str]
    splits: dict[str, np.ndarray]
    crop: int = 0
    pool: int = 1
    meta: dict = field(default_factory=dict)

    @property
    def frame_shape(self) -> tuple[int, int, int, int]:
        t, c, h, w = self.base.frame_shape
        h, w = (h - 2 * self.crop) // self.pool, (w - 2 * self.crop) // self.pool
        return (t, c, h, 2 * w)

    def _halves(self) -> np.ndarray:
        """Every base sample cropped and pooled, computed once (pooling per task was the
        sampler's bottleneck): [N_base, T, 2, h, w] uint8."""
        if getattr(self, "_half_cache", None) is None:
            used = np.unique(self.pairs)
            t, c, h, w = self.frame_shape
            cache = np.zeros((len(self.base), t, c, h, w // 2), np.uint8)
            for lo in range(0, len(used), 256):
                idx = used[lo:lo + 256]
                f = self.base.frames(idx)
                if self.crop:
                    f = f[..., self.crop:-self.crop, self.crop:-self.crop]
                cache[idx] = pool_frames(f, self.pool)
            self._half_cache = cache
        return self._half_cache

    def frames(self, indices) -> np.ndarray:
        idx = np.asarray(indices)
        halves = self._halves()
        return np.concatenate([halves[self.pairs[idx, 0]], halves[self.pairs[idx, 1]]], axis=-1)


def split_pools(labels: np.ndarray, fractions: dict[str, float], seed: int) -> dict[str, np.ndarray]:
    """Partition base samples into disjoint pools per split, per class, by fractions (seeded)."""
    rng = np.random.default_rng(seed)
    pools = {k: [] for k in fractions}
    total = sum(fractions.values())
    for c in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == c))
        counts = np.floor([f / total * len(idx) for f in fractions.values()]).astype(int)
        counts[np.argmax(counts)] += len(idx) - counts.sum()
        for k in range(len(counts)):  # every pool gets a sample when there are enough
            if counts[k] == 0 and counts.max() > 1:
                counts[np.argmax(counts)] -= 1
                counts[k] = 1
        cuts = np.cumsum(counts)
        for k, lo, hi in zip(fractions, np.r_[0, cuts[:-1]], cuts):
            pools[k].append(idx[lo:hi])
    return {k: np.sort(np.concatenate(v)) for k, v in pools.items()}


def split_classes(n_classes: int, sizes: dict[str, int], seed: int) -> dict[str, np.ndarray]:
    """Disjoint random class splits of the given sizes (e.g. 64/16/20 of 100), seeded."""
    if sum(sizes.values()) != n_classes:
        raise UserError(f"class split sizes {sizes} sum to {sum(sizes.values())}; "
                        f"expected {n_classes}")
    perm = np.random.default_rng(seed).permutation(n_classes)
    out, lo = {}, 0
    for k, n in sizes.items():
        out[k] = np.sort(perm[lo:lo + n])
        lo += n
    return out


def make_pairs(base: FrameDataset, class_splits: dict[str, np.ndarray],
               pools: dict[str, np.ndarray], per_class: int, seed: int):
    """Pair table for double samples: per pair class (a, b) in a split, per_class pairs drawn
    only from that split's pool of base samples -> (pairs [N, 2], labels [N])."""
    rng = np.random.default_rng(seed)
    nb = len(base.class_names)
    pairs, labels = [], []
    for split, classes in class_splits.items():
        pool = pools[split]
        by_class = [pool[base.labels[pool] == c] for c in range(nb)]
        for c in classes:
            a, b = divmod(int(c), nb)
            missing = [base.class_names[k] for k in dict.fromkeys((a, b))
                       if len(by_class[k]) == 0]
            if missing:
                raise UserError(f"{base.name}: split {split!r} has no source samples of class "
                                f"{' or '.join(map(repr, missing))} (needed for pair class {c} = "
                                f"({base.class_names[a]!r}, {base.class_names[b]!r}))")
            left = rng.choice(by_class[a], per_class, replace=len(by_class[a]) < per_class)
            right = rng.choice(by_class[b], per_class, replace=len(by_class[b]) < per_class)
            pairs.append(np.stack([left, right], 1))
            labels.append(np.full(per_class, c))
    return np.concatenate(pairs).astype(np.int64), np.concatenate(labels).astype(np.int64)
