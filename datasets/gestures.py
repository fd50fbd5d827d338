"""Embedded "gestures": procedurally generated DVS gestures on a 32x32 sensor, 100 bins of 1 ms.

A scene is a static background and torso (a DVS does not see them, only the sensor noise and a
slight body sway) and one or two arms: shoulder -> elbow -> hand capsules with a hand disc,
moving along the class trajectory (gesture_catalog). Every sample varies what differs between
recordings of real people: speed and phase (time warp), amplitude, position, size, "actor" style
(shoulder width, elbow bend, arm thickness, brightness, tremor) and sensor noise and mismatch.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from metaloihi.datasets import store
from metaloihi.datasets.dvs import DVSConfig, emulate_frames
from metaloihi.datasets.events import FrameSpec, pack_frames
from metaloihi.datasets.framesets import FrameDataset
from metaloihi.datasets.gesture_catalog import GESTURE_NAMES, GESTURES, NONPERIODIC, gesture_splits

GENERATOR_VERSION = 1


@dataclass(frozen=True)
class GesturesConfig:
    sensor: int = 32                  # 32x32, the demo network's input
    n_bins: int = 100                 # 100 bins of 1 ms
    dt_us: int = 1000
    per_class: int = 30               # samples per class (>= shots + queries of a task)
    classes: tuple[str, ...] | None = None   # None: all 40; tests pick a few
    dvs: DVSConfig = field(default_factory=DVSConfig)
    batch: int = 64


def _actor(rng) -> dict:
    """One sample's variation: the scene, the actor and the performance."""
    return {
        "speed": rng.uniform(0.8, 1.2), "phase": rng.uniform(0, 1), "amp": rng.uniform(0.8, 1.15),
        "cx": rng.normal(0, 1.5), "cy": rng.normal(0, 1.2), "scale": rng.uniform(0.85, 1.15),
        "shoulder": rng.uniform(0.45, 0.65), "bend": rng.uniform(-0.25, 0.25),
        "arm_w": rng.uniform(0.9, 1.5), "hand_r": rng.uniform(1.6, 2.3),
        "bg": rng.uniform(0.12, 0.3), "hand": rng.uniform(0.6, 0.95), "torso": rng.uniform(0.3, 0.5),
        "tremor": rng.uniform(0.0, 0.25), "sway": rng.uniform(0.0, 0.4),
        "noise": rng.uniform(0.3, 3.0),
    }


def _seg_cover(px, py, ax, ay, bx, by, radius):
    """Anti-aliased coverage (0..1) of a capsule from a to b with the given radius at pixels p."""
    dx, dy = bx - ax, by - ay
    t = np.clip(((px - ax) * dx + (py - ay) * dy) / np.maximum(dx * dx + dy * dy, 1e-6), 0, 1)
    d = np.hypot(px - (ax + t * dx), py - (ay + t * dy))
    return np.clip(radius + 0.5 - d, 0, 1)


