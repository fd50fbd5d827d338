"""An offline/ checkpoint read as a file: the deployable network it describes, without offline/
(its config, trainer or model code) and without its data set.

A checkpoint (metaloihi.maml/1, tensors and plain values, loaded with weights_only=True) holds
under "network" (written at save time by offline/describe.py; older files get it once from
studies/upgrade.py):

  format        "metaloihi.network/1"
  specs         per synapse layer, in order: {"type": "conv", "in_shape": [C, H, W],
                "out_channels", "kernel": [kh, kw], "stride": [sh, sw], "padding": [ph, pw]}
                or {"type": "dense", "in_features", "out_features"} (sim/arch.py); the last is
                the dense head
  input_shape   [C, H, W] per step after the encoding (== specs[0].in_shape)
  frame_shape   [T, C, H, W] of the data set's frames (the encoding maps it to input_shape)
  encoding      datasets.encoding.Encoding.to_dict(): {"pool", "time_pool", "steps"}
  neurons       per layer, sim.loihi.LifFloat's fields: {"du", "dv", "vth", "bias"}
  dataset       {"name", "ways" (== the head's outputs), "splits": {"train", "val", "test"}}
  rule          the on-chip learning rule, as learnt or as fitted (float weight units): {"name"
                (a rule of rules/), its card's fields (read_description; SOEL: "theta", "eta",
                "target_on", "target_off", "passes", "rng_seed"), "head_range": float or None
                (the float |w| at the head grid's edge; None: theta0's own head range)}
  theta0        None: theta0 is the checkpoint's meta "theta0.*" as stored; else
                {"layers.{i}.weight": tensor}, theta0 with the training's Q_outer applied

and beside it "rule_fit" where the rule was fitted after training: how, the fitted values and
the rule before the fit. (Older files hold the fit as "soel_fit" instead, read through
rules/soel/legacy.py.)

Every field is checked here; a bad one is a UserError naming the file and the field.
"""
from __future__ import annotations

from dataclasses import fields
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch

from metaloihi import rules
from metaloihi.base import bounds
from metaloihi.base.bounds import Bound
from metaloihi.base.errors import UserError
from metaloihi.base.torch_file import (NETWORK_FORMAT, NETWORK_KEY, check_finite,
                                       load_checkpoint_file, theta0_params)
from metaloihi.datasets.encoding import Encoding
from metaloihi.rules.soel import legacy
from metaloihi.sim.arch import SPEC_FIELDS, DenseSpec, check_chain, spec_from_dict
from metaloihi.sim.float_lif import weight_key
from metaloihi.sim.loihi import LifFloat

KEY, FORMAT = NETWORK_KEY, NETWORK_FORMAT
UPGRADE = "metaloihi upgrade-checkpoint"


class CheckpointNetwork(NamedTuple):
    specs: list                       # sim.arch specs
    theta0: dict                      # float_lif params, float64
    neurons: list                     # sim.loihi.LifFloat per layer
    rule: dict                        # the description's "rule", checked
    meta: dict                        # dataset, ways, splits, encoding, input_shape,
                                      # frame_shape; the file's split, iteration, rule_fit


def _finite(path: Path, where: str, tensors: dict) -> None:
    check_finite(path, ((f"{where}{k}", v) for k, v in tensors.items()),
                 "a network with NaN/inf parameters cannot be exported")


class _Fields:
    """Typed access to the description's fields; each failure names the file, the field and
    its value in base/bounds.py's words."""

    def __init__(self, path: Path):
        self.path = path

    def where(self, name: str) -> str:
        return f"checkpoint {str(self.path)!r}: {name}"

    def fail(self, name: str, val, expected: str):
        bounds.refuse(self.where(name), val, expected)

    def get(self, d: dict, name: str, key: str):
        if not isinstance(d, dict):
            self.fail(name, d, "a dict")
        if key not in d:
            raise UserError(f"checkpoint {str(self.path)!r}: {name}.{key} is missing (a "
                            f"{FORMAT} description has it)")
        return d[key]

    def int_(self, d: dict, name: str, key: str, low: int = 0) -> int:
        where = self.where(f"{name}.{key}")
        return bounds.check(where, bounds.check_type(where, self.get(d, name, key), int),
                            Bound(low))

    def num(self, d: dict, name: str, key: str, positive: bool = False,
            bound: Bound | None = None) -> float:
        where = self.where(f"{name}.{key}")
        v = bounds.check_type(where, self.get(d, name, key), float)
        return bounds.check(where, v, bound or (POSITIVE if positive else None))

    def str_(self, d: dict, name: str, key: str) -> str:
        v = self.get(d, name, key)
        if not isinstance(v, str) or not v:
            self.fail(f"{name}.{key}", v, "a non-empty string")
        return v

    def ints(self, d: dict, name: str, key: str, n: int, low: int = 1) -> tuple:
        v = self.get(d, name, key)
        if not isinstance(v, (list, tuple)) or len(v) != n or not all(
                bounds.fits(x, int) for x in v):
            self.fail(f"{name}.{key}", v, f"{n} integers")
        return tuple(bounds.check_each(self.where(f"{name}.{key}"), v, Bound(low)))

    def list_(self, d: dict, name: str, key: str, n: int | None = None) -> list:
        v = self.get(d, name, key)
        if not isinstance(v, list) or not v or (n is not None and len(v) != n):
            self.fail(f"{name}.{key}", v, "a non-empty list" + (f" of {n}" if n else ""))
        return v


