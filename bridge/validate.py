"""Check a deployment bundle against Loihi 2's ranges and netx's layout; name the FIRST violation.

Reads the HDF5 file directly (never through the reader, which assumes a valid file), in file
order: structure and required fields, then per layer type, shape chain, weights (8-bit
mantissas, then the even deployable grid), neuron (12-bit decays, 17-bit vth), bias (13-bit
mantissa), then the head, scales and metadata. Ranges come from sim/loihi.py.
"""
from __future__ import annotations

import datetime as _dt
import json
import math
from pathlib import Path

import h5py
import numpy as np

from metaloihi.base import bounds
from metaloihi.base.bounds import Bound
from metaloihi.base.errors import UserError
from metaloihi import rules
from metaloihi.rules.soel import legacy
from metaloihi.rules.soel.legacy import FORMAT_V1   # still read: the rule in float units
from metaloihi.datasets.encoding import Encoding
from metaloihi.datasets.names import EMBEDDED, OWN, REAL
from metaloihi.sim import loihi as L

FORMAT = "metaloihi.bundle/2"    # the version bridge/bundle.py writes: the rule in chip units
META_REQUIRED = ("source_sha256", "created", "versions")
DATASETS = EMBEDDED + REAL + OWN
MAX_VALUES = 120_000_000       # synapses per Loihi 2 chip (studies/loihi2_limits.py, BRIEF)


_shown = bounds.shown
INT64_MAX = int(np.iinfo(np.int64).max)


class _Checker:
    """The bundle's fields: HDF5 access, dtypes and size caps here; every number and range
    check through base/bounds.py (one wording: `bundle '<path>': <field> = <value> ...`)."""
    shown = staticmethod(_shown)

    def __init__(self, path: Path):
        self.path = path

    def where(self, where: str) -> str:
        return f"bundle {str(self.path)!r}: {where}"

    def fail(self, where: str, what: str):
        raise UserError(f"bundle {str(self.path)!r}: {where}: {what}")

    def get(self, g: h5py.Group, name: str, where: str):
        if name not in g:
            self.fail(where, f"required field {name!r} is missing")
        return g[name]

    def ints(self, g: h5py.Group, name: str, where: str, ndim: int | None = None) -> np.ndarray:
        ds = self.get(g, name, where)
        if not isinstance(ds, h5py.Dataset):
            self.fail(f"{where}/{name}", "is a group, expected a dataset")
        if ds.size > MAX_VALUES:           # refused from its declared shape, before reading it
            self.fail(f"{where}/{name}", f"declares shape {ds.shape} ({ds.size} values), more "
                                         f"than a Loihi 2 chip's {MAX_VALUES} synapses")
        a = ds[()]
        a = np.asarray(a)
        if a.dtype.kind not in "iu":
            if a.dtype.kind == "f" and not np.all(np.isfinite(a)):
                self.fail(f"{where}/{name}", f"contains {a[~np.isfinite(a)].ravel()[0]}")
            self.fail(f"{where}/{name}", f"must be integers, got dtype {a.dtype}")
        if ndim is not None and a.ndim != ndim:
            self.fail(f"{where}/{name}", f"must have {ndim} dimension(s), got shape {a.shape}")
        self.fits_int64(a, f"{where}/{name}")
        return a.astype(np.int64)

    def fits_int64(self, a: np.ndarray, where: str) -> None:
        """Unsigned values past int64's range would wrap when read (2**64 - 2 reads as -2)."""
        if a.dtype.kind == "u" and a.size and int(a.max()) > INT64_MAX:
            idx = [int(i) for i in np.unravel_index(int(np.argmax(a)), a.shape)]
            bounds.check(self.where(f"{where}{idx}"), int(a.max()),
                         Bound(hi=INT64_MAX, what="a value a Loihi 2 field holds"))

    def number(self, value, where: str, bound: Bound | None = None) -> float:
        """One finite real number (an attribute a consumer reads with float()), inside bound
        where given."""
        v = np.asarray(value)
        if v.size != 1 or v.dtype.kind not in "iuf":
            bounds.refuse(self.where(where), value, "one number")
        x = float(v.ravel()[0])
        bounds.check_type(self.where(where), x, float)
        return bounds.check(self.where(where), x, bound)

    def in_range(self, a, lo: int, hi: int, where: str, what: str = "") -> None:
        bounds.check_array(self.where(where), a, Bound(lo, hi, integral=True, what=what))

    def grid(self, w: np.ndarray, where: str) -> None:
        self.in_range(w, L.WEIGHT_MANT_MIN, L.WEIGHT_MANT_MAX, where, "an 8-bit weight mantissa")
        bounds.check_array(self.where(where), w, GRID)

    def text(self, g: h5py.Group, name: str, where: str) -> str:
        """A type name stored as lava-dl writes it, a 1-element byte string array (what the
        reader and netx read back, with [0].decode())."""
        ds = self.get(g, name, where)
        v = ds[()] if isinstance(ds, h5py.Dataset) else None
        if np.ndim(v) != 1 or len(v) != 1 or not isinstance(v[0], bytes):
            self.fail(f"{where}/{name}", f"must be a 1-element byte string, got {_shown(v)}")
        return v[0].decode("ascii", "replace")

    def scalar(self, value, where: str, lo: int, hi: int) -> int:
        v = np.asarray(value)
        if v.size != 1 or v.dtype.kind not in "iu":
            bounds.refuse(self.where(where), value, "one integer")
        return bounds.check(self.where(where), int(v.ravel()[0]),
                            Bound(lo, hi, integral=True))


