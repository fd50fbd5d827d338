"""The deployable network a checkpoint holds, described in plain values (key "network" of a
checkpoint, offline/checkpoint.py), so that bridge/ reads a checkpoint without offline/'s config,
trainer or the data set (bridge/checkpoint_file.py is the reader and validator; the schema is
documented there).

Everything here is derived from the config, the data set's frame shape and the meta-parameters
exactly as an export derived it from them before checkpoints described themselves: the specs and
neurons of offline.model.build, the encoding of offline.model.encoding, the on-chip rule from
the learnt values (maml.learnt_values) or else the config, and theta0 with Q_outer applied when
the config asks for it.
"""
from __future__ import annotations

import dataclasses

import numpy as np
import torch

from metaloihi import rules
from metaloihi.offline import maml, model
from metaloihi.base.torch_file import NETWORK_FORMAT, NETWORK_KEY
from metaloihi.sim.arch import spec_to_dict

KEY, FORMAT = NETWORK_KEY, NETWORK_FORMAT


def _plain(v):
    """A neuron field as a plain value (numbers stay int or float as configured)."""
    if isinstance(v, np.ndarray):
        return v.tolist()
    if isinstance(v, np.generic):
        return v.item()
    return v


def _theta0(meta: dict, mc: maml.MamlConfig, seed: int) -> dict | None:
    """None: theta0 is meta's theta0.* as stored. With Q_outer (maml.q_outer_bits), the theta0
    an export deploys (maml.theta0_of), computed once here on the CPU; stochastic rounding draws
    from a forked generator seeded with train.seed, so saving never moves training's RNG."""
    if mc.q_outer_bits is None:
        return None
    cpu = {k: v.detach().cpu() for k, v in meta.items() if k.startswith(maml.THETA0)}
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return {k: v.detach().clone() for k, v in maml.theta0_of(cpu, mc).items()}


def network_description(cfg, frame_shape, specs: list, neurons: list, meta: dict) -> dict:
    """The "network" value of a checkpoint holding `meta`, trained under `cfg` (an
    offline.config.Config) on a data set of frames `frame_shape` [T, C, H, W]."""
    mc, d = cfg.maml, cfg.data
    learnt = maml.learnt_values(meta)
    enc = model.encoding(cfg.model)
    passes = max(int(mc.inner_steps), 1) if mc.inner_rule != "sgd" else 1
    rule = {**rules.get(mc.rule.name).description(mc.rule, learnt, passes, int(cfg.train.seed)),
            "head_range": learnt.get(rules.get(mc.rule.name).HEAD_RANGE)}
    return {"format": FORMAT,
            "specs": [spec_to_dict(s) for s in specs],
            "input_shape": [int(v) for v in enc.input_shape(tuple(frame_shape))],
            "frame_shape": [int(v) for v in frame_shape],
            "encoding": enc.to_dict(),
            "neurons": [{f.name: _plain(getattr(n, f.name)) for f in dataclasses.fields(n)}
                        for n in neurons],
            "dataset": {"name": str(d.dataset), "ways": int(d.ways),
                        "splits": {"train": str(d.train_split), "val": str(d.val_split),
                                   "test": str(d.test_split)}},
            "rule": rule,
            "theta0": _theta0(meta, mc, int(cfg.train.seed))}


def made_by(config: dict, iteration: int | None, init_from: dict | None = None) -> dict:
    """What made a checkpoint's theta0, from its own record (its config, its stage-2 iteration,
    its --init): {"stage1", "stage2_iterations", "start", "label", "summary"}. iteration None:
    a stage-1 checkpoint (stage1.pt). Every place that names how theta0 was made prints this."""
    m = config.get("maml", {})
    stage1 = int(config.get("pretrain", {}).get("iterations", 0)) > 0 and not init_from
    algo = ("FOMAML" if m.get("first_order") else "MAML") + \
        f" ({str(m.get('inner_rule', 'sgd')).upper()} inner loop)"
    start = ("a checkpoint (--init)" if init_from else
             "stage 1 (cross-entropy + prototypical pretraining)" if stage1 else
             "a random start")
    it = None if iteration is None else int(iteration)
    if it is None:
        summary, label = f"{start} only", "stage 1"
    elif it == 0:
        summary = f"{start}; no stage-2 update ({algo}: iteration 0, its start)"
        label = "stage 1, no MAML update" if stage1 else "no training"
    else:
        summary = (f"{start} + stage 2: {it} iterations of {algo}" if stage1 else
                   f"stage 2 only: {it} iterations of {algo} from {start}")
        label = (f"stage 1 + {algo} x{it}" if stage1 else f"{algo} from random x{it}"
                 if not init_from else f"--init + {algo} x{it}")
    return {"stage1": stage1, "stage2_iterations": it, "start": start, "label": label,
            "summary": summary}
