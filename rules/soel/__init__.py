"""SOEL, the error-triggered rule of the head (Stewart & Neftci 2022, section 3.7): its card.

What each stage takes from here (rules/__init__.py says why the card is one module):
  [rule] config  Config: theta and eta to start from, whether MAML learns them, the targets,
                 whether the float rule applies the chip's limits, the stage-2 eta fit
  float form     float_form.py (torch, differentiable; offline/'s inner loop via inner_adapt)
  bit-exact      chip.py (the integer emulation of the Lava graph; run_session)
  Lava           lava.py (our head neuron and error path processes; lava_module())
  bundle         ChipRule <-> the bundle's metaloihi/head/rule attributes; to_chip, the one
                 float -> chip conversion (export)
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass, replace

import numpy as np

from metaloihi.base.bounds import bound_of, bounded, bounds_of, check, check_fields, refuse
from metaloihi.base.errors import UserError
from metaloihi.rules.engine import EXP_MAX, EXP_MIN, MANT_MAX, PRODUCT_SHIFT

NAME = "soel"

# --- what the chip's learning engine can represent (Lava 0.10, read from its source; the
# engine's own limits, PRODUCT_SHIFT, MANT_MAX, EXP_MIN, EXP_MAX: rules/engine/) --------------
# n = trunc(error / theta) is clipped to 127 by the error path: a theta below 1/128 only
# saturates, one above 2^31 - 1 never fires
THETA_MIN, THETA_MAX = 2.0 ** -7, 2.0 ** 31 - 1
# The chip's steps: m 2^(e-3) mantissa units, [2^-10, 7 x 2^5]. eta x scale more than
# STEP_SLACK times outside that range is not approximated by anything the chip has (1e300 would
# become the largest step, silently); the slack lets an untuned random network's default eta
# (2x above the largest step) still deploy.
STEP_MIN = 2.0 ** (EXP_MIN - PRODUCT_SHIFT)
STEP_MAX = MANT_MAX * 2.0 ** (EXP_MAX - PRODUCT_SHIFT)
STEP_SLACK = 16.0


# --- the [rule] config section -----------------------------------------------------------------
@dataclass(frozen=True)
class Config:
    name: str = NAME
    theta: float = bounded(2.0, 0, lo_open=True)   # threshold theta in spikes (initial value
                                                   # when learnt)
    eta: float = bounded(0.01, 0, lo_open=True)    # step per n x in float weight units
                                                   # (initial value)
    learn: bool = True           # MAML meta-learns theta and eta (in log space)
    target_on: int = bounded(8, 0)   # target spike count of the labelled output neuron
    target_off: int = bounded(0, 0)
    on_chip: bool = False        # the float rule as the chip applies it: eta on the learning
                                 # engine's step, weights in the 8-bit range (float_form.OnChip)
    fit_start: bool = False      # stage 2: fit eta, and with it the head's grid, to the stage-1
                                 # body on meta-train tasks before meta-training

    def __post_init__(self):
        if self.name != NAME:
            refuse("config key rule.name", self.name, f"{NAME!r} (SOEL's section)")
        check_fields(self, "config key rule.")


# --- the rule in the chip's units, as the bundle stores it --------------------------------------
@dataclass(frozen=True)
class ChipRule:
    """dw = mant 2^exp (u0 x1 y3 - u0 x1 y2), n = trunc((count - target) / theta) spikes, the
    support set presented `passes` times, the learning engine's traces seeded with rng_seed.
    label_only: the error path sends n to the labelled row only (0 to every other row), so a
    class's row learns from its own shots alone and older rows never change: what continual
    learning of new classes needs (studies/continual.py measured it)."""
    mant: int = bounded(lo=1, hi=MANT_MAX, integral=True)
    exp: int = bounded(lo=EXP_MIN, hi=EXP_MAX, integral=True)
    theta: float = bounded(lo=THETA_MIN, hi=THETA_MAX,
                           what="a threshold in spikes that the chip's error path represents")
    target_on: int = bounded(lo=0, hi=2 ** 31 - 1, integral=True)
    target_off: int = bounded(0, 0, 2 ** 31 - 1, integral=True)
    rng_seed: int = bounded(0, 0, 2 ** 63 - 1, integral=True)
    passes: int = bounded(1, 1, 1000, integral=True)
    label_only: bool = False
    name: str = NAME

    def __post_init__(self):
        check_fields(self, "chip rule ")
        if not isinstance(self.label_only, (bool, np.bool_)):
            refuse("chip rule label_only", self.label_only, "true or false")
        if self.name != NAME:
            refuse("chip rule name", self.name, f"{NAME!r} (SOEL's card)")

    @property
    def step(self) -> float:
        """Weight mantissa change per unit n * x (before stochastic rounding)."""
        return self.mant * 2.0 ** (self.exp - PRODUCT_SHIFT)


# the bundle stores these as integer attributes, checked against ChipRule's own bounds
INT_FIELDS = tuple(name for name, b in bounds_of(ChipRule).items() if b.integral)
THETA = bound_of(ChipRule, "theta")


def to_attrs(rule: ChipRule) -> dict:
    return {"name": rule.name, "mant": int(rule.mant), "exp": int(rule.exp),
            "theta": float(rule.theta), "target_on": int(rule.target_on),
            "target_off": int(rule.target_off), "rng_seed": int(rule.rng_seed),
            "passes": int(rule.passes), "label_only": int(rule.label_only)}


def from_attrs(a) -> ChipRule:
    return ChipRule(mant=int(a["mant"]), exp=int(a["exp"]), theta=float(a["theta"]),
                    target_on=int(a["target_on"]), target_off=int(a["target_off"]),
                    rng_seed=int(a["rng_seed"]), passes=int(a["passes"]),
                    label_only=bool(int(a.get("label_only", 0))))   # absent: all rows learn


def check_attrs(c, a, where: str) -> None:
    """The validator's checks of the attributes (c: bridge.validate's checker: c.fail(where,
    what), c.scalar(value, where, lo, hi), c.number(value, where, bound=None))."""
    for name in INT_FIELDS:
        if name not in a:
            c.fail(where, f"required attribute {name!r} is missing")
        b = bound_of(ChipRule, name)
        c.scalar(a[name], f"{where}/{name}", b.lo, b.hi)
    if "theta" not in a:
        c.fail(where, "required attribute 'theta' is missing")
    check_theta(c, a["theta"], f"{where}/theta")
    if "label_only" in a:
        c.scalar(a["label_only"], f"{where}/label_only", 0, 1)


def check_theta(c, value, where: str) -> None:
    c.number(value, where, THETA)


# --- float -> chip, once -------------------------------------------------------------------------
@dataclass(frozen=True)
class LearntRule:
    """SOEL as offline/ learnt (or configured) it: float weight units, before the chip."""
    theta: float = 1.0
    eta: float = 1.0             # weight step per n x, float weight units
    target_on: int = 8
    target_off: int = 0
    rng_seed: int = 0
    passes: int = 1
    name: str = NAME


def eta_to_rule(eta_mant: float) -> tuple[int, int]:
    """The (mantissa, exponent) whose step mant 2^(exp-3) is nearest to eta in weight mantissa
    units per n x (ties to the smaller exponent). Raises if eta is not a positive number."""
    if not np.isfinite(eta_mant) or eta_mant <= 0:
        raise UserError(f"SOEL eta = {eta_mant} mantissa units; expected > 0")
    best = None
    for e in range(EXP_MIN, EXP_MAX + 1):
        m = int(np.clip(round(eta_mant / 2.0 ** (e - PRODUCT_SHIFT)), 1, MANT_MAX))
        err = abs(m * 2.0 ** (e - PRODUCT_SHIFT) - eta_mant)
        if best is None or err < best[0] - 1e-15:
            best = (err, m, e)
    return best[1], best[2]


def to_chip(rule: LearntRule, scale: float) -> ChipRule:
    """The chip rule of a float rule at the head's scale (mantissa units per float unit): the
    learning engine updates mantissas and a float weight w is the mantissa w * scale whatever
    the weight exponent, so the chip's step is eta * scale, the nearest mant 2^(exp-3) it has.
    Raises UserError naming the value when the chip cannot approximate it."""
    theta, eta, scale = float(rule.theta), float(rule.eta), float(scale)
    if not (np.isfinite(scale) and scale > 0):
        raise UserError(f"SOEL: head scale {scale:g}; expected a finite number > 0")
    check("SOEL theta", theta, THETA)
    step = eta * scale
    if not (np.isfinite(step) and STEP_MIN / STEP_SLACK <= step <= STEP_SLACK * STEP_MAX):
        raise UserError(f"SOEL eta {eta:g} x scale {scale:g} = {step:g} mantissa units per "
                        f"step, more than {STEP_SLACK:g}x outside the chip's steps "
                        f"[{STEP_MIN:g}, {STEP_MAX:g}]")
    mant, exp = eta_to_rule(step)
    return ChipRule(mant=mant, exp=exp, theta=theta, target_on=int(rule.target_on),
                    target_off=int(rule.target_off), rng_seed=int(rule.rng_seed),
                    passes=int(rule.passes))


def at_step(rule: ChipRule, step: float, **changes) -> ChipRule:
    """`rule` with the chip's step nearest to `step` mantissa units per n x (and any other
    field changed): how rule fitting and the demo's baseline set a step directly."""
    mant, exp = eta_to_rule(float(step))
    return replace(rule, mant=mant, exp=exp, **changes)