# the deployable grid: even mantissas, symmetric (what bridge/quantize.py writes)
GRID = Bound(-L.GRID_MAX, L.GRID_MAX, step=L.GRID_STEP, what="a deployable weight mantissa")
SCALE = Bound(0, math.inf, lo_open=True, hi_open=True, what="a scale")
POSITIVE = Bound(0, lo_open=True)
SIZE = Bound(1, integral=True, what="a size")


def _conv_out(c: _Checker, where: str, shape, w, stride, padding):
    _, h, wd = shape
    kh, kw = w.shape[2:]
    oh = (h + 2 * padding[0] - kh) // stride[0] + 1
    ow = (wd + 2 * padding[1] - kw) // stride[1] + 1
    if oh <= 0 or ow <= 0:
        c.fail(where, f"kernel {kh}x{kw} does not fit input {tuple(shape)}")
    return (w.shape[0], oh, ow)


def _neuron(c: _Checker, g: h5py.Group, where: str, shape: tuple) -> None:
    n = c.get(g, "neuron", where)
    w = f"{where}/neuron"
    if c.text(n, "type", w) not in ("CUBA", "LOIHI"):
        c.fail(f"{w}/type", f"neuron type {c.text(n, 'type', w)!r} is not CUBA")
    c.scalar(c.get(n, "iDecay", w)[()], f"{w}/iDecay", L.DU_OFFSET, L.DECAY_UNITY - 1 + L.DU_OFFSET)
    c.scalar(c.get(n, "vDecay", w)[()], f"{w}/vDecay", 0, L.DECAY_UNITY - 1)
    c.scalar(c.get(n, "vThMant", w)[()], f"{w}/vThMant", 0, L.VTH_MAX)
    b = c.ints(g, "bias", where)
    want = tuple(shape[::-1]) if len(shape) == 3 else tuple(shape)
    if b.shape != want:
        c.fail(f"{where}/bias", f"shape {b.shape} does not match the layer's {want} "
                                "(per neuron, Lava's (W, H, C) order)")
    c.in_range(b, L.BIAS_MANT_MIN, L.BIAS_MANT_MAX, f"{where}/bias", "a 13-bit bias mantissa")


