"""Stage 1 of the recipe: a representation for the on-chip head, learnt by supervised training
over all meta-train classes before any meta-learning.

Why a stage before MAML: from a random spiking body MAML starts on a flat loss (one head step on
random features is at chance for every inner rate), and on a CPU budget it ends below a nearest
prototype on the raw input. What the chip's head learns from one shot per class is, to first
order, a dot-product prototype on the penultimate spike counts (SOEL from a silent head imprints
each shot's pre trace into its label's row; later passes depress rows that fire for other
classes). So the body is trained for exactly that readout:

  loss = ce_weight    * CE(readout(counts), class)       a temporary float head over the
                                                          meta-train classes (discarded)
       + proto_weight * CE(t * q.p_c / mean|p|^2, label)  dot-product prototypes: half of each
                                                          class's samples as support (p_c, their
                                                          mean counts), the other half as queries
       + rate_weight  * sum over hidden layers of (relu(r_lo - r) + relu(r - r_hi))^2 / r_lo^2
                                                          (r: the layer's mean firing rate)
       + norm_weight  * var(log |counts|^2)               samples of equal norm: the chip's dot
                                                          product then ranks like a cosine

Counts are the penultimate layer's spike counts over the whole window, through sim/'s float
CUBA-LIF and the paper's surrogate (truncated BPTT like the meta-training), so the body deploys
through bridge/ exactly as a meta-trained one. The rate band keeps every layer where Loihi's
8-bit weights and SOEL's 7-bit traces work: a silent layer has no surrogate signal and gives the
head nothing to learn from; a saturated one makes every shot look alike.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from metaloihi.base.errors import UserError
from metaloihi.offline import model, seeds
from metaloihi.sim import float_lif
from metaloihi.sim.prototype import prototype_accuracy


@dataclass(frozen=True)
class PretrainConfig:
    """[pretrain] section of a training config: stage 1 (iterations 0: no stage 1)."""
    iterations: int = 0             # Adam steps of stage 1
    time_limit_min: float = 0.0     # stop stage 1 after this wall time (0: no limit)
    classes_per_batch: int = 16     # classes drawn per step (<= meta-train classes)
    samples_per_class: int = 2      # >= 2: half support, half query for the prototype loss
    lr: float = 0.003               # Adam, relative to each weight tensor's initial RMS
    ce_weight: float = 1.0
    proto_weight: float = 1.0
    proto_temperature: float = 10.0
    rate_low: float = 0.02          # hidden layers' mean firing rate band (spikes per step)
    rate_high: float = 0.25
    rate_weight: float = 10.0
    norm_weight: float = 0.0        # variance of log |counts|^2 over the batch: equal-norm
                                    # samples make the chip's dot product act like a cosine
    shift: int = 0                  # augmentation: random translation of each sample's input
                                    # by up to this many pixels (small event data sets overfit)
    trunc: int | None = 25          # truncated BPTT window of stage 1 (none: whole window)
    val_every: int = 100            # prototype accuracy on meta-val tasks every this many steps
    val_tasks: int = 100

    def __post_init__(self):
        checks = [("iterations", self.iterations >= 0), ("time_limit_min", self.time_limit_min >= 0),
                  ("classes_per_batch", self.classes_per_batch >= 2),
                  ("samples_per_class", self.samples_per_class >= 2),
                  ("lr", self.lr > 0), ("ce_weight", self.ce_weight >= 0),
                  ("proto_weight", self.proto_weight >= 0),
                  ("proto_temperature", self.proto_temperature > 0),
                  ("rate_low", 0 <= self.rate_low < 1),
                  ("rate_high", self.rate_low < self.rate_high <= 1),
                  ("rate_weight", self.rate_weight >= 0), ("norm_weight", self.norm_weight >= 0),
                  ("shift", self.shift >= 0),
                  ("trunc", self.trunc is None or self.trunc >= 1),
                  ("val_every", self.val_every >= 1), ("val_tasks", self.val_tasks >= 1)]
        for name, ok in checks:
            if not ok:
                raise UserError(f"config key pretrain.{name} = {getattr(self, name)!r} is out "
                                "of range (see offline/pretrain.py: PretrainConfig)")


def encoded_split(dataset, split: str, enc_cfg, dtype=torch.float32) -> tuple[torch.Tensor,
                                                                                 np.ndarray]:
    """Every sample of a split's classes, encoded once: (bool spikes [N, T, C, H, W], class ids)."""
    classes = [int(c) for c in dataset.split_classes(split)]
    idx = np.concatenate([dataset.class_indices(c) for c in classes])
    labels = np.concatenate([np.full(len(dataset.class_indices(c)), k)
                             for k, c in enumerate(classes)])
    chunks = [model.encode(torch.from_numpy(np.ascontiguousarray(dataset.frames(idx[i:i + 256]))),
                           enc_cfg).bool() for i in range(0, len(idx), 256)]
    return torch.cat(chunks), labels


