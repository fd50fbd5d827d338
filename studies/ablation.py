"""What made theta0: one ablation, deployed in sim/'s bit-exact fixed point (the model of what Lava
runs), on N-way K-shot tasks drawn once per data set, the same tasks for every row.

Rows (ROWS; each a body, i.e. frozen layers, made a different way):

  random         a calibrated random theta0 of the same architecture (offline.train.initial_meta
                 with the reference checkpoint's config, as metaloihi/demo.py's baseline makes it)
  stage1         stage 1 (cross-entropy + prototypical pretraining) and the rule start
  maml_random    MAML from a calibrated random start (the pre-recipe configs)
  stage1_stage2  stage 1, then stage 2 (MAML with the chip's rule in the inner loop)
  stage1_long    stage 1 given the budget: gestures 2.5x the steps, a cosine decay and stronger
                 augmentation; double digits 3x the steps and a cosine decay
  stage1_long_stage2_deployed  stage 2 with the deployed session inside from it (the shipped
                 demo and double-digits theta0s since 2026-12-06)

and, where the stage-1 row's body is not the one the shipped stage 1 + stage 2 started from
(double digits: stage 1 re-made), stage1_stage2_remade: stage 2 from the stage-1 row's own body,
so the paired difference to the stage-1 row is stage 2's effect alone. SHIPPED says which
checkpoint is each row's and where its CPU seconds are logged.

"+ rule": every row deploys with the REFERENCE checkpoint's chip rule exactly as its shipped
bundle beside it carries it (bundle.head.rule, fitted by `metaloihi fit-soel`: mant, exp, theta,
targets, passes, rng seed) and with the reference's head: the silent start (zero weights, which
the shipped theta0s have) on the reference's head grid (its head_range), the same head neuron. So
the head layer of every row's bundle is the same, bit for bit (checked: `head_identical`), and
the rows differ only in the frozen layers. A body whose own theta0 head is not silent (MAML from
random learnt one for its SGD inner step) has it replaced by the silent start.

Tasks: default_rng(seed), then datasets.tasks' draw per task, exactly the draws of
studies/deployment_gap.task_stream (sample_task), so the shipped theta0's row repeats the
deployment gap's "fixed" figure on the same seed and queries.

Deployed accuracy, per row: the frozen layers' output spikes once per distinct sample
(sim.fixed.run on bundle.encode(frames)), then per task the rule's bit-exact session on the head
alone (the card's run_session with no frozen layers, as onchip/continual.py runs it): the support
set shot-major, `passes` times, each label driving the error path, then the queries with learning
frozen; prediction sim.readout.predict_np. Exact because every sample starts from rest (the
session resets the network between samples), so a sample's frozen spikes do not depend on what
ran before it. The first `check_tasks` tasks of every row are run again through
onchip.session.adapt(backend="sim"), the whole bundle, and must predict the same (`checked`).

Ceilings on the same tasks, nearest prototype (cosine, sim.prototype): on the spike counts
entering the head (this row's deployed frozen layers: what any head rule could reach with these
features), and on the raw encoded input (once per data set; the same encoding for every row).
"""
from __future__ import annotations

import gzip
import hashlib
import json
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from metaloihi import rules
from metaloihi.base.errors import UserError
from metaloihi.bridge.bundle import Bundle, default_meta, read_bundle
from metaloihi.sim import fixed
from metaloihi.sim.prototype import prototype_accuracy
from metaloihi.sim.readout import ci95, predict_np

FORMAT = "metaloihi.ablation/1"
ROWS = ("random", "stage1", "maml_random", "stage1_stage2", "stage1_long")
LABELS = {"random": "random theta0 + rule",
          "stage1": "stage 1 + rule",
          "maml_random": "MAML from random + rule",
          "stage1_stage2": "stage 1 + stage 2 + rule",
          "stage1_stage2_remade": "stage 1 (re-made) + stage 2 + rule",
          "stage1_stage2_deployed": "stage 1 + stage 2 with the deployed session inside + rule",
          "stage1_long": "stage 1, longer + rule",
          "stage1_long_stage2_deployed": "stage 1, 2.5x the steps + stage 2 with the deployed "
                                         "session inside + rule"}
BASELINE = "stage1"              # the paired differences are against this row


