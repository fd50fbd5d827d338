"""Continual on-chip learning: classes arrive one at a time on a head with N_max output rows, each
taught from its own K shots by the bundle's on-chip rule (never revisiting older shots), and after
each arrival the queries of every class seen so far are classified.

It is one on-chip session (the rule card's run_session / onchip.graph.run_lava_session: any
sequence of samples, label >= 0 learns, -1 only runs with learning frozen), in this order:

  step k   class k's K shots (label k, the bundle's `passes` times), then the queries of classes
           0..k (label -1)

Class k is taught into row k (the caller orders the classes). Rows not yet taught start at zero
weight and zero bias (bridge/widen.py makes such a head), so they never spike, and with
target_off = 0 their error n = trunc((0 - 0) / theta) is 0: the learning engine leaves them
exactly zero until their class arrives. A head whose target_off is not 0 would teach the
untaught rows towards target_off spikes, so such a bundle is refused.

Prediction after step k: sim.readout.predict_np (count, then v at the last window step, then the
lowest index) over the active rows 0..k only, on the host; the silent rows are ignored rather
than ranked. Both backends compute the same bits; `same_continual` compares them.
"""
from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from metaloihi.base.errors import UserError
from metaloihi.bridge.bundle import Bundle, as_bundle, write_bundle
from metaloihi import rules
from metaloihi.sim import fixed
from metaloihi.sim.readout import predict_np


@dataclass
class ContinualResult:
    accuracy: np.ndarray          # [steps]: over the queries of all classes seen after step k
    per_class: np.ndarray         # [steps, classes]: class c's query accuracy after step k (nan
                                  # before c arrives)
    predictions: list             # per step, int [queries of classes 0..k] (row = class)
    query_labels: list            # per step, int [queries of classes 0..k]
    weights_per_shot: list        # head weights (mantissas, torch order) after each shot
    head_spikes: np.ndarray       # bool [samples, T, n_max]: the whole sequence, every step
    v_last: np.ndarray            # int [samples, n_max]: head v at each window's last step
    labels: np.ndarray            # int [samples]: the sequence's labels (-1: a query)
    rule: object                  # the rule's session rule (rules/<name>: session_rule)
    passes: int
    seconds: float

    @property
    def steps(self) -> int:
        return len(self.accuracy)


def session_rule(b: Bundle, window: int):
    """The session's rule of a bundle's head over samples of `window` steps."""
    return rules.get(b.head.rule.name).session_rule(b.head.rule, window)


def sequence(shots_per_class: list[int], queries_per_class: list[int], passes: int
             ) -> tuple[np.ndarray, np.ndarray]:
    """The session's order as (sample index, label) pairs, indices into the concatenation of
    [shots of class 0, ..., shots of class C-1, queries of class 0, ..., of class C-1]:
    step k = class k's shots `passes` times (label k), then the queries of classes 0..k (-1)."""
    s_off = np.concatenate([[0], np.cumsum(shots_per_class)])
    q_off = s_off[-1] + np.concatenate([[0], np.cumsum(queries_per_class)])
    idx, lab = [], []
    for k in range(len(shots_per_class)):
        shots = np.arange(s_off[k], s_off[k + 1])
        idx += [shots] * passes
        lab.append(np.full(len(shots) * passes, k))
        idx.append(np.arange(q_off[0], q_off[k + 1]))
        lab.append(np.full(q_off[k + 1] - q_off[0], -1))
    return np.concatenate(idx).astype(np.int64), np.concatenate(lab).astype(np.int64)


def _stack(xs, name: str) -> tuple[np.ndarray, list[int]]:
    xs = [np.asarray(x) != 0 for x in xs]
    if not xs or any(x.ndim < 2 for x in xs):
        raise UserError(f"{name}: expected one array [N, steps, *input] per class, got "
                        f"{[np.shape(x) for x in xs]}")
    return np.concatenate(xs), [len(x) for x in xs]


def check_head(b: Bundle, classes: int) -> None:
    """Refuse a head that cannot hold `classes` classes or whose untaught rows would learn."""
    head = b.net[-1]
    n_max = head.spec.out_features
    if classes > n_max:
        raise UserError(f"{classes} classes but the bundle's head has {n_max} output rows; widen "
                        f"it (bridge.widen.write_widened) to at least {classes}")
    rows = slice(1, n_max)     # rows 1.. are untaught when the session starts
    if np.any(head.weight[rows] != 0) or np.any(
            np.broadcast_to(np.asarray(head.neuron.bias_mant), (n_max,))[rows] != 0):
        raise UserError("the head's rows 1.. are not silent (non-zero weights or bias): a class "
                        "arriving later would start from them; use a head that starts silent "
                        "(bridge.widen adds silent rows)")
    if b.head.rule.target_off != 0:
        raise UserError(f"the head's target_off is {b.head.rule.target_off}: the rule would "
                        "teach every untaught row towards that many spikes; continual learning "
                        "needs target_off = 0")


