"""Imprint, a label-only Hebbian rule: the tests' second rule (registered by them only, never in
rules.RULES), whose folder is all that adding a rule takes. Its card.

After each shot the head's row of the shot's label gains step x_j (x_j: input j's spike count
in the window, the pre trace, saturating at 127); every other row stays as it is. In Loihi's
learning engine: dw = mant 2^exp u0 x1 y2, the error path sending y2 = 2^3 to the labelled
neuron and 0 to the others (the engine's product drops 3 bits, (u x1 y m) >> 3, so y2 = 8
makes the step exactly mant 2^exp mantissa units per spike; exp < 0 rounds stochastically).
The window, the learning engine, the session and the Lava processes are every rule's
(rules/engine/). It has no differentiable form: offline/'s hooks refuse it by name.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from metaloihi.base.bounds import bounded, bounds_of, check_fields
from metaloihi.base.errors import UserError
from metaloihi.rules.engine import EXP_MAX, EXP_MIN, MANT_MAX, PRODUCT_SHIFT

NAME = "imprint"
LABEL_Y = 1 << PRODUCT_SHIFT     # y2 at the labelled neuron: the product's >> 3 drops nothing
HEAD_RANGE = "imprint.head_range"


@dataclass(frozen=True)
class ChipRule:
    """The bundle's rule: dw = mant 2^exp u0 x1 y2 on the labelled row, the support set shown
    `passes` times, the learning engine's traces seeded with rng_seed."""
    mant: int = bounded(1, 1, MANT_MAX, integral=True)
    exp: int = bounded(0, EXP_MIN, EXP_MAX, integral=True)
    rng_seed: int = bounded(0, 0, 2 ** 63 - 1, integral=True)
    passes: int = bounded(1, 1, 1000, integral=True)
    name: str = NAME

    def __post_init__(self):
        check_fields(self, "imprint rule ")

    @property
    def step(self) -> float:         # weight mantissa units per input spike
        return self.mant * 2.0 ** self.exp


def to_attrs(rule: ChipRule) -> dict:
    return {"name": NAME, **{k: int(getattr(rule, k)) for k in bounds_of(ChipRule)}}


def from_attrs(a) -> ChipRule:
    return ChipRule(**{k: int(a[k]) for k in bounds_of(ChipRule)})


def check_attrs(c, a, where: str) -> None:
    for k, b in bounds_of(ChipRule).items():
        if k not in a:
            c.fail(where, f"required attribute {k!r} is missing")
        c.scalar(a[k], f"{where}/{k}", b.lo, b.hi)


# --- the chip side: a session rule for rules/engine/ ----------------------------------------------
@dataclass(frozen=True)
class SessionRule:
    mant: int
    exp: int
    window: int
    rng_seed: int
    terms: ClassVar = ((1, 2),)      # dw = mant 2^exp u0 x1 y2

    @property
    def period(self) -> int:         # the window plus the learning step; t_epoch
        return self.window + 1

    def dw_string(self) -> str:
        from metaloihi.rules.engine.chip import dw_string
        return dw_string(self.mant, self.exp, self.terms)

    def third_factor(self, counts: np.ndarray, label: int) -> np.ndarray:
        n = np.zeros(len(counts), np.int64)
        if label >= 0:               # a shot: its label's neuron only; a query: nothing
            n[label] = LABEL_Y
        return n


def session_rule(rule: ChipRule, window: int) -> SessionRule:
    return SessionRule(int(rule.mant), int(rule.exp), int(window), int(rule.rng_seed))


def run_session(frozen, head, rule, x, labels):
    from metaloihi.rules.engine import chip
    return chip.run_session(frozen, head, rule, x, labels)


def lava_module():
    return importlib.import_module("metaloihi.rules.engine.lava")


# --- offline/: none (learnt on chip only) ---------------------------------------------------------
class LearntRule:
    """No float form: nothing is one (export stores an imprint ChipRule as it is)."""


def _no_float_form(*_, **__):
    raise UserError(f"the {NAME!r} rule has no differentiable form: it learns on chip only "
                    "(offline/ trains with a rule that has one, e.g. 'soel')")


@dataclass(frozen=True)
class Config:                        # a [rule] section naming it: refused with the reason
    name: str = NAME

    def __post_init__(self):
        _no_float_form()


meta_params = learnable = inner_adapt = description = start_values = _no_float_form
to_chip = provenance = learnt_rule = read_description = _no_float_form
