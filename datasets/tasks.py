"""N-way K-shot few-shot tasks (ways, shots, queries) from a class split of a frame data set."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from metaloihi.base.errors import UserError
from metaloihi.datasets.encoding import encode


@dataclass
class Task:
    """One few-shot task. Labels are 0..ways-1, assigned to `classes` in order (a fresh random
    order per task, so a label carries no meaning across tasks)."""
    support_x: torch.Tensor   # [ways*shots, T, 2, H, W] float32
    support_y: torch.Tensor   # [ways*shots] int64
    query_x: torch.Tensor     # [ways*queries, T, 2, H, W] float32
    query_y: torch.Tensor     # [ways*queries] int64
    classes: np.ndarray       # [ways] data set class ids; label i is classes[i]


def _draw(dataset, split: str, ways: int, shots: int, queries: int, rng: np.random.Generator):
    """Sample indices (support shot-major, query), their labels and the chosen classes."""
    classes = dataset.split_classes(split)
    if ways < 1 or shots < 1 or queries < 0:
        raise UserError(f"task: ways={ways}, shots={shots}, queries={queries}; expected "
                        "ways >= 1, shots >= 1, queries >= 0")
    if ways > len(classes):
        raise UserError(f"task: ways={ways} but split {split!r} of {dataset.name!r} has "
                        f"{len(classes)} classes")
    chosen = rng.choice(classes, ways, replace=False)  # random order = label permutation
    support, query = [], []
    for c in chosen:
        idx = dataset.class_indices(int(c))
        if len(idx) < shots + queries:
            raise UserError(f"task: class {dataset.class_names[int(c)]!r} of {dataset.name!r} "
                            f"has {len(idx)} samples; shots + queries = {shots + queries}")
        pick = rng.choice(idx, shots + queries, replace=False)
        support.append(pick[:shots])
        query.append(pick[shots:])
    s_idx = np.stack(support, 1).reshape(-1)            # shot-major
    q_idx = np.stack(query, 1).reshape(-1) if queries else np.zeros(0, int)
    labels = np.arange(ways, dtype=np.int64)
    return s_idx, q_idx, np.tile(labels, shots), np.tile(labels, queries), np.asarray(chosen)


def sample_task(dataset, split: str, ways: int, shots: int, queries: int,
                rng: np.random.Generator) -> Task:
    """Draw ways classes from `split`, then shots + queries distinct samples of each.

    Support and query samples of a class never overlap; samples are ordered shot-major
    (class 0..ways-1 for shot 0, then shot 1, ...), the order the on-chip demo presents them."""
    s_idx, q_idx, s_y, q_y, chosen = _draw(dataset, split, ways, shots, queries, rng)
    both = dataset.frames(np.concatenate([s_idx, q_idx]))
    x = torch.from_numpy(np.ascontiguousarray(both)).to(torch.float32)
    n = len(s_idx)
    return Task(x[:n], torch.from_numpy(s_y), x[n:], torch.from_numpy(q_y), chosen)


@dataclass
class EncodedTask:
    """A task as the chip sees it: bool input spikes, support set shot-major (the order the
    chip is shown), labels 0..ways-1 as numpy int64."""
    support_x: np.ndarray     # bool [ways*shots, T', *input_shape]
    support_y: np.ndarray     # int64 [ways*shots]
    query_x: np.ndarray       # bool [ways*queries, T', *input_shape]
    query_y: np.ndarray       # int64 [ways*queries]
    classes: np.ndarray       # [ways] data set class ids; label i is classes[i]


def encoded_task(dataset, split: str, ways: int, shots: int, queries: int,
                 rng: np.random.Generator, encoding) -> EncodedTask:
    """The task sample_task draws from the same rng, as input spikes of the one encoding
    (datasets/encoding.py): frames go straight to spikes, with no torch round trip."""
    s_idx, q_idx, s_y, q_y, chosen = _draw(dataset, split, ways, shots, queries, rng)
    x = encode(dataset.frames(np.concatenate([s_idx, q_idx])), encoding)
    return EncodedTask(x[:len(s_idx)], s_y, x[len(s_idx):], q_y, chosen)


def support_order(x: np.ndarray, y: np.ndarray, ways: int) -> tuple[np.ndarray, np.ndarray]:
    """Reorder a support set to shot-major (class 0..ways-1 of shot 0, then of shot 1, ...),
    the order sample_task draws and the chip is shown; x may be any per-sample array."""
    y = np.asarray(y)
    per = [np.flatnonzero(y == c) for c in range(ways)]
    shots = min(len(p) for p in per)
    idx = np.array([per[c][s] for s in range(shots) for c in range(ways)], np.int64)
    return np.asarray(x)[idx], y[idx]


class TaskSampler:
    """An endless, seeded stream of tasks: same seed -> same tasks."""

    def __init__(self, dataset, split: str, ways: int = 5, shots: int = 1, queries: int = 1,
                 seed: int = 0):
        dataset.split_classes(split)  # fail early on a bad split name
        self.dataset, self.split = dataset, split
        self.ways, self.shots, self.queries = ways, shots, queries
        self.rng = np.random.default_rng(seed)

    def sample(self) -> Task:
        return sample_task(self.dataset, self.split, self.ways, self.shots, self.queries,
                           self.rng)

    def __iter__(self):
        while True:
            yield self.sample()


def split_samples(dataset, split: str, n: int, rng: np.random.Generator) -> np.ndarray:
    """n distinct samples of a class split, drawn with rng: their indices, sorted."""
    idx = np.flatnonzero(np.isin(dataset.labels, dataset.split_classes(split)))
    if len(idx) < n:
        raise UserError(f"{n} samples asked of split {split!r} of {dataset.name!r}, which has "
                        f"{len(idx)}")
    return np.sort(rng.choice(idx, n, replace=False))
