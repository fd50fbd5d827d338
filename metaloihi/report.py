"""`metaloihi report`: one self-contained HTML page (inline CSS, no scripts, nothing fetched)
with its PNGs next to it, referenced relatively, from what the pipeline wrote:

  meta-training logs   offline/train.py's metrics.jsonl (or .jsonl.gz): one JSON object per
                       iteration {iteration, meta_loss, meta_train_acc, tasks_per_s, elapsed_s,
                       [meta_val_acc], [inner_lr.i | soel.threshold | soel.eta]}
  evaluations          `metaloihi evaluate --out`: a JSON list of {name, shots, acc, ci95, tasks}
                       (acc and ci95 fractions); optional keys dataset, split, ways are used when
                       present, else the data set is read from the row name and the split from
                       a file name eval_<split>[_split].json
  bundles              bridge/ deployment bundles (.h5, read with bridge.bundle.read_bundle)
  deployment gap       GAP_FORMAT below (produced by the deployment-gap work)
  sim-vs-Lava speed    SPEED_FORMAT below

Missing inputs are reported as "not measured". The paper's figures (PAPER) are quoted exactly
from the reference text, table by table.

GAP_FORMAT, a JSON object (or a list of them, one table row each): the dict that
studies/deployment_gap.py's deployment_gap returns (benchmarks/deployment_gap.py --json); only these keys
are read, accuracies are fractions:
    {"float": {"acc": 0.768, "ci95": 0.012},      # offline/'s float model, float SOEL
     "fixed": {"acc": 0.752, "ci95": 0.013},      # sim/'s bit-exact model of the bundle
     "lava":  {"acc": 0.75, "ci95": 0.05, "tasks": 5, "identical_to_fixed": true},
     "split": "demo", "ways": 5, "shots": 1, "tasks": 100,          # optional from here on
     "dataset": "gestures", "checkpoint": "runs/demo/best.pt",
     "agreement": {"mean": 0.97},    # fraction of queries where float and fixed predict alike
     "gap_pp": {"fixed_minus_float": -1.6, "ci95": 0.9},
     "notes": "free text"}
  At least one of float / fixed / lava must be there; an absent, null or NaN acc shows as
  "not measured". lava.tasks: how many of the tasks also ran in Lava (default: all).

SPEED_FORMAT, a JSON object:
    {"rows": [{"what": "one 5-way 1-shot session + 50 queries", "sim_s": 0.92, "lava_s": 54.8,
               "identical": true}],            # identical optional: outputs equal spike for spike
     "machine": "2-core CPU, no GPU",          # optional
     "command": ".venv/bin/python benchmarks/lava_session.py"}   # optional
  sim_s / lava_s: wall seconds of the same work in sim/ and in Lava (> 0); the page shows the
  ratio lava_s / sim_s as the speed-up. The flat dict of `benchmarks/sim_vs_lava.py --json`
  (lava_s_per_sample, sim_s_per_sample_batch<N>, output_spikes_identical) is read as rows too.
"""
from __future__ import annotations

import datetime as _dt
import gzip
import html
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from metaloihi.base.atomic import write_bytes
from metaloihi.base.errors import UserError

PAPER_LABEL = "paper (Stewart & Neftci 2022)"
MEASURED_LABEL = "measured"
PAPER_CITATION = ("K. M. Stewart and E. O. Neftci, Meta-learning spiking neural networks with "
                  "surrogate gradient descent, Neuromorph. Comput. Eng. 2 (2022) 044002")

