"""Tasks per second of the few-shot sampler on the embedded sets (frames cached, warm).

Usage: .venv/bin/python benchmarks/datasets_task_sampling.py
"""
import time

from metaloihi.datasets.registry import load_dataset
from metaloihi.datasets.tasks import TaskSampler


def rate(sampler, seconds=3.0):
    sampler.sample()  # warm (double digits pools its halves once)
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        sampler.sample()
        n += 1
    return n / (time.perf_counter() - t0)


def main():
    for name, split in (("double_digits", "train"), ("gestures", "train"), ("gestures", "demo")):
        ds = load_dataset(name)
        for ways, shots, queries in ((5, 1, 1), (5, 1, 5)):
            r = rate(TaskSampler(ds, split, ways, shots, queries, seed=0))
            print(f"{name:13s} split={split:5s} {ways}-way {shots}-shot {queries} queries: "
                  f"{r:7.1f} tasks/s  ({r * ways * (shots + queries):8.0f} samples/s)")


if __name__ == "__main__":
    main()
