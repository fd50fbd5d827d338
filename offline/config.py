"""Training configs: TOML files with sections [data], [model], [maml], [rule], [pretrain],
[train]; the shipped ones live in offline/configs/ and are named by file stem (`metaloihi train
--config demo`). Every key must be known: a typo is a UserError naming it, never a silently
ignored setting. [rule] is the chip's learning rule (rules/: its name picks the section's
fields); configs stored in checkpoints from before it had SOEL's keys in [maml] (soel_*), read
as [rule] keys."""
from __future__ import annotations

import dataclasses
import math
import sys
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path

from metaloihi import rules
from metaloihi.base.errors import UserError
from metaloihi.offline.maml import MamlConfig
from metaloihi.rules.soel import legacy
from metaloihi.offline.model import ModelConfig
from metaloihi.offline.pretrain import PretrainConfig

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib

CONFIG_DIR = Path(__file__).parent / "configs"


@dataclass(frozen=True)
class DataConfig:
    dataset: str = "gestures"
    root: str = ""              # folder of a real data set's files ("" for embedded ones)
    ways: int = 5
    shots: int = 1
    queries: int = 5            # query samples per class per task (D_tst)
    train_split: str = "train"
    val_split: str = "val"
    test_split: str = "test"
    seed: int = 0               # the data set generator's seed (embedded sets)


@dataclass(frozen=True)
class TrainConfig:
    meta_batch: int = 4
    iterations: int = 2000
    outer_lr: float = 1e-2      # Adam (paper), relative to each weight tensor's RMS (below)
    relative_lr: bool = True    # Adam step per weight tensor = outer_lr x its initial RMS
    val_every: int = 100
    val_tasks: int = 100
    checkpoint_every: int = 50
    time_limit_min: float = 0.0   # stop (and checkpoint) after this wall time; 0: no limit
    seed: int = 0
    mode: str = "auto"          # meta-gradient: "vmap", "loop", or "auto" = loop on the CPU
                                # (faster there), vmap on CUDA (benchmarks/maml_throughput)
    threads: int = 0            # torch CPU threads (0: torch's default)
    dtype: str = "float32"
    device: str = "cpu"         # torch device: "cpu", "cuda" or "cuda:K" (`train --device`)


@dataclass(frozen=True)
class Config:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    maml: MamlConfig = field(default_factory=MamlConfig)
    pretrain: PretrainConfig = field(default_factory=PretrainConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    @property
    def rule(self):
        """The [rule] section (MAML's inner loop holds it: maml.rule)."""
        return self.maml.rule


SECTIONS = {"data": DataConfig, "model": ModelConfig, "maml": MamlConfig, "rule": None,
            "pretrain": PretrainConfig, "train": TrainConfig}
_NONE = "none"   # TOML has no null: the string "none" stands for None (e.g. trunc, bits)


def _section(name: str, cls, values: dict, extra: dict | None = None):
    if not isinstance(values, dict):
        raise UserError(f"config section [{name}] must be a table, got {values!r}")
    known = {f.name: f for f in dataclasses.fields(cls) if f.init and f.name != "rule"}
    out = {}
    for key, val in values.items():
        if key not in known:
            raise UserError(f"unknown config key {name}.{key}; expected one of "
                            f"{', '.join(known)}")
        if isinstance(val, str) and val.lower() == _NONE:
            val = None
        if isinstance(val, list):
            val = tuple(val)
        out[key] = val
    hints = typing.get_type_hints(cls)
    for key, val in out.items():
        _check_type(f"{name}.{key}", val, hints.get(key))
        _check_range(f"{name}.{key}", val, getattr(cls, "RANGES", {}).get(key)
                     if name == "rule" else None)
    try:
        return cls(**out, **(extra or {}))
    except TypeError as err:
        raise UserError(f"config section [{name}]: {err}") from None


# The documented range of every numeric key with one (inclusive bounds; None: unbounded). A
# value outside it is refused at load, never clamped or found deep inside training. Seeds stay
# below 2**32 (numpy's SeedSequence takes any, but torch.manual_seed(seed * 1_000_003 + i)
# must fit 64 bits).
SEED_MAX = 2 ** 32 - 1
RANGES: dict[str, tuple[float | None, float | None]] = {
    "data.ways": (2, None), "data.shots": (1, None), "data.queries": (1, None),
    "data.seed": (0, SEED_MAX),
    "model.channels": (1, 4096), "model.kernel": (1, 63), "model.pool": (1, None),
    "model.time_pool": (1, None), "model.steps": (1, None),
    "model.du": (0.0, 1.0), "model.dv": (0.0, 1.0), "model.vth": (1e-9, None),
    "model.init_rate": (1e-9, 1.0), "model.head_init_rate": (1e-9, 1.0),
    "maml.inner_steps": (0, 1000), "maml.inner_lr": (0.0, 1e3),
    "maml.update_threshold": (0.0, 1.0), "maml.q_inner_bits": (2, 8),
    "maml.q_outer_bits": (2, 8), "maml.loss_scale": (1e-9, None),
    "train.meta_batch": (1, None), "train.iterations": (1, None), "train.outer_lr": (1e-12, 10.0),
    "train.val_every": (1, None), "train.val_tasks": (1, None),
    "train.checkpoint_every": (1, None), "train.time_limit_min": (0.0, None),
    "train.seed": (0, SEED_MAX), "train.threads": (0, 1024),
}


def _check_range(key: str, val, bounds: tuple | None = None) -> None:
    """Values (each item of a list) inside RANGES[key] (or `bounds`: a rule's own); none
    passes (the type check decided)."""
    lo, hi = bounds or RANGES.get(key, (None, None))
    if (lo is None and hi is None) or val is None:
        return
    if isinstance(val, tuple) and not val:
        raise UserError(f"config key {key} = []; expected at least one value")
    for v in (val if isinstance(val, tuple) else (val,)):
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            continue
        if (lo is not None and v < lo) or (hi is not None and v > hi):
            shown = list(val) if isinstance(val, tuple) else val
            want = (f"in [{lo}, {hi}]" if lo is not None and hi is not None else
                    f">= {lo}" if lo is not None else f"<= {hi}")
            if lo is not None and 0 < lo < 1e-6:
                want = "> 0" + (f" and <= {hi}" if hi is not None else "")
            raise UserError(f"config key {key} = {shown!r} is out of range: expected "
                            f"{'each value ' if isinstance(val, tuple) else ''}{want}")


def _type_name(hint) -> str:
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in typing.get_args(hint))
    if typing.get_origin(hint) is tuple:
        item = typing.get_args(hint)[0]
        return "a list of " + {int: "integers", float: "finite numbers", str: "strings"}.get(
            item, _type_name(item))
    return {int: "an integer", float: "a finite number", bool: "true or false", str: "a string",
            type(None): "none"}.get(hint, str(hint))


