"""An adaptation session: bundle -> one shot at a time with its label driving the error path
(SOEL learns the head on chip) -> learning frozen -> queries classified by output spike counts,
ties broken by the head's membrane.

Backends (bridge/target.py): "sim" (rules/soel/chip.py), "lava" (onchip/graph.py on Lava's CPU
simulator), which compute the same bits (tests hold them equal step for step), and "loihi2"
(the same graph on a board through Loihi2HwCfg). Shots go in the order
given; shot-major (class 0..ways-1 of shot 0, then shot 1, ...) is rules/soel/float_form.py's convention and
what `datasets.tasks.support_order` produces.

Prediction: offline/'s rule (sim.readout.predict_np, the exact form of argmax of
sim.readout.logits): the highest output spike count over the window, among equal counts the
higher membrane v at the window's last step (read from sim/'s emulation or a Lava Monitor of the
head's v: the same integers), then the lowest class index. A query with no output spike at all
is decided by v alone: counted separately as `silent`.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from metaloihi.bridge.bundle import Bundle, as_bundle
from metaloihi.bridge.target import check_target
from metaloihi.base.errors import UserError
from metaloihi.sim.readout import predict_np
from metaloihi import rules


@dataclass
class SessionResult:
    accuracy: float
    predictions: np.ndarray          # [Q]
    query_counts: np.ndarray         # [Q, ways] output spike counts per query
    query_v: np.ndarray              # [Q, ways] head membrane at the last window step (int)
    head_spikes: np.ndarray          # bool [shots + Q, T, ways]: every sample, every step
    step_counts: np.ndarray          # int [shots + Q, T]: output spikes per step (all neurons)
    weights: np.ndarray              # learnt head weights (mantissas, torch order)
    weights_per_shot: list           # head weights after each shot
    silent: int                      # queries with no output spike
    rule: object                     # the rule's session rule (rules/<name>: session_rule)
    seconds: float
    timings: dict | None = None      # Lava: where the time went (onchip.graph: frozen_s, head_s)


def adapt(bundle: Bundle | str | Path, x_support: np.ndarray, y_support: np.ndarray,
          x_query: np.ndarray, y_query: np.ndarray, backend: str = "sim",
          passes: int | None = None, on_sample=None) -> SessionResult:
    """Learn from the support set (in the given order, `passes` times; None: the bundle's
    head.passes), then classify the
    queries with learning frozen. x_*: binary spikes [N, T, *in_shape]; y_*: class indices.
    on_sample(k, counts, n, weights): called after each sample (a live view), both backends."""
    check_target(backend)
    t0 = time.perf_counter()
    b = as_bundle(bundle)
    head = b.net[-1]
    want = tuple(b.net[0].spec.in_shape)
    for name, x in (("support", x_support), ("query", x_query)):
        shape = tuple(np.shape(x))
        if len(shape) < 2 or shape[2:] != want:
            raise UserError(f"{name} samples have shape {shape}; the bundle's network takes "
                            f"[N, steps, {', '.join(map(str, want))}] (input {want} per step)")
    if np.shape(x_query)[1] != np.shape(x_support)[1]:
        raise UserError(f"support samples have {np.shape(x_support)[1]} steps, query samples "
                        f"{np.shape(x_query)[1]}; one window for both")
    x_support, x_query = np.asarray(x_support) != 0, np.asarray(x_query) != 0
    y_support, y_query = np.asarray(y_support, np.int64), np.asarray(y_query, np.int64)
    ways = head.spec.out_features
    for name, y in (("support", y_support), ("query", y_query)):
        if y.size and (y.min() < 0 or y.max() >= ways):
            raise UserError(f"{name} labels must be in 0..{ways - 1}, got {y.min()}..{y.max()}")
    T = x_support.shape[1]
    passes = b.head.passes if passes is None else int(passes)
    if passes < 1:
        raise UserError(f"passes={passes}; expected >= 1 presentation of the support set")
    card = rules.get(b.head.rule.name)     # the rule's card: its bit-exact and Lava forms
    rule = card.session_rule(b.head.rule, T)
    labels = np.concatenate([y_support] * passes + [np.full(len(x_query), -1)])
    shots = len(x_support) * passes
    timings = None
    if backend == "sim":
        x = np.concatenate([x_support] * passes + [x_query])
        tr = card.run_session(b.frozen, head, rule, x, labels)
        for k in range(len(x) if on_sample is not None else 0):
            on_sample(k, tr.counts[k], tr.n[k], tr.weights[k])
        spikes, ws, v_last = tr.head_spikes, tr.weights, tr.v_last
    else:
        from metaloihi.onchip.graph import run_lava_session
        # each distinct sample through the frozen layers once (onchip/graph.py says why)
        ns = len(x_support)
        order = np.concatenate([np.tile(np.arange(ns), passes), ns + np.arange(len(x_query))])
        res = run_lava_session(b, rule, np.concatenate([x_support, x_query]), labels,
                               on_sample=on_sample, target=backend, order=order)
        spikes, ws, v_last = res.head_spikes, res.weights, res.v_last
        timings = res.timings
    counts = spikes[shots:].sum(1)
    query_v = np.asarray(v_last[shots:], np.int64)
    pred = predict_np(counts, query_v) if len(counts) else np.zeros(0, np.int64)
    acc = float(np.mean(pred == y_query)) if len(y_query) else float("nan")
    return SessionResult(accuracy=acc, predictions=pred, query_counts=counts, query_v=query_v,
                         head_spikes=spikes, step_counts=spikes.sum(2),
                         weights=ws[shots - 1] if shots else head.weight.copy(),
                         weights_per_shot=ws[:shots], silent=int((counts.sum(1) == 0).sum()),
                         rule=rule, seconds=time.perf_counter() - t0, timings=timings)


def same_session(a: SessionResult, b: SessionResult) -> bool:
    """Whether two sessions computed the same bits: output spikes every step, the head's v at
    each query's last step, the learnt weights after every shot, the predictions."""
    return bool(np.array_equal(a.head_spikes, b.head_spikes)
                and np.array_equal(a.query_v, b.query_v)
                and len(a.weights_per_shot) == len(b.weights_per_shot)
                and all(np.array_equal(x, y) for x, y in zip(a.weights_per_shot,
                                                             b.weights_per_shot))
                and np.array_equal(a.predictions, b.predictions))