# --- what each data set's rows are made of (repository-relative paths) --------------------------
@dataclass(frozen=True)
class Source:
    """A row's checkpoint, how it was made, and where its CPU seconds are logged: `cpu` lists
    (log, part) with part "stage1" (the last stage-1 record's cpu_s) or a stage-2 iteration
    (that record's cpu_s, counted from the loop's start); None: not logged (`cpu_note` says)."""
    checkpoint: str | None
    made: str
    cpu: tuple = ()
    cpu_note: str = ""


@dataclass(frozen=True)
class DataSetRows:
    reference: str               # the shipped theta0: its bundle's rule and head for every row
    split: str
    rows: dict                   # key -> Source


SHIPPED = {
    "gestures": DataSetRows(
        reference="checkpoints/demo/theta0.pt", split="demo", rows={
            "random": Source(None, "offline.train.initial_meta of the demo config (seed 0): "
                                   "calibrated random weights, silent head; no training"),
            "stage1": Source("checkpoints/demo_short/theta0.pt",
                             "the demo theta0 until 2026-12-05: stage 1 (10000 steps, the demo "
                             "config) + the rule start; its record says iteration 0, "
                             "best_iteration 0",
                             cpu=(("checkpoints/demo_short/metrics.jsonl.gz", "stage1"),)),
            "maml_random": Source("checkpoints/interim/demo_best.pt",
                                  "demo_maml (then `demo`): second-order MAML, one SGD inner "
                                  "step, from a calibrated random start, 2 threads; best "
                                  "meta-val at iteration 5500 of 5830",
                                  cpu_note="not logged (1580.5 s wall to iteration 5500 on 2 "
                                           "threads: at most 3161 CPU s)"),
            "stage1_stage2": Source("checkpoints/ablation/demo_stage2.pt",
                                    "stage 2 for the demo config's 100 iterations from the "
                                    "stage-1 row's theta0 (train --init), its last iteration",
                                    cpu=(("checkpoints/demo_short/metrics.jsonl.gz", "stage1"),
                                         ("checkpoints/ablation/demo_stage2_metrics.jsonl.gz",
                                          100))),
            "stage1_stage2_deployed": Source(
                "checkpoints/ablation/demo_stage2_deployed.pt",
                "stage 2 with the deployed session inside (benchmarks/stage2_schedule.py, "
                "candidate mb16_all_3e-4: the fitted rule, 8 passes, meta-batch 16, 225 "
                "iterations, outer lr 3e-4 relative with warm-up and cosine decay) from the "
                "stage-1 row's theta0, its last iteration",
                cpu=(("checkpoints/demo_short/metrics.jsonl.gz", "stage1"),
                     ("checkpoints/stage2/demo/mb16_all_3e-4.json", "schedule"))),
            "stage1_long": Source("checkpoints/demo_long/theta0.pt",
                                  "the demo theta0 of 2026-12-05: stage 1 for 25000 steps with "
                                  "a cosine decay and stronger augmentation (demo_long config) "
                                  "+ the rule start + one stage-2 iteration (best.pt by 0.04 pp "
                                  "of meta-val)",
                                  cpu=(("checkpoints/demo_long/metrics.jsonl.gz", "stage1"),
                                       ("checkpoints/demo_long/metrics.jsonl.gz", 1))),
            "stage1_long_stage2_deployed": Source(
                "checkpoints/demo/theta0.pt",
                "the shipped demo theta0: stage 2 with the deployed session inside, the same "
                "candidate (mb16_all_3e-4, 225 iterations) from the stage1_long row's theta0, "
                "its last iteration; better on 1200 fresh meta-val tasks by a paired margin",
                cpu=(("checkpoints/demo_long/metrics.jsonl.gz", "stage1"),
                     ("checkpoints/demo_long/metrics.jsonl.gz", 1),
                     ("checkpoints/stage2/demo_long/mb16_all_3e-4.json", "schedule"))),
        }),
    "double_digits": DataSetRows(
        reference="checkpoints/double_digits/theta0.pt", split="test", rows={
            "random": Source(None, "offline.train.initial_meta of the double_digits config "
                                   "(seed 0): calibrated random weights, silent head; no "
                                   "training"),
            "stage1": Source("checkpoints/ablation/dd_stage1.pt",
                             "stage 1 re-made (double_digits config, 3000 steps, best body at "
                             "step 2750, one thread, train.iterations=1) + the rule start: "
                             "its iteration 0",
                             cpu=(("checkpoints/ablation/dd_stage1_metrics.jsonl.gz",
                                   "stage1"),)),
            "maml_random": Source("checkpoints/ablation/dd_maml_random.pt",
                                  "double_digits_maml with the shipped encoding "
                                  "(model.time_pool=2: 50 steps): second-order MAML, one SGD "
                                  "inner step, meta-batch 1, from a calibrated random start, "
                                  "one thread, a 15-min limit: 1460 iterations, the last one "
                                  "(best on meta-val stayed its start, iteration 0)",
                                  cpu=(("checkpoints/ablation/dd_maml_random_metrics.jsonl.gz",
                                        "last"),)),
            "stage1_stage2": Source("checkpoints/double_digits_short/theta0.pt",
                                    "the double-digits theta0 until 2026-12-06: stage 1 (3052 "
                                    "steps) + 50 stage-2 iterations (best on meta-val)",
                                    cpu=(("checkpoints/double_digits_short/metrics.jsonl.gz",
                                          "stage1"),
                                         ("checkpoints/double_digits_short/metrics.jsonl.gz",
                                          50))),
            "stage1_stage2_remade": Source("checkpoints/ablation/dd_stage2_remade.pt",
                                           "stage 2 for the double_digits config's 100 "
                                           "iterations from the re-made stage 1 (train "
                                           "--init), its last iteration: stage 2's effect on "
                                           "the stage-1 row's own body",
                                           cpu=(("checkpoints/ablation/dd_stage1_metrics"
                                                 ".jsonl.gz", "stage1"),
                                                ("checkpoints/ablation/dd_stage2_remade_metrics"
                                                 ".jsonl.gz", 100))),
            "stage1_long": Source("checkpoints/double_digits_long/theta0.pt",
                                  "the double-digits theta0 of 2026-12-06: stage 1 for 9000 "
                                  "steps with a cosine decay (the double_digits_long config) "
                                  "+ the rule start + one stage-2 iteration",
                                  cpu=(("checkpoints/double_digits_long/metrics.jsonl.gz",
                                        "stage1"),
                                       ("checkpoints/double_digits_long/metrics.jsonl.gz", 1))),
            "stage1_long_stage2_deployed": Source(
                "checkpoints/double_digits/theta0.pt",
                "the shipped double-digits theta0: stage 2 with the deployed session inside "
                "(candidate mb16_all_3e-4) from the stage1_long row's theta0, its best "
                "iteration (200 of 225); better on 1200 fresh meta-val tasks by a paired margin",
                cpu=(("checkpoints/double_digits_long/metrics.jsonl.gz", "stage1"),
                     ("checkpoints/double_digits_long/metrics.jsonl.gz", 1),
                     ("checkpoints/stage2/dd_long/mb16_all_3e-4.json", "schedule"))),
        }),
}


