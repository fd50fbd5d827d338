"""Where stage 2 starts the on-chip rule: its step (SOEL's eta), and with it the head's grid,
fitted to the stage-1 body on meta-TRAIN tasks (float rule, the chip's passes and targets). The
rule's part comes from its card (rules/<name>/__init__.py): start_unit, start_adapt, and
start_values for the meta entries (offline/train.py's stage2_meta).

Why: eta's useful range moves with the body. A shot imprinted into a silent head's row drives
that row by about eta * n * |x|^2 (x: the shot's penultimate spike counts), so the step that
makes a shot reach its target count scales as 1 / |x|^2, which stage 1 changes by orders of
magnitude. Meta-learning eta in log space from a wrong start wastes the budget; a short grid
over multiples of 1 / mean |x|^2 does not. A head that starts silent has no weight range of
its own for the deployed grid, so the range is taken from what the rule learns here (the
largest |w| over the fit tasks, with headroom): the chip's 8-bit head then holds every weight
the rule writes without clipping.
"""
from __future__ import annotations

import numpy as np
import torch

from metaloihi import rules
from metaloihi.offline import model
from metaloihi.sim.float_lif import weight_key

HEADROOM = 1.5          # head grid edge / largest learnt |w| on the fit tasks
ETA_FACTORS = tuple(2.0 ** k for k in range(-4, 5))


def fit_rule_start(specs, neurons, theta: dict, batch: tuple, cfg, log=None
                   ) -> tuple[float, float, float]:
    """batch: encoded meta-train tasks (offline.train.task_batch). Returns (eta, head_range,
    float accuracy at that eta) for the rule of cfg (a MamlConfig: its [rule]'s targets and
    threshold, passes = inner_steps)."""
    head = len(specs) - 1
    key = weight_key(head)
    w0 = theta[key].detach()
    rule = cfg.rule
    card = rules.get(rule.name)
    sx, sy, qx, qy = batch
    with torch.no_grad():
        feats = [(model.features(specs, theta, neurons, torch.cat([sx[t], qx[t]]), head, None),
                  len(sx[t])) for t in range(len(sx))]
        norm = float(np.mean([float(h[:n].sum(1).pow(2).sum(1).mean()) for h, n in feats]))
        base = 1.0 / (5.0 * max(norm, 1e-6))
        best = None
        for f in ETA_FACTORS:
            eta = base * f * card.start_unit(rule)
            accs, wmax = [], 0.0
            for t, (h, n) in enumerate(feats):
                w = card.start_adapt(w0, h[:n], sy[t], neurons[head], rule, eta,
                                     passes=max(cfg.inner_steps, 1))
                wmax = max(wmax, float(w.abs().max()))
                logits = model.forward_from(specs, {**theta, key: w}, neurons, h[n:], head,
                                            None)
                accs.append(float((logits.argmax(-1) == qy[t]).float().mean()))
            acc = float(np.mean(accs))
            if log is not None:
                log(f"rule start: eta {eta:.3g} -> float accuracy {acc:.3f}, max |w| {wmax:.3g}")
            if best is None or acc > best[2]:
                best = (eta, wmax, acc)
    eta, wmax, acc = best
    return eta, HEADROOM * max(wmax, float(w0.abs().max()), 1e-12), acc