# The paper's five-way one-shot accuracies, quoted exactly as printed in
# ../shared/reference/stewart-neftci-2022-meta-learning-snn.txt (Stewart & Neftci 2022):
#   Table 3 "One-shot five-way accuracy results" (validation = the meta-validation classes' test
#           data, test = the meta-test classes; mean over ten trials);
#   Table 4 "Comparison of meta-learning methods on the N-Omniglot dataset" (test only; the
#           paper's own row, 100 time steps; the rows of Li et al. are other work, left out);
#   Table 7 "One-shot five-way accuracy results with error-triggered synaptic plasticity"
#           (MAML SOEL, theta = 0.05). Its N-Omniglot row prints a single figure; the text
#           extraction does not say which column, and N-Omniglot is reported as test accuracy
#           elsewhere (Table 4), so it is read as test.
# All on real DVS recordings (Double N-MNIST, Double ASL DVS, N-Omniglot); the paper has no
# gesture figure. dataset = our registry name of the same construction.
PAPER = [
    {"table": "Table 3", "dataset": "double_nmnist", "algorithm": "MAML (SNN)",
     "val": "98.76 ± 1.05%", "test": "98.23 ± 1.12%"},
    {"table": "Table 3", "dataset": "double_nmnist", "algorithm": "MAML (CNN)",
     "val": "99.09 ± 0.53%", "test": "98.35 ± 1.26%"},
    {"table": "Table 3", "dataset": "double_nmnist", "algorithm": "FOMAML (SNN)",
     "val": "92.59 ± 1.0%", "test": "92.63 ± 0.74%"},
    {"table": "Table 3", "dataset": "double_asl_dvs", "algorithm": "MAML (SNN)",
     "val": "95.77 ± 0.88%", "test": "96.04 ± 2.31%"},
    {"table": "Table 3", "dataset": "double_asl_dvs", "algorithm": "MAML (CNN)",
     "val": "94.93 ± 0.92%", "test": "94.97 ± 1.63%"},
    {"table": "Table 3", "dataset": "double_asl_dvs", "algorithm": "FOMAML (SNN)",
     "val": "94.97 ± 1.12%", "test": "94.27 ± 0.6%"},
    {"table": "Table 4", "dataset": "nomniglot", "algorithm": "MAML (SNN), 100 time steps",
     "val": None, "test": "96.43 ± 0.66%"},
    {"table": "Table 7", "dataset": "double_nmnist", "algorithm": "MAML SOEL θ = 0.05",
     "val": "98.57 ± 1.13%", "test": "98.72 ± 0.20%"},
    {"table": "Table 7", "dataset": "double_asl_dvs", "algorithm": "MAML SOEL θ = 0.05",
     "val": "97.81 ± 0.58%", "test": "97.61 ± 0.96%"},
    {"table": "Table 7", "dataset": "nomniglot", "algorithm": "MAML SOEL θ = 0.05",
     "val": None, "test": "95.67 ± 2.70%"},
]

DATASET_NAMES = {   # registry name -> how the page names it
    "double_nmnist": "Double N-MNIST", "double_asl_dvs": "Double ASL DVS",
    "nomniglot": "N-Omniglot", "nmnist": "N-MNIST", "asl_dvs": "ASL-DVS",
    "dvs_gesture": "DVS Gesture",
    "gestures": "gestures (embedded)", "digits": "digits (embedded)",
    "double_digits": "double_digits (embedded)",
}
SPLITS = ("train", "val", "test", "demo")
NOT_MEASURED = "not measured"

# what `metaloihi report` picks up under checkpoints/ when no input is named
DEFAULT_GLOBS = {"logs": ("*metrics.jsonl", "*metrics.jsonl.gz"), "evals": ("eval_*.json",),
                 "bundles": ("*.h5",), "gaps": ("deployment_gap*.json",),
                 "speeds": ("sim_vs_lava*.json",), "figures": ("demo*.png",)}


