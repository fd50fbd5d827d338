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

One loop, pretrain(), runs a Recipe: stage 1 is stage1_recipe of the [pretrain] section, and
evaluate's conventional baseline (cross-entropy alone through the network's own head widened
to the classes) is baseline_recipe; their lr scaling, seed streams, head and batches are the
recipe's fields.
"""
from __future__ import annotations

import itertools
import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from metaloihi.base.bounds import Bound, bounded, check, check_fields
from metaloihi.base.errors import UserError
from metaloihi.datasets.tasks import sample_task
from metaloihi.offline import model, seeds
from metaloihi.sim import float_lif
from metaloihi.sim.prototype import prototype_accuracy


LR_DECAYS = ("constant", "cosine")  # not "none": config files read "none" as null


@dataclass(frozen=True)
class PretrainConfig:
    """[pretrain] section of a training config: stage 1 (iterations 0: no stage 1)."""
    iterations: int = bounded(0, 0)             # Adam steps of stage 1
    time_limit_min: float = bounded(0.0, 0)     # stop stage 1 after this wall time (0: no limit)
    classes_per_batch: int = bounded(16, 2)     # classes drawn per step (<= meta-train classes)
    samples_per_class: int = bounded(2, 2)      # >= 2: half support, half query for the
                                                # prototype loss
    lr: float = bounded(0.003, 0, lo_open=True)   # Adam, relative to each weight tensor's
                                                  # initial RMS
    ce_weight: float = bounded(1.0, 0)
    proto_weight: float = bounded(1.0, 0)
    proto_temperature: float = bounded(10.0, 0, lo_open=True)
    rate_low: float = bounded(0.02, 0, 1, hi_open=True)   # hidden layers' mean firing rate
    rate_high: float = bounded(0.25, 0, 1, lo_open=True)  # band (spikes per step); above
                                                          # rate_low too (__post_init__)
    rate_weight: float = bounded(10.0, 0)
    norm_weight: float = bounded(0.0, 0)    # variance of log |counts|^2 over the batch:
                                            # equal-norm samples make the chip's dot product
                                            # act like a cosine
    shift: int = bounded(0, 0)      # augmentation: random translation of each sample's input
                                    # by up to this many pixels (small event data sets overfit)
    time_shift: int = bounded(0, 0)   # augmentation: each sample moved in time by up to this
                                      # many (encoded) steps, vacated steps empty
    drop: float = bounded(0.0, 0, 1, hi_open=True)   # augmentation: each input spike dropped
                                                     # with this probability
    lr_decay: str = "constant"      # "cosine": pretrain.lr decays to 0 over the iterations
    trunc: int | None = bounded(25, 1)   # truncated BPTT window of stage 1 (none: whole window)
    val_every: int = bounded(100, 1)     # prototype accuracy on meta-val tasks every this many
                                         # steps
    val_tasks: int = bounded(100, 1)

    def __post_init__(self):
        check_fields(self, "config key pretrain.")
        if self.lr_decay not in LR_DECAYS:
            raise UserError(f"config key pretrain.lr_decay = {self.lr_decay!r} is not one of "
                            f"{', '.join(repr(d) for d in LR_DECAYS)}")
        check("config key pretrain.rate_high", self.rate_high,
              Bound(self.rate_low, 1, lo_open=True, what="a rate above pretrain.rate_low"))


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


def time_jitter(x: torch.Tensor, steps: int, rng: np.random.Generator) -> torch.Tensor:
    """Each sample [T, C, H, W] of x moved in time by its own random d in [-steps, steps],
    vacated steps empty: the same gesture a little earlier or later in the window."""
    if steps == 0:
        return x
    T = x.shape[1]
    padded = F.pad(x, (0, 0, 0, 0, 0, 0, steps, steps))
    offs = rng.integers(0, 2 * steps + 1, len(x))
    return torch.stack([p[d:d + T] for p, d in zip(padded, offs)])


def drop_events(x: torch.Tensor, p: float, rng: np.random.Generator) -> torch.Tensor:
    """x with each spike removed with probability p (the sensor misses some events)."""
    if p == 0:
        return x
    keep = torch.from_numpy(rng.random(tuple(x.shape)) >= p).to(x.device, x.dtype)
    return x * keep


def lr_factor(it: int, iterations: int | None, decay: str) -> float:
    """Step it's lr over its base: 1, or with "cosine" 0.5 (1 + cos(pi (it - 1) / iterations))."""
    if decay == "constant" or not iterations:
        return 1.0
    return 0.5 * (1 + np.cos(np.pi * (it - 1) / iterations))


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


