"""The procedural gesture classes: 40 hand trajectories from 12 families, and their class split.

A class is a function of warped time tau (one gesture period over the window, [B, S]) that
returns the hands' positions in normalised body coordinates (x right, y down, about [-1, 1]
around the chest) and a size factor (a hand moving toward the camera grows). Families echo
DVS128 Gesture (clap, wave, arm circles, roll, drums, guitar) plus swipes, figure eights,
zigzags, polygons, spirals and push/pull, so there are enough classes for disjoint meta-train,
meta-val and meta-test sets.
"""
from __future__ import annotations

import numpy as np

TWO_PI = 2 * np.pi


def _hand(x, y, size=None, side=1):
    return {"x": x, "y": y, "size": np.ones_like(x) if size is None else size, "side": side}


def _ease(tau):
    u = np.clip(tau, 0, 1)
    return 0.5 - 0.5 * np.cos(np.pi * u)


def circle(direction, turns, side):
    def f(tau):
        a = direction * TWO_PI * turns * tau
        return [_hand(side * 0.45 + 0.45 * np.cos(a), -0.1 + 0.45 * np.sin(a), side=side)]
    return f


def wave(side, cycles):
    def f(tau):
        return [_hand(side * 0.5 + 0.35 * np.sin(TWO_PI * cycles * tau),
                      -0.55 + 0.05 * np.cos(2 * TWO_PI * cycles * tau), side=side)]
    return f


def swipe(dx, dy):
    def f(tau):
        e = _ease(tau) * 1.6 - 0.8
        return [_hand(0.2 + dx * e, -0.1 + dy * e, side=1)]
    return f


def clap(claps):
    def f(tau):
        gap = 0.12 + 0.5 * np.abs(np.cos(np.pi * claps * tau))
        return [_hand(gap, 0.0 * tau, side=1), _hand(-gap, 0.0 * tau, side=-1)]
    return f


def roll(direction):
    def f(tau):
        a = direction * TWO_PI * 2 * tau
        return [_hand(0.3 * np.cos(a), 0.05 + 0.3 * np.sin(a), side=1),
                _hand(-0.3 * np.cos(a), 0.05 - 0.3 * np.sin(a), side=-1)]
    return f


def figure8(horizontal):
    def f(tau):
        u, v = 0.7 * np.sin(TWO_PI * tau), 0.35 * np.sin(2 * TWO_PI * tau)
        x, y = (u, v) if horizontal else (v, u)
        return [_hand(0.15 + x, -0.1 + y, side=1)]
    return f


def zigzag(direction):
    def f(tau):
        u = np.clip(tau, 0, 1)
        return [_hand(0.2 + 0.5 * np.sin(TWO_PI * 3 * u), direction * (1.4 * u - 0.7), side=1)]
    return f


def push(toward):
    def f(tau):
        u = _ease(tau)
        size = 1 + 1.3 * (u if toward else 1 - u)
        return [_hand(0.25 + 0.05 * np.sin(TWO_PI * tau), -0.15 + 0.0 * tau, size=size, side=1)]
    return f


def drums(beats):
    def f(tau):
        s = 0.3 * np.sin(TWO_PI * beats * tau)
        return [_hand(0.45 + 0.0 * tau, 0.3 + s, side=1), _hand(-0.45 + 0.0 * tau, 0.3 - s, side=-1)]
    return f


def polygon(n_sides, rotation):
    angles = rotation + TWO_PI * np.arange(n_sides + 1) / n_sides
    verts = 0.6 * np.stack([np.cos(angles), np.sin(angles)], 1)

    def f(tau):
        u = np.mod(tau, 1.0) * n_sides
        k = np.minimum(np.floor(u).astype(int), n_sides - 1)
        w = u - k
        p = verts[k] * (1 - w[..., None]) + verts[k + 1] * w[..., None]
        return [_hand(0.15 + p[..., 0], -0.1 + p[..., 1], side=1)]
    return f


def spiral(outward):
    def f(tau):
        u = np.clip(tau, 0, 1)
        r = 0.1 + 0.6 * (u if outward else 1 - u)
        a = TWO_PI * 2 * u
        return [_hand(0.15 + r * np.cos(a), -0.1 + r * np.sin(a), side=1)]
    return f


def guitar():
    def f(tau):
        return [_hand(0.3 + 0.05 * np.sin(TWO_PI * 4 * tau), 0.35 + 0.25 * np.sin(TWO_PI * 4 * tau),
                      side=1),
                _hand(-0.75 + 0.08 * np.sin(TWO_PI * tau), -0.2 + 0.0 * tau, side=-1)]
    return f


def _catalog():
    c = {}
    for d, dn in ((1, "cw"), (-1, "ccw")):
        for turns in (1, 2):
            for side, sn in ((1, "right"), (-1, "left")):
                c[f"circle_{dn}_{turns}x_{sn}"] = circle(d, turns, side)
    for side, sn in ((1, "right"), (-1, "left")):
        for k in (1, 2, 3):
            c[f"wave_{sn}_{k}"] = wave(side, k)
    r = np.sqrt(0.5)
    for name, (dx, dy) in {"right": (1, 0), "left": (-1, 0), "up": (0, -1), "down": (0, 1),
                           "up_right": (r, -r), "up_left": (-r, -r), "down_right": (r, r),
                           "down_left": (-r, r)}.items():
        c[f"swipe_{name}"] = swipe(dx, dy)
    c["clap_2"], c["clap_3"] = clap(2), clap(3)
    c["roll_forward"], c["roll_backward"] = roll(1), roll(-1)
    c["figure8_horizontal"], c["figure8_vertical"] = figure8(True), figure8(False)
    c["zigzag_down"], c["zigzag_up"] = zigzag(1), zigzag(-1)
    c["push"], c["pull"] = push(True), push(False)
    c["drums_2"], c["drums_3"] = drums(2), drums(3)
    c["triangle"] = polygon(3, -np.pi / 2)
    c["square"] = polygon(4, np.pi / 4)
    c["diamond"] = polygon(4, 0.0)
    c["spiral_out"], c["spiral_in"] = spiral(True), spiral(False)
    c["guitar"] = guitar()
    return c


GESTURES = _catalog()
GESTURE_NAMES = list(GESTURES)                      # class id = index in this list
NONPERIODIC = {n for n in GESTURE_NAMES if n.split("_")[0] in
               ("swipe", "zigzag", "push", "pull", "spiral")}  # these get no phase shift

# The five-way demo learns these on chip; they are never in meta-training (nor meta-val).
DEMO_GESTURES = ["clap_2", "wave_right_2", "circle_ccw_1x_left", "roll_forward", "drums_2"]
TEST_GESTURES = DEMO_GESTURES + ["swipe_up_left", "figure8_vertical", "spiral_in", "square",
                                 "zigzag_up"]
VAL_GESTURES = ["circle_cw_2x_right", "wave_left_3", "swipe_down", "push", "triangle", "clap_3"]
TRAIN_GESTURES = [n for n in GESTURE_NAMES if n not in TEST_GESTURES + VAL_GESTURES]


def gesture_splits() -> dict[str, np.ndarray]:
    """Class ids of the disjoint splits train (24) / val (6) / test (10) and demo (5, in test)."""
    ids = {n: i for i, n in enumerate(GESTURE_NAMES)}
    return {k: np.array(sorted(ids[n] for n in v)) for k, v in
            (("train", TRAIN_GESTURES), ("val", VAL_GESTURES), ("test", TEST_GESTURES),
             ("demo", DEMO_GESTURES))}
