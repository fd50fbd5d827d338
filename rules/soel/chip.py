"""SOEL on chip, bit-exact (the rule's card, rules/soel/__init__.py, holds its parameters): its
session rule and third factor; the rest of the integer emulation of the Lava graph (the window,
the learning engine and its random streams, the learning step, the session) is every rule's,
rules/engine/chip.py, re-exported here for SOEL's callers.

SOEL's learning step (step T of each period, rules/engine/chip.py says what the rest of the
period does): the error path sends n = trunc((c - target) / theta) from the head's spike counts
c over the window; the head neuron writes y2 = clip(n, 0, 127), y3 = clip(-n, 0, 127), and the
learning engine applies dw = m 2^e (u0 x1 y3 - u0 x1 y2) = -m 2^e n x (in Lava's units), so one
weight step is m 2^(e-3) n x mantissa units before the stochastic rounding.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from metaloihi.rules.engine.chip import (ACC_LIMIT, ACC_SHIFT, S_EXP_OFFSET,  # noqa: F401
                                         TRACE_MAX, TRACE_TAU, W_MAX, W_MIN, WEIGHT_RNG_SEED,
                                         ChipState, SessionTrace, Stream, dw_string,
                                         head_window, learn, learn_step, new_state,
                                         post_trace_at_epoch_end, pre_trace_at_epoch_end,
                                         present, present_frozen, run_session, truncate)
from metaloihi.rules.engine.chip import decay as _decay  # noqa: F401  (the tests' definition)
from metaloihi.rules.soel import (EXP_MAX, EXP_MIN, MANT_MAX, PRODUCT_SHIFT,  # noqa: F401
                                  THETA_MAX, THETA_MIN, ChipRule, eta_to_rule)


@dataclass(frozen=True)
class SoelRule:
    """The head's on-chip rule in Lava units: dw = mant 2^exp (u0 x1 y3 - u0 x1 y2)."""
    mant: int
    exp: int
    theta: float
    target_on: int
    target_off: int
    window: int                  # T: steps per sample the head sees and counts
    rng_seed: int
    label_only: bool = False     # n to the labelled row only (ChipRule.label_only)
    terms: ClassVar = ((1, 3), (-1, 2))   # the dw string's products: + u0 x1 y3 - u0 x1 y2

    @property
    def period(self) -> int:     # the window plus the learning step; t_epoch
        return self.window + 1

    @property
    def step(self) -> float:
        """Weight mantissa change per unit n * x (before stochastic rounding)."""
        return self.mant * 2.0 ** (self.exp - PRODUCT_SHIFT)

    def dw_string(self) -> str:
        return dw_string(self.mant, self.exp, self.terms)

    def third_factor(self, counts: np.ndarray, label: int) -> np.ndarray:
        return quantised_error(counts, label, self)


def rule_of(chip: ChipRule, window: int) -> SoelRule:
    """The session's rule: the bundle's chip rule over samples of `window` steps."""
    return SoelRule(mant=int(chip.mant), exp=int(chip.exp), theta=float(chip.theta),
                    target_on=int(chip.target_on), target_off=int(chip.target_off),
                    window=int(window), rng_seed=int(chip.rng_seed),
                    label_only=bool(chip.label_only))


def quantised_error(counts: np.ndarray, label: int, rule: SoelRule) -> np.ndarray:
    """n = trunc((c - target) / theta): the third factor (zero where |e| < theta); no label
    (label < 0, a query) -> zeros; with rule.label_only, zeros but at the label's row. The
    error path computes exactly this."""
    counts = np.asarray(counts, np.int64)
    if label < 0:
        return np.zeros_like(counts)
    target = np.full(counts.shape, rule.target_off, np.int64)
    target[label] = rule.target_on
    n = np.trunc((counts - target) / float(rule.theta)).astype(np.int64)
    if rule.label_only:
        n[np.arange(len(n)) != label] = 0
    return n
