"""The Loihi 2 neuron and synapse parameterisation, and the float <-> fixed-point mapping.

This module is the one home of these facts; everything else imports them.
Integer semantics follow Lava 0.10's fixed_pt CPU models (lava/proc/lif/models.py,
lava/proc/dense/models.py, lava/proc/conv/models.py, lava/utils/weightutils.py).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from metaloihi.base.errors import UserError

# --- bit widths and shifts --------------------------------------------------------------------
UV_BITS = 24                      # u and v are 24-bit signed registers
UV_LIMIT = 2 ** (UV_BITS - 1)     # 2**23
DECAY_BITS = 12                   # du, dv are 12-bit unsigned: 0..4095
DECAY_UNITY = 2 ** DECAY_BITS     # 4096 means "no decay"
DU_OFFSET = 1                     # Lava/Loihi add a hidden +1 to du (ds_offset), none to dv
VTH_SHIFT = 6                     # threshold is MSB-aligned: compared as vth << 6
ACT_SHIFT = 6                     # synaptic input is MSB-aligned: added to u as a << 6
VTH_MAX = 2 ** 17 - 1             # vth is 17-bit unsigned
BIAS_MANT_MIN, BIAS_MANT_MAX = -(2 ** 12), 2 ** 12 - 1   # 13-bit signed bias mantissa
BIAS_EXP_MIN, BIAS_EXP_MAX = 0, 7                       # 3-bit bias exponent
WEIGHT_BITS = 8
WEIGHT_MANT_MIN, WEIGHT_MANT_MAX = -(2 ** WEIGHT_BITS), 2 ** WEIGHT_BITS - 1   # Lava's clip
WEIGHT_EXP_MIN, WEIGHT_EXP_MAX = -8, 7
CONV_ACC_BITS = 24                # Lava's Conv output is wrapped to 24 bits signed
CHANNEL_BITS = 32                 # messages between Lava processes travel as int32
# The deployable weight grid: even mantissas in [-254, 254], i.e. 255 evenly spaced levels.
# Dense drops the LSB of mixed-sign weights (even values only), Conv does not; a weight on this
# grid means the same on both and on the board.
GRID_STEP = 2
GRID_MAX = 254
GRID_LEVELS = 2 * GRID_MAX // GRID_STEP + 1   # 255 = C in the paper's Q_{C,S}


def _check_range(name: str, value, lo: int, hi: int) -> None:
    arr = np.asarray(value)
    if not np.issubdtype(arr.dtype, np.integer):
        if not np.all(np.isfinite(arr)) or not np.all(arr == np.round(arr)):
            raise UserError(f"{name} must be an integer, got {value!r}")
    if arr.size and (arr.min() < lo or arr.max() > hi):
        bad = arr.min() if arr.min() < lo else arr.max()
        raise UserError(f"{name}={int(bad)} is out of range [{lo}, {hi}]")


@dataclass(frozen=True)
class LifFixed:
    """Loihi 2 CUBA LIF parameters in hardware units (what Lava's LIF process takes)."""

    du: int = 0                    # current decay, 0..4095 (effective factor (4096-du-1)/4096)
    dv: int = 0                    # voltage decay, 0..4095 (effective factor (4096-dv)/4096)
    vth: int = 64                  # threshold mantissa, compared as vth << 6
    bias_mant: np.ndarray | int = 0
    bias_exp: int = 0

    def __post_init__(self):
        _check_range("du", self.du, 0, DECAY_UNITY - 1)
        _check_range("dv", self.dv, 0, DECAY_UNITY - 1)
        _check_range("vth", self.vth, 0, VTH_MAX)
        _check_range("bias_mant", self.bias_mant, BIAS_MANT_MIN, BIAS_MANT_MAX)
        _check_range("bias_exp", self.bias_exp, BIAS_EXP_MIN, BIAS_EXP_MAX)

    @property
    def effective_bias(self) -> np.ndarray:
        """Bias added to v each step: mantissa << exponent (not shifted by 6)."""
        return np.left_shift(np.asarray(self.bias_mant, dtype=np.int64), int(self.bias_exp))

    @property
    def effective_vth(self) -> int:
        return int(self.vth) << VTH_SHIFT


@dataclass(frozen=True)
class LifFloat:
    """The same neuron in float units: u[t] = u*(1-du) + I, v[t] = v*(1-dv) + u + bias, v > vth."""

    du: float = 1 / DECAY_UNITY
    dv: float = 0.0
    vth: float = 1.0
    bias: float | np.ndarray = 0.0


# --- float <-> fixed ----------------------------------------------------------------------------
def du_to_fixed(du: float) -> int:
    """Float current decay (fraction lost per step) -> Lava du, accounting for the hidden +1."""
    return int(np.clip(round(du * DECAY_UNITY) - DU_OFFSET, 0, DECAY_UNITY - 1))


def dv_to_fixed(dv: float) -> int:
    return int(np.clip(round(dv * DECAY_UNITY), 0, DECAY_UNITY - 1))


def du_to_float(du: int) -> float:
    return (int(du) + DU_OFFSET) / DECAY_UNITY


def dv_to_float(dv: int) -> float:
    return int(dv) / DECAY_UNITY


def grid_scale(max_abs_weight: float) -> float:
    """Mantissa units per float weight unit so that the largest |weight| lands on GRID_MAX."""
    if not np.isfinite(max_abs_weight):
        raise UserError(f"weights must be finite, got max |w| = {max_abs_weight}")
    return GRID_MAX / max_abs_weight if max_abs_weight > 0 else 1.0


def weights_to_grid(w: np.ndarray, scale: float) -> np.ndarray:
    """Float weights -> integer mantissas on the deployable grid (even, |m| <= 254)."""
    w = np.asarray(w, dtype=np.float64)
    if not np.all(np.isfinite(w)):
        raise UserError("weights contain NaN or inf")
    m = np.round(w * scale / GRID_STEP) * GRID_STEP
    return np.clip(m, -GRID_MAX, GRID_MAX).astype(np.int64)


def lif_to_fixed(neuron: LifFloat, scale: float, n: int | None = None) -> LifFixed:
    """Map a float LIF whose synapses were scaled by `scale` (mantissa units per float weight).

    u_fixed = u_float * scale * 2**6, so vth_mant = vth * scale and bias (not shifted by 6)
    = bias * scale * 2**6, split into a 13-bit mantissa and the smallest exponent that fits.
    """
    vth = int(round(neuron.vth * scale))
    if vth > VTH_MAX:
        raise UserError(f"vth={neuron.vth} x scale {scale:.4g} = {vth} exceeds the 17-bit "
                        f"threshold {VTH_MAX}; use a weight exponent to shrink the scale")
    bias = np.asarray(neuron.bias, dtype=np.float64) * scale * 2 ** ACT_SHIFT
    bias_exp = 0
    while np.max(np.abs(bias), initial=0) / 2 ** bias_exp > BIAS_MANT_MAX and bias_exp < BIAS_EXP_MAX:
        bias_exp += 1
    mant = np.clip(np.round(bias / 2 ** bias_exp), BIAS_MANT_MIN, BIAS_MANT_MAX).astype(np.int64)
    if n is not None and mant.ndim == 0:
        mant = np.full(n, int(mant), dtype=np.int64)
    return LifFixed(du=du_to_fixed(neuron.du), dv=dv_to_fixed(neuron.dv), vth=max(vth, 0),
                    bias_mant=mant, bias_exp=bias_exp)


def lif_to_float(neuron: LifFixed, scale: float) -> LifFloat:
    """Exact inverse of lif_to_fixed for representable values."""
    return LifFloat(du=du_to_float(neuron.du), dv=dv_to_float(neuron.dv),
                    vth=neuron.vth / scale,
                    bias=neuron.effective_bias / (scale * 2 ** ACT_SHIFT))