def read_records(path: str | Path) -> list[dict]:
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rt") as fh:
        return [json.loads(ln) for ln in fh if ln.strip()]


def cpu_seconds(parts) -> tuple[float | None, list[dict]]:
    """CPU seconds from training logs: parts = ((log, "stage1" | "best" | "last" | iteration
    | "schedule"), ...). "schedule": log is a benchmarks/stage2_schedule.py candidate JSON.
    "stage1": the last stage-1 record's cpu_s (stage 1 from its first step, its validations
    included); an iteration: the stage-2 record's cpu_s there (stage 2 from the validation of
    its start on; the rule start's fit, data loading and calibration come before and are not
    in any log); "best": the iteration with the highest meta_val_acc (the first of equals, as
    training keeps best.pt); "last": the last iteration logged."""
    total, detail = 0.0, []
    if not parts:
        return None, detail
    for log, part in parts:
        if part == "schedule":          # a stage2_schedule candidate's JSON: its training
            with open(log) as fh:       # CPU seconds (its meta-val evaluations not counted)
                d = json.load(fh)
            got = {"log": str(log), "part": f"stage 2, candidate {d['candidate']['name']}",
                   "iteration": int(d["candidate"]["iterations"]), "cpu_s": d["train_cpu_s"]}
            total += float(got["cpu_s"])
            detail.append(got)
            continue
        recs = read_records(log)
        if part == "stage1":
            s1 = [r for r in recs if r.get("stage") == 1 and "cpu_s" in r]
            if not s1:
                raise UserError(f"{log}: no stage-1 record with cpu_s")
            got = {"log": str(log), "part": "stage 1", "steps": s1[-1]["iteration"],
                   "cpu_s": s1[-1]["cpu_s"]}
        else:
            s2 = [r for r in recs if r.get("stage") != 1 and "rule_start" not in r]
            if part == "best":
                val = [r for r in s2 if "meta_val_acc" in r]
                part = max(val, key=lambda r: (r["meta_val_acc"], -r["iteration"]))["iteration"]
            elif part == "last":
                part = max(r["iteration"] for r in s2)
            at = [r for r in s2 if r.get("iteration") == part and "cpu_s" in r]
            if part == 0:
                at = [{"cpu_s": 0.0}]
            if not at:
                raise UserError(f"{log}: no stage-2 record of iteration {part} with cpu_s")
            got = {"log": str(log), "part": f"stage 2 to iteration {part}",
                   "iteration": int(part), "cpu_s": at[-1]["cpu_s"]}
        total += float(got["cpu_s"])
        detail.append(got)
    return total, detail


