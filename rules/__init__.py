"""Learning rules the chip can run, by name: the seam between a rule and the pipeline.

A rule is one folder, rules/<name>/, whose __init__ is its card (read by every stage; no torch
at import, no Lava ever):
  Config           its [rule] config section (a frozen dataclass; its fields' documented
                   bounds as field metadata: base/bounds.py's `bounded`)
  ChipRule         its parameters in the chip's units, as the bundle stores them
                   (to_attrs / from_attrs: the bundle's metaloihi/head/rule group;
                   check_attrs(attrs, fail): the validator's checks)
  to_chip(...)     the float rule learnt offline -> ChipRule (bridge/ export calls it once)
  meta_params / learnable / inner_adapt / description
                   what offline/'s MAML inner loop needs (its differentiable form)
  HEAD_RANGE / start_values
                   offline/'s meta keys: the head grid's edge, and a fitted start's entries
  start_unit / start_adapt
                   the rule-start fit (offline/rule_start.py, with rule.fit_start): its step
                   unit and the float rule it scores
  silent_rule / SILENT_STEP
                   the rule of a silent head that attach-head adds (bridge/attach_head.py)
  read_description(f, d, where)
                   its fields of a checkpoint's network.rule, checked (bridge/checkpoint_file)
  run_session(...) its bit-exact emulation (sim/'s bit for bit model of the Lava graph)
  lava_module()    its Lava processes and graph parts (head_classes, wire), imported lazily
Adding a rule: its folder plus one line in RULES below.
"""
from __future__ import annotations

import importlib

from metaloihi.base.errors import UserError

RULES = {"soel": "metaloihi.rules.soel"}
DEFAULT = "soel"                 # the rule of a config section or a bundle that names none


def get(name: str):
    """The card (module) of the rule called `name`."""
    if name not in RULES:
        raise UserError(f"learning rule {name!r}; this version has {', '.join(sorted(RULES))}")
    return importlib.import_module(RULES[name])


def names() -> tuple[str, ...]:
    return tuple(sorted(RULES))
