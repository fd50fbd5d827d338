"""The on-chip session as one Lava graph (a target of bridge/target.py; the timing is the
rule's bit-exact model's, rules/soel/chip.py):

  RingBuffer -> netx network (frozen layers) -> the rule's head part (rules/<name>/lava.py;
  SOEL: error path (window gate) -> LearningDense (Loihi3FLearningRule) -> head LIF -> error
  path (post counts) -> n -> the LIF's third factor -> y2/y3 + bAP -> LearningDense)

One sample per period of T + 1 steps; after each period the host resets what "rested" means
for the next sample (u, v of every LIF, every synapse's one-step buffer, the head's pre trace),
as Var.set calls on the paused runtime. Read out: Monitors of the head's spikes and of its
membrane v (the session's prediction breaks equal spike counts by v at the window's last step).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from metaloihi.base.errors import UserError
from metaloihi.bridge.bundle import Bundle, as_bundle
from metaloihi.bridge.lava_net import from_lava_order, lava_shape
from metaloihi.bridge.netx_run import frozen_graph, head_processes, netx_rest_vars, run_periods
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
                     target: str = "lava") -> LavaSessionResult:
    """Samples x [S, T, *in_shape] (binary) through the bundle's graph in order; labels[s] >= 0
    learns from sample s, -1 only runs it. head_weight overrides the bundle's head weights
    (torch order), e.g. to continue from earlier learning. on_sample(k, counts, n, weights)
    is called after each sample (its output spike counts, the third factor n it caused, the
    head weights after it). target: "lava" (Loihi2SimCfg) or "loihi2" (a board,
    bridge/target.py)."""
    t0 = time.perf_counter()
    if check_target(target) == "sim":
        raise UserError("run_lava_session runs Lava targets; the rule's run_session is sim")
    Monitor = require_lava("lava.proc.monitor.process").Monitor
    bundle = as_bundle(bundle)
    lava_rule = rules.get(bundle.head.rule.name).lava_module()        # the rule's processes
    frozen, head = bundle.frozen, bundle.net[-1]
    x = np.asarray(x)
    S, T = x.shape[:2]
    P = rule.period
    if T != rule.window:
        raise UserError(f"samples have {T} steps, the rule's window is {rule.window}")
    source, net, out = frozen_graph(bundle, x, P)
    prev_shape = tuple(frozen[-1].spec.out_shape)
    n_in, n_out = head.spec.in_features, head.spec.out_features
    dense, lif = head_processes(bundle, head_weight, *lava_rule.head_classes(rule))
    hg = lava_rule.wire(dense, lif, rule, labels, out, n_in, n_out)
    cfg = run_config(target, hg.models)
    mon = Monitor()
    mon.probe(lif.s_out, S * P)
    mon_v = Monitor()                # v after each step's update and reset (sim/'s v_last)
    mon_v.probe(lif.v, S * P)

    weights = []

    def after(k: int) -> None:
        w = np.asarray(dense.weights.get()).astype(np.int64)
        weights.append(from_lava_order(w.reshape(n_out, *lava_shape(prev_shape)), prev_shape)
                       if len(prev_shape) == 3 else w)
        if on_sample is not None:      # a live view: read back while paused
            c = np.asarray(mon.get_data()[lif.name]["s_out"]).reshape(
                S, P, n_out)[k, :T].sum(0).astype(np.int64)
            on_sample(k, c, hg.third_factor(c, int(labels[k]), rule), weights[-1])

    t1 = time.perf_counter()
    try:
        with board_errors(target):
            run_periods(source, S, P, cfg, [lif.u, lif.v, dense.a_buff] + hg.rest
                        + netx_rest_vars(net), after)
        spikes = np.asarray(mon.get_data()[lif.name]["s_out"]).reshape(S, P, n_out)[:, :T]
        v = np.asarray(mon_v.get_data()[lif.name]["v"]).reshape(S, P, n_out)[:, T - 1]
    finally:
        source.stop()
    t2 = time.perf_counter()
    return LavaSessionResult(spikes != 0, weights, v.astype(np.int64),
                             {"build_s": t1 - t0, "run_s": t2 - t1, "samples": S})