# --- the rows' bundles ---------------------------------------------------------------------------
@dataclass
class Row:
    key: str
    label: str
    made: str
    bundle: Bundle
    checkpoint: str | None = None
    iteration: int | None = None
    cpu_s: float | None = None
    cpu_note: str = ""
    cpu_detail: list = field(default_factory=list)
    made_by: dict | None = None      # the checkpoint's own record of what made it, if it has one


def reference_bundle(checkpoint: str | Path) -> tuple[Bundle, float | None]:
    """The shipped bundle beside the reference checkpoint (what is deployed: its fitted rule,
    its head grid; a fit lives in the bundle, not always in the checkpoint): (bundle,
    head_range)."""
    b = read_bundle(Path(checkpoint).with_name("bundle.h5"))
    return b, b.meta.get("head_range")


def _same_head(a, b) -> bool:
    na, nb = a.neuron, b.neuron
    return bool(np.array_equal(a.weight, b.weight) and a.weight_exp == b.weight_exp
                and a.spec == b.spec
                and all(np.array_equal(np.asarray(getattr(na, f)), np.asarray(getattr(nb, f)))
                        for f in ("du", "dv", "vth", "bias_mant", "bias_exp")))


def body_bundle(out: str | Path, specs: list, theta0: dict, neurons: list, reference: Bundle,
                head_range: float | None, source: str, extra: dict | None = None) -> Bundle:
    """A body deployed the way the reference is: the reference's chip rule (as its bundle
    holds it), a silent head on its grid (head_range), its encoding; the head layer must come
    out identical to the reference bundle's (UserError otherwise)."""
    import torch
    from metaloihi.bridge.export import export_bundle
    from metaloihi.sim.float_lif import head_key
    params = {k: (v.detach().double() if torch.is_tensor(v) else v) for k, v in theta0.items()}
    head = head_key(specs)
    params[head] = torch.zeros_like(params[head])
    keep = ("dataset", "splits", "encoding", "split")
    meta = {**default_meta(source=None, split=reference.meta.get("split")),
            **{k: reference.meta[k] for k in keep if k in reference.meta},
            "source": str(source), "ablation": {"rule_and_head_from": reference.meta.get(
                "source"), **(extra or {})}}
    path, _ = export_bundle(out, specs, params, neurons, rule=reference.head.rule, meta=meta,
                            head_range=head_range)
    b = read_bundle(path)
    if not _same_head(b.net[-1], reference.net[-1]) or b.head.rule != reference.head.rule:
        raise UserError(f"{source}: its deployed head differs from the reference's (head "
                        "neuron or grid): the rows would differ in more than the body")
    return b


def checkpoint_row(key: str, checkpoint: str | Path, made: str, reference: Bundle,
                   head_range: float | None, out: Path, cpu=(), cpu_note: str = "") -> Row:
    from metaloihi.bridge.export import from_checkpoint
    specs, theta0, neurons, _, meta = from_checkpoint(checkpoint)   # the body only
    b = body_bundle(out / f"{key}.h5", specs, theta0, neurons, reference, head_range,
                    str(checkpoint), {"row": key, "iteration": meta.get("iteration")})
    cpu_s, detail = cpu_seconds(cpu)
    return Row(key, LABELS.get(key, key), made, b, str(checkpoint), meta.get("iteration"),
               cpu_s, cpu_note, detail, meta.get("made_by"))