def _layers(c: _Checker, f: h5py.File) -> tuple[tuple, list[str]]:
    layers = c.get(f, "layer", "/")
    keys = sorted(layers.keys(), key=lambda k: int(k) if k.isdigit() else -1)
    if keys != [str(i) for i in range(len(keys))]:
        c.fail("layer", f"layer names must be 0..{len(keys) - 1}, got {keys}")
    if c.text(c.get(layers, "0", "layer"), "type", "layer/0") != "input":
        c.fail("layer/0/type", "the first layer must be of type 'input'")
    shape = tuple(int(n) for n in c.ints(layers["0"], "shape", "layer/0", ndim=1))
    if len(shape) not in (1, 3):
        bounds.refuse(c.where("layer/0/shape"), shape, "an input shape (N,) or (C, H, W)")
    bounds.check_array(c.where("layer/0/shape"), shape, SIZE)
    kinds = []
    for k in range(1, len(keys)):
        where, g = f"layer/{k}", layers[str(k)]
        kind = c.text(g, "type", where)
        kinds.append(kind)
        if kind == "flatten":
            if len(shape) != 3:
                c.fail(where, f"flatten after a flat shape {shape}")
            nxt = layers[str(k + 1)] if str(k + 1) in layers else None
            if nxt is None or c.text(nxt, "type", f"layer/{k + 1}") != "dense":
                c.fail(where, "flatten must be followed by a dense layer")
            continue
        if kind not in ("conv", "dense"):
            c.fail(f"{where}/type", f"layer type {kind!r} is not one of conv, dense, flatten")
        w = c.ints(g, "weight", where, ndim=4 if kind == "conv" else 2)
        if kind == "conv":
            if len(shape) != 3 or w.shape[1] != shape[0]:
                c.fail(f"{where}/weight", f"shape {w.shape} does not take input {shape}")
            stride = c.ints(g, "stride", where, ndim=1)
            padding = c.ints(g, "padding", where, ndim=1)
            for key, a, low in (("stride", stride, 1), ("padding", padding, 0)):
                if len(a) != 2:
                    bounds.refuse(c.where(f"{where}/{key}"), a, "two integers")
                bounds.check_array(c.where(f"{where}/{key}"), a, Bound(low, integral=True))
            if np.any(c.ints(g, "dilation", where) != 1) or np.any(c.ints(g, "groups", where) != 1):
                c.fail(where, "dilation and groups must be 1 (sim/ models neither)")
            out = _conv_out(c, where, shape, w, stride, padding)
        else:
            if len(shape) == 3 and kinds[-2:-1] != ["flatten"]:
                c.fail(where, f"dense after shape {shape} needs a 'flatten' layer before it")
            if w.shape[1] != int(np.prod(shape)):
                c.fail(f"{where}/weight", f"shape {w.shape} does not take {int(np.prod(shape))} "
                                          f"inputs (previous layer {shape})")
            if not np.any(w):
                c.fail(f"{where}/weight", "all zero: netx's optimize_weight_bits cannot "
                                          "handle an all-zero dense matrix")
            out = (w.shape[0],)
        got = tuple(c.ints(g, "shape", where, ndim=1))
        if got != out:
            c.fail(f"{where}/shape", f"{got} does not match the computed output {out}")
        c.grid(w, f"{where}/weight")
        _neuron(c, g, where, out)
        shape = out
    if not [k for k in kinds if k != "flatten"]:
        c.fail("layer", "no frozen layers (netx needs at least one)")
    return shape, kinds


