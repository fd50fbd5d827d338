"""Event core: structured event arrays as tonic uses them, and binning into frames [T, 2, H, W].

Events are a structured numpy array with fields x, y (pixel), p (polarity, True = ON) and t
(microseconds), tonic's DVSGesture dtype. Frames put OFF in channel 0 and ON in channel 1,
tonic's ToFrame convention (channel index = p).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from metaloihi.base.errors import UserError

EVENT_DTYPE = np.dtype([("x", np.int16), ("y", np.int16), ("p", bool), ("t", np.int64)])
OFF, ON = 0, 1  # frame channel of each polarity


def make_events(x, y, p, t) -> np.ndarray:
    """Structured events from four equal-length arrays, sorted by time (stable)."""
    x, y, p, t = (np.asarray(a).ravel() for a in (x, y, p, t))
    if not (len(x) == len(y) == len(p) == len(t)):
        raise UserError(f"events: x, y, p, t lengths {len(x)}, {len(y)}, {len(p)}, {len(t)}; "
                        "expected equal lengths")
    ev = np.empty(len(t), dtype=EVENT_DTYPE)
    ev["x"], ev["y"], ev["p"], ev["t"] = x, y, p.astype(bool), t
    return ev[np.argsort(ev["t"], kind="stable")]


def as_events(events: np.ndarray, what: str = "events") -> np.ndarray:
    """Coerce any structured array with x, y, p, t fields (tonic's readers use several dtypes)."""
    names = getattr(events.dtype, "names", None) or ()
    missing = [f for f in ("x", "y", "p", "t") if f not in names]
    if missing:
        raise UserError(f"{what}: structured array lacks fields {missing}; expected x, y, p, t")
    if events.dtype == EVENT_DTYPE:
        return events
    out = np.empty(len(events), dtype=EVENT_DTYPE)
    for f in ("x", "y", "t"):
        out[f] = events[f]
    out["p"] = events["p"] > 0
    return out


@dataclass(frozen=True)
class FrameSpec:
    """How events become frames: n_bins bins of dt_us microseconds from t_start_us.

    The paper presents 100 bins of 1 ms to the network (one bin per 1 ms simulation step); real
    recordings longer than that are accelerated by using a larger dt_us (N-Omniglot: 100 ms)."""
    n_bins: int = 100
    dt_us: int = 1000
    t_start_us: int = 0

    def __post_init__(self):
        if self.n_bins < 1 or self.dt_us < 1:
            raise UserError(f"FrameSpec: n_bins={self.n_bins}, dt_us={self.dt_us}; "
                            "expected both >= 1")

    @property
    def duration_us(self) -> int:
        return self.n_bins * self.dt_us


def to_frames(events: np.ndarray, sensor_size: tuple[int, int], spec: FrameSpec = FrameSpec(),
              binary: bool = False) -> np.ndarray:
    """Bin events into uint8 frames [n_bins, 2, H, W] with tonic's ToFrame (counts clip at 255).

    sensor_size is (W, H) as in tonic. Events outside [t_start, t_start + n_bins*dt) or outside
    the sensor are dropped (ToFrame would otherwise silently index out of range)."""
    from tonic.transforms import ToFrame

    w, h = sensor_size
    events = as_events(events)
    t0, t1 = spec.t_start_us, spec.t_start_us + spec.duration_us
    keep = ((events["t"] >= t0) & (events["t"] < t1) & (events["x"] >= 0) & (events["x"] < w)
            & (events["y"] >= 0) & (events["y"] < h))
    events = events[keep]
    if len(events) == 0:  # tonic returns a wrongly shaped single frame for no events
        return np.zeros((spec.n_bins, 2, h, w), np.uint8)
    frames = ToFrame(sensor_size=(w, h, 2), time_window=spec.dt_us, start_time=t0,
                     end_time=t1)(events)
    frames = frames[: spec.n_bins]
    if frames.shape[0] < spec.n_bins:
        pad = np.zeros((spec.n_bins - frames.shape[0], 2, h, w), frames.dtype)
        frames = np.concatenate([frames, pad])
    if binary:
        return (frames > 0).astype(np.uint8)
    return np.minimum(frames, 255).astype(np.uint8)


def downsample(events: np.ndarray, sensor_size: tuple[int, int], factor: int):
    """Spatially downsample by an integer factor with tonic's Downsample -> (events, new size)."""
    from tonic.transforms import Downsample

    if factor < 1:
        raise UserError(f"downsample: factor={factor}; expected an integer >= 1")
    if factor == 1:
        return as_events(events), tuple(sensor_size)
    ev = Downsample(spatial_factor=1.0 / factor)(as_events(events).copy())
    return ev, (sensor_size[0] // factor, sensor_size[1] // factor)


def denoise(events: np.ndarray, filter_time_us: float) -> np.ndarray:
    """Drop isolated events (no neighbour within 1 pixel and filter_time_us): tonic's Denoise."""
    from tonic.transforms import Denoise

    events = as_events(events)
    if len(events) == 0:
        return events
    return Denoise(filter_time=filter_time_us)(events)


def pool_frames(frames: np.ndarray, factor: int) -> np.ndarray:
    """Sum-pool the last two axes by an integer factor (cropping a remainder), saturating uint8.

    Equivalent to tonic's Downsample on the events followed by binning, but on cached frames."""
    if factor == 1:
        return frames
    *lead, h, w = frames.shape
    h2, w2 = h // factor, w // factor
    f = frames[..., : h2 * factor, : w2 * factor]
    acc = np.zeros((*lead, h2, w2), np.uint16)
    for i in range(factor):  # strided adds: much faster than a reshaped multi-axis sum
        for j in range(factor):
            acc += f[..., i::factor, j::factor]
    return np.minimum(acc, 255).astype(np.uint8)


def pack_frames(frames: np.ndarray) -> np.ndarray:
    """Binary frames [..., W] -> bit-packed uint8 [..., ceil(W/8)] (8x smaller cache)."""
    return np.packbits(frames > 0, axis=-1, bitorder="little")


def unpack_frames(packed: np.ndarray, width: int) -> np.ndarray:
    """Inverse of pack_frames: uint8 0/1 frames [..., width]."""
    return np.unpackbits(packed, axis=-1, count=width, bitorder="little")
