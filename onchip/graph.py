"""The on-chip session in Lava (a target of bridge/target.py; the timing is the rule's bit-exact
model's, rules/soel/chip.py), as two graphs that compute what the one chained graph computes:

  1. the frozen layers: RingBuffer -> netx network -> a recording sink of its output spikes
     (bridge/spike_recorder.py), each DISTINCT sample once (bridge/netx_run.run_frozen);
  2. the head: RingBuffer replaying those spikes in session order -> the rule's head part
     (rules/<name>/lava.py; SOEL: error path (window gate) -> LearningDense
     (Loihi3FLearningRule) -> head LIF -> error path (post counts) -> n -> the LIF's third
     factor -> y2/y3 + bAP -> LearningDense).

Why the split is exact: every sample starts from rest (after each period of T + 1 steps the host
puts u, v, every synapse's one-step buffer and the head's pre trace back to zero), so the frozen
layers' spikes for a sample do not depend on what ran before it: a shot shown in 8 passes, or in
two tasks, gives the same spikes 8 times, and running it once saves those Lava steps. The frozen
spikes reach the head at the same step of the period in both forms (tests hold the split graph
equal to sim/ spike for spike, v and weights included). Read out: Monitors of the head's spikes
and membrane v; the head weights after each learning sample and at the end of each block of
samples that do not learn.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from metaloihi.base.errors import UserError
from metaloihi.bridge.bundle import Bundle, as_bundle
from metaloihi.bridge.lava_net import from_lava_order, lava_shape
from metaloihi.bridge.netx_run import head_processes, replay_source, run_frozen, run_periods
from metaloihi.bridge.target import board_errors, check_target, run_config
from metaloihi.base.lava_support import require_lava
from metaloihi import rules


@dataclass
class LavaSessionResult:
    head_spikes: np.ndarray          # bool [samples, T, n_out]
    weights: list[np.ndarray]        # head weights (torch order) after each sample
    v_last: np.ndarray               # int [samples, n_out]: head v at each window's last step
    timings: dict = field(default_factory=dict)


def run_lava_session(bundle: Bundle | str | Path, rule, x: np.ndarray,
                     labels: np.ndarray, head_weight: np.ndarray | None = None, on_sample=None,
                     target: str = "lava", order: np.ndarray | None = None
                     ) -> LavaSessionResult:
    """A session on `target` ("lava": Loihi2SimCfg, "loihi2": a board, bridge/target.py).
    x [D, T, *in_shape] (binary) are the distinct samples; order[k] is the index into x of the
    session's k-th sample (None: x in order). labels[k] >= 0 learns from the k-th sample, -1
    only runs it. head_weight overrides the bundle's head weights (torch order), e.g. to
    continue from earlier learning. on_sample(k, counts, n, weights) is called after each
    sample (its output spike counts, the third factor n it caused, the head weights after it)."""
    t0 = time.perf_counter()
    if check_target(target) == "sim":
        raise UserError("run_lava_session runs Lava targets; the rule's run_session is sim")
    Monitor = require_lava("lava.proc.monitor.process").Monitor
    bundle = as_bundle(bundle)
    lava_rule = rules.get(bundle.head.rule.name).lava_module()        # the rule's processes
    x = np.asarray(x)
    T = x.shape[1]
    order = np.arange(len(x)) if order is None else np.asarray(order, np.int64)
    labels = np.asarray(labels, np.int64)
    if len(order) != len(labels):
        raise UserError(f"{len(order)} samples in the session but {len(labels)} labels")
    if T != rule.window:
        raise UserError(f"samples have {T} steps, the rule's window is {rule.window}")
    S, P = len(order), rule.period
    with board_errors(target):
        pre = run_frozen(bundle, x, P, target)               # [D, P, n_in], each sample once
    t1 = time.perf_counter()

    head = bundle.net[-1]
    prev_shape = tuple(bundle.frozen[-1].spec.out_shape)
    n_in, n_out = head.spec.in_features, head.spec.out_features
    source = replay_source(pre[order])
    dense, lif = head_processes(bundle, head_weight, *lava_rule.head_classes(rule))
    hg = lava_rule.wire(dense, lif, rule, labels, source.s_out, n_in, n_out)
    cfg = run_config(target, hg.models)
    mon = Monitor()
    mon.probe(lif.s_out, S * P)
    mon_v = Monitor()                # v after each step's update and reset (sim/'s v_last)
    mon_v.probe(lif.v, S * P)

    # weights change only on learning samples: read them after each of those and at the end
    # of each block of samples that do not learn (one Var.get per read)
    learns = labels >= 0
    read_at = set(np.flatnonzero(learns | np.append(learns[1:], True)).tolist())
    weights: list = [None] * S

    def read_weights() -> np.ndarray:
        w = np.asarray(dense.weights.get()).astype(np.int64)
        return (from_lava_order(w.reshape(n_out, *lava_shape(prev_shape)), prev_shape)
                if len(prev_shape) == 3 else w)

    def after(k: int) -> None:
        if k in read_at or (on_sample is not None and _last(weights, k) is None):
            weights[k] = read_weights()
        if on_sample is not None:      # a live view: read back while paused
            c = hg.last_counts()
            on_sample(k, c, hg.third_factor(c, int(labels[k]), rule), _last(weights, k))

    try:
        with board_errors(target):
            run_periods(source, S, P, cfg, [lif.u, lif.v, dense.a_buff] + hg.rest, after)
        spikes = np.asarray(mon.get_data()[lif.name]["s_out"]).reshape(S, P, n_out)[:, :T]
        v = np.asarray(mon_v.get_data()[lif.name]["v"]).reshape(S, P, n_out)[:, T - 1]
    finally:
        source.stop()
    # a sample between reads is in a block that does not learn: it holds the block end's
    for k in range(S - 1, -1, -1):
        if weights[k] is None:
            weights[k] = weights[k + 1]
    t2 = time.perf_counter()
    return LavaSessionResult(spikes != 0, weights, v.astype(np.int64),
                             {"frozen_s": t1 - t0, "head_s": t2 - t1, "samples": S,
                              "distinct_samples": len(x), "steps_frozen": len(x) * P,
                              "steps_head": S * P})


def _last(weights: list, k: int):
    for j in range(k, -1, -1):
        if weights[j] is not None:
            return weights[j]
    return None
