"""The files `metaloihi report` reads, read and validated; a bad file raises UserError naming it
(and the line, row or key):

  meta-training logs   offline/train.py's metrics.jsonl (or .jsonl.gz): one JSON object per
                       iteration {iteration, meta_loss, meta_train_acc, tasks_per_s, elapsed_s,
                       [meta_val_acc], [inner_lr.i | soel.threshold | soel.eta]}
  evaluations          `metaloihi evaluate --out`: a JSON list of {name, shots, acc, ci95, tasks}
                       (acc and ci95 fractions); optional keys dataset, split, ways are used when
                       present, else the data set is read from the row name and the split from
                       a file name eval_<split>[_split].json
  deployment gap       GAP_FORMAT below
  sim-vs-Lava speed    SPEED_FORMAT below

Bundles are read by bundles.py."""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path

from metaloihi.base.errors import UserError
from metaloihi.base.json_file import parse, read_json, read_text

GAP_FORMAT = """A JSON object (or a list of them, one table row each): the dict that
studies/deployment_gap.py's deployment_gap returns (benchmarks/deployment_gap.py --json); only
these keys are read, accuracies are fractions:
    {"float": {"acc": 0.768, "ci95": 0.012},      # offline/'s float model, float SOEL
     "fixed": {"acc": 0.752, "ci95": 0.013},      # sim/'s bit-exact model of the bundle
     "lava":  {"acc": 0.75, "ci95": 0.05, "tasks": 5, "identical_to_fixed": true},
     "split": "demo", "ways": 5, "shots": 1, "tasks": 100,          # optional from here on
     "dataset": "gestures", "checkpoint": "runs/demo/best.pt",
     "agreement": {"mean": 0.97},    # fraction of queries where float and fixed predict alike
     "gap_pp": {"fixed_minus_float": -1.6, "ci95": 0.9},
     "notes": "free text"}
  At least one of float / fixed / lava must be there; an absent, null or NaN acc shows as
  "not measured". lava.tasks: how many of the tasks also ran in Lava (default: all)."""

SPEED_FORMAT = """A JSON object:
    {"rows": [{"what": "one 5-way 1-shot session + 50 queries", "sim_s": 0.92, "lava_s": 54.8,
               "identical": true}],            # identical optional: outputs equal spike for spike
     "machine": "2-core CPU, no GPU",          # optional
     "command": ".venv/bin/python benchmarks/lava_session.py"}   # optional
  sim_s / lava_s: wall seconds of the same work in sim/ and in Lava (> 0); the page shows the
  ratio lava_s / sim_s as the speed-up. The flat dict of `benchmarks/sim_vs_lava.py --json`
  (lava_s_per_sample, sim_s_per_sample_batch<N>, output_spikes_identical) is read as rows too."""

DATASET_NAMES = {   # registry name -> how the page names it
    "double_nmnist": "Double N-MNIST", "double_asl_dvs": "Double ASL DVS",
    "nomniglot": "N-Omniglot", "nmnist": "N-MNIST", "asl_dvs": "ASL-DVS",
    "dvs_gesture": "DVS Gesture",
    "gestures": "gestures (embedded)", "digits": "digits (embedded)",
    "double_digits": "double_digits (embedded)",
}
SPLITS = ("train", "val", "test", "demo")

# what `metaloihi report` picks up under checkpoints/ when no input is named
DEFAULT_GLOBS = {"logs": ("*metrics.jsonl", "*metrics.jsonl.gz"), "evals": ("eval_*.json",),
                 "bundles": ("*.h5",), "gaps": ("deployment_gap*.json",),
                 "speeds": ("sim_vs_lava*.json",), "figures": ("demo*.png",),
                 "continual": ("continual*.json",), "ablation": ("ablation_*.json",)}