def random_row(reference_checkpoint: str | Path, made: str, reference: Bundle,
               head_range: float | None, out: Path, dataset=None, key: str = "random") -> Row:
    """A calibrated random theta0 of the reference's architecture and config (offline.train:
    initial_meta, no rule fit), as metaloihi/demo.py's baseline makes it; cpu_s: the
    calibration's CPU seconds, measured here."""
    from metaloihi.offline import checkpoint, config, maml, train
    cfg = config.from_dict(checkpoint.load(reference_checkpoint)["config"])
    s = train.setup(cfg, dataset)
    t = time.process_time()
    theta0 = {k: v.detach().double() for k, v in
              maml.theta0_of(train.initial_meta(s)).items()}
    cpu = time.process_time() - t
    b = body_bundle(out / f"{key}.h5", s.specs, theta0, s.neurons, reference, head_range,
                    f"calibrated random theta0 (config of {reference_checkpoint}, seed "
                    f"{cfg.train.seed})", {"row": key})
    return Row(key, LABELS.get(key, key), made, b, None, None, cpu,
               "the calibration, measured by this study", [])


def shipped_rows(name: str, out: Path, keys=None, paths: dict | None = None, dataset=None,
                 report=None, extra: dict | None = None,
                 reference: str | None = None) -> tuple[list[Row], Bundle, str]:
    """The rows `keys` (None: all) of SHIPPED[name] (paths: key -> checkpoint overriding the
    shipped one; its CPU seconds are then not known; extra: label -> checkpoint, rows beyond
    the shipped ones, e.g. a candidate body; reference: another checkpoint whose bundle beside
    it gives every row's rule and head, e.g. a candidate's own fit): (rows, reference bundle,
    split)."""
    if name not in SHIPPED:
        raise UserError(f"no ablation rows for data set {name!r}; known: {', '.join(SHIPPED)}")
    spec = SHIPPED[name]
    keys = list(spec.rows) if not keys else list(keys)
    paths = dict(paths or {})
    unknown = (set(keys) | set(paths)) - set(spec.rows)
    if unknown:
        raise UserError(f"unknown row(s) {sorted(unknown)}; rows: {', '.join(spec.rows)}")
    say = report or (lambda *_: None)
    reference = reference or spec.reference
    ref, head_range = reference_bundle(reference)
    rows = []
    for key in keys:
        src = spec.rows[key]
        ck = paths.get(key, src.checkpoint)
        say(f"row {key}: {ck or 'calibrated random theta0'}")
        if ck is None:
            rows.append(random_row(reference, src.made, ref, head_range, out, dataset))
            continue
        if not Path(ck).is_file():
            raise UserError(f"row {key}: checkpoint {ck!r} not found (run from the repository "
                            "root; checkpoints/ablation/README.md says how each is made)")
        own = key not in paths
        rows.append(checkpoint_row(key, ck, src.made if own else f"given: {ck}", ref,
                                   head_range, out, src.cpu if own else (),
                                   src.cpu_note if own else "not known (a checkpoint given)"))
    for label, ck in (extra or {}).items():
        if label in spec.rows or not Path(ck).is_file():
            raise UserError(f"extra row {label!r}: the name of a shipped row, or checkpoint "
                            f"{ck!r} not found")
        say(f"row {label}: {ck}")
        rows.append(checkpoint_row(label, ck, f"given: {ck}", ref, head_range, out, (),
                                   "not known (a checkpoint given)"))
    return rows, ref, spec.split


# --- tasks ---------------------------------------------------------------------------------------
@dataclass
class Tasks:
    """Sample indices of every task: support [n, ways*shots] shot-major, queries [n, ways*q]."""
    support: np.ndarray
    support_y: np.ndarray
    query: np.ndarray
    query_y: np.ndarray

    def __len__(self) -> int:
        return len(self.support)

    @property
    def distinct(self) -> np.ndarray:
        return np.unique(np.concatenate([self.support.ravel(), self.query.ravel()]))

    def sha256(self) -> str:
        h = hashlib.sha256()
        for a in (self.support, self.support_y, self.query, self.query_y):
            h.update(np.ascontiguousarray(a, np.int64).tobytes())
        return h.hexdigest()