def _fits(val, hint) -> bool:
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return any(_fits(val, a) for a in typing.get_args(hint))
    if origin is tuple:
        args = typing.get_args(hint)
        return isinstance(val, tuple) and all(_fits(v, args[0]) for v in val)
    if hint is type(None):
        return val is None
    if hint is bool:
        return isinstance(val, bool)
    if hint is int:
        return isinstance(val, int) and not isinstance(val, bool)
    if hint is float:
        return isinstance(val, (int, float)) and not isinstance(val, bool) and math.isfinite(val)
    if hint is str:
        return isinstance(val, str)
    return True                  # a type this check does not know: the dataclass decides


def _check_type(key: str, val, hint) -> None:
    """A config value of the wrong type is named here, not found deep inside training."""
    if hint is not None and not _fits(val, hint):
        shown = "none" if val is None else repr(list(val) if isinstance(val, tuple) else val)
        raise UserError(f"config key {key} = {shown}; expected {_type_name(hint)}")


def from_dict(raw: dict) -> Config:
    for key in raw:
        if key not in SECTIONS:
            raise UserError(f"unknown config section [{key}]; expected {', '.join(SECTIONS)}")
    raw = dict(raw)
    rule_raw = legacy.rule_section(raw)   # older configs kept SOEL's keys in [maml]
    if not isinstance(rule_raw, dict):
        raise UserError(f"config section [rule] must be a table, got {rule_raw!r}")
    card = rules.get(rule_raw.get("name", rules.DEFAULT))
    rule = _section("rule", card.Config, rule_raw)
    secs = {k: _section(k, cls, raw.get(k, {}), {"rule": rule} if k == "maml" else None)
            for k, cls in SECTIONS.items() if cls is not None}
    return Config(**secs)


def to_dict(cfg: Config) -> dict:
    """Plain dict (checkpoints store it; from_dict inverts it)."""
    out = {}
    for name in SECTIONS:
        sec = dataclasses.asdict(cfg.rule if name == "rule" else getattr(cfg, name))
        if name == "maml":
            del sec["rule"]                        # its own section
        out[name] = {k: list(v) if isinstance(v, tuple) else v for k, v in sec.items()}
    return out


def shipped() -> list[str]:
    return sorted(p.stem for p in CONFIG_DIR.glob("*.toml"))


def load(name_or_path: str, overrides: dict | None = None) -> Config:
    """A shipped config by name, or a TOML file by path; overrides {"train.iterations": 10}."""
    path = Path(name_or_path)
    if not path.suffix:
        path = CONFIG_DIR / f"{name_or_path}.toml"
        if not path.exists():
            raise UserError(f"no config named {name_or_path!r}; shipped: {', '.join(shipped())} "
                            "(or give a .toml file)")
    elif not path.exists():
        raise UserError(f"config file {str(path)!r} does not exist")
    try:
        raw = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as err:
        raise UserError(f"config file {str(path)!r}: {err}") from None
    for dotted, val in (overrides or {}).items():
        sec, _, key = dotted.partition(".")
        if not key:
            raise UserError(f"override {dotted!r}: expected section.key=value")
        raw.setdefault(sec, {})[key] = val
    return from_dict(raw)