def provenance(rule: LearntRule, scale: float) -> dict:
    """What the bundle's meta records of the float rule (the deployment gap's float row)."""
    return {"name": NAME, "theta": float(rule.theta), "eta": float(rule.eta),
            "scale": float(scale), "eta_mant": float(rule.eta) * float(scale)}


def read_description(f, d: dict, where: str) -> dict:
    """This rule's fields of a checkpoint's network.rule, checked (f: bridge.checkpoint_file's
    field reader: f.num(d, where, key, positive=), f.int_(d, where, key, low))."""
    return {"theta": float(f.num(d, where, "theta", positive=True)),
            "eta": float(f.num(d, where, "eta", positive=True)),
            "target_on": f.int_(d, where, "target_on"),
            "target_off": f.int_(d, where, "target_off"),
            "passes": f.int_(d, where, "passes", 1), "rng_seed": f.int_(d, where, "rng_seed")}


def learnt_rule(desc: dict) -> LearntRule:
    """A checkpoint's network.rule (offline/describe.py wrote it from `description`)."""
    return LearntRule(theta=float(desc["theta"]), eta=float(desc["eta"]),
                      target_on=int(desc["target_on"]), target_off=int(desc["target_off"]),
                      rng_seed=int(desc["rng_seed"]), passes=int(desc["passes"]))


