"""One way to check a value against its documented range, for every config and file reader.

A bound is declared once: as the metadata of a dataclass field (`bounded`: configs, the rule
cards' dataclasses; read back by `bounds_of`, checked by `check_fields`), or as a named Bound
beside the format a reader checks. Every check goes through `check` (one value), `check_each`
(a list's items), `check_array` (an array's elements) or `check_type` (a value against a type
hint), and every refusal is one UserError in one style, naming where the value is (the file or
config section, then the field), the value and what was expected:

    <where> = <value> is out of range: expected <what> in [lo, hi]
    <where> = <value> is not <kind>

`where` reads e.g. "config key maml.inner_steps", "checkpoint 'run/best.pt': network.rule.eta",
"bundle 'b.h5': metaloihi/head/rule/mant" or "chip rule mant"."""
from __future__ import annotations

import dataclasses
import math
import types
import typing
from dataclasses import dataclass

import numpy as np

from metaloihi.base.errors import UserError

BOUND = "bound"     # the dataclass field metadata key of a field's Bound


@dataclass(frozen=True)
class Bound:
    """lo <= v <= hi (either side None: unbounded; lo_open/hi_open: strict), whole numbers
    only where integral, multiples of step where given. NaN is never inside a bound with a
    side; inf is inside an unbounded side (a type check refuses it where it must)."""
    lo: float | None = None
    hi: float | None = None
    lo_open: bool = False
    hi_open: bool = False
    integral: bool = False      # the value is a whole number (3.0 passes: the value, not its type)
    step: int | None = None     # values on a grid of this step (the bundle's even mantissas)
    what: str = ""              # what the value is, for the message ("a 13-bit bias mantissa")

    def in_interval(self, v) -> bool:
        lo, hi = self.lo, self.hi
        return ((lo is None or (v > lo if self.lo_open else v >= lo))
                and (hi is None or (v < hi if self.hi_open else v <= hi)))

    def holds(self, v) -> bool:
        if self.integral and not isinstance(v, (int, np.integer)) and not (
                math.isfinite(v) and v == int(v)):
            return False
        return self.in_interval(v) and not (self.step and v % self.step)

    def mask(self, a: np.ndarray) -> np.ndarray:
        """holds(), element by element."""
        ok = np.ones(a.shape, bool)
        if self.integral and a.dtype.kind == "f":
            ok &= np.isfinite(a) & (a == np.round(a))
        if self.lo is not None:
            ok &= (a > self.lo) if self.lo_open else (a >= self.lo)
        if self.hi is not None:
            ok &= (a < self.hi) if self.hi_open else (a <= self.hi)
        if self.step:
            ok &= a % self.step == 0
        return ok

    def __str__(self) -> str:
        lo, hi = _num(self.lo), _num(self.hi)
        if self.lo is not None and self.hi is not None:
            span = f"in {'(' if self.lo_open else '['}{lo}, {hi}{')' if self.hi_open else ']'}"
        elif self.lo is not None:
            span = f"{'>' if self.lo_open else '>='} {lo}"
        elif self.hi is not None:
            span = f"{'<' if self.hi_open else '<='} {hi}"
        else:
            span = ""
        what = self.what or ("an integer" if self.integral else "")
        text = " ".join(s for s in (what, span) if s)
        return text + (f", a multiple of {self.step}" if self.step else "")


def _num(x) -> str:
    return repr(float(x)) if isinstance(x, float) else str(x)


def shown(value) -> str:
    """A value for a one-line message: decoded, as a list where it is an array, short."""
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    if isinstance(value, np.ndarray):
        value = value.tolist()
    elif isinstance(value, np.generic):
        value = value.item()
    elif isinstance(value, tuple):
        value = list(value)
    text = "none" if value is None else repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


# --- the refusals: one wording for every reader ---------------------------------------------------
def refuse(where: str, value, expected: str) -> typing.NoReturn:
    """`<where> = <value> is not <expected>`: a value of the wrong kind (or shape, or choice)."""
    raise UserError(f"{where} = {shown(value)} is not {expected}")