def render(name: str, actors: list[dict], steps: int, sensor: int, rngs) -> np.ndarray:
    """Intensity videos [len(actors), steps, sensor, sensor] of gesture `name`."""
    n = len(actors)
    a = {k: np.array([ac[k] for ac in actors], np.float32)[:, None] for k in actors[0]}
    u = np.linspace(0, 1, steps, dtype=np.float32)[None, :]
    periodic = name not in NONPERIODIC
    # periodic gestures start anywhere in their cycle; one-shot motions are centred in time
    tau = a["speed"] * u + (a["phase"] if periodic else (1 - a["speed"]) / 2)
    hands = GESTURES[name](tau)
    c = sensor / 2
    half = 0.4 * sensor * a["amp"] * a["scale"]             # normalised unit -> pixels
    cx, cy = c + a["cx"], c - 2 + a["cy"]
    sway = a["sway"] * np.sin(2 * np.pi * (u + a["phase"]))
    py, px = np.mgrid[0:sensor, 0:sensor].astype(np.float32)
    px, py = px[None, None], py[None, None]
    cover = np.zeros((n, steps, sensor, sensor), np.float32)
    torso = _seg_cover(px, py, (cx + sway)[..., None, None], (cy + 0.45 * half)[..., None, None],
                       (cx + sway)[..., None, None], np.full((n, 1, 1, 1), sensor + 4.0),
                       (0.3 * half)[..., None, None])
    for h in hands:
        tremor = np.stack([np.cumsum(r.normal(0, 1, steps)) for r in rngs]).astype(np.float32)
        tremor = a["tremor"] * (tremor - tremor.mean(1, keepdims=True)) / np.sqrt(steps)
        hx = cx + half * h["x"] + sway + tremor
        hy = cy + half * h["y"] + tremor[:, ::-1]
        sx = cx + sway + h["side"] * a["shoulder"] * half
        sy = cy + 0.45 * half + 0.0 * hx
        # elbow: halfway, pushed sideways by the actor's bend (perpendicular to the forearm line)
        ex, ey = (sx + hx) / 2, (sy + hy) / 2
        nx, ny = -(hy - sy), (hx - sx)
        ex = ex + a["bend"] * h["side"] * nx
        ey = ey + a["bend"] * h["side"] * ny
        e = [v[..., None, None] for v in (sx, sy, ex, ey, hx, hy)]
        w = a["arm_w"][..., None, None]
        arm = np.maximum(_seg_cover(px, py, e[0], e[1], e[2], e[3], w),
                         _seg_cover(px, py, e[2], e[3], e[4], e[5], w))
        hand = _seg_cover(px, py, e[4], e[5], e[4], e[5],
                          (a["hand_r"] * a["scale"] * h["size"])[..., None, None])
        cover = np.maximum(cover, np.maximum(0.8 * arm, hand))
    bg, lvl, tl = (a[k][..., None, None] for k in ("bg", "hand", "torso"))
    scene = bg + (tl - bg) * torso
    return scene + (lvl - scene) * cover


def _build(cfg: GesturesConfig, seed: int):
    names = list(cfg.classes) if cfg.classes else GESTURE_NAMES
    spec = FrameSpec(cfg.n_bins, cfg.dt_us)
    frames, labels = [], []
    for name in names:
        cid = GESTURE_NAMES.index(name)
        seeds = np.random.SeedSequence([seed, 7002, cid]).generate_state(cfg.per_class, np.uint64)
        for lo in range(0, cfg.per_class, cfg.batch):
            s = [int(v) for v in seeds[lo:lo + cfg.batch]]
            rngs = [np.random.default_rng([v, 1]) for v in s]
            actors = [_actor(r) for r in rngs]
            video = render(name, actors, cfg.n_bins + 1, cfg.sensor, rngs)
            f = emulate_frames(video, cfg.dt_us, spec, cfg.dvs, seeds=s, binary=True,
                               noise_scale=[ac["noise"] for ac in actors])
            frames.append(pack_frames(f))
            labels.append(np.full(len(s), cid))
    return ({"frames": np.concatenate(frames), "labels": np.concatenate(labels).astype(np.int64)},
            {"width": cfg.sensor})


def gestures_dataset(seed: int = 0, config: GesturesConfig = GesturesConfig(),
                     use_cache: bool = True) -> FrameDataset:
    """The embedded gestures: frames [100, 2, 32, 32] (binary), 40 classes (GESTURE_NAMES).

    Splits: train (24 classes), val (6), test (10), demo (the 5 DEMO_GESTURES, inside test)."""
    params = {"kind": "gestures", "version": GENERATOR_VERSION, "seed": seed,
              "config": asdict(config)}
    arrays, meta = store.cached("gestures", params, lambda: _build(config, seed), use_cache)
    labels = np.asarray(arrays["labels"])
    splits = gesture_splits()
    if config.classes:  # a subset: keep split members that exist
        present = set(np.unique(labels).tolist())
        splits = {k: np.array([c for c in v if c in present], int) for k, v in splits.items()}
    return FrameDataset("gestures", arrays["frames"], labels, list(GESTURE_NAMES), splits,
                        width=int(meta["width"]), packed=True, meta={"seed": seed})
