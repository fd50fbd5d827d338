"""Meta-training throughput: torch.func (vmap over the tasks of a meta-batch, nested grad) against
a per-task Python loop with torch.autograd.grad(create_graph=True) (the reference code's way),
same model, same tasks, same hardware; prints tasks/s of each and the ratio. Then the peak RSS
of a short run of the demo config.

Workload (issue 5): meta-batch 4, 5-way 1-shot, 10 queries per class, 100 steps, gradients
truncated to the last 30, second order, head adapted. --model paper: table 2's 32c5-64c5-128c5
on 32x32 gestures; --model demo: the demo config's network (16x16 input, 16/32/64 channels),
still at 100 steps.

    .venv/bin/python benchmarks/maml_throughput.py [--model demo|paper] [--repeats 3]
"""
from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import time

import torch


def throughput(model_name: str, repeats: int, adapt: str, device: str) -> dict:
    from metaloihi.offline import config, maml, train
    over = {"data.queries": 10, "model.time_pool": 1, "maml.trunc": 30, "maml.adapt": adapt,
            "train.meta_batch": 4}
    if model_name == "paper":
        over.update({"model.pool": 1, "model.channels": [32, 64, 128]})
    cfg = config.load("demo", over)
    s = train.setup(cfg)
    meta = {k: v.to(device) for k, v in train.initial_meta(s).items()}
    out = {}
    for mode in ("vmap", "loop"):
        times = []
        for r in range(repeats + 1):      # the first call warms up (lazy imports, allocator)
            batch = tuple(b.to(device) for b in train.task_batch(s, "train", 4, (0, r)))
            if device == "cuda":
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            maml.meta_gradient(meta, batch, s.specs, s.neurons, cfg.maml, mode)
            if device == "cuda":
                torch.cuda.synchronize()
            times.append(time.perf_counter() - t0)
        out[mode] = 4 / (sum(times[1:]) / repeats)
    return out


def demo_peak_rss(iterations: int) -> float:
    """Peak RSS (GiB) of `metaloihi train --config demo` for a few iterations, in a child."""
    code = ("from metaloihi.offline import config, train; import tempfile;"
            f"train.train(config.load('demo', {{'train.iterations': {iterations}, "
            "'train.val_every': 10, 'train.val_tasks': 20}), tempfile.mkdtemp(), "
            "progress=False)")
    subprocess.run([sys.executable, "-c", code], check=True)
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 2 ** 20


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", choices=("demo", "paper"), default="demo")
    ap.add_argument("--adapt", default="head", help="head | all")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--rss-iterations", type=int, default=20, help="0: skip the RSS run")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    # the RSS child first: a forked child's peak RSS counts the parent's pages before exec
    rss = demo_peak_rss(args.rss_iterations) if args.rss_iterations else None
    res = throughput(args.model, args.repeats, args.adapt, args.device)
    print(f"model={args.model} adapt={args.adapt} device={args.device} threads={args.threads}: "
          "meta-batch 4, 5-way 1-shot, 10 queries, 100 steps, trunc 30, second order")
    print(f"  vmap (torch.func)          {res['vmap']:8.2f} tasks/s")
    print(f"  per-task autograd.grad loop {res['loop']:7.2f} tasks/s")
    print(f"  ratio vmap / loop           {res['vmap'] / res['loop']:7.2f}x")
    print(f"  peak RSS of this benchmark (both modes): "
          f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20:.2f} GiB")
    if rss is not None:
        print(f"  demo config peak RSS ({args.rss_iterations} iterations + validation): "
              f"{rss:.2f} GiB")


if __name__ == "__main__":
    main()
