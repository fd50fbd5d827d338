"""What older versions of this project wrote, read in one place. Every converter of an old file
lives here; nothing on the main path calls it for a file the current version writes.

- Configs written before the [rule] section held SOEL's keys in [maml] (soel_threshold, ...):
  offline/config.py's reader folds them into [rule] (`rule_section`).
- Checkpoints that hold "soel_fit" (fit-soel wrote its fitted rule into checkpoints before it
  wrote bundles): bridge/checkpoint_file.py reads them with the fit folded into network.rule
  and recorded as "rule_fit" (`check_fit`, `fold_fit`); `metaloihi upgrade-checkpoint`
  (studies/upgrade.py) makes the same change once, in the file.
- Bundles of format /1 (the rule in float units on the head's attributes): bridge/validate.py
  checks them (`check_v1`, `check_v1_on_chip`), bridge/bundle.py converts the rule once when
  reading (`rule_v1`).
The checkers take the caller's field checker (duck-typed: fail/num/int_ or scalar/number/get),
so this module imports nothing above rules/.
"""
from __future__ import annotations

import numpy as np

from metaloihi.base.bounds import Bound
from metaloihi.base.errors import UserError
from metaloihi.rules.soel import (STEP_MAX, STEP_MIN, STEP_SLACK, LearntRule, check_theta,
                                  to_chip)

FORMAT_V1 = "metaloihi.bundle/1"   # bundles whose head held the float rule

# config keys of checkpoints written before the [rule] section: [maml] key -> [rule] key
MAML_KEYS = {"soel_threshold": "theta", "soel_eta": "eta", "learn_soel": "learn",
             "soel_target_on": "target_on", "soel_target_off": "target_off",
             "soel_on_chip": "on_chip", "soel_fit_rule": "fit_start"}

FIT_FROM = "fit-soel on the checkpoint (soel_fit, before fits were written into bundles)"


# --- configs ------------------------------------------------------------------------------------
def rule_section(raw: dict) -> dict:
    """[rule] as given, or built from the [maml] soel_* keys of a config written before it
    (removed from raw["maml"]): never both."""
    maml = raw.get("maml", {}) if isinstance(raw.get("maml", {}), dict) else {}
    old = {k: maml[k] for k in MAML_KEYS if k in maml}
    if not old:
        return raw.get("rule", {})
    if "rule" in raw:
        raise UserError(f"config has a [rule] section and the old [maml] keys {sorted(old)}; "
                        "move them into [rule]")
    raw["maml"] = {k: v for k, v in maml.items() if k not in MAML_KEYS}
    return {MAML_KEYS[k]: v for k, v in old.items()}


# --- checkpoints holding "soel_fit" -------------------------------------------------------------
def check_fit(f, fitted) -> dict:
    """The checkpoint's "soel_fit", each field checked by f (bridge/checkpoint_file._Fields)."""
    if not isinstance(fitted, dict):
        f.fail("soel_fit", fitted, "a dict")
    f.num(fitted, "soel_fit", "soel_threshold", positive=True)
    f.num(fitted, "soel_fit", "soel_eta", positive=True)
    f.int_(fitted, "soel_fit", "target_on")
    if "passes" in fitted:
        f.int_(fitted, "soel_fit", "passes", 1)
    return fitted


def fold_fit(rule: dict, fitted: dict) -> tuple[dict, dict]:
    """(network.rule with the fit applied, the "rule_fit" record: the fitted values, how they
    were found and the rule before the fit)."""
    new = {**rule, "theta": float(fitted["soel_threshold"]), "eta": float(fitted["soel_eta"]),
           "target_on": int(fitted["target_on"]),
           "passes": int(fitted.get("passes", rule["passes"]))}
    keep = ("step", "val_accuracy", "split", "tasks", "queries", "seed")
    record = {"from": FIT_FROM, "theta": new["theta"], "eta": new["eta"],
              "target_on": new["target_on"], "passes": new["passes"],
              **{k: fitted[k] for k in keep if k in fitted},
              "before": {k: rule[k] for k in ("theta", "eta", "target_on", "passes")}}
    return new, record


# --- bundles of format /1 -----------------------------------------------------------------------
def rule_v1(a, scale: float):
    """A /1 head's float rule (always SOEL) in the chip's units, as export converts one now."""
    return to_chip(LearntRule(theta=float(a["soel_threshold"]), eta=float(a["soel_eta"]),
                              target_on=int(a["target_on"]), target_off=int(a["target_off"]),
                              rng_seed=int(a["rng_seed"]), passes=int(a.get("passes", 1))),
                   scale)


def check_v1(c, h, where: str) -> None:
    """The float rule of a /1 head (its target attributes are checked by the caller); c:
    bridge/validate._Checker."""
    a = h.attrs
    if "passes" in a:     # the oldest bundles have none: one pass
        c.scalar(a["passes"], f"{where}/passes", 1, 1000)
    for name, positive in (("soel_threshold", True), ("soel_eta", False)):
        if name not in a:
            c.fail(where, f"required attribute {name!r} is missing")
        c.number(a[name], f"{where}/{name}", Bound(0, lo_open=positive))
    rule = c.get(h, "learning_rule", where)
    if not hasattr(rule, "attrs") or not hasattr(rule, "keys"):
        c.fail(f"{where}/learning_rule", "is a dataset, expected a group of attributes")
    for key, val in rule.attrs.items():
        v = np.asarray(val)
        if v.size != 1 or v.dtype.kind not in "iufSUO":
            c.fail(f"{where}/learning_rule/{key}", f"must be one number or string, got "
                                                   f"{c.shown(val)}")


def check_v1_on_chip(c, a, scale: float) -> None:
    """What rules/soel.to_chip refuses of a /1 head, named by its attribute."""
    check_theta(c, a["soel_threshold"], "metaloihi/head/soel_threshold")
    eta = float(a["soel_eta"])
    step = eta * scale
    if not STEP_MIN / STEP_SLACK <= step <= STEP_SLACK * STEP_MAX:
        c.fail("metaloihi/head/soel_eta", f"{eta:g} x scale {scale:g} = {step:g} mantissa units "
                                          f"per step, more than {STEP_SLACK:g}x outside the "
                                          f"chip's steps [{STEP_MIN:g}, {STEP_MAX:g}]")
