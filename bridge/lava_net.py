"""Layout conversions between sim/ and Lava, once: Lava's Conv takes (W, H, C) tensors and a
true-convolution kernel (C_out, W, H, C_in); a Dense after a conv sees Lava's (W, H, C) flatten
order. sim/ uses torch's (C, H, W) and cross-correlation kernels.
"""
from __future__ import annotations

import numpy as np


def lava_shape(shape: tuple[int, ...]) -> tuple[int, ...]:
    """(C, H, W) -> Lava's (W, H, C); flat shapes are unchanged."""
    return tuple(shape[::-1]) if len(shape) == 3 else tuple(shape)


def to_lava_order(a: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Trailing axes in torch (C, H, W) order -> Lava (W, H, C) order."""
    if len(shape) != 3:
        return a
    lead = a.shape[: a.ndim - 3]
    return np.moveaxis(a.reshape(*lead, *shape), [-3, -2, -1], [-1, -2, -3])


def from_lava_order(a: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """[..., W, H, C] from Lava -> [..., C*H*W] in torch flatten order."""
    lead = a.shape[: a.ndim - len(shape)]
    if len(shape) == 3:
        a = np.moveaxis(a, [-1, -2, -3], [-3, -2, -1])
    return a.reshape(*lead, -1)


def lava_conv_weight(w: np.ndarray) -> np.ndarray:
    """Cross-correlation kernel [C_out, C_in, kh, kw] -> Lava's convolution kernel
    [C_out, kw, kh, C_in] (flipped, since Lava's CPU Conv is scipy's convolve2d)."""
    return np.ascontiguousarray(w[:, :, ::-1, ::-1].transpose(0, 3, 2, 1))


def lava_dense_weight(w: np.ndarray, in_shape: tuple[int, ...]) -> np.ndarray:
    """Dense weights over torch's flatten order -> over Lava's flatten order of in_shape."""
    if len(in_shape) != 3:
        return w
    return to_lava_order(w, in_shape).reshape(w.shape[0], -1)