def _head(c: _Checker, h: h5py.Group, n_in: int, fmt: str) -> tuple[int, int]:
    where = "metaloihi/head"
    w = c.ints(h, "weight", where, ndim=2)
    if w.shape[1] != n_in:
        c.fail(f"{where}/weight", f"shape {w.shape} does not take the last frozen layer's "
                                  f"{n_in} outputs")
    c.grid(w, f"{where}/weight")
    _attrs(c, h.attrs, where, (("weight_exp", L.WEIGHT_EXP_MIN, L.WEIGHT_EXP_MAX),
                               ("du", 0, L.DECAY_UNITY - 1), ("dv", 0, L.DECAY_UNITY - 1),
                               ("vth", 0, L.VTH_MAX), ("bias_exp", L.BIAS_EXP_MIN,
                                                       L.BIAS_EXP_MAX)))
    b = c.ints(h, "bias_mant", where, ndim=1)
    if b.shape != (w.shape[0],):
        c.fail(f"{where}/bias_mant", f"shape {b.shape}, expected ({w.shape[0]},)")
    c.in_range(b, L.BIAS_MANT_MIN, L.BIAS_MANT_MAX, f"{where}/bias_mant",
               "a 13-bit bias mantissa")
    if fmt == FORMAT_V1:                # an older file's float rule (rules/soel/legacy.py)
        _attrs(c, h.attrs, where, _TARGETS)
        legacy.check_v1(c, h, where)
    else:
        _rule(c, h, where)
    _labels(c, h, where, w.shape[0])
    return w.shape[0], int(w.size)


_TARGETS = (("target_on", 0, 2 ** 31 - 1), ("target_off", 0, 2 ** 31 - 1),
            ("rng_seed", 0, 2 ** 63 - 1))


def _attrs(c: _Checker, a, where: str, fields) -> None:
    for name, lo, hi in fields:
        if name not in a:
            c.fail(where, f"required attribute {name!r} is missing")
        c.scalar(a[name], f"{where}/{name}", lo, hi)


def _rule(c: _Checker, h: h5py.Group, where: str) -> None:
    """The chip rule (format /2): a rule this version has, checked by its card (rules/)."""
    g = c.get(h, "rule", where)
    where = f"{where}/rule"
    if not isinstance(g, h5py.Group):
        c.fail(where, "is a dataset, expected a group of attributes")
    a = g.attrs
    name = a.get("name")
    if isinstance(name, bytes):
        name = name.decode("utf-8", "replace")
    if not isinstance(name, str) or name not in rules.RULES:
        c.fail(f"{where}/name", f"rule {_shown(name)}; this version runs "
                                f"{', '.join(repr(n) for n in rules.names())}")
    rules.get(name).check_attrs(c, a, where)


def _labels(c: _Checker, h: h5py.Group, where: str, n_out: int) -> None:
    ds = c.get(h, "labels", where)
    labels = ds[()] if isinstance(ds, h5py.Dataset) else None
    if np.ndim(labels) != 1 or not all(isinstance(s, (bytes, str)) for s in labels):
        c.fail(f"{where}/labels", f"must be a list of strings, got {_shown(labels)}")
    if len(labels) != n_out or len(set(labels.tolist())) != len(labels):
        c.fail(f"{where}/labels", f"{len(labels)} labels for {n_out} output neurons "
                                  "(one distinct label each)")


def _meta(c: _Checker, meta: h5py.Group) -> str:
    """Every attribute is JSON text (the reader json.loads each); created an ISO date, versions
    a table, the encoding one the data path accepts. Returns `created`."""
    for key in META_REQUIRED:
        if key not in meta.attrs:
            c.fail("metaloihi/meta", f"required attribute {key!r} is missing")
    values = {}
    for key, raw in meta.attrs.items():
        try:
            values[key] = json.loads(raw)
        except (TypeError, ValueError):
            c.fail(f"metaloihi/meta/{key}", f"{_shown(raw)} is not JSON text")
    created = values["created"]
    try:
        _dt.datetime.fromisoformat(created)
    except (TypeError, ValueError):
        c.fail("metaloihi/meta/created", f"{_shown(created)} is not an ISO 8601 date and time")
    if not isinstance(values["versions"], dict):
        c.fail("metaloihi/meta/versions", f"{_shown(values['versions'])} must be a table")
    if not isinstance(values["source_sha256"], str):
        c.fail("metaloihi/meta/source_sha256", f"{_shown(values['source_sha256'])} must be text")
    try:
        Encoding.from_dict(values.get("encoding"))
    except (UserError, TypeError, ValueError) as err:
        c.fail("metaloihi/meta/encoding", f"{_shown(values.get('encoding'))}: "
                                          f"{str(err) or type(err).__name__}")
    _meta_fields(c, values)
    return created