POSITIVE = Bound(0, lo_open=True)
DECAY = Bound(0, 1, what="a decay")        # the fraction of the state lost per step
THRESHOLD = Bound(0, lo_open=True, what="a threshold")


def _spec(f: _Fields, d, name: str):
    """A spec from its dict (sim.arch.spec_to_dict's), each field of sim.arch.SPEC_FIELDS
    checked and named, then read by sim.arch.spec_from_dict."""
    kind = f.get(d, name, "type")
    if not isinstance(kind, str) or kind not in SPEC_FIELDS:
        f.fail(f"{name}.type", kind, "'conv' or 'dense'")
    checked = {key: f.int_(d, name, key, low) if count is None else
               f.ints(d, name, key, count, low=low)
               for key, (count, low) in SPEC_FIELDS[kind].items()}
    return spec_from_dict({"type": kind, **checked})


def _neuron(f: _Fields, d, name: str) -> LifFloat:
    known = [x.name for x in fields(LifFloat)]
    if not isinstance(d, dict):
        f.fail(name, d, f"a dict of {known}")
    extra = sorted(set(d) - set(known))
    if extra:
        f.fail(f"{name}.{extra[0]}", d[extra[0]], f"no such field (LifFloat has {known})")
    limits = {"du": DECAY, "dv": DECAY, "vth": THRESHOLD}
    vals = {k: f.num(d, name, k, bound=limits.get(k)) for k in known if k != "bias"}
    bias = f.get(d, name, "bias")
    if isinstance(bias, list):
        if not all(bounds.fits(b, float) for b in bias):
            f.fail(f"{name}.bias", bias, "a finite number or a list of them")
        bias = np.asarray(bias, np.float64)
    else:
        bias = f.num(d, name, "bias")
    return LifFloat(**vals, bias=bias)


def _rule(f: _Fields, desc: dict) -> dict:
    d, name = f.get(desc, "network", "rule"), "network.rule"
    rule = f.get(d, name, "name")
    if not isinstance(rule, str) or rule not in rules.RULES:
        f.fail(f"{name}.name", rule, f"one of {list(rules.names())}")
    head_range = f.get(d, name, "head_range")
    if head_range is not None:
        head_range = float(f.num(d, name, "head_range", positive=True))
    return {"name": rule, **rules.get(rule).read_description(f, d, name),
            "head_range": head_range}


def _theta0(f: _Fields, path: Path, state: dict, desc: dict, specs: list) -> dict:
    given = f.get(desc, "network", "theta0")
    if given is None:
        theta, where = theta0_params(state["meta"]), "meta theta0."
    elif isinstance(given, dict):
        theta, where = given, "network.theta0."
        _finite(path, where, theta)
    else:
        f.fail("network.theta0", type(given).__name__, "none or a dict of tensors")
    want = {weight_key(i): tuple(s.weight_shape) for i, s in enumerate(specs)}
    for key in theta:
        if key not in want:
            raise UserError(f"checkpoint {str(path)!r}: {where}{key} is not a weight of the "
                            f"described network ({len(specs)} layers)")
    for key, shape in want.items():
        if key not in theta:
            raise UserError(f"checkpoint {str(path)!r}: {where}{key} is missing")
        if tuple(theta[key].shape) != shape:
            raise UserError(f"checkpoint {str(path)!r}: {where}{key} has shape "
                            f"{list(theta[key].shape)} but network.specs gives {list(shape)}")
    for i, key in enumerate(want):
        t = theta[key]
        if not torch.is_tensor(t) or not t.is_floating_point():
            raise UserError(f"checkpoint {str(path)!r}: {where}{key} has dtype "
                            f"{getattr(t, 'dtype', type(t).__name__)}; expected float weights")
        if i < len(want) - 1 and not bool(t.any()):      # a silent-start head is all zero
            raise UserError(f"checkpoint {str(path)!r}: {where}{key} is all zero: a frozen "
                            "layer that never drives the next one")
    return {k: theta[k].detach().to(torch.float64) for k in want}


