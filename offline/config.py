"""Training configs: TOML files with sections [data], [model], [maml], [rule], [pretrain],
[train]; the shipped ones live in offline/configs/ and are named by file stem (`metaloihi train
--config demo`). Every key must be known: a typo is a UserError naming it, never a silently
ignored setting. [rule] is the chip's learning rule (rules/: its name picks the section's
fields); configs stored in checkpoints from before it had SOEL's keys in [maml] (soel_*), read
as [rule] keys."""
from __future__ import annotations

import dataclasses
import sys
import typing
from dataclasses import dataclass, field
from pathlib import Path

from metaloihi import rules
from metaloihi.base import bounds
from metaloihi.base.bounds import bounded
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
# Every numeric key's documented range is its field's bound (base/bounds.py; inclusive unless
# marked open): the sections here, offline/model.py's ModelConfig, offline/maml.py's
# MamlConfig, offline/pretrain.py's PretrainConfig and the rule card's Config. Seeds stay below
# 2**32 (numpy's SeedSequence takes any, but torch.manual_seed(seed * 1_000_003 + i) must fit
# 64 bits).
SEED_MAX = 2 ** 32 - 1


@dataclass(frozen=True)
class DataConfig:
    dataset: str = "gestures"
    root: str = ""              # folder of a real data set's files ("" for embedded ones)
    ways: int = bounded(5, 2)
    shots: int = bounded(1, 1)
    queries: int = bounded(5, 1)  # query samples per class per task (D_tst)
    train_split: str = "train"
    val_split: str = "val"
    test_split: str = "test"
    seed: int = bounded(0, 0, SEED_MAX)   # the data set generator's seed (embedded sets)


@dataclass(frozen=True)
class TrainConfig:
    meta_batch: int = bounded(4, 1)
    iterations: int = bounded(2000, 1)
    outer_lr: float = bounded(1e-2, 1e-12, 10.0)   # Adam (paper), relative to each weight
                                                    # tensor's RMS (below)
    relative_lr: bool = True    # Adam step per weight tensor = outer_lr x its initial RMS
    val_every: int = bounded(100, 1)
    val_tasks: int = bounded(100, 1)
    checkpoint_every: int = bounded(50, 1)
    time_limit_min: float = bounded(0.0, 0.0)   # stop (and checkpoint) after this wall time;
                                                # 0: no limit
    seed: int = bounded(0, 0, SEED_MAX)
    mode: str = "auto"          # meta-gradient: "vmap", "loop", or "auto" = loop on the CPU
                                # (faster there), vmap on CUDA (benchmarks/maml_throughput)
    threads: int = bounded(0, 0, 1024)   # torch CPU threads (0: torch's default)
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
    # each value's type, then its documented range (the section's field bounds, declared on
    # its dataclass: base/bounds.py): refused at load, never clamped or found deep in training
    hints, limits = typing.get_type_hints(cls), bounds.bounds_of(cls)
    for key, val in out.items():
        where = f"config key {name}.{key}"
        bounds.check_type(where, val, hints.get(key))
        if val is not None:
            bounds.check_value(where, val, limits.get(key))
    try:
        return cls(**out, **(extra or {}))
    except TypeError as err:
        raise UserError(f"config section [{name}]: {err}") from None


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