@dataclass
class Inputs:
    logs: list[Path] = field(default_factory=list)
    evals: list[Path] = field(default_factory=list)
    bundles: list[Path] = field(default_factory=list)
    gaps: list[Path] = field(default_factory=list)
    speeds: list[Path] = field(default_factory=list)
    figures: list[Path] = field(default_factory=list)   # PNGs shown as they are (the demo's)

    def all(self) -> list[tuple[str, Path]]:
        return [(kind, p) for kind in ("logs", "evals", "bundles", "gaps", "speeds", "figures")
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


# --- reading --------------------------------------------------------------------------------
def _open_text(path: Path):
    return gzip.open(path, "rt") if path.suffix == ".gz" else open(path)


def _load_json(path: Path, what: str):
    try:
        with _open_text(path) as fh:
            return json.load(fh)
    except FileNotFoundError:
        raise UserError(f"{what} {str(path)!r} does not exist") from None
    except (json.JSONDecodeError, UnicodeDecodeError, OSError) as err:
        raise UserError(f"{what} {str(path)!r} is not valid JSON: {err}") from None


def read_log(path: str | Path) -> list[dict]:
    """The records of a metrics.jsonl[.gz]. A torn last line (a run still writing) is dropped;
    any other bad line raises UserError naming file and line."""
    path = Path(path)
    try:
        with _open_text(path) as fh:
            lines = fh.read().splitlines()
    except FileNotFoundError:
        raise UserError(f"training log {str(path)!r} does not exist") from None
    except (OSError, UnicodeDecodeError, EOFError) as err:
        raise UserError(f"training log {str(path)!r} cannot be read: {err}") from None
    recs = []
    for i, ln in enumerate(lines):
        if not ln.strip():
            continue
        try:
            rec = json.loads(ln)
        except json.JSONDecodeError:
            if i == len(lines) - 1:
                break
            raise UserError(f"training log {str(path)!r}, line {i + 1}: not JSON") from None
        if not isinstance(rec, dict) or not isinstance(rec.get("iteration"), int):
            raise UserError(f"training log {str(path)!r}, line {i + 1}: expected an object with "
                            "an integer 'iteration'")
        if rec.get("stage") == 1 or "rule_start" in rec:
            continue        # stage 1's steps and the rule start: not meta-training iterations
        recs.append(rec)
    if not recs:
        raise UserError(f"training log {str(path)!r} holds no records")
    return recs


def _number(v) -> bool:
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
                or not isinstance(r.get("shots"), int) or not _number(r.get("acc")):
            raise UserError(f"evaluation {str(path)!r}, row {i}: expected {{name, shots, acc, "
                            "ci95, tasks}} (as metaloihi evaluate --out writes)")
        out.append({**r, "dataset": r.get("dataset") or dataset_of(r["name"]),
                    "split": r.get("split") or split_of_file(path),
                    "split_from_file": not r.get("split"), "file": path.name})
    # the baseline rows name no data set: they run on the first checkpoint's (evaluate.py)
    named = {r["dataset"] for r in out if r["dataset"]}
    if len(named) == 1:
        for r in out:
            r["dataset"] = r["dataset"] or next(iter(named))
    return out


def _fraction(v) -> float | None:
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
                v = _fraction(part.get(key))
                if v is not None and (not _number(v) or not 0 <= v <= 1):
                    raise UserError(f"{where}: {k}.{key} = {v!r}; expected a fraction in "
                                    "[0, 1] or null")
        agree = r.get("agreement")
        if agree is not None and not (isinstance(agree, dict) and
                                      (_fraction(agree.get("mean")) is None
                                       or _number(agree["mean"]))):
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
            if not isinstance(r, dict) or not _number(r.get(k)) or r[k] <= 0:
                raise UserError(f"speed results {str(path)!r}, row {i}: {k} must be seconds "
                                f"> 0, got {r.get(k) if isinstance(r, dict) else r!r}")
    return data


def bundle_summary(path: str | Path) -> dict:
    """What the page shows of a bundle: head (SOEL theta/eta/targets, on-chip rule), layers."""
    from metaloihi.bridge.bundle import read_bundle
    from metaloihi.sim import soel_fixed as sf
    from metaloihi.sim.arch import ConvSpec

    path = Path(path)
    if not path.is_file():
        raise UserError(f"bundle {str(path)!r} does not exist")
    b = read_bundle(path)
    head = b.net[-1]
    steps = (b.meta.get("encoding") or {}).get("steps")
    eta_mant = b.head.soel_eta * b.scales[-1]     # mantissa units (the engine updates mantissas)
    try:
        rule = sf.rule_of(b.head, b.scales, head, int(steps or 0))
        rule_text = f"dw = {rule.dw_string()}  (step {rule.step:g} mantissa per n·x)"
    except UserError as err:
        rule_text = f"not representable on chip: {err}"
    layers = []
    for i, layer in enumerate(b.net):
        w = layer.weight
        nrn = layer.neuron
        layers.append({
            "index": i, "kind": "head" if i == len(b.net) - 1 else
            ("conv" if isinstance(layer.spec, ConvSpec) else "dense"),
            "in": "x".join(str(s) for s in np.atleast_1d(layer.spec.in_shape)),
            "out": "x".join(str(s) for s in np.atleast_1d(layer.spec.out_shape)),
            "weight": "x".join(str(s) for s in w.shape),
            "range": f"{int(w.min())}..{int(w.max())}",
            "zero": f"{100 * float(np.mean(w == 0)):.1f}%",
            "weight_exp": int(layer.weight_exp), "scale": f"{b.scales[i]:.4g}",
            "du": int(nrn.du), "dv": int(nrn.dv), "vth": int(nrn.vth)})
    return {"file": path.name, "path": str(path), "theta": b.head.soel_threshold,
            "eta": b.head.soel_eta, "eta_mant": eta_mant, "target_on": b.head.target_on,
            "target_off": b.head.target_off, "rng_seed": b.head.rng_seed,
            "labels": list(b.head.labels), "rule": rule_text,
            "learning_rule": dict(b.head.learning_rule), "layers": layers,
            "dataset": b.meta.get("dataset"), "source": b.meta.get("source", ""),
            "created": b.meta.get("created", ""), "iteration": b.meta.get("iteration"),
            "encoding": b.meta.get("encoding")}


# --- figures --------------------------------------------------------------------------------
def run_label(path: Path) -> str:
    """'runs/demo/metrics.jsonl' -> 'demo'; 'checkpoints/x/demo_soel_metrics.jsonl.gz' ->
    'demo_soel'."""
    stem = path.name.split(".")[0]
    stem = re.sub(r"_?metrics$", "", stem)
    return stem or path.parent.name


def _running_mean(y: np.ndarray, w: int) -> np.ndarray:
    return np.convolve(y, np.ones(w) / w, mode="valid")


def curves_figure(logs: dict[str, list[dict]], path: Path) -> Path:
    """Meta-loss (raw faint, running mean solid) and meta-val accuracy vs iteration, one colour
    per run; a third panel with SOEL theta and eta where a log has them."""
    from matplotlib.figure import Figure

    from metaloihi.plots import _save

    soel = {k: v for k, v in logs.items() if any("soel.threshold" in r for r in v)}
    n = 3 if soel else 2
    fig = Figure(figsize=(5.2 * n, 4.2), dpi=100)
    axes = fig.subplots(1, n)
    colours = [f"C{i}" for i in range(10)]
    for (label, recs), col in zip(logs.items(), colours * 10):
        it = np.array([r["iteration"] for r in recs])
        loss = np.array([r.get("meta_loss", np.nan) for r in recs], float)
        w = max(1, min(100, len(recs) // 20))
        axes[0].plot(it, loss, color=col, alpha=0.18, lw=0.6)
        if len(recs) >= w:
            axes[0].plot(it[w - 1:], _running_mean(loss, w), color=col, lw=1.6,
                         label=f"{label} (mean of {w})")
        val = [(r["iteration"], r["meta_val_acc"]) for r in recs if "meta_val_acc" in r]
        if val:
            vi, va = np.array(val).T
            axes[1].plot(vi, 100 * va, "o-", color=col, ms=3, lw=1.4, label=f"{label}")
        tr = np.array([r.get("meta_train_acc", np.nan) for r in recs], float)
        if len(recs) >= w:
            axes[1].plot(it[w - 1:], 100 * _running_mean(tr, w), color=col, lw=0.8, ls=":",
                         alpha=0.8)
        if label in soel:
            th = [(r["iteration"], r["soel.threshold"], r.get("soel.eta", np.nan))
                  for r in recs if "soel.threshold" in r]
            si, st, se = np.array(th).T
            axes[2].plot(si, st, color=col, lw=1.5, label=f"{label}: θ")
            axes[2].plot(si, se, color=col, lw=1.5, ls="--", label=f"{label}: η")
    axes[0].set(xlabel="iteration", ylabel="meta-loss (query cross-entropy)", title="meta-loss")
    axes[1].set(xlabel="iteration", ylabel="accuracy (%)",
                title="meta-val accuracy (dots), meta-train (dotted)")
    for ax in axes[:2]:
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
    if soel:
        axes[2].set(xlabel="iteration", ylabel="value (log scale)", yscale="log",
                    title="SOEL threshold θ and step η, learnt")
        axes[2].grid(alpha=0.3, which="both")
        axes[2].legend(fontsize=8)
    fig.tight_layout()
    return _save(fig, path)


# --- HTML -----------------------------------------------------------------------------------
def _e(v) -> str:
    """Every text that reaches the page goes through here."""
    return html.escape(str(v), quote=True)


def _table(headers: Sequence[str], rows: Iterable[Sequence], cls: str = "") -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    body = []
    for r in rows:
        attrs = ""
        if isinstance(r, tuple) and len(r) == 2 and isinstance(r[1], dict):
            r, extra = r
            attrs = "".join(f' {k}="{_e(v)}"' for k, v in extra.items())
        body.append(f"<tr{attrs}>" + "".join(f"<td>{_e(c)}</td>" for c in r) + "</tr>")
    return (f'<table class="{_e(cls)}"><thead><tr>{head}</tr></thead>'
            f"<tbody>{''.join(body)}</tbody></table>")


def _pct(acc, ci=None) -> str:
    if acc is None:
        return NOT_MEASURED
    if ci is None or not _number(ci):
        return f"{100 * acc:.1f}%"
    return f"{100 * acc:.1f} ± {100 * ci:.1f}%"


def fmt(x) -> str:
    """Numbers as the page prints them (4 significant digits)."""
    return f"{x:.4g}" if _number(x) else (NOT_MEASURED if x is None else str(x))


def _dataset_name(key: str | None) -> str:
    return DATASET_NAMES.get(key, key) if key else "not recorded"


def _accuracy_section(evals: list[dict]) -> str:
    rows = []
    for r in evals:
        task = (f"{r['ways']}-way " if r.get("ways") else "") + f"{r['shots']}-shot"
        split = r["split"] or "not recorded"
        if r["split"] and r.get("split_from_file"):
            split += " (file name)"
        acc = _pct(r["acc"], r.get("ci95"))
        val, test = (acc, "—") if r["split"] == "val" else ("—", acc)
        rows.append(((MEASURED_LABEL, _dataset_name(r["dataset"]), r["name"], task, split,
                      val, test, r.get("tasks", "—"), r["file"]), {"class": "measured"}))
    for p in PAPER:
        rows.append(((PAPER_LABEL, _dataset_name(p["dataset"]), p["algorithm"], "5-way 1-shot",
                      "val / test", p["val"] or "not reported", p["test"],
                      "10 trials" if p["table"] == "Table 3" else "—", p["table"]),
                     {"class": "paper"}))
    ours = sorted({r["dataset"] for r in evals if r["dataset"]})
    shared = [d for d in ours if any(p["dataset"] == d for p in PAPER)]
    if not evals:
        note = f"Measured: {NOT_MEASURED} (no evaluation JSON given)."
    elif shared:
        note = ("Same data set as the paper for: " + ", ".join(_dataset_name(d) for d in shared)
                + ". Other rows are on different data and not a like-for-like comparison.")
    else:
        note = ("The measured rows are on " + (", ".join(_dataset_name(d) for d in ours)
                or "data sets not recorded in the files") + "; the paper reports none of "
                "these, so its rows (real DVS recordings) are context, not a like-for-like "
                "comparison. Embedded data sets are generated locally (gestures: procedural "
                "DVS gestures).")
    return (f'<section id="accuracy"><h2>Few-shot accuracy: measured vs paper</h2>'
            f"<p>{_e(note)} Ours: mean ± 95% confidence interval over the tasks; split demo = "
            "the five held-out demo classes (a subset of test). Paper: as printed in its "
            "tables (Table 3: mean over ten trials).</p>"
            + _table(["source", "data set", "model", "task", "split", "meta-val classes",
                      "meta-test classes", "tasks", "from"], rows, "acc") + "</section>")


def _curves_section(logs: dict[str, list[dict]], files: dict[str, Path], png: str | None) -> str:
    if not logs:
        return (f'<section id="curves"><h2>Meta-training curves</h2><p>{NOT_MEASURED}: no '
                "training log given.</p></section>")
    rows = []
    for label, recs in logs.items():
        last = recs[-1]
        val = [(r["meta_val_acc"], r["iteration"]) for r in recs if "meta_val_acc" in r]
        best = max(val) if val else None
        learnt = sorted(k for k in last if k.startswith(("inner_lr.", "soel.")))
        tail = recs[-100:]
        rows.append((label, files[label].name, last["iteration"],
                     fmt(last.get("elapsed_s", float("nan")) / 60) if "elapsed_s" in last
                     else "—", fmt(last.get("tasks_per_s")),
                     f"{100 * best[0]:.1f}% (it. {best[1]})" if best else NOT_MEASURED,
                     f"{100 * np.mean([r.get('meta_train_acc', np.nan) for r in tail]):.1f}%",
                     "; ".join(f"{k}: {fmt(recs[0][k])} → {fmt(last[k])}" for k in learnt)
                     or "—"))
    img = (f'<img src="{_e(png)}" alt="meta-loss and meta-validation accuracy vs iteration">'
           if png else "")
    return ('<section id="curves"><h2>Meta-training curves</h2>' + img
            + _table(["run", "log", "iterations", "wall (min)", "tasks/s (last)",
                      "best meta-val", "meta-train acc (last 100 it.)",
                      "learnt scalars (first → last)"], rows) + "</section>")


def _gap_section(gaps: list[tuple[Path, list[dict]]]) -> str:
    head = '<section id="gap"><h2>Deployment gap: float → fixed point → Lava</h2>'
    if not gaps:
        return head + f"<p>{NOT_MEASURED}: no deployment-gap results given (--gap).</p></section>"
    rows = []
    for path, rs in gaps:
        for r in rs:
            acc = {k: _fraction((r.get(k) or {}).get("acc")) for k in ("float", "fixed", "lava")}
            ci = {k: _fraction((r.get(k) or {}).get("ci95")) for k in ("float", "fixed", "lava")}
            lava = r.get("lava") or {}
            task = (f"{r['ways']}-way " if r.get("ways") else "") + \
                (f"{r['shots']}-shot" if r.get("shots") else "")
            gap = (r.get("gap_pp") or {}).get("fixed_minus_float")
            if gap is None and None not in (acc["float"], acc["fixed"]):
                gap = 100 * (acc["fixed"] - acc["float"])
            ident = lava.get("identical_to_fixed")
            agree = _fraction((r.get("agreement") or {}).get("mean"))
            lava_cell = _pct(acc["lava"], ci["lava"])
            if acc["lava"] is not None and lava.get("tasks") is not None:
                lava_cell += f" ({lava['tasks']} tasks)"
            ck = Path(r["checkpoint"]) if r.get("checkpoint") else None
            model = f"{ck.parent.name}/{ck.name}" if ck else "not recorded"
            if r.get("dataset"):
                model += f" ({_dataset_name(r['dataset'])})"
            if r.get("tasks"):
                task = f"{task}, {r['tasks']} tasks" if task else f"{r['tasks']} tasks"
            notes = f"{r['notes']} ({path.name})" if r.get("notes") else path.name
            ceil = r.get("ceilings") if isinstance(r.get("ceilings"), dict) else {}
            ceil_cells = [_pct(_fraction((ceil.get(k) or {}).get("acc")),
                               _fraction((ceil.get(k) or {}).get("ci95")))
                          if isinstance(ceil.get(k), dict) else NOT_MEASURED
                          for k in ("prototype_features", "prototype_raw")]
            rows.append((model, r.get("split") or "not recorded", task or "not recorded",
                         _pct(acc["float"], ci["float"]), _pct(acc["fixed"], ci["fixed"]),
                         lava_cell, *ceil_cells, NOT_MEASURED if gap is None else f"{gap:+.1f} pp",
                         NOT_MEASURED if ident is None else ("yes" if ident else "NO"),
                         NOT_MEASURED if agree is None else _pct(agree), notes))
    return (head + "<p>float: offline/'s float model with float SOEL; fixed: sim/'s bit-exact "
            "Loihi 2 model of the bundle with on-chip SOEL; Lava: the same session in Lava's "
            "simulator (spikes, v and learnt weights compared with fixed's).</p>"
            + _table(["checkpoint", "split", "task", "float", "fixed (sim/)", "Lava",
                      "ceiling: prototype on the head's input", "ceiling: prototype on raw input",
                      "fixed − float", "Lava == fixed", "float/fixed agree", "notes (file)"],
                     rows, "gap") + "</section>")


def _speed_section(speeds: list[tuple[Path, dict]]) -> str:
    if not speeds:
        return ('<section id="speed"><h2>sim/ vs Lava speed</h2>'
                f"<p>{NOT_MEASURED}: no speed results given (--speed).</p></section>")
    rows = []
    for path, d in speeds:
        for r in d["rows"]:
            ident = r.get("identical")
            rows.append((r.get("what", ""), f"{r['sim_s']:.4g}", f"{r['lava_s']:.4g}",
                         f"{r['lava_s'] / r['sim_s']:.0f}x",
                         NOT_MEASURED if ident is None else ("yes" if ident else "NO"),
                         d.get("machine", "not recorded"), d.get("command", ""), path.name))
    return ('<section id="speed"><h2>sim/ vs Lava speed</h2>'
            + _table(["what", "sim/ (s)", "Lava (s)", "speed-up", "outputs identical",
                      "machine", "command", "from"], rows) + "</section>")


def _soel_section(logs: dict[str, list[dict]], bundles: list[dict]) -> str:
    rows = []
    for label, recs in logs.items():
        th = [r for r in recs if "soel.threshold" in r]
        if th:
            rows.append((f"training log: {label}", f"{fmt(th[0]['soel.threshold'])} → "
                         f"{fmt(th[-1]['soel.threshold'])}",
                         f"{fmt(th[0].get('soel.eta'))} → {fmt(th[-1].get('soel.eta'))}",
                         "—", "—", f"iterations {th[0]['iteration']}..{th[-1]['iteration']}"))
    for b in bundles:
        rows.append((f"bundle: {b['file']}", fmt(b["theta"]), fmt(b["eta"]), fmt(b["eta_mant"]),
                     f"{b['target_on']} / {b['target_off']}", b["rule"]))
    if not rows:
        return ('<section id="soel"><h2>SOEL: learnt threshold θ and step η</h2>'
                f"<p>{NOT_MEASURED}: no SOEL training log or bundle given.</p></section>")
    return ('<section id="soel"><h2>SOEL: learnt threshold θ and step η</h2>'
            "<p>Per shot: e = output spike count − target, n = trunc(e / θ), "
            "ΔW = −η n x (x: presynaptic spike count, 7-bit). θ and η are meta-learnt when the "
            "config says so; a bundle carries what the chip uses.</p>"
            + _table(["from", "θ (spikes)", "η (float weight units)", "η (mantissa units)",
                      "target on / off", "on-chip rule / note"], rows, "soel")
            + "</section>")


def _bundles_section(bundles: list[dict]) -> str:
    if not bundles:
        return (f'<section id="bundles"><h2>Bundles</h2><p>{NOT_MEASURED}: no bundle given.'
                "</p></section>")
    parts = ['<section id="bundles"><h2>Bundles: layers and quantisation</h2>']
    for b in bundles:
        enc = b["encoding"]
        meta = [("file", b["path"]), ("source", b["source"] or "—"),
                ("data set", _dataset_name(b["dataset"])),
                ("iteration", b["iteration"] if b["iteration"] is not None else "—"),
                ("created", b["created"] or "—"),
                ("encoding", json.dumps(enc) if enc else "none (frames as they are)"),
                ("labels", ", ".join(b["labels"])), ("rng seed", b["rng_seed"]),
                ("learning_rule attrs", json.dumps(b["learning_rule"]) if b["learning_rule"]
                 else "—")]
        parts.append(f"<h3>{_e(b['file'])}</h3>" + _table(["field", "value"], meta, "kv"))
        parts.append(_table(["#", "kind", "in", "out", "weight", "mantissa range", "zeros",
                             "weight_exp", "scale (mant/float)", "du", "dv", "vth"],
                            [tuple(layer.values()) for layer in b["layers"]]))
    return "".join(parts) + "</section>"


def _inputs_section(inputs: Inputs, figures: list[str]) -> str:
    from metaloihi.base.atomic import file_sha256
    rows = []
    for kind, p in inputs.all():
        h = file_sha256(p)[:12] if p.is_file() else "—"
        rows.append((kind, str(p), f"{p.stat().st_size:,} B" if p.is_file() else "—", h))
    figs = "".join(f'<figure><img src="{_e(f)}" alt="{_e(f)}"><figcaption>{_e(f)}'
                   "</figcaption></figure>" for f in figures)
    return ((f'<section id="figures"><h2>Figures</h2>{figs}</section>' if figs else "")
            + '<section id="inputs"><h2>Inputs</h2>'
            + (_table(["kind", "file", "size", "sha256 (first 12)"], rows) if rows else
               "<p>none</p>") + "</section>")


CSS = """
body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:24px auto;max-width:1200px;
color:#1c1c1c;line-height:1.4;padding:0 16px}
h1{font-size:1.6em;margin-bottom:.2em}h2{border-bottom:2px solid #ddd;padding-bottom:4px;
margin-top:1.6em}h3{margin-bottom:.3em}
.sub{color:#555;margin-top:0}
table{border-collapse:collapse;margin:.6em 0;font-size:.88em}
th,td{border:1px solid #ccc;padding:3px 8px;text-align:left;vertical-align:top}
th{background:#f0f0f0}
tr.paper td{background:#f6f6fb}tr.measured td{background:#eef8ee}
tr.measured td:first-child{font-weight:bold;color:#1a6b1a}
tr.paper td:first-child{color:#444a80}
table.acc td:nth-child(6),table.acc td:nth-child(7){white-space:nowrap}
table.gap td:nth-child(n+4):nth-child(-n+7){white-space:nowrap}
img{max-width:100%;border:1px solid #ddd}
figure{margin:.8em 0}
footer{margin-top:2em;color:#777;font-size:.8em}
"""


def build_report(out_dir: str | Path, inputs: Inputs,
                 title: str = "metaloihi report") -> Path:
    """Read the inputs, write out_dir/index.html (+ curves.png, copied figures); return the
    HTML path. Each file is written atomically; a bad input raises UserError naming it."""
    from metaloihi import __version__

    out_dir = Path(out_dir)
    labels: dict[str, list[dict]] = {}
    files: dict[str, Path] = {}
    for p in inputs.logs:
        label = run_label(Path(p))
        while label in labels:
            label += "'"
        labels[label], files[label] = read_log(p), Path(p)
    evals = [r for p in inputs.evals for r in read_eval(p)]
    bundles = [bundle_summary(p) for p in inputs.bundles]
    gaps = [(Path(p), read_gap(p)) for p in inputs.gaps]
    speeds = [(Path(p), read_speed(p)) for p in inputs.speeds]
    for p in inputs.figures:
        if not Path(p).is_file():
            raise UserError(f"figure {str(p)!r} does not exist")
    out_dir.mkdir(parents=True, exist_ok=True)
    png = None
    if labels:
        curves_figure(labels, out_dir / "curves.png")
        png = "curves.png"
    figures = []
    for p in inputs.figures:
        name = f"figure_{len(figures)}_{Path(p).name}"
        write_bytes(out_dir / name, Path(p).read_bytes(), "report figure")
        figures.append(name)
    now = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    body = (f"<h1>{_e(title)}</h1><p class=\"sub\">metaloihi {_e(__version__)}, generated "
            f"{_e(now)}. Paper: {_e(PAPER_CITATION)}.</p>"
            + _accuracy_section(evals) + _curves_section(labels, files, png)
            + _gap_section(gaps) + _speed_section(speeds) + _soel_section(labels, bundles)
            + _bundles_section(bundles) + _inputs_section(inputs, figures)
            + "<footer>Written by <code>metaloihi report</code>; self-contained (no scripts, "
            "nothing fetched), images next to this file.</footer>")
    page = (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{_e(title)}</title><style>{CSS}</style></head><body>{body}</body></html>\n")
    return write_bytes(out_dir / "index.html", page.encode("utf-8"), "report")
