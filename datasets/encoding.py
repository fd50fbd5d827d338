"""Event frames -> the network's binary input spikes: the one encoding every back end shares
(offline/ training, sim/, Lava, a board's host). It travels in the bundle (meta "encoding") so a
deployed network sees exactly what it was trained on.

Frames [B, T, 2, H, W] (event counts per bin) -> spatial sum-pool by `pool`, time sum-pool by
`time_pool`, keep the last `steps` bins (None: all), then spike where the count is > 0.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from metaloihi.base.errors import UserError


ENCODING_MAX = 1 << 20          # far past any sensor's pixels or a recording's time bins


@dataclass(frozen=True)
class Encoding:
    pool: int = 1
    time_pool: int = 1
    steps: int | None = None

    def __post_init__(self):
        for name in ("pool", "time_pool", "steps"):
            v = getattr(self, name)
            if v is None and name == "steps":
                continue
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) \
                    or not 1 <= v <= ENCODING_MAX:
                raise UserError(f"encoding {name}={v!r}; expected an integer in "
                                f"[1, {ENCODING_MAX}]" + (" or none" if name == "steps" else ""))

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict | None) -> "Encoding":
        d = dict(d or {})
        unknown = set(d) - {"pool", "time_pool", "steps"}
        if unknown:
            raise UserError(f"unknown encoding field(s) {sorted(unknown)}")
        return cls(**d)

    def input_shape(self, frame_shape: tuple[int, ...]) -> tuple[int, int, int]:
        """Per-step network input (C, H, W) for frames [T, C, H, W]; an encoding that leaves
        no step or no pixel of them is a UserError naming it."""
        t, c, h, w = frame_shape
        if t // self.time_pool < 1:
            raise UserError(f"encoding time_pool={self.time_pool} leaves no time step of the "
                            f"data set's {t} frames; expected <= {t}")
        if h // self.pool < 1 or w // self.pool < 1:
            raise UserError(f"encoding pool={self.pool} leaves no pixel of the data set's "
                            f"{h}x{w} frames; expected <= {min(h, w)}")
        return (c, h // self.pool, w // self.pool)

    def steps_of(self, t: int) -> int:
        n = t // self.time_pool
        return n if self.steps is None else min(n, self.steps)


def encode(frames, enc: Encoding) -> np.ndarray:
    """Frames [B, T, C, H, W] (numpy or torch, counts) -> bool spikes [B, T', C, H', W']."""
    x = np.asarray(frames.detach().cpu().numpy() if hasattr(frames, "detach") else frames)
    if x.ndim != 5:
        raise UserError(f"frames must be [batch, steps, 2, H, W], got shape {tuple(x.shape)}")
    b, t, c, h, w = x.shape
    x = x.astype(np.float32, copy=False)
    p, tp = enc.pool, enc.time_pool
    if p > 1:
        x = x[..., : h // p * p, : w // p * p].reshape(b, t, c, h // p, p, w // p, p).sum((4, 6))
    if tp > 1:
        x = x[:, : t // tp * tp].reshape(b, t // tp, tp, *x.shape[2:]).sum(2)
    if enc.steps is not None:
        x = x[:, -enc.steps:]
    return x > 0