def draw_tasks(dataset, split: str, n: int, ways: int, shots: int, queries: int,
               seed: int) -> Tasks:
    """n tasks from default_rng(seed): the draws sample_task makes (deployment_gap.task_stream),
    as indices, support shot-major (datasets.tasks.support_order)."""
    from metaloihi.datasets.tasks import _draw, support_order
    if n < 1:
        raise UserError(f"tasks={n}; expected >= 1")
    rng = np.random.default_rng(seed)
    out = [[], [], [], []]
    for _ in range(n):
        s_idx, q_idx, s_y, q_y, _ = _draw(dataset, split, ways, shots, queries, rng)
        s_idx, s_y = support_order(s_idx, s_y, ways)
        for lst, a in zip(out, (s_idx, s_y, q_idx, q_y)):
            lst.append(np.asarray(a, np.int64))
    return Tasks(*(np.stack(a) for a in out))


# --- measuring ---------------------------------------------------------------------------------
def encoded(bundle: Bundle, dataset, idx: np.ndarray, chunk: int = 64):
    """(index chunk, encoded input spikes [B, T, *in]) over idx."""
    for lo in range(0, len(idx), chunk):
        part = idx[lo:lo + chunk]
        yield part, bundle.encode(np.ascontiguousarray(dataset.frames(part)))


def frozen_features(bundle: Bundle, dataset, idx: np.ndarray, chunk: int = 64) -> np.ndarray:
    """The spikes entering the head [len(idx), T, n_in] (bool), sim/'s fixed point."""
    out = []
    for _, x in encoded(bundle, dataset, idx, chunk):
        out.append(fixed.run(bundle.frozen, x, layers="last")["spikes"][-1])
    return np.concatenate(out)


def head_session(bundle: Bundle, pre_s: np.ndarray, ys: np.ndarray, pre_q: np.ndarray,
                 passes: int | None = None) -> np.ndarray:
    """onchip.session.adapt's sim session on given frozen spikes: the rule's card run_session
    on the head alone; returns the query predictions."""
    head = bundle.net[-1]
    card = rules.get(bundle.head.rule.name)
    passes = bundle.head.passes if passes is None else int(passes)
    rule = card.session_rule(bundle.head.rule, pre_s.shape[1])
    x = np.concatenate([pre_s] * passes + [pre_q])
    labels = np.concatenate([np.asarray(ys, np.int64)] * passes
                            + [np.full(len(pre_q), -1, np.int64)])
    tr = card.run_session([], head, rule, x, labels)
    n = len(pre_s) * passes
    return predict_np(tr.head_spikes[n:].sum(1), np.asarray(tr.v_last[n:], np.int64))


def _acc(values) -> dict:
    m, c = ci95(values)
    return {"acc": m, "ci95": None if np.isnan(c) else c}


def rule_record(bundle: Bundle) -> dict:
    """The chip rule every row deploys with, as the bundle stores it (and its dw string)."""
    r = bundle.head.rule
    card = rules.get(r.name)
    rec = dict(card.to_attrs(r))
    rec["label_only"] = bool(rec.get("label_only", False))
    if hasattr(r, "step"):
        rec["step"] = float(r.step)        # weight mantissa per n x (SOEL)
    session = card.session_rule(r, 1)
    if hasattr(session, "dw_string"):
        rec["dw"] = session.dw_string()
    rec["from"] = (bundle.meta.get("ablation") or {}).get("rule_and_head_from",
                                                          bundle.meta.get("source"))
    return rec