def adam_groups(params: dict, keys: list[str], lr: float, relative_from: int | None) -> list[dict]:
    """Adam's groups, one per tensor: a tensor of at least `relative_from` elements steps at lr
    times its initial RMS (None: none does), the others at lr. Why relative: Adam's step does
    not scale with the gradient, and calibrated layers differ in weight scale by 10x, so one
    absolute rate is too large for some layers (they fall silent) and too small for others."""
    groups = []
    for k in keys:
        scale = 1.0
        if relative_from is not None and params[k].numel() >= relative_from:
            scale = float(params[k].detach().pow(2).mean().sqrt())
        groups.append({"params": [params[k]], "lr": lr * scale, "name": k})
    return groups


# how a Recipe's batch is drawn (each row: one sample; the numpy generator of sample_seed)
BATCHES = {
    "classes": "classes_per_batch meta-train classes, samples_per_class of each from the split "
               "encoded once, rows by sample, moved by up to `shift` pixels (stage 1)",
    "shots": "a task of one shot of every meta-train class (datasets.tasks.sample_task), "
             "classes_per_batch of its shots (the baseline)"}
# the temporary head over the meta-train classes that the cross-entropy reads (discarded after)
HEADS = {
    "readout": "a float readout of the penultimate spike counts, N(0, 0.01^2) start, logits "
               "divided by sqrt(n), stepping at lr as is (stage 1)",
    "network": "the network's own head layer as wide as the classes, drawn as init_params "
               "draws theta0 and scaled to the RMS of theta0's head, logits x maml.loss_scale "
               "(the baseline)"}
# the loss terms a Recipe may weigh (each also a field of the step's record)
LOSSES = ("ce", "proto", "rate_penalty", "norm_var")


@dataclass(frozen=True)
class Recipe:
    """One supervised pretraining of the body on every meta-train class (pretrain() runs it).
    Stage 1 (stage1_recipe) and evaluate's cross-entropy baseline (baseline_recipe) are two
    configurations of the one loop: whatever sets them apart is a field here."""
    name: str                        # the progress bar's label
    iterations: int | None           # Adam steps (None: until `minutes` is spent; 0: none)
    minutes: float | None            # wall time (None: no limit); the step ending past it is
                                     # the last
    lr: float
    relative_from: int | None        # adam_groups: the tensors stepping relative to their RMS
    head: str                        # HEADS
    head_seed: int                   # the temporary head's torch generator (offline/seeds.py)
    batches: str                     # BATCHES
    sample_seed: int | list[int]     # the batches' numpy generator (offline/seeds.py)
    classes_per_batch: int
    samples_per_class: int = 1
    shift: int = 0
    time_shift: int = 0              # "classes" batches: time_jitter by up to this many steps
    drop: float = 0.0                # "classes" batches: drop_events with this probability
    lr_decay: str = "constant"       # lr_factor's decay over `iterations`
    trunc: int | None = None         # truncated BPTT window (None: the whole window)
    losses: tuple[tuple[str, float], ...] = (("ce", 1.0),)   # (LOSSES term, weight), summed in
                                                             # order; others not computed
    proto_temperature: float = 10.0
    rate_band: tuple[float, float] = (0.02, 0.25)
    val_every: int = 1               # evaluate() every this many steps, the last one too
    stage: int | None = None         # the "stage" its log records carry

    def __post_init__(self):         # recipes are written in code: a wrong one is a bug
        terms = [t for t, _ in self.losses]
        if self.head not in HEADS or self.batches not in BATCHES or \
                not set(terms) <= set(LOSSES) or \
                (terms != ["ce"] and (self.head, self.batches) != ("readout", "classes")):
            raise ValueError(f"recipe {self.name!r}: head {self.head!r}, batches "
                             f"{self.batches!r}, losses {terms} (all but ce read the counts "
                             "of 'readout' and the classes of 'classes' batches)")