def translate(x: torch.Tensor, shift: int, rng: np.random.Generator) -> torch.Tensor:
    """Each sample [T, C, H, W] of x moved by its own random (dy, dx) in [-shift, shift],
    vacated pixels empty: the sensor sees the same gesture a little off-centre."""
    if shift == 0:
        return x
    h, w = x.shape[-2:]
    padded = F.pad(x, (shift, shift, shift, shift))
    offs = rng.integers(0, 2 * shift + 1, (len(x), 2))
    return torch.stack([p[..., dy:dy + h, dx:dx + w] for p, (dy, dx) in zip(padded, offs)])


def rate_penalty(spikes: list[torch.Tensor], low: float, high: float) -> torch.Tensor:
    """sum over hidden layers of ((relu(low - r) + relu(r - high)) / low)^2, r the layer's mean
    firing rate: zero inside the band, quadratic outside, in units of the floor."""
    scale = max(low, 1e-3)
    pen = spikes[0].new_zeros(())
    for s in spikes:
        r = s.mean()
        pen = pen + ((F.relu(low - r) + F.relu(r - high)) / scale) ** 2
    return pen


def proto_logits(support: torch.Tensor, support_y: torch.Tensor, query: torch.Tensor,
                 ways: int, temperature: float) -> torch.Tensor:
    """Dot-product prototype scores [Q, ways]: q . p_c with p_c the mean support counts of class
    c, divided by the mean |p|^2 times t: invariant to the counts' scale (which the rate band
    sets), so shrinking every count is no way to lower the loss."""
    onehot = (support_y[:, None] == torch.arange(ways, device=support.device)).to(support.dtype)
    protos = onehot.t() @ support / onehot.sum(0)[:, None]
    norm = protos.pow(2).sum(1).mean().clamp_min(1e-6)
    return temperature * (query @ protos.t()) / norm


def penultimate(specs, params, neurons, x, trunc):
    """(penultimate spike counts [B, n], every hidden layer's spikes) of encoded input x."""
    out = float_lif.run(specs[:-1], model.sub_params(params, 0, len(specs) - 1),
                        neurons[:-1], x, trunc=trunc)
    return out["spikes"][-1].sum(1), out["spikes"]