def ablation(rows: list[Row], dataset, split: str, tasks: int = 600, seed: int = 0,
             ways: int = 5, shots: int = 1, queries: int = 10, check_tasks: int = 2,
             report=None, shipped: str | None = None) -> dict:
    """Every row on the same tasks -> a JSON-able dict (FORMAT; format_table prints it).
    shipped: the key of the shipped theta0's row, if one is; every other row then also gets
    its paired difference to it ("minus_shipped_pp")."""
    from metaloihi.onchip.session import adapt
    if not rows:
        raise UserError("no rows to measure")
    say = report or (lambda *_: None)
    ref = rows[0].bundle
    for r in rows[1:]:
        if not _same_head(r.bundle.net[-1], ref.net[-1]) or r.bundle.head != ref.head:
            raise UserError(f"row {r.key}: its head or rule differs from row {rows[0].key}'s; "
                            "the rows must differ only in the body")
        if r.bundle.encoding != ref.encoding:
            raise UserError(f"row {r.key}: encoding {r.bundle.encoding} differs from "
                            f"{ref.encoding}")
    if not 0 <= check_tasks <= tasks:
        raise UserError(f"check_tasks={check_tasks}; expected 0..tasks={tasks}")
    t0 = time.perf_counter()
    ts = draw_tasks(dataset, split, tasks, ways, shots, queries, seed)
    uniq = ts.distinct
    s_at, q_at = np.searchsorted(uniq, ts.support), np.searchsorted(uniq, ts.query)
    # the raw-input ceiling, once (every row shares the encoding)
    raw = np.concatenate([x.reshape(len(x), x.shape[1], -1).sum(1)
                          for _, x in encoded(ref, dataset, uniq)]).astype(np.float64)
    proto_raw = [prototype_accuracy(raw[s_at[i]], ts.support_y[i], raw[q_at[i]],
                                    ts.query_y[i], ways) for i in range(tasks)]
    say(f"{tasks} tasks, {len(uniq)} distinct samples; raw-input prototype "
        f"{np.mean(proto_raw):.3f}")
    out_rows, per_task = [], {}
    for r in rows:
        c0, w0 = time.process_time(), time.perf_counter()
        feats = frozen_features(r.bundle, dataset, uniq)
        c_feat = time.process_time() - c0
        counts = feats.sum(1).astype(np.float64)
        acc, proto, silent_rate, checked = [], [], [], 0
        for i in range(tasks):
            pre_s, pre_q = feats[s_at[i]], feats[q_at[i]]
            pred = head_session(r.bundle, pre_s, ts.support_y[i], pre_q)
            if i < check_tasks:             # the whole bundle through the session: the same
                xs, xq = (r.bundle.encode(np.ascontiguousarray(dataset.frames(part)))
                          for part in (ts.support[i], ts.query[i]))
                ses = adapt(r.bundle, xs, ts.support_y[i], xq, ts.query_y[i], backend="sim")
                if not np.array_equal(ses.predictions, pred):
                    raise UserError(f"row {r.key}, task {i}: the head-only session predicts "
                                    "differently from onchip.session.adapt")
                checked += 1
            acc.append(float(np.mean(pred == ts.query_y[i])))
            proto.append(prototype_accuracy(counts[s_at[i]], ts.support_y[i], counts[q_at[i]],
                                            ts.query_y[i], ways))
            silent_rate.append(float(np.mean(feats[q_at[i]].sum((1, 2)) == 0)))
            if (i + 1) % 100 == 0:
                say(f"row {r.key}: {i + 1}/{tasks} tasks, deployed {np.mean(acc):.3f}, "
                    f"ceiling {np.mean(proto):.3f}")
        per_task[r.key] = np.array(acc)
        out_rows.append({
            "key": r.key, "label": r.label, "made": r.made, "checkpoint": r.checkpoint,
            "checkpoint_sha256": _sha(r.checkpoint), "iteration": r.iteration,
            "made_by_record": r.made_by,
            "deployed": _acc(acc), "prototype_features": _acc(proto),
            "cpu_s": r.cpu_s, "cpu_note": r.cpu_note, "cpu_detail": r.cpu_detail,
            "features_mean_spikes": float(counts.mean()),
            "silent_feature_queries": float(np.mean(silent_rate)),
            "checked_tasks": checked,
            "eval_cpu_s": {"features": c_feat, "all": time.process_time() - c0},
            "eval_wall_s": time.perf_counter() - w0,
            "per_task": [round(a, 4) for a in acc]})
        say(f"row {r.key}: deployed {np.mean(acc):.4f}, ceiling {np.mean(proto):.4f}")
    for base, name in ((BASELINE, f"minus_{BASELINE}_pp"), (shipped, "minus_shipped_pp")):
        if base not in per_task:
            continue
        for row in out_rows:
            if row["key"] != base:
                m, c = ci95(100 * (per_task[row["key"]] - per_task[base]))
                row[name] = {"mean": m, "ci95": None if np.isnan(c) else c}
    head = ref.net[-1]
    return {
        "format": FORMAT, "dataset": ref.meta.get("dataset"), "split": split, "ways": ways,
        "shots": shots, "queries": queries, "tasks": tasks, "seed": seed,
        "tasks_sha256": ts.sha256(), "distinct_samples": int(len(uniq)),
        "rule": rule_record(ref),
        "head": {"identical_across_rows": True, "weight_exp": int(head.weight_exp),
                 "vth": int(np.ravel(head.neuron.vth)[0]), "scale": float(ref.scales[-1]),
                 "silent_start": bool(not np.any(head.weight))},
        "prototype_raw": _acc(proto_raw),
        "rows": out_rows,
        "notes": "deployed: sim/'s bit-exact session (== Lava) with the reference bundle's chip "
                 "rule and silent head for every row; prototype ceilings: cosine nearest "
                 "prototype on the head's input spike counts (deployed frozen layers) and on "
                 "the raw encoded input; cpu_s: training CPU seconds that made the body, from "
                 "its logs (cpu_detail) where they were logged",
        "seconds": time.perf_counter() - t0,
    }