def _out(where: str, value, bound: Bound, each: bool = False) -> typing.NoReturn:
    off_grid = bound.step and isinstance(value, (int, float, np.number)) and \
        bound.in_interval(value)
    raise UserError(f"{where} = {shown(value)} is {'off the grid' if off_grid else 'out of range'}"
                    f": expected {'each value ' if each else ''}{bound}")


def _real(v) -> bool:
    return isinstance(v, (int, float, np.integer, np.floating, np.bool_))


def check(where: str, value, bound: Bound | None):
    """value (a real number) inside bound; returns it."""
    if bound is None:
        return value
    if not _real(value):
        refuse(where, value, "a number")
    if not bound.holds(value):
        _out(where, value, bound)
    return value


def check_each(where: str, values, bound: Bound | None):
    """Every item of a non-empty list inside bound (the message shows the whole list)."""
    if bound is None:
        return values
    if not len(values):
        refuse(where, values, "a list of at least one value")
    for v in values:
        if not _real(v):
            refuse(where, values, "a list of numbers")
        if not bound.holds(v):
            _out(where, values, bound, each=True)
    return values


def check_array(where: str, a, bound: Bound) -> np.ndarray:
    """Every element of an array inside bound: the first one outside is named with its index
    (`<where>[i, j] = v ...`)."""
    a = np.asarray(a)
    if a.ndim == 0:             # argwhere finds nothing in a 0-d array
        check(where, a.item(), bound)
        return a
    bad = np.argwhere(~bound.mask(a))
    if bad.size:
        idx = tuple(int(i) for i in bad[0])
        _out(f"{where}{list(idx)}", a[idx], bound)
    return a


def check_value(where: str, value, bound: Bound | None):
    """check or check_each, by the value's kind (a config key holds one number or a list)."""
    if isinstance(value, (tuple, list)):
        return check_each(where, value, bound)
    return check(where, value, bound)


# --- kinds: a value against a type hint (int, float, bool, str, None, unions, tuples) ----------
def fits(value, hint) -> bool:
    """value is of the hinted type; a float is a finite number (an int is one too), a bool is
    never a number. A hint this check does not know passes (the caller decides)."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return any(fits(value, a) for a in typing.get_args(hint))
    if origin is tuple:
        args = typing.get_args(hint)
        return isinstance(value, tuple) and all(fits(v, args[0]) for v in value)
    if hint is type(None):
        return value is None
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool) and \
            math.isfinite(value)
    if hint is str:
        return isinstance(value, str)
    return True


def kind(hint) -> str:
    """A type hint in words ("an integer or none", "a list of finite numbers")."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return " or ".join(kind(a) for a in typing.get_args(hint))
    if typing.get_origin(hint) is tuple:
        item = typing.get_args(hint)[0]
        return "a list of " + {int: "integers", float: "finite numbers", str: "strings"}.get(
            item, kind(item))
    return {int: "an integer", float: "a finite number", bool: "true or false", str: "a string",
            type(None): "none"}.get(hint, str(hint))


def check_type(where: str, value, hint):
    """value of the hinted type (fits), else `<where> = <value> is not <kind>`; returns it."""
    if hint is not None and not fits(value, hint):
        refuse(where, value, kind(hint))
    return value


# --- bounds declared on dataclass fields ---------------------------------------------------------
def bounded(default=dataclasses.MISSING, lo=None, hi=None, **how):
    """A dataclass field with its Bound as metadata: `x: int = bounded(1, 0, 1000)`;
    how: Bound's lo_open, hi_open, integral, step, what."""
    return dataclasses.field(default=default, metadata={BOUND: Bound(lo, hi, **how)})


def bounds_of(cls) -> dict[str, Bound]:
    """{field name: Bound} of a dataclass (or instance) whose fields declare one."""
    return {f.name: f.metadata[BOUND] for f in dataclasses.fields(cls) if BOUND in f.metadata}


def bound_of(cls, name: str) -> Bound:
    return bounds_of(cls)[name]


def check_fields(obj, where: str) -> None:
    """Every bounded field of dataclass instance obj inside its bound (none passes: an
    optional field not set); where + field name names it ("config key maml." + "trunc")."""
    for name, bound in bounds_of(obj).items():
        value = getattr(obj, name)
        if value is not None:
            check_value(f"{where}{name}", value, bound)
