"""A bundle whose head has room for more classes: N_max output rows instead of the `ways` it was
exported with, for continual learning (onchip/continual.py teaches class k into row k).

The rows added are silent: zero weights and zero bias, so they never spike (u = v = 0 for
every input) and, with target_off = 0, their error n = trunc((0 - 0) / theta) = 0: the learning
engine leaves them exactly zero until their class's shot arrives. Everything else (frozen
layers, the head's neuron, weight exponent, rule, scales, metadata) is kept as it is; the
existing rows keep their weights.

Why widen a bundle rather than export the checkpoint with an N_max head: the head's grid
(scale) comes from the checkpoint's head range (or its max |w|), which zero rows do not change,
so both give the same integers; widening works on any bundle, with or without its checkpoint.
"""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np

from metaloihi.base.errors import UserError
from metaloihi.bridge.bundle import Bundle, read_bundle, write_bundle
from metaloihi.sim import loihi as L
from metaloihi.sim.arch import DenseSpec
from metaloihi.sim.fixed import FixedLayer


def widen(bundle: Bundle | str | Path, n_max: int) -> Bundle:
    """The bundle with its head widened to n_max rows (added rows silent, labelled slotK)."""
    b = bundle if isinstance(bundle, Bundle) else read_bundle(bundle)
    head = b.net[-1]
    ways = head.spec.out_features
    if int(n_max) != n_max or n_max < ways:
        raise UserError(f"n_max={n_max}: the head already has {ways} rows; expected an integer "
                        f">= {ways}")
    n_max = int(n_max)
    nrn = head.neuron
    bias = np.broadcast_to(np.asarray(nrn.bias_mant, np.int64), (ways,))
    w = np.zeros((n_max, head.spec.in_features), np.int64)
    w[:ways] = head.weight
    new = FixedLayer(DenseSpec(head.spec.in_features, n_max), w,
                     L.LifFixed(du=nrn.du, dv=nrn.dv, vth=nrn.vth,
                                bias_mant=np.concatenate([bias, np.zeros(n_max - ways, np.int64)]),
                                bias_exp=nrn.bias_exp),
                     weight_exp=head.weight_exp, num_weight_bits=head.num_weight_bits)
    labels = list(b.head.labels) or [str(i) for i in range(ways)]
    taken = set(labels)
    extra = [f"slot{k}" for k in range(ways, n_max)]
    if taken & set(extra):
        raise UserError(f"the head's labels {sorted(taken & set(extra))} clash with the names "
                        "widen gives the added rows (slotK)")
    meta = {**b.meta, "widened_from": ways}
    return Bundle(b.net[:-1] + [new], replace(b.head, labels=tuple(labels + extra)),
                  list(b.scales), meta)


def write_widened(src: str | Path | Bundle, out: str | Path, n_max: int) -> Path:
    """widen(src, n_max) written atomically to `out` (bridge.bundle.write_bundle)."""
    b = widen(src, n_max)
    return write_bundle(out, b.net, b.head, b.scales, b.meta)
