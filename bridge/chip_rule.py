"""The one place the head's learning rule goes from offline/'s float units to the chip's.

offline/ learns SOEL's threshold theta (spikes) and step eta in FLOAT weight units per n x. The
learning engine updates weight mantissas, and a float weight w is the mantissa w * scale
(scale: the head's mantissa units per float unit, from the quantiser) whatever the weight
exponent, so the chip's step is eta * scale mantissa units, the nearest mant 2^(exp-3) the
engine has (sim/soel_fixed.eta_to_rule). The bundle stores that ChipRule; no reader after it
converts anything again.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from metaloihi.base.errors import UserError
from metaloihi.sim import soel_fixed as sf

# The chip's steps: m 2^(e-3) mantissa units with m in 1..7, e in -7..8, i.e. [2^-10, 7 x 2^5].
# eta x scale more than STEP_SLACK times outside that range is not approximated by anything
# the chip has (1e300 would become the largest step, silently); the slack lets an untuned
# random network's default eta (2x above the largest step) still deploy.
STEP_MIN = 2.0 ** (sf.EXP_MIN - sf.PRODUCT_SHIFT)
STEP_MAX = sf.MANT_MAX * 2.0 ** (sf.EXP_MAX - sf.PRODUCT_SHIFT)
STEP_SLACK = 16.0


@dataclass(frozen=True)
class LearntRule:
    """SOEL as offline/ learnt (or configured) it: float weight units, before the chip."""
    theta: float = 1.0           # an update only where |count - target| >= theta (spikes)
    eta: float = 1.0             # weight step per n x, float weight units
    target_on: int = 8           # target spike count of the labelled output neuron
    target_off: int = 0
    rng_seed: int = 0            # the learning engine's stochastic rounding
    passes: int = 1              # presentations of the support set


def to_chip(rule: LearntRule, scale: float, what: str = "SOEL") -> sf.ChipRule:
    """The chip rule of a float rule at the head's scale (mantissa units per float unit).
    Raises UserError naming the value when the chip cannot approximate it."""
    theta, eta, scale = float(rule.theta), float(rule.eta), float(scale)
    if not (np.isfinite(scale) and scale > 0):
        raise UserError(f"{what}: head scale {scale:g}; expected a finite number > 0")
    if not (np.isfinite(theta) and sf.THETA_MIN <= theta <= sf.THETA_MAX):
        raise UserError(f"{what} theta {theta:g} is outside what the chip's error path "
                        f"represents [{sf.THETA_MIN:g}, {sf.THETA_MAX:g}]")
    step = eta * scale
    if not (np.isfinite(step) and STEP_MIN / STEP_SLACK <= step <= STEP_SLACK * STEP_MAX):
        raise UserError(f"{what} eta {eta:g} x scale {scale:g} = {step:g} mantissa units per "
                        f"step, more than {STEP_SLACK:g}x outside the chip's steps "
                        f"[{STEP_MIN:g}, {STEP_MAX:g}]")
    mant, exp = sf.eta_to_rule(step)
    return sf.ChipRule(mant=mant, exp=exp, theta=theta, target_on=int(rule.target_on),
                       target_off=int(rule.target_off), rng_seed=int(rule.rng_seed),
                       passes=int(rule.passes))


def at_step(rule: sf.ChipRule, step: float, **changes) -> sf.ChipRule:
    """`rule` with the chip's step nearest to `step` mantissa units per n x (and any other
    field changed): how rule fitting and the demo's baseline set a step directly."""
    from dataclasses import replace
    mant, exp = sf.eta_to_rule(float(step))
    return replace(rule, mant=mant, exp=exp, **changes)


def provenance(rule: LearntRule, scale: float) -> dict:
    """What the bundle's meta records of the float rule (the deployment gap's float row)."""
    return {"theta": float(rule.theta), "eta": float(rule.eta), "scale": float(scale),
            "eta_mant": float(rule.eta) * float(scale)}
