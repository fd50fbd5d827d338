"""Every random stream offline/ draws from train.seed (or evaluate's seed), named once. Task
streams are numpy spawn keys (np.random.default_rng(list(key)), as offline.train.task_batch
takes them); the others are integers for torch.manual_seed or np.random.default_rng. The values
are the ones training has always used: changing one changes every result drawn from it.

  theta0(seed)            the torch generator of a random theta0 (model.init_params): seed
  meta_batch(seed, it)    the tasks of outer iteration it (1, 2, ...): (seed, it)
  calibration(seed)       the tasks that calibrate a random theta0's firing rates: (seed, 2**31)
  rule_start(seed)        the tasks stage 2's rule-start fit runs on: (seed, 2**31 + 1)
  evaluation(seed, lo)    the evaluated tasks from the lo-th on (chunks): (seed, 10_000_000 + lo)
  validation(seed)        the seed of meta-validation and stage 1's prototype validation: seed + 1
  rounding(seed, it)      torch's seed for iteration it's stochastic rounding:
                          seed * 1_000_003 + it (fits 64 bits for seeds below 2**32:
                          offline/config.py's SEED_MAX)
  stage1_samples(seed)    stage 1's sample draws: [seed, 1]
  stage1_readout(seed)    the torch generator of stage 1's temporary readout: seed
  baseline_head(seed)     evaluate's cross-entropy baseline (its own seed, 0 from `metaloihi
  baseline_samples(seed)  evaluate`): the torch generator of its wide head, and the numpy
                          generator of its batches: both seed
Iterations stay below 2**31, so no iteration's key meets the calibration or rule-start key.
"""
from __future__ import annotations

_CALIBRATION = 2 ** 31
_RULE_START = 2 ** 31 + 1
_EVALUATION = 10_000_000
_ROUNDING_STRIDE = 1_000_003


def theta0(seed: int) -> int:
    return seed


def meta_batch(seed: int, it: int) -> tuple[int, int]:
    return (seed, it)


def calibration(seed: int) -> tuple[int, int]:
    return (seed, _CALIBRATION)


def rule_start(seed: int) -> tuple[int, int]:
    return (seed, _RULE_START)


def evaluation(seed: int, lo: int) -> tuple[int, int]:
    return (seed, _EVALUATION + lo)


def validation(seed: int) -> int:
    return seed + 1


def rounding(seed: int, it: int) -> int:
    return seed * _ROUNDING_STRIDE + it


def stage1_samples(seed: int) -> list[int]:
    return [seed, 1]


def stage1_readout(seed: int) -> int:
    return seed


def baseline_head(seed: int) -> int:
    return seed


def baseline_samples(seed: int) -> int:
    return seed