# --- offline/'s inner loop ----------------------------------------------------------------------
# meta keys (checkpoints' meta and training logs hold them by these names)
LOG_THRESHOLD, LOG_ETA = "soel.log_threshold", "soel.log_eta"
HEAD_RANGE = "soel.head_range"   # the float |w| at the head grid's edge (fitted, not learnt)


def meta_params(cfg: Config, scalar) -> dict:
    """The rule's meta-parameters (log space); scalar(value) makes a 0-d tensor."""
    return {LOG_THRESHOLD: scalar(cfg.theta).log(), LOG_ETA: scalar(cfg.eta).log()}


def start_values(eta: float, head_range: float, scalar) -> dict:
    """Stage 2's fitted start (offline/rule_start.py: eta and the head grid's edge) as meta
    entries."""
    return {LOG_ETA: scalar(eta).log(), HEAD_RANGE: scalar(head_range)}


def learnable(meta: dict, cfg: Config) -> list[str]:
    return [k for k in meta if k.startswith("soel.log_")] if cfg.learn else []


def inner_adapt(w, h_support, y_support, neuron, meta: dict, cfg: Config, *, passes: int,
                trunc, quantize, head_scale):
    """The head's weights after the support set (float form, differentiable). head_scale: the
    deployed head's mantissa units per float unit (the chip's limits when cfg.on_chip)."""
    from metaloihi.rules.soel import float_form as ff
    chip = ff.OnChip(head_scale) if cfg.on_chip else None
    return ff.adapt(w, h_support, y_support, neuron, meta[LOG_THRESHOLD].exp(),
                    meta[LOG_ETA].exp(), ff.SoelTargets(cfg.target_on, cfg.target_off),
                    passes=passes, trunc=trunc, quantize=quantize, chip=chip)


def description(cfg: Config, learnt: dict, passes: int, rng_seed: int) -> dict:
    """The checkpoint's network.rule: the float rule as learnt (learnt: maml.learnt_values)."""
    return {"name": NAME, "theta": float(learnt.get("soel.threshold", cfg.theta)),
            "eta": float(learnt.get("soel.eta", cfg.eta)), "target_on": int(cfg.target_on),
            "target_off": int(cfg.target_off), "passes": int(passes), "rng_seed": int(rng_seed)}


# --- the chip side ------------------------------------------------------------------------------
def session_rule(rule: ChipRule, window: int):
    """The rule over samples of `window` steps (chip.SoelRule: Lava's units, the period)."""
    from metaloihi.rules.soel import chip
    return chip.rule_of(rule, window)


def run_session(frozen, head, rule, x, labels):
    """The bit-exact session (chip.run_session) of samples x with labels (-1: query); rule:
    session_rule's."""
    from metaloihi.rules.soel import chip
    return chip.run_session(frozen, head, rule, x, labels)


def lava_module():
    """This rule's Lava processes and graph parts (rules/engine/lava.py); needs Lava."""
    return importlib.import_module("metaloihi.rules.soel.lava")


# --- offline/rule_start.py and bridge/attach_head.py: where a head starts ----------------------
def start_unit(cfg: Config) -> float:
    """The rule-start fit's step unit: its eta candidates are this x factor / (5 mean |x|^2)
    (a silent row reaches its target by about eta n |x|^2; n counts errors in theta's units)."""
    return cfg.theta


def start_adapt(w, h_support, y_support, neuron, cfg: Config, eta: float, passes: int):
    """The head after the support set at step eta, as the rule-start fit scores it: the float
    rule at the configured theta and targets, without the chip's limits."""
    from metaloihi.rules.soel import float_form as ff
    return ff.adapt(w, h_support, y_support, neuron, cfg.theta, eta,
                    ff.SoelTargets(cfg.target_on, cfg.target_off), passes=passes)


SILENT_STEP = 0.25   # attach-head's default weight step (mantissa units per n x): the middle of
                     # fit-soel's grid


def silent_rule(step: float, rng_seed: int) -> ChipRule:
    """The rule of the silent head attach-head adds (fit-soel then searches around it): theta
    1, target_on 8, 8 passes, the chip's step nearest `step` mantissa units per n x."""
    if not STEP_MIN <= float(step) <= STEP_MAX:
        raise UserError(f"--step {step}: the chip's SOEL steps are {STEP_MIN:g} .. "
                        f"{STEP_MAX:g} mantissa units per n x")
    return at_step(ChipRule(mant=1, exp=0, theta=1.0, target_on=8, passes=8,
                            rng_seed=int(rng_seed)), float(step))