@dataclass
class Inputs:
    logs: list[Path] = field(default_factory=list)
    evals: list[Path] = field(default_factory=list)
    bundles: list[Path] = field(default_factory=list)
    gaps: list[Path] = field(default_factory=list)
    speeds: list[Path] = field(default_factory=list)
    figures: list[Path] = field(default_factory=list)   # PNGs shown as they are (the demo's)
    continual: list[Path] = field(default_factory=list)  # `metaloihi continual --json` files
    ablation: list[Path] = field(default_factory=list)   # benchmarks/ablation.py --json files

    def all(self) -> list[tuple[str, Path]]:
        return [(kind, p) for kind in ("logs", "evals", "bundles", "gaps", "speeds", "figures",
                                       "continual", "ablation")
                for p in getattr(self, kind)]


def default_inputs(root: str | Path = "checkpoints") -> Inputs:
    """Every file under `root` (recursively) matching DEFAULT_GLOBS; empty if root is absent."""
    root = Path(root)
    found = Inputs()
    if not root.is_dir():
        return found
    for kind, globs in DEFAULT_GLOBS.items():
        paths = sorted({p for g in globs for p in root.rglob(g) if p.is_file()})
        getattr(found, kind).extend(paths)
    return found


def _load_json(path: Path, what: str):
    return read_json(path, what)       # untrusted input: base/json_file.py


def read_log(path: str | Path) -> list[dict]:
    """The records of a metrics.jsonl[.gz]. A torn last line (a run still writing) is dropped;
    any other bad line raises UserError naming file and line."""
    path = Path(path)
    lines = read_text(path, "training log").splitlines()
    recs = []
    for i, ln in enumerate(lines):
        if not ln.strip():
            continue
        where = f"training log {str(path)!r}, line {i + 1}"
        try:
            rec = parse(ln, where)
        except UserError:
            if i == len(lines) - 1:
                break
            raise
        if not isinstance(rec, dict) or not isinstance(rec.get("iteration"), int) \
                or isinstance(rec["iteration"], bool) or rec["iteration"] < 0:
            raise UserError(f"{where}: expected an object with an integer 'iteration' >= 0")
        _check_log_values(rec, where)
        if rec.get("stage") == 1 or "rule_start" in rec:
            continue        # stage 1's steps and the rule start: not meta-training iterations
        recs.append(rec)
    if not recs:
        raise UserError(f"training log {str(path)!r} holds no records")
    return recs


LOG_MAX = 1e30     # a logged number beyond this is a diverged run or a damaged file: refused


def _check_log_values(rec: dict, where: str) -> None:
    """Numbers a plot takes: finite, |x| <= LOG_MAX, accuracies (keys with 'acc') in [0, 1]."""
    for key, v in rec.items():
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            continue
        if not math.isfinite(v) or abs(v) > LOG_MAX:
            raise UserError(f"{where}: {key} = {v!r}; expected a finite number within "
                            f"+-{LOG_MAX:g}")
        if "acc" in key and not 0 <= v <= 1:
            raise UserError(f"{where}: {key} = {v!r}; expected a fraction in [0, 1]")


def is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def dataset_of(text: str) -> str | None:
    """The registry data set named in a row name ('MAML SGD-inner, gestures, adapt=head')."""
    t = text.lower().replace("-", "_")
    for name in sorted(DATASET_NAMES, key=len, reverse=True):
        if re.search(rf"(?<![a-z0-9_]){name}(?![a-z0-9_])", t):
            return name
    return None


def split_of_file(path: Path) -> str | None:
    m = re.fullmatch(r"eval_([a-z]+?)(?:_split)?", path.name.removesuffix(".json"))
    return m.group(1) if m and m.group(1) in SPLITS else None


