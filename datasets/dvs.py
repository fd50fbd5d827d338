"""A vectorised DVS pixel-array emulator: intensity videos in, ON/OFF events out.

Each pixel remembers the log intensity at its last event (its reference). When the log intensity
moves one contrast threshold above (below) the reference, the pixel emits an ON (OFF) event and
the reference moves by one threshold. Thresholds differ per pixel (mismatch), an event is
suppressed during the refractory period after the pixel's previous one, and background noise
events arrive as a Poisson process. Intensity is linear between video frames, so event times
inside a step are interpolated at the threshold crossings. All samples of a batch are emulated
at once; each sample draws its mismatch and noise from its own seed, so a sample's events do not
depend on which batch it was emulated in.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from metaloihi.datasets.events import EVENT_DTYPE, FrameSpec, make_events
from metaloihi.base.errors import UserError


@dataclass(frozen=True)
class DVSConfig:
    threshold_on: float = 0.25     # contrast threshold, log-intensity units (DAVIS: ~0.2-0.3)
    threshold_off: float = 0.25
    mismatch: float = 0.03         # std of the per-pixel threshold, same units
    refractory_us: float = 500.0   # dead time after an event, per pixel
    noise_hz: float = 0.5          # background events per pixel per second
    eps: float = 0.02              # log(I + eps): dark pixels stay finite and quiet
    max_events_per_step: int = 4   # crossings per pixel per video step that become events

    def __post_init__(self):
        if min(self.threshold_on, self.threshold_off) <= 0:
            raise UserError(f"DVSConfig: thresholds {self.threshold_on}, {self.threshold_off}; "
                            "expected > 0")
        if self.mismatch < 0 or self.noise_hz < 0 or self.refractory_us < 0:
            raise UserError("DVSConfig: mismatch, noise_hz and refractory_us must be >= 0")


def _pixel_state(seeds, shape_hw, cfg: DVSConfig):
    """Per-sample thresholds (with mismatch) and reset-level offsets, from each sample's seed."""
    rngs = [np.random.default_rng(s) for s in seeds]
    h, w = shape_hw
    c_on, c_off, offset = [], [], []
    for rng in rngs:
        c_on.append(cfg.threshold_on + cfg.mismatch * rng.standard_normal((h, w)))
        c_off.append(cfg.threshold_off + cfg.mismatch * rng.standard_normal((h, w)))
        offset.append(rng.uniform(-0.5, 0.5, (h, w)))  # pixels reset at scattered levels
    floor = 0.2 * min(cfg.threshold_on, cfg.threshold_off)  # mismatch never makes C <= 0
    c_on = np.maximum(np.stack(c_on), floor)
    c_off = np.maximum(np.stack(c_off), floor)
    return rngs, c_on, c_off, np.stack(offset)