def stage1_recipe(pc: PretrainConfig, seed: int) -> Recipe:
    """Stage 1 of train.seed `seed`: a float readout on the counts, every loss of the [pretrain]
    section, each body tensor stepping at pretrain.lr times its initial RMS."""
    return Recipe(name="stage 1 (pretrain)", iterations=pc.iterations,
                  minutes=pc.time_limit_min or None, lr=pc.lr, relative_from=1,
                  head="readout", head_seed=seeds.stage1_readout(seed), batches="classes",
                  sample_seed=seeds.stage1_samples(seed),
                  classes_per_batch=pc.classes_per_batch,
                  samples_per_class=pc.samples_per_class, shift=pc.shift,
                  time_shift=pc.time_shift, drop=pc.drop, lr_decay=pc.lr_decay, trunc=pc.trunc,
                  losses=(("ce", pc.ce_weight), ("proto", pc.proto_weight),
                          ("rate_penalty", pc.rate_weight), ("norm_var", pc.norm_weight)),
                  proto_temperature=pc.proto_temperature,
                  rate_band=(pc.rate_low, pc.rate_high), val_every=pc.val_every, stage=1)


def baseline_recipe(cfg, iterations: int, batch: int, seed: int,
                    minutes: float | None = None) -> Recipe:
    """evaluate's conventional baseline of a training config: cross-entropy alone on the
    network's head widened to the classes, stepping as meta-training does (train.outer_lr,
    relative with train.relative_lr), maml.trunc, `batch` shots a step, for `iterations`
    steps or, given `minutes`, for that long (0: no step)."""
    tc = cfg.train
    timed = minutes is not None
    return Recipe(name="cross-entropy baseline",
                  iterations=(0 if minutes == 0 else None) if timed else iterations,
                  minutes=minutes or None, lr=tc.outer_lr,
                  relative_from=2 if tc.relative_lr else None, head="network",
                  head_seed=seeds.baseline_head(seed), batches="shots",
                  sample_seed=seeds.baseline_samples(seed), classes_per_batch=batch,
                  trunc=cfg.maml.trunc)


@dataclass
class _Batch:
    x: torch.Tensor              # encoded input [B, T, C, H, W]
    y: torch.Tensor              # meta-train class index
    y_task: torch.Tensor | None  # "classes": the index among the batch's classes
    ways: int                    # classes in the batch
    n_support: int               # "classes": the first rows, half of each class's samples