def _meta_fields(c: _Checker, values: dict) -> None:
    """The fields the readers use (adapt, fit-soel, continual, the report), typed as they use
    them; absent or null means not recorded."""
    name = values.get("dataset")
    if name is not None and (not isinstance(name, str) or name not in DATASETS):
        c.fail("metaloihi/meta/dataset", f"{_shown(name)}; expected one of "
                                         f"{', '.join(DATASETS)} or null")
    for key in ("splits", "split"):
        v = values.get(key)
        if v is not None and not isinstance(v, dict):
            c.fail(f"metaloihi/meta/{key}", f"{_shown(v)} must be a table")
    splits = values.get("splits") or {}
    for k, v in splits.items():
        if not isinstance(v, str):
            c.fail(f"metaloihi/meta/splits/{k}", f"{_shown(v)} must be a split's name")
    head_range, where = values.get("head_range"), c.where("metaloihi/meta/head_range")
    if head_range is not None:
        bounds.check(where, bounds.check_type(where, head_range, float | None), POSITIVE)
    for key in ("made_by", "rule_fit", "rule_float"):
        if values.get(key) is not None and not isinstance(values[key], dict):
            c.fail(f"metaloihi/meta/{key}", f"{_shown(values[key])} must be a table")


def validate_bundle(path: str | Path) -> str:
    """Raise UserError naming the first violation; return a one-paragraph summary if valid."""
    path = Path(path)
    c = _Checker(path)
    if path.is_dir():
        raise UserError(f"bundle {str(path)!r} is a folder, expected an HDF5 file (.h5)")
    if not path.is_file():
        raise UserError(f"bundle {str(path)!r} does not exist")
    if path.stat().st_size == 0:
        raise UserError(f"bundle {str(path)!r} is an empty file (0 bytes), not an HDF5 file")
    if not h5py.is_hdf5(path):
        raise UserError(f"bundle {str(path)!r} is not an HDF5 file")
    try:
        return _validate(c, path)
    except (OSError, KeyError, RuntimeError) as err:   # h5py on damaged bytes
        first = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise UserError(f"bundle {str(path)!r} is damaged or truncated, HDF5 cannot read it "
                        f"({first})") from None


def _validate(c: _Checker, path: Path) -> str:
    with h5py.File(path, "r") as f:
        ours = c.get(f, "metaloihi", "/")
        fmt = ours.attrs.get("format", "")
        if not isinstance(fmt, str) or fmt not in (FORMAT, FORMAT_V1):
            c.fail("metaloihi", f"format {fmt!r}, expected {FORMAT!r} (or the older "
                                f"{FORMAT_V1!r})")
        shape, kinds = _layers(c, f)
        n_out, n_head = _head(c, c.get(ours, "head", "metaloihi"), int(np.prod(shape)), fmt)
        n_layers = len([k for k in kinds if k != "flatten"]) + 1
        scales = np.asarray(c.get(ours, "scales", "metaloihi")[()])
        if scales.dtype.kind not in "iuf" or scales.shape != (n_layers,):
            bounds.refuse(c.where("metaloihi/scales"), scales, f"{n_layers} numbers (one per "
                                                              "layer, head included)")
        bounds.check_array(c.where("metaloihi/scales"), scales.astype(np.float64), SCALE)
        scales = scales.astype(np.float64)
        if fmt == FORMAT_V1:
            legacy.check_v1_on_chip(c, ours["head"].attrs, float(scales[-1]))
        created = _meta(c, c.get(ours, "meta", "metaloihi"))
        n_syn = sum(int(np.prod(f[f"layer/{k + 1}/weight"].shape))
                    for k, kind in enumerate(kinds) if kind != "flatten")
        arch = " -> ".join(kinds)
    return (f"valid: {path.name}: {len(kinds)} netx layers ({arch}), head {int(np.prod(shape))}"
            f"->{n_out}; {n_syn + n_head} weights; created {created}")
