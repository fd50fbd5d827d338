"""Embedded "digits" and "double digits": scikit-learn's 1797 handwritten digits in N-MNIST-like
saccades in front of the emulated DVS.

N-MNIST moved a camera in three saccades (a triangle) in front of a screen showing MNIST digits;
here each 8x8 sklearn digit is upsampled to 20x20 inside a 28x28 glyph, shown bright on a dark
screen, and the glyph moves along a jittered triangle of three saccades (smooth velocity profile)
over the frame window on a 34x34 sensor. Double digits follow double N-MNIST (Stewart & Neftci
2022): two digits side by side, each cropped to 32x32, the pair pooled 2x to 16x32 (H x W);
100 classes split 64/16/20 into meta-train/val/test, and each split draws its source images from
its own disjoint pool, so no meta-test image appears in meta-training.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from metaloihi.datasets import store
from metaloihi.datasets.dvs import DVSConfig, emulate_frames
from metaloihi.datasets.events import FrameSpec, pack_frames
from metaloihi.datasets.framesets import (FrameDataset, PairedFrameDataset, make_pairs,
                                          split_classes, split_pools)

GENERATOR_VERSION = 1      # bump when the bytes a config produces change
SPLIT_SEED = 2022          # class splits and source pools do not move with the data seed
DOUBLE_SPLIT = {"train": 64, "val": 16, "test": 20}
POOL_FRACTIONS = {"train": 0.6, "val": 0.15, "test": 0.25}


@dataclass(frozen=True)
class DigitsConfig:
    sensor: int = 34                      # N-MNIST's 34x34
    glyph: int = 28                       # MNIST's 28x28 box, digit upsampled to 20x20 inside
    n_bins: int = 100                     # paper: 100 bins of 1 ms
    dt_us: int = 1000
    per_class: int | None = None          # None: all ~180 images per digit; tests use a few
    saccade_px: float = 2.5               # half-size of the saccade triangle
    dvs: DVSConfig = field(default_factory=DVSConfig)
    batch: int = 96                       # samples emulated at once (memory vs speed)


def _glyphs(cfg: DigitsConfig, labels_wanted=None):
    """sklearn digits -> glyphs [N, glyph, glyph] in [0, 1] and labels, upsampled bilinearly."""
    from scipy.ndimage import zoom
    from sklearn.datasets import load_digits

    d = load_digits()
    images, labels = d.images.astype(np.float32) / 16.0, d.target.astype(np.int64)
    if cfg.per_class is not None:
        keep = np.concatenate([np.flatnonzero(labels == c)[: cfg.per_class] for c in range(10)])
        keep.sort()
        images, labels = images[keep], labels[keep]
    inner = cfg.glyph - 8
    up = zoom(images, (1, inner / 8, inner / 8), order=1, grid_mode=True, mode="nearest")
    glyphs = np.zeros((len(images), cfg.glyph, cfg.glyph), np.float32)
    m = (cfg.glyph - inner) // 2
    glyphs[:, m:m + inner, m:m + inner] = np.clip(up, 0, 1)
    return glyphs, labels


def _saccade_offsets(n: int, steps: int, cfg: DigitsConfig, rng) -> np.ndarray:
    """Per-sample glyph offsets [n, steps, 2] (dy, dx): three saccades around a jittered triangle."""
    a = cfg.saccade_px
    tri = np.array([[0.0, 0.0], [a, a], [a, -a], [0.0, 0.0]])  # N-MNIST: down-right, left, back
    verts = tri[None] + rng.normal(0, 0.4, (n, 4, 2))
    verts[:, 3] = verts[:, 0]
    # each saccade gets a third of the window +- jitter; smooth (cosine) velocity profile
    bounds = np.cumsum(np.c_[np.zeros(n), rng.uniform(0.28, 0.38, (n, 3))], 1)
    bounds = bounds / bounds[:, -1:]
    tau = np.linspace(0, 1, steps)[None, :]
    out = np.zeros((n, steps, 2))
    for k in range(3):
        lo, hi = bounds[:, k:k + 1], bounds[:, k + 1:k + 2]
        u = np.clip((tau - lo) / (hi - lo), 0, 1)
        ease = (0.5 - 0.5 * np.cos(np.pi * u))[..., None]
        inside = ((tau >= lo) & (tau <= hi))[..., None]
        out = np.where(inside, verts[:, k, None] + ease * (verts[:, k + 1, None] - verts[:, k, None]),
                       out)
    return out


def _render(glyphs: np.ndarray, offsets: np.ndarray, sensor: int, contrast: np.ndarray):
    """Bilinear translation of each glyph to each offset on a dark screen: [n, steps, S, S]."""
    n, g = glyphs.shape[0], glyphs.shape[1]
    pad = 2
    img = np.pad(glyphs, ((0, 0), (pad, pad), (pad, pad)))
    base = (sensor - g) / 2.0
    coords = np.arange(sensor, dtype=np.float32)
    yf = coords[None, None, :, None] - (base + offsets[:, :, 0, None, None]) + pad
    xf = coords[None, None, None, :] - (base + offsets[:, :, 1, None, None]) + pad
    y0, x0 = np.floor(yf), np.floor(xf)
    wy, wx = (yf - y0).astype(np.float32), (xf - x0).astype(np.float32)
    hi = img.shape[1] - 1
    y0 = np.clip(y0, 0, hi - 1).astype(np.int64)
    x0 = np.clip(x0, 0, hi - 1).astype(np.int64)
    b = np.arange(n)[:, None, None, None]
    v = ((1 - wy) * (1 - wx) * img[b, y0, x0] + (1 - wy) * wx * img[b, y0, x0 + 1]
         + wy * (1 - wx) * img[b, y0 + 1, x0] + wy * wx * img[b, y0 + 1, x0 + 1])
    return 0.05 + contrast[:, None, None, None] * v  # screen black level 0.05


def _build_digits(cfg: DigitsConfig, seed: int):
    glyphs, labels = _glyphs(cfg)
    spec = FrameSpec(cfg.n_bins, cfg.dt_us)
    seq = np.random.SeedSequence([seed, 7001])
    sample_seeds = seq.generate_state(len(labels), dtype=np.uint64)
    chunks = []
    for lo in range(0, len(labels), cfg.batch):
        idx = np.arange(lo, min(lo + cfg.batch, len(labels)))
        rngs = [np.random.default_rng([int(s), 1]) for s in sample_seeds[idx]]
        offsets = np.concatenate([_saccade_offsets(1, cfg.n_bins + 1, cfg, r) for r in rngs])
        contrast = np.array([r.uniform(0.7, 1.0) for r in rngs], np.float32)
        video = _render(glyphs[idx], offsets, cfg.sensor, contrast)
        frames = emulate_frames(video, cfg.dt_us, spec, cfg.dvs,
                                seeds=[int(s) for s in sample_seeds[idx]], binary=True)
        chunks.append(pack_frames(frames))
    return {"frames": np.concatenate(chunks), "labels": labels}, {"width": cfg.sensor}


def _params(kind: str, cfg, seed: int) -> dict:
    return {"kind": kind, "version": GENERATOR_VERSION, "seed": seed, "config": asdict(cfg)}


def digits_dataset(seed: int = 0, config: DigitsConfig = DigitsConfig(),
                               use_cache: bool = True) -> FrameDataset:
    """The embedded single-digit set: frames [T=100, 2, 34, 34] (binary), labels 0..9.

    Splits: "all" (0-9), "train" (0-4), "test" (5-9)."""
    arrays, meta = store.cached("digits", _params("digits", config, seed),
                                lambda: _build_digits(config, seed), use_cache)
    names = [str(i) for i in range(10)]
    splits = {"all": np.arange(10), "train": np.arange(5), "test": np.arange(5, 10)}
    return FrameDataset("digits", arrays["frames"], np.asarray(arrays["labels"]), names, splits,
                        width=int(meta["width"]), packed=True, meta={"seed": seed})


def double_digits_dataset(seed: int = 0, config: DigitsConfig = DigitsConfig(),
                       per_class: int = 40, use_cache: bool = True) -> PairedFrameDataset:
    """Double digits ("00".."99"): frames [100, 2, 16, 32] (counts 0..4), 64/16/20 class split.

    Built lazily from the digits set; meta-train, meta-val and meta-test pairs use disjoint
    source images (pools 60/15/25 % of each digit's images)."""
    base = digits_dataset(seed, config, use_cache)
    splits = split_classes(100, DOUBLE_SPLIT, SPLIT_SEED)
    pools = split_pools(base.labels, POOL_FRACTIONS, SPLIT_SEED)
    pairs, labels = make_pairs(base, splits, pools, per_class, seed=SPLIT_SEED + seed)
    names = [f"{a}{b}" for a in range(10) for b in range(10)]
    return PairedFrameDataset("double_digits", base, pairs, labels, names, splits, crop=1,
                              pool=2, meta={"seed": seed, "pools": pools})