def pretrain_body(s, theta0: dict, pc: PretrainConfig, log_path: Path | None = None,
                  progress: bool = True, seed: int = 0, evaluate=None) -> tuple[dict, dict]:
    """Stage 1 on setup `s` (offline.train.Setup) from theta0 (a calibrated float_lif params
    dict, head included and left as it is). evaluate(params) -> meta-val accuracy, called every
    pc.val_every steps; the best body on it is returned. Returns (params, summary)."""
    if pc.iterations == 0:
        return theta0, {"iterations": 0}
    t_start, cpu_start = time.perf_counter(), time.process_time()
    x_all, y_all = encoded_split(s.dataset, s.cfg.data.train_split, s.cfg.model)
    n_classes = int(y_all.max()) + 1
    if pc.classes_per_batch > n_classes:
        raise UserError(f"pretrain.classes_per_batch = {pc.classes_per_batch} but the "
                        f"meta-train split has {n_classes} classes")
    per_class = [np.flatnonzero(y_all == c) for c in range(n_classes)]
    if min(len(p) for p in per_class) < pc.samples_per_class:
        raise UserError(f"pretrain.samples_per_class = {pc.samples_per_class} but a meta-train "
                        f"class has {min(len(p) for p in per_class)} samples")
    specs, neurons = s.specs, s.neurons
    head_key = float_lif.head_key(specs)
    body = {k: v.detach().clone().requires_grad_(True) for k, v in theta0.items()
            if k != head_key}
    n_feat = model.n_features(specs, len(specs) - 1)
    gen = torch.Generator().manual_seed(seed)
    readout = (torch.randn(n_classes, n_feat, generator=gen, dtype=s.dtype) * 0.01
               ).to(s.device).requires_grad_(True)
    groups = [{"params": [v], "lr": pc.lr * float(v.detach().pow(2).mean().sqrt())}
              for v in body.values()] + [{"params": [readout], "lr": pc.lr}]
    opt = torch.optim.Adam(groups)
    rng = np.random.default_rng(seeds.stage1_samples(seed))
    half = pc.samples_per_class // 2
    best, best_val, best_it, val = None, -1.0, 0, float("nan")
    bar = None
    if progress:
        from tqdm import tqdm
        bar = tqdm(total=pc.iterations, unit="it", desc="stage 1 (pretrain)", dynamic_ncols=True)
    log = open(log_path, "a") if log_path is not None else None
    it = 0
    try:
        if evaluate is not None:
            best_val = val = float(evaluate({**body, head_key: theta0[head_key]}))
            best = {k: v.detach().clone() for k, v in body.items()}
        for it in range(1, pc.iterations + 1):
            cls = rng.choice(n_classes, pc.classes_per_batch, replace=False)
            pick = np.stack([rng.choice(per_class[c], pc.samples_per_class, replace=False)
                             for c in cls], 1)           # [samples, classes]: rows by sample
            x = translate(x_all[torch.from_numpy(pick.reshape(-1))].to(s.device, s.dtype),
                          pc.shift, rng)
            y_glob = torch.as_tensor(np.tile(cls, pc.samples_per_class), device=s.device)
            y_task = torch.arange(len(cls), device=s.device).repeat(pc.samples_per_class)
            counts, spikes = penultimate(specs, body, neurons, x, pc.trunc)
            n_s = half * len(cls)
            ce = F.cross_entropy(counts @ readout.t() / np.sqrt(n_feat), y_glob)
            proto = F.cross_entropy(proto_logits(counts[:n_s], y_task[:n_s], counts[n_s:],
                                                 len(cls), pc.proto_temperature), y_task[n_s:])
            rates = rate_penalty(spikes, pc.rate_low, pc.rate_high)
            norms = counts.pow(2).sum(1).clamp_min(1.0).log().var()
            loss = pc.ce_weight * ce + pc.proto_weight * proto + pc.rate_weight * rates \
                + pc.norm_weight * norms
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            rec = {"stage": 1, "iteration": it, "loss": float(loss), "ce": float(ce),
                   "proto": float(proto), "rate_penalty": float(rates),
                   "norm_var": float(norms),
                   "rates": [float(sp.mean()) for sp in spikes],
                   "elapsed_s": time.perf_counter() - t_start,
                   "cpu_s": time.process_time() - cpu_start}
            over = bool(pc.time_limit_min) and rec["elapsed_s"] > 60 * pc.time_limit_min
            if evaluate is not None and (it % pc.val_every == 0 or it == pc.iterations or over):
                val = float(evaluate({**body, head_key: theta0[head_key]}))
                rec["meta_val_acc"] = val
                if val > best_val:
                    best_val, best_it = val, it
                    best = {k: v.detach().clone() for k, v in body.items()}
            if log is not None:
                log.write(json.dumps(rec) + "\n")
                log.flush()
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{float(loss):.3f}", val=f"{val:.3f}",
                                r=f"{rec['rates'][-1]:.3f}")
            if over:
                break
    finally:
        if bar is not None:
            bar.close()
        if log is not None:
            log.close()
    if best is None:
        best, best_it = {k: v.detach().clone() for k, v in body.items()}, it
    out = {**{k: v.detach() for k, v in best.items()}, head_key: theta0[head_key]}
    return out, {"iterations": it, "best_val": best_val, "best_iteration": best_it,
                 "wall_s": time.perf_counter() - t_start,
                 "cpu_s": time.process_time() - cpu_start}


def split_features(s, params: dict, split: str, batch: int = 128) -> tuple[np.ndarray, np.ndarray]:
    """Penultimate spike counts of every sample of a split (no graph): ([N, n], class index)."""
    x_all, y = encoded_split(s.dataset, split, s.cfg.model)
    specs = s.specs
    sub = model.sub_params(params, 0, len(specs) - 1)
    feats = []
    with torch.no_grad():
        for lo in range(0, len(x_all), batch):
            x = x_all[lo:lo + batch].to(s.device, s.dtype)
            out = float_lif.run(specs[:-1], sub, s.neurons[:-1], x, trunc=0)
            feats.append(out["spikes"][-1].sum(1).cpu().numpy())
    return np.concatenate(feats), y


def prototype_eval(feats: np.ndarray, y: np.ndarray, ways: int, shots: int, queries: int,
                   tasks: int, seed: int, metric: str = "cosine") -> np.ndarray:
    """Per-task nearest-prototype accuracy on precomputed features of one split."""
    rng = np.random.default_rng(seed)
    classes = np.unique(y)
    accs = np.empty(tasks)
    for t in range(tasks):
        chosen = rng.choice(classes, ways, replace=False)
        s_idx, q_idx = [], []
        for c in chosen:
            pick = rng.choice(np.flatnonzero(y == c), shots + queries, replace=False)
            s_idx.append(pick[:shots])
            q_idx.append(pick[shots:])
        ys = np.repeat(np.arange(ways), shots)
        yq = np.repeat(np.arange(ways), queries)
        accs[t] = prototype_accuracy(feats[np.concatenate(s_idx)], ys,
                                     feats[np.concatenate(q_idx)], yq, ways, metric)
    return accs