def _rule_fit(f: _Fields, state: dict, rule: dict) -> tuple[dict, dict | None]:
    """(the rule export deploys, the record of its fit or None). An older file's "soel_fit" is
    folded in here as `metaloihi upgrade-checkpoint` folds it into the file."""
    if state.get("soel_fit") is not None:
        return legacy.fold_fit(rule, legacy.check_fit(f, state["soel_fit"]))
    record = state.get("rule_fit")
    if record is not None and not isinstance(record, dict):
        f.fail("rule_fit", record, "a dict")
    return rule, record


def network_of(path: Path, state: dict) -> CheckpointNetwork:
    """The checked network of a loaded checkpoint state (see read_checkpoint)."""
    f = _Fields(path)
    desc = state.get(KEY)
    if desc is None:
        raise UserError(f"checkpoint {str(path)!r} does not describe its network (no {KEY!r}: "
                        "layer specs, input shape, encoding, neurons, on-chip rule); it was "
                        "written before checkpoints described themselves. Upgrade it once with "
                        f"`{UPGRADE} {path}` (rewrites the file in place; loads its data set "
                        "that one time)")
    if not isinstance(desc, dict):
        f.fail(KEY, type(desc).__name__, "a dict")
    if desc.get("format") != FORMAT:
        f.fail(f"{KEY}.format", desc.get("format"), repr(FORMAT))
    specs = [_spec(f, d, f"network.specs[{i}]")
             for i, d in enumerate(f.list_(desc, "network", "specs"))]
    try:
        check_chain(specs)
    except UserError as err:
        raise UserError(f"checkpoint {str(path)!r}: network.specs: {err}") from None
    if not isinstance(specs[-1], DenseSpec):
        f.fail(f"network.specs[{len(specs) - 1}].type", "conv", "'dense' (the head)")
    input_shape = f.ints(desc, "network", "input_shape", 3)
    if input_shape != tuple(specs[0].in_shape):
        f.fail("network.input_shape", list(input_shape),
               f"network.specs[0].in_shape {list(specs[0].in_shape)}")
    frame_shape = f.ints(desc, "network", "frame_shape", 4)
    try:
        enc = Encoding.from_dict(f.get(desc, "network", "encoding"))
    except (UserError, TypeError) as err:
        raise UserError(f"checkpoint {str(path)!r}: network.encoding: {err}") from None
    if tuple(enc.input_shape(frame_shape)) != input_shape:
        f.fail("network.frame_shape", list(frame_shape),
               f"frames the encoding maps to network.input_shape {list(input_shape)}")
    neurons = [_neuron(f, d, f"network.neurons[{i}]")
               for i, d in enumerate(f.list_(desc, "network", "neurons", len(specs)))]
    data = f.get(desc, "network", "dataset")
    ways = f.int_(data, "network.dataset", "ways", 1)
    if ways != specs[-1].out_features:
        f.fail("network.dataset.ways", ways, f"the head's {specs[-1].out_features} outputs")
    splits = f.get(data, "network.dataset", "splits")
    for k in ("train", "val", "test"):
        f.str_(splits, "network.dataset.splits", k)
    rule, fitted = _rule_fit(f, state, _rule(f, desc))
    theta0 = _theta0(f, path, state, desc, specs)
    meta = {"dataset": f.str_(data, "network.dataset", "name"), "ways": ways,
            "splits": dict(splits), "encoding": enc.to_dict(),
            "input_shape": list(input_shape), "frame_shape": list(frame_shape),
            "split": state.get("split", {}), "iteration": int(state.get("iteration", 0)),
            "rule_fit": fitted,
            "made_by": _made_by(f, state.get("made_by"))}
    return CheckpointNetwork(specs, theta0, neurons, rule, meta)


def _made_by(f: _Fields, rec) -> dict:
    """What made theta0, as offline/describe.made_by recorded it (absent in older files)."""
    if rec is None:
        return {"label": "not recorded", "summary": "not recorded in the checkpoint "
                "(`metaloihi upgrade-checkpoint` adds it from the file's record)"}
    if not isinstance(rec, dict):
        f.fail("made_by", rec, "a dict")
    return {"label": f.str_(rec, "made_by", "label"), "summary": f.str_(rec, "made_by", "summary"),
            "stage1": bool(rec.get("stage1")), "stage2_iterations": rec.get("stage2_iterations")}


def read_checkpoint(path: str | Path) -> CheckpointNetwork:
    """(specs, theta0 float64, neurons, rule, meta) of an offline/ checkpoint, from the file
    alone: no offline/ import, no data set. A file without a description (older than them) is
    a UserError saying how to upgrade it; any bad field is one naming the field."""
    path = Path(path)
    state = load_checkpoint_file(path)
    _finite(path, "", state["meta"])
    return network_of(path, state)