def _sha(path) -> str | None:
    if not path or not Path(path).is_file():
        return None
    from metaloihi.base.atomic import file_sha256
    return file_sha256(path)


def run_shipped(name: str, tasks: int = 600, seed: int = 0, keys=None, paths: dict | None = None,
                split: str | None = None, queries: int = 10, check_tasks: int = 2,
                shots: int = 1, report=None, extra: dict | None = None,
                reference: str | None = None) -> dict:
    """The ablation of SHIPPED[name] (and `extra` rows: label -> checkpoint), bundles in a
    temporary folder; reference: see shipped_rows."""
    from metaloihi.offline import checkpoint, config
    from metaloihi.offline.train import load_data
    spec = SHIPPED.get(name)
    if spec is None:
        raise UserError(f"no ablation rows for data set {name!r}; known: {', '.join(SHIPPED)}")
    dataset = load_data(config.from_dict(checkpoint.load(spec.reference)["config"]))
    with tempfile.TemporaryDirectory() as tmp:
        rows, _, default_split = shipped_rows(name, Path(tmp), keys, paths, dataset, report,
                                              extra, reference)
        # the row deploying the reference checkpoint itself, unless replaced by another
        ref = reference or spec.reference
        own = {k: src.checkpoint for k, src in spec.rows.items() if k not in (paths or {})}
        shipped = next((k for k, ck in {**own, **(extra or {})}.items()
                        if ck == ref and k in {r.key for r in rows}), None)
        return ablation(rows, dataset, split or default_split, tasks=tasks, seed=seed,
                        shots=shots, queries=queries, check_tasks=check_tasks, report=report,
                        shipped=shipped)


def _pm(r: dict | None) -> str:
    if not r or r.get("acc") is None:
        return "-"
    ci = r.get("ci95")
    return f"{100 * r['acc']:.1f} +- " + ("n/a" if ci is None else f"{100 * ci:.1f}%")


def format_table(res: dict) -> str:
    r = res["rule"]
    w = max([28] + [len(row["label"]) for row in res["rows"]])
    lines = [f"ablation: {res['dataset']} {res['split']}, {res['ways']}-way {res['shots']}-shot, "
             f"{res['tasks']} tasks (seed {res['seed']}, {res['queries']} queries/class, the "
             f"same tasks for every row: sha256 {res['tasks_sha256'][:12]})",
             f"rule for every row (from {r.get('from')}): mant {r['mant']}, exp {r['exp']} "
             f"(step {r.get('step', float('nan')):g} mantissa per n x), theta {r['theta']:g}, "
             f"target {r['target_on']}/{r['target_off']}, {r['passes']} passes; silent head, "
             "identical in every row",
             f"{'row':<{w}} {'deployed (sim/)':>16} {'ceiling: features':>18} "
             f"{'vs stage 1 (pp)':>16} {'CPU s':>8}"]
    for row in res["rows"]:
        d = row.get(f"minus_{BASELINE}_pp")
        diff = "-" if d is None else f"{d['mean']:+.1f} +- {d['ci95']:.1f}"
        cpu = "n/a" if row["cpu_s"] is None else f"{row['cpu_s']:.0f}"
        lines.append(f"{row['label']:<{w}} {_pm(row['deployed']):>16} "
                     f"{_pm(row['prototype_features']):>18} {diff:>16} {cpu:>8}")
    lines.append(f"{'ceiling: raw-input prototype':<{w}} {'':>16} "
                 f"{_pm(res['prototype_raw']):>18}")
    for row in res["rows"]:
        lines.append(f"  {row['key']}: {row['made']}"
                     + (f" [{row['checkpoint']}]" if row["checkpoint"] else "")
                     + (f"; CPU: {row['cpu_note']}" if row["cpu_note"] else ""))
    lines.append(f"{res['seconds']:.0f} s")
    return "\n".join(lines)
