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

from metaloihi.base.errors import UserError

NAME = "soel"

# --- what the chip's learning engine can represent (Lava 0.10, read from its source) ----------
PRODUCT_SHIFT = 7 + 7 + 4 - 15   # x1 and y widths + W_S_MANT - W_ACCUMULATOR_U
MANT_MAX = 7                     # the scaling mantissa is 4-bit signed: Lava accepts -8..7
EXP_MIN, EXP_MAX = -7, 8         # Lava accepts 2^-7..2^8 (s_exp = e + 7 in 0..15)
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
    theta: float = 2.0           # threshold theta in spikes (initial value when learnt)
    eta: float = 0.01            # step per n x in float weight units (initial value)
    learn: bool = True           # MAML meta-learns theta and eta (in log space)
    target_on: int = 8           # target spike count of the labelled output neuron
    target_off: int = 0
    on_chip: bool = False        # the float rule as the chip applies it: eta on the learning
                                 # engine's step, weights in the 8-bit range (float_form.OnChip)
    fit_start: bool = False      # stage 2: fit eta, and with it the head's grid, to the stage-1
                                 # body on meta-train tasks before meta-training

    def __post_init__(self):
        if self.name != NAME:
            raise UserError(f"rule.name={self.name!r} in SOEL's section")
        if self.theta <= 0 or self.eta <= 0:
            raise UserError(f"rule.theta={self.theta}, rule.eta={self.eta}; expected > 0")


RANGES = {"target_on": (0, None), "target_off": (0, None)}


# --- the rule in the chip's units, as the bundle stores it --------------------------------------
@dataclass(frozen=True)
class ChipRule:
    """dw = mant 2^exp (u0 x1 y3 - u0 x1 y2), n = trunc((count - target) / theta) spikes, the
    support set presented `passes` times, the learning engine's traces seeded with rng_seed.
    label_only: the error path sends n to the labelled row only (0 to every other row), so a
    class's row learns from its own shots alone and older rows never change: what continual
    learning of new classes needs (studies/continual.py measured it)."""
    mant: int
    exp: int
    theta: float
    target_on: int
    target_off: int = 0
    rng_seed: int = 0
    passes: int = 1
    label_only: bool = False
    name: str = NAME

    def __post_init__(self):
        for what, lo, hi in INT_FIELDS:
            v = getattr(self, what)
            if int(v) != v or not lo <= v <= hi:
                raise UserError(f"chip rule {what}={v!r}; expected an integer in [{lo}, {hi}]")
        if not isinstance(self.label_only, (bool, np.bool_)):
            raise UserError(f"chip rule label_only={self.label_only!r}; expected true or false")
        if not (np.isfinite(self.theta) and THETA_MIN <= self.theta <= THETA_MAX):
            raise UserError(f"chip rule theta={self.theta!r} spikes is outside what the error "
                            f"path represents [{THETA_MIN:g}, {THETA_MAX:g}]")
        if self.name != NAME:
            raise UserError(f"chip rule {self.name!r} in SOEL's card")

    @property
    def step(self) -> float:
        """Weight mantissa change per unit n * x (before stochastic rounding)."""
        return self.mant * 2.0 ** (self.exp - PRODUCT_SHIFT)


INT_FIELDS = (("mant", 1, MANT_MAX), ("exp", EXP_MIN, EXP_MAX), ("target_on", 0, 2 ** 31 - 1),
              ("target_off", 0, 2 ** 31 - 1), ("rng_seed", 0, 2 ** 63 - 1), ("passes", 1, 1000))


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
    what), c.scalar(value, where, lo, hi), c.number(value, where))."""
    for name, lo, hi in INT_FIELDS:
        if name not in a:
            c.fail(where, f"required attribute {name!r} is missing")
        c.scalar(a[name], f"{where}/{name}", lo, hi)
    if "theta" not in a:
        c.fail(where, "required attribute 'theta' is missing")
    check_theta(c, a["theta"], f"{where}/theta")
    if "label_only" in a:
        c.scalar(a["label_only"], f"{where}/label_only", 0, 1)


def check_theta(c, value, where: str) -> None:
    theta = c.number(value, where)
    if not THETA_MIN <= theta <= THETA_MAX:
        c.fail(where, f"{theta:g} is outside what the chip's error path represents "
                      f"[{THETA_MIN:g}, {THETA_MAX:g}]")


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
    if not (np.isfinite(theta) and THETA_MIN <= theta <= THETA_MAX):
        raise UserError(f"SOEL theta {theta:g} is outside what the chip's error path "
                        f"represents [{THETA_MIN:g}, {THETA_MAX:g}]")
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
    """This rule's Lava processes and graph parts (rules/soel/lava.py); needs Lava."""
    return importlib.import_module("metaloihi.rules.soel.lava")