def read_eval(path: str | Path) -> list[dict]:
    """Rows of a `metaloihi evaluate --out` JSON, each completed with dataset and split
    (None where unknown) and the file it came from."""
    path = Path(path)
    rows = _load_json(path, "evaluation")
    if not isinstance(rows, list):
        raise UserError(f"evaluation {str(path)!r}: expected a JSON list of rows")
    out = []
    for i, r in enumerate(rows):
        if not isinstance(r, dict) or not isinstance(r.get("name"), str) \
                or not isinstance(r.get("shots"), int) or not is_number(r.get("acc")):
            raise UserError(f"evaluation {str(path)!r}, row {i}: expected {{name, shots, acc, "
                            "ci95, tasks}} (as metaloihi evaluate --out writes)")
        ci = as_fraction(r.get("ci95"))
        if not 0 <= r["acc"] <= 1 or r["shots"] < 1 or (ci is not None and (
                not is_number(ci) or not 0 <= ci <= 1)):
            raise UserError(f"evaluation {str(path)!r}, row {i}: acc {r['acc']!r}, ci95 "
                            f"{r.get('ci95')!r}, shots {r['shots']!r}; expected fractions in "
                            "[0, 1] and shots >= 1")
        out.append({**r, "dataset": r.get("dataset") or dataset_of(r["name"]),
                    "split": r.get("split") or split_of_file(path),
                    "split_from_file": not r.get("split"), "file": path.name})
    # the baseline rows name no data set: they run on the first checkpoint's (evaluate.py)
    named = {r["dataset"] for r in out if r["dataset"]}
    if len(named) == 1:
        for r in out:
            r["dataset"] = r["dataset"] or next(iter(named))
    return out


def as_fraction(v) -> float | None:
    """A fraction, or None for absent / null / NaN (not measured)."""
    return None if v is None or (isinstance(v, float) and math.isnan(v)) else v


def read_gap(path: str | Path) -> list[dict]:
    """GAP_FORMAT rows (validated)."""
    path = Path(path)
    data = _load_json(path, "deployment-gap results")
    rows = data if isinstance(data, list) else [data]
    for i, r in enumerate(rows):
        where = f"deployment-gap results {str(path)!r}" + (f", row {i}" if len(rows) > 1 else "")
        if not isinstance(r, dict) or not any(isinstance(r.get(k), dict)
                                              for k in ("float", "fixed", "lava")):
            raise UserError(f"{where}: expected an object with float / fixed / lava: "
                            "{acc, ci95} (fractions; metaloihi.report.GAP_FORMAT)")
        for k in ("float", "fixed", "lava"):
            part = r.get(k)
            if part is None:
                continue
            if not isinstance(part, dict):
                raise UserError(f"{where}: {k} must be an object {{acc, ci95}}, got {part!r}")
            for key in ("acc", "ci95"):
                v = as_fraction(part.get(key))
                if v is not None and (not is_number(v) or not 0 <= v <= 1):
                    raise UserError(f"{where}: {k}.{key} = {v!r}; expected a fraction in "
                                    "[0, 1] or null")
        agree = r.get("agreement")
        if agree is not None and not (isinstance(agree, dict) and
                                      (as_fraction(agree.get("mean")) is None
                                       or is_number(agree["mean"]))):
            raise UserError(f"{where}: agreement must be an object {{mean: fraction}}")
    return rows


def read_speed(path: str | Path) -> dict:
    """SPEED_FORMAT (validated); benchmarks/sim_vs_lava.py's flat --json dict as rows."""
    path = Path(path)
    data = _load_json(path, "speed results")
    if isinstance(data, dict) and "rows" not in data and "lava_s_per_sample" in data:
        rows = []
        for k, v in data.items():
            m = re.fullmatch(r"sim_s_per_sample_batch(\d+)", k)
            if m:
                n = int(m.group(1))
                rows.append({"what": "1 sample" if n == 1 else f"per sample, batch of {n}",
                             "sim_s": v, "lava_s": data["lava_s_per_sample"],
                             "identical": data.get("output_spikes_identical")})
        data = {"rows": rows, "command": "benchmarks/sim_vs_lava.py"}
    rows = data.get("rows") if isinstance(data, dict) else None
    if not isinstance(rows, list) or not rows:
        raise UserError(f"speed results {str(path)!r}: expected {{\"rows\": [{{what, sim_s, "
                        "lava_s}}, ...]}} (metaloihi.report.SPEED_FORMAT)")
    for i, r in enumerate(rows):
        for k in ("sim_s", "lava_s"):
            if not isinstance(r, dict) or not is_number(r.get(k)) or r[k] <= 0:
                raise UserError(f"speed results {str(path)!r}, row {i}: {k} must be seconds "
                                f"> 0, got {r.get(k) if isinstance(r, dict) else r!r}")
    return data