def emulate_batch(videos: np.ndarray, step_us: float, cfg: DVSConfig = DVSConfig(),
                  seeds=None, noise_scale=None):
    """Emulate a batch of intensity videos [B, S, H, W] (values >= 0, frame s at s*step_us).

    noise_scale (per sample, optional) multiplies cfg.noise_hz: sensors differ in noise.
    Returns flat event arrays (b, t_us, x, y, p) over the window [0, (S-1)*step_us)."""
    videos = np.asarray(videos, dtype=np.float32)
    if videos.ndim != 4 or videos.shape[1] < 2:
        raise UserError(f"emulate_batch: video shape {videos.shape}; expected [B, S>=2, H, W]")
    b, s, h, w = videos.shape
    seeds = list(range(b)) if seeds is None else list(seeds)
    rngs, c_on, c_off, offset = _pixel_state(seeds, (h, w), cfg)
    c_on, c_off = c_on.astype(np.float32), c_off.astype(np.float32)
    log_v = np.log(videos + np.float32(cfg.eps))
    ref = log_v[:, 0] + (offset * c_on).astype(np.float32)
    last_t = np.full((b, h, w), -np.inf, np.float32)
    out_b, out_t, out_x, out_y, out_p = [], [], [], [], []
    for step in range(1, s):
        prev, cur = log_v[:, step - 1], log_v[:, step]
        t0 = np.float32((step - 1) * step_us)
        slope = cur - prev
        safe = np.where(np.abs(slope) > 1e-12, slope, np.float32(1e-12))
        n_on = np.floor((cur - ref) / c_on)
        n_off = np.floor((ref - cur) / c_off)
        for sign, n, c in ((1, n_on, c_on), (-1, n_off, c_off)):
            fire = n >= 1
            if not fire.any():
                continue
            for k in range(1, cfg.max_events_per_step + 1):
                cand = n >= k
                if not cand.any():
                    break
                level = ref + sign * k * c  # the log intensity at the k-th crossing
                frac = np.clip((level - prev) / safe, 0.0, 1.0)
                t_k = t0 + frac * np.float32(step_us)
                emit = cand & (t_k >= last_t + np.float32(cfg.refractory_us))
                if emit.any():
                    bi, yi, xi = np.nonzero(emit)
                    out_b.append(bi)
                    out_y.append(yi)
                    out_x.append(xi)
                    out_t.append(t_k[emit])
                    out_p.append(np.full(len(bi), sign > 0))
                    last_t = np.where(emit, t_k, last_t)
            ref = np.where(fire, ref + sign * n * c, ref)  # all crossings are consumed
    duration = (s - 1) * step_us
    scale = np.ones(b) if noise_scale is None else np.asarray(noise_scale, float)
    for i, rng in enumerate(rngs):  # background activity, independent of the scene
        n = rng.poisson(cfg.noise_hz * scale[i] * h * w * duration * 1e-6)
        out_b.append(np.full(n, i))
        out_t.append(rng.uniform(0, duration, n).astype(np.float32))
        out_x.append(rng.integers(0, w, n))
        out_y.append(rng.integers(0, h, n))
        out_p.append(rng.random(n) < 0.5)
    cat = (lambda xs, dt: np.concatenate(xs).astype(dt) if xs else np.zeros(0, dt))
    return (cat(out_b, np.int64), np.floor(cat(out_t, np.float64)).astype(np.int64),
            cat(out_x, np.int16), cat(out_y, np.int16), cat(out_p, bool))


def emulate(video: np.ndarray, step_us: float, cfg: DVSConfig = DVSConfig(),
            seed: int = 0) -> np.ndarray:
    """One intensity video [S, H, W] -> structured events (EVENT_DTYPE), sorted by time."""
    video = np.asarray(video)
    if video.ndim != 3:
        raise UserError(f"emulate: video shape {video.shape}; expected [S, H, W]")
    _, t, x, y, p = emulate_batch(video[None], step_us, cfg, seeds=[seed])
    return make_events(x, y, p, t) if len(t) else np.zeros(0, EVENT_DTYPE)


def emulate_frames(videos: np.ndarray, step_us: float, spec: FrameSpec,
                   cfg: DVSConfig = DVSConfig(), seeds=None, binary: bool = True,
                   noise_scale=None) -> np.ndarray:
    """Emulate a batch and bin straight into uint8 frames [B, T, 2, H, W] (channel 1 = ON).

    The same binning as events.to_frames, without building per-sample event arrays."""
    b_, _, h, w = np.shape(videos)
    bi, t, x, y, p = emulate_batch(videos, step_us, cfg, seeds, noise_scale)
    t = t - spec.t_start_us
    keep = (t >= 0) & (t < spec.duration_us)
    bi, t, x, y, p = bi[keep], t[keep], x[keep], y[keep], p[keep]
    idx = ((((bi * spec.n_bins + t // spec.dt_us) * 2 + p) * h + y) * w + x)
    counts = np.bincount(idx, minlength=b_ * spec.n_bins * 2 * h * w)
    counts = counts.reshape(b_, spec.n_bins, 2, h, w)
    return (counts > 0).astype(np.uint8) if binary else np.minimum(counts, 255).astype(np.uint8)
