"""The small training run the offline/ and run-folder tests share: gestures, a 2-layer body
(channels [4, 8]) and a head, 2 tasks x 5 ways per meta-batch, 6 iterations with a checkpoint
every 2, one thread (a few seconds on a CPU); and the `metaloihi train` command line for it."""
from __future__ import annotations

from pathlib import Path

TRAIN_TOML = """
[data]
dataset = "gestures"
queries = 1
[model]
channels = [4, 8]
kernel = 3
pool = 4
time_pool = 5
uniform_head = true
[maml]
trunc = 5
loss_scale = 0.1
[train]
meta_batch = 2
iterations = 6
val_every = 3
val_tasks = 4
checkpoint_every = 2
threads = 1
"""


def train_argv(config: Path, out: Path, *extra: str) -> list[str]:
    """`metaloihi train` of `config` into `out`, without the progress bar."""
    return ["train", "--config", str(config), "--out", str(out), "--no-progress", *extra]
