"""The paper's quantiser Q_{C,S} (eq. 7) on sim/loihi.py's weight grid, and thresholded inner
updates (eq. 6).

Q_{C,S} puts a weight onto C levels evenly spaced in [-scale, scale], symmetric around 0, with
deterministic (S=0) or stochastic (S=1) rounding and a straight-through gradient. At 8 bits the
levels are exactly the deployable Loihi grid: even mantissas in [-GRID_MAX, GRID_MAX], i.e.
round(w / scale * half) with half = GRID_MAX / GRID_STEP = 127, C = GRID_LEVELS = 255 (the same
rounding as sim.loihi.weights_to_grid with scale = max|w|). b bits use the same construction:
half = 2**(b-1) - 1 levels each side of zero, C = 2*half + 1 (b=2: {-1, 0, 1}).
"""
from __future__ import annotations

import torch

from metaloihi.base.errors import UserError
from metaloihi.sim.loihi import GRID_LEVELS, GRID_MAX, GRID_STEP, WEIGHT_BITS


def half_levels(bits: int) -> int:
    """Non-zero levels on each side of 0 for a b-bit signed grid (8 bits: Loihi's 127)."""
    if not 2 <= int(bits) <= WEIGHT_BITS:
        raise UserError(f"quantisation bits={bits}; expected 2..{WEIGHT_BITS} (Loihi weights)")
    if bits == WEIGHT_BITS:
        return GRID_MAX // GRID_STEP
    return 2 ** (int(bits) - 1) - 1


def levels(bits: int) -> int:
    """C of Q_{C,S}: 2*half + 1 (255 = sim.loihi.GRID_LEVELS at 8 bits)."""
    c = 2 * half_levels(bits) + 1
    assert bits != WEIGHT_BITS or c == GRID_LEVELS
    return c


def grid_scale(w: torch.Tensor) -> torch.Tensor:
    """The float value of the top level: max |w| of the layer, outside the graph."""
    return w.detach().abs().amax().clamp_min(1e-12)


def quantize(w: torch.Tensor, bits: int | None, stochastic: bool = False,
             scale: torch.Tensor | float | None = None) -> torch.Tensor:
    """Q_{C,S}(w) with C = levels(bits): values clipped to [-scale, scale] (default max |w|),
    rounded to the grid (stochastically: floor(x + U[0,1))), straight-through gradient.
    bits=None: identity."""
    if bits is None:
        return w
    half = half_levels(bits)
    scale = grid_scale(w) if scale is None else scale
    x = torch.clamp(w / scale, -1.0, 1.0) * half
    if stochastic:
        q = torch.floor(x + torch.rand_like(x))
    else:
        q = torch.round(x)
    q = q.clamp(-half, half) * (scale / half)
    return w + (q - w).detach()


def threshold_update(delta: torch.Tensor, fraction: float) -> torch.Tensor:
    """Eq. 6: keep an inner update only where |delta| >= Theta, Theta = fraction of the range
    of this update's magnitudes (paper: 5%); the mask is outside the graph."""
    if fraction <= 0:
        return delta
    mag = delta.detach().abs()
    theta = fraction * (mag.amax() - mag.amin())
    return delta * (mag >= theta).to(delta.dtype)
