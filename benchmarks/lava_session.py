"""One 5-way 1-shot adaptation session with 50 queries (10 per class), on Lava's CPU simulator
and on sim/, in one run: wall time of each, their ratio, and whether they agree bit for bit.

Input: held-out embedded gestures (the demo split), encoded as the demo config does (2x2
sum-pool, 2 frame bins per step -> 50 steps of 2x16x16). The bundle is --bundle, or a random
network in the demo architecture (16-32-64 channels) exported on the fly: session time depends
on the architecture and activity, hardly on training.

    .venv/bin/python benchmarks/lava_session.py [--bundle PATH] [--queries 10] [--seed 0]
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from metaloihi.bridge.export import export_bundle, random_float_network
from metaloihi.datasets import TaskSampler, load_dataset
from metaloihi.offline.model import ModelConfig, encode
from metaloihi.datasets.tasks import support_order
from metaloihi.onchip.session import adapt


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bundle", help="bundle to deploy (default: random demo-architecture net)")
    ap.add_argument("--queries", type=int, default=10, help="queries per class")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    enc = ModelConfig(pool=2, time_pool=2)
    ds = load_dataset("gestures")
    task = TaskSampler(ds, "demo", ways=5, shots=1, queries=args.queries, seed=args.seed).sample()
    xs = encode(torch.as_tensor(task.support_x), enc).numpy() > 0
    xq = encode(torch.as_tensor(task.query_x), enc).numpy() > 0
    xs, ys = support_order(xs, task.support_y.numpy(), 5)
    yq = task.query_y.numpy()
    with tempfile.TemporaryDirectory() as tmp:
        bundle = args.bundle
        if bundle is None:
            bundle = str(Path(tmp) / "demo_random.h5")
            specs, params, neurons = random_float_network(tuple(xs.shape[2:]), ways=5,
                                                          channels=(16, 32, 64), seed=args.seed)
            export_bundle(bundle, specs, params, neurons)
        t0 = time.perf_counter()
        sim = adapt(bundle, xs, ys, xq, yq, backend="sim")
        t_sim = time.perf_counter() - t0
        t0 = time.perf_counter()
        lava = adapt(bundle, xs, ys, xq, yq, backend="lava")
        t_lava = time.perf_counter() - t0
    same = (np.array_equal(sim.head_spikes, lava.head_spikes)
            and np.array_equal(sim.weights, lava.weights))
    n = len(xs) + len(xq)
    print(f"session: 5-way 1-shot, {len(xq)} queries, {xs.shape[1]} steps of {tuple(xs.shape[2:])}"
          f", bundle {'random demo-architecture' if args.bundle is None else args.bundle}")
    print(f"Lava CPU : {t_lava:7.1f} s per session ({t_lava / n:.2f} s per sample)   target <= 60 s")
    print(f"sim/     : {t_sim:7.2f} s per session   ratio {t_lava / t_sim:.0f}x")
    print(f"identical spikes and learnt weights: {same}; accuracy lava {lava.accuracy:.2f} "
          f"sim {sim.accuracy:.2f}")


if __name__ == "__main__":
    main()