def _batches(s, r: Recipe):
    """(draw(rng) -> _Batch, the number of meta-train classes) of r.batches."""
    if r.batches == "shots":
        classes = [int(c) for c in s.dataset.split_classes(s.cfg.data.train_split)]

        def shots(rng) -> _Batch:
            t = sample_task(s.dataset, s.cfg.data.train_split, len(classes), 1, 0, rng)
            pick = rng.choice(len(classes), r.classes_per_batch, replace=False)
            x = model.encode(t.support_x[pick], s.cfg.model).to(s.device, s.dtype)
            y = torch.as_tensor([classes.index(int(t.classes[i])) for i in pick],
                                device=s.device)
            return _Batch(x, y, None, len(pick), 0)
        return shots, len(classes)
    x_all, y_all = encoded_split(s.dataset, s.cfg.data.train_split, s.cfg.model)
    n_classes = int(y_all.max()) + 1
    if r.classes_per_batch > n_classes:
        raise UserError(f"pretrain.classes_per_batch = {r.classes_per_batch} but the "
                        f"meta-train split has {n_classes} classes")
    per_class = [np.flatnonzero(y_all == c) for c in range(n_classes)]
    if min(len(p) for p in per_class) < r.samples_per_class:
        raise UserError(f"pretrain.samples_per_class = {r.samples_per_class} but a meta-train "
                        f"class has {min(len(p) for p in per_class)} samples")

    def classes(rng) -> _Batch:
        cls = rng.choice(n_classes, r.classes_per_batch, replace=False)
        pick = np.stack([rng.choice(per_class[c], r.samples_per_class, replace=False)
                         for c in cls], 1)               # [samples, classes]: rows by sample
        x = translate(x_all[torch.from_numpy(pick.reshape(-1))].to(s.device, s.dtype),
                      r.shift, rng)
        x = drop_events(time_jitter(x, r.time_shift, rng), r.drop, rng)
        y = torch.as_tensor(np.tile(cls, r.samples_per_class), device=s.device)
        y_task = torch.arange(len(cls), device=s.device).repeat(r.samples_per_class)
        return _Batch(x, y, y_task, len(cls), r.samples_per_class // 2 * len(cls))
    return classes, n_classes


def _head(s, r: Recipe, theta0: dict, params: dict, n_classes: int):
    """The temporary head of r.head: (its Adam groups beyond params', forward(params, x) ->
    (logits, penultimate counts or None, hidden spikes or None)). "network" puts its head into
    params (in theta0's head's place)."""
    if r.head == "network":
        specs, neurons = model.build(s.dataset.frame_shape, n_classes, s.cfg.model)
        key = float_lif.head_key(specs)
        head = model.init_params(specs, torch.Generator().manual_seed(r.head_seed), s.dtype)[key]
        head = head.to(s.device)
        # the wide head at the RMS of theta0's (its std is 0 where theta0's head is uniform:
        # that froze the whole baseline at its random start)
        params[key] = head * float(theta0[key].pow(2).mean().sqrt() / head.std())

        def network(p, x):
            return s.cfg.maml.loss_scale * model.forward(specs, p, neurons, x, trunc=r.trunc), \
                None, None
        return [], network
    n_feat = model.n_features(s.specs, len(s.specs) - 1)
    gen = torch.Generator().manual_seed(r.head_seed)
    readout = (torch.randn(n_classes, n_feat, generator=gen, dtype=s.dtype) * 0.01
               ).to(s.device).requires_grad_(True)

    def read(p, x):
        counts, spikes = penultimate(s.specs, p, s.neurons, x, r.trunc)
        return counts @ readout.t() / np.sqrt(n_feat), counts, spikes
    return [{"params": [readout], "lr": r.lr}], read


def _loss_terms(r: Recipe, b: _Batch, logits, counts, spikes) -> dict[str, torch.Tensor]:
    """The terms r.losses names, in its order (LOSSES; all but ce read the counts)."""
    terms = {}
    for name, _ in r.losses:
        if name == "ce":
            terms[name] = F.cross_entropy(logits, b.y)
        elif name == "proto":
            n_s = b.n_support
            terms[name] = F.cross_entropy(proto_logits(counts[:n_s], b.y_task[:n_s],
                                                       counts[n_s:], b.ways,
                                                       r.proto_temperature), b.y_task[n_s:])
        elif name == "rate_penalty":
            terms[name] = rate_penalty(spikes, *r.rate_band)
        else:                                            # "norm_var" (Recipe checks)
            terms[name] = counts.pow(2).sum(1).clamp_min(1.0).log().var()
    return terms


def pretrain(s, theta0: dict, r: Recipe, evaluate=None, log_path: Path | None = None,
             progress: bool = False, on_record=None) -> tuple[dict, dict]:
    """Pretrain the body of theta0 (a calibrated float_lif params dict on setup `s`,
    offline.train.Setup) as recipe r says, with a temporary head over the meta-train classes.
    evaluate(params) -> meta-val accuracy, called before the first step and every r.val_every
    steps: the best body on it is returned (without: the last). Each step's record goes to
    log_path (a JSON line) and on_record. Returns (the body with theta0's head, summary)."""
    if r.iterations == 0:
        return theta0, {"iterations": 0}
    t_start, cpu_start = time.perf_counter(), time.process_time()
    draw, n_classes = _batches(s, r)
    key = float_lif.head_key(s.specs)
    params = {k: v.detach().clone() for k, v in theta0.items()
              if k != key or r.head == "network"}
    extra, forward = _head(s, r, theta0, params, n_classes)
    for v in params.values():
        v.requires_grad_(True)
    opt = torch.optim.Adam(adam_groups(params, list(params), r.lr, r.relative_from) + extra)
    base_lr = [g["lr"] for g in opt.param_groups]
    rng = np.random.default_rng(r.sample_seed)

    def body() -> dict:              # the body being trained, under theta0's head
        return {**{k: v for k, v in params.items() if k != key}, key: theta0[key]}
    best, best_val, best_it, val = None, -1.0, 0, float("nan")
    bar = None
    if progress:
        from tqdm import tqdm
        bar = tqdm(total=r.iterations, unit="it", desc=r.name, dynamic_ncols=True)
    log = open(log_path, "a") if log_path is not None else None
    it = 0
    try:
        if evaluate is not None:
            best_val = val = float(evaluate(body()))
            best = {k: v.detach().clone() for k, v in body().items() if k != key}
        for it in (range(1, r.iterations + 1) if r.iterations is not None
                   else itertools.count(1)):
            b = draw(rng)
            logits, counts, spikes = forward(params, b.x)
            terms = _loss_terms(r, b, logits, counts, spikes)
            loss = None
            for name, weight in r.losses:
                loss = weight * terms[name] if loss is None else loss + weight * terms[name]
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if r.lr_decay != "constant":
                f = lr_factor(it, r.iterations, r.lr_decay)
                for g, lr in zip(opt.param_groups, base_lr):
                    g["lr"] = lr * f
            opt.step()
            rec = {**({"stage": r.stage} if r.stage is not None else {}), "iteration": it,
                   "loss": float(loss), **{k: float(v) for k, v in terms.items()},
                   **({"rates": [float(sp.mean()) for sp in spikes]} if spikes is not None else {}),
                   "elapsed_s": time.perf_counter() - t_start,
                   "cpu_s": time.process_time() - cpu_start}
            over = r.minutes is not None and rec["elapsed_s"] > 60 * r.minutes
            if evaluate is not None and (it % r.val_every == 0 or it == r.iterations or over):
                val = float(evaluate(body()))
                rec["meta_val_acc"] = val
                if val > best_val:
                    best_val, best_it = val, it
                    best = {k: v.detach().clone() for k, v in body().items() if k != key}
            if log is not None:
                log.write(json.dumps(rec) + "\n")
                log.flush()
            if on_record is not None:
                on_record(rec)
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{float(loss):.3f}", val=f"{val:.3f}",
                                **({"r": f"{rec['rates'][-1]:.3f}"} if "rates" in rec else {}))
            if over:
                break
    finally:
        if bar is not None:
            bar.close()
        if log is not None:
            log.close()
    if best is None:
        best, best_it = {k: v.detach().clone() for k, v in body().items() if k != key}, it
    out = {**{k: v.detach() for k, v in best.items()}, key: theta0[key]}
    return out, {"iterations": it, "best_val": best_val, "best_iteration": best_it,
                 "wall_s": time.perf_counter() - t_start,
                 "cpu_s": time.process_time() - cpu_start}


def pretrain_body(s, theta0: dict, pc: PretrainConfig, log_path: Path | None = None,
                  progress: bool = True, seed: int = 0, evaluate=None) -> tuple[dict, dict]:
    """Stage 1 on setup `s` (offline.train.Setup) from theta0 (a calibrated float_lif params
    dict, head included and left as it is), train.seed `seed`: pretrain() with stage1_recipe.
    evaluate(params) -> meta-val accuracy, called every pc.val_every steps; the best body on it
    is returned. Returns (params, summary)."""
    return pretrain(s, theta0, stage1_recipe(pc, seed), evaluate=evaluate, log_path=log_path,
                    progress=progress)


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
