"""What every rule's chip side shares (not a rule: rules/__init__.py's RULES never names it).

A rule on the chip is a third factor and a dw string; the rest is Loihi's: the head neuron that
turns the third factor n into y traces (y2 = clip(n, 0, 127), y3 = clip(-n, 0, 127)), the
learning engine (pre trace x1, the y traces, the product, the accumulator, the stochastic
rounding, Lava's random streams), the window and the learning step of each sample's period,
and the error path process that gates the window and sends n. Here:
  chip.py   the bit-exact emulation of all that (the learning step and the session fold over
            a rule's session rule: window, period, rng_seed, mant, exp, terms, third_factor)
  lava.py   the same as Lava processes (the head neuron, the error path, the Loihi3F rule)
This module holds the learning engine's limits (Lava 0.10, read from its source), which the
rules' cards check their parameters against (no numba, no Lava here).
"""
from __future__ import annotations

PRODUCT_SHIFT = 7 + 7 + 4 - 15   # x1 and y widths + W_S_MANT - W_ACCUMULATOR_U
MANT_MAX = 7                     # the scaling mantissa is 4-bit signed: Lava accepts -8..7
EXP_MIN, EXP_MAX = -7, 8         # Lava accepts 2^-7..2^8 (s_exp = e + 7 in 0..15)