def continual(bundle: Bundle | str | Path, shots: list, queries: list, backend: str = "sim",
              passes: int | None = None, features: bool = False) -> ContinualResult:
    """Classes 0..C-1 arrive in that order: shots[c] [K_c, T, *in] teach row c (`passes` times;
    None: the bundle's), queries[c] [Q_c, T, *in] are classified after every step >= c.
    features=True (sim only): shots and queries are already the frozen network's output spikes
    [N, T, n_in] (computed once per sample by the caller), so only the head runs here."""
    if backend not in ("sim", "lava"):
        raise UserError(f"backend must be 'sim' or 'lava', got {backend!r}")
    if features and backend != "sim":
        raise UserError("features=True runs the head on given frozen-network spikes: sim only")
    t0 = time.perf_counter()
    b = as_bundle(bundle)
    if len(shots) != len(queries):
        raise UserError(f"{len(shots)} classes of shots but {len(queries)} of queries")
    check_head(b, len(shots))
    xs, ks = _stack(shots, "shots")
    xq, qs = _stack(queries, "queries")
    if min(ks) < 1:
        raise UserError(f"every class needs >= 1 shot, got {ks}")
    head = b.net[-1]
    want = (head.spec.in_features,) if features else tuple(b.net[0].spec.in_shape)
    for name, x in (("shots", xs), ("queries", xq)):
        if tuple(x.shape[2:]) != want:
            raise UserError(f"{name} have shape {tuple(x.shape)}; expected [N, steps, "
                            f"{', '.join(map(str, want))}]")
    if xs.shape[1] != xq.shape[1]:
        raise UserError(f"shots have {xs.shape[1]} steps, queries {xq.shape[1]}; one window")
    passes = b.head.passes if passes is None else int(passes)
    if passes < 1:
        raise UserError(f"passes={passes}; expected >= 1 presentation of each class's shots")
    T = xs.shape[1]
    rule = session_rule(b, T)
    order, labels = sequence(ks, qs, passes)
    pool = np.concatenate([xs, xq])
    if backend == "sim":
        # the frozen network's spikes once per distinct sample, then the head on the sequence
        pre = pool if features else fixed.run(b.frozen, pool, layers="last")["spikes"][-1]
        tr = rules.get(b.head.rule.name).run_session([], head, rule, pre[order], labels)
        spikes, ws, v_last = tr.head_spikes, tr.weights, tr.v_last
    else:
        spikes, ws, v_last = _lava(b, rule, pool, order, labels)
    ws = [w for w, lab in zip(ws, labels) if lab >= 0]
    acc, per, preds, ys = score(spikes.sum(1), v_last, labels, qs)
    return ContinualResult(acc, per, preds, ys, ws, spikes, np.asarray(v_last, np.int64), labels,
                           rule, passes, time.perf_counter() - t0)


def _lava(b: Bundle, rule, x: np.ndarray, order: np.ndarray, labels: np.ndarray):
    from metaloihi.onchip.graph import run_lava_session
    if b.path is not None:
        res = run_lava_session(b, rule, x, labels, order=order)
    else:                       # an in-memory bundle (e.g. widened): netx builds from a file
        with tempfile.TemporaryDirectory() as d:
            p = write_bundle(Path(d) / "continual.h5", b.net, b.head, b.scales, b.meta)
            res = run_lava_session(p, rule, x, labels, order=order)
    return res.head_spikes, res.weights, res.v_last


def score(counts: np.ndarray, v_last: np.ndarray, labels: np.ndarray, queries_per_class
          ) -> tuple[np.ndarray, np.ndarray, list, list]:
    """Per step: predictions over the active rows 0..k of each query block (predict_np), the
    accuracy over all seen classes, per-class accuracy [steps, classes]."""
    C = len(queries_per_class)
    yq_all = np.repeat(np.arange(C), queries_per_class)
    query = labels < 0
    # a query block ends where the next learning sample (or the sequence) starts
    starts = np.flatnonzero(query & ~np.concatenate([[False], query[:-1]]))
    acc, per = np.full(C, np.nan), np.full((C, C), np.nan)
    preds, ys = [], []
    for k, s in enumerate(starts):
        n = int(np.sum(queries_per_class[:k + 1]))
        pred = predict_np(counts[s:s + n, :k + 1], v_last[s:s + n, :k + 1])
        y = yq_all[:n]
        preds.append(pred)
        ys.append(y)
        acc[k] = np.mean(pred == y) if n else np.nan
        for c in range(k + 1):
            if np.any(y == c):
                per[k, c] = np.mean(pred[y == c] == c)
    return acc, per, preds, ys


def same_continual(a: ContinualResult, b: ContinualResult) -> bool:
    """Whether two continual sessions computed the same bits: every output spike, the head's v
    at every window's last step, the weights after every shot, every step's predictions."""
    return bool(np.array_equal(a.labels, b.labels)
                and np.array_equal(a.head_spikes, b.head_spikes)
                and np.array_equal(a.v_last, b.v_last)
                and len(a.weights_per_shot) == len(b.weights_per_shot)
                and all(np.array_equal(x, y) for x, y in zip(a.weights_per_shot,
                                                             b.weights_per_shot))
                and len(a.predictions) == len(b.predictions)
                and all(np.array_equal(x, y) for x, y in zip(a.predictions, b.predictions)))
