"""Time generating each full embedded data set from scratch (no cache), and check determinism.

Usage: .venv/bin/python benchmarks/datasets_generation.py   (target: <= 60 s each on 2 cores)
"""
import hashlib
import os
import shutil
import tempfile
import time

import numpy as np


def main():
    os.environ["METALOIHI_CACHE"] = tempfile.mkdtemp(prefix="metaloihi-bench-")
    from metaloihi.datasets.digits import digits_dataset, double_digits_dataset
    from metaloihi.datasets.gestures import gestures_dataset

    print(f"cpu cores: {os.cpu_count()}  cache: {os.environ['METALOIHI_CACHE']}")
    for name, make in (("digits", digits_dataset), ("gestures", gestures_dataset)):
        t0 = time.perf_counter()
        ds = make(seed=0, use_cache=True)  # empty cache: generates and writes
        gen = time.perf_counter() - t0
        t0 = time.perf_counter()
        make(seed=0, use_cache=True)
        load = time.perf_counter() - t0
        f = ds.frames(np.arange(min(len(ds), 200)))
        digest = hashlib.sha256(np.ascontiguousarray(ds.data).tobytes()).hexdigest()[:16]
        print(f"{name:9s} samples={len(ds):5d} classes={len(np.unique(ds.labels)):3d} "
              f"frames={ds.frame_shape} generate={gen:6.1f} s  cached load={load:5.2f} s  "
              f"size={ds.data.nbytes / 1e6:5.1f} MB  events/sample={f.sum((1, 2, 3, 4)).mean():6.0f}"
              f"  sha256[:16]={digest}")
    t0 = time.perf_counter()
    dd = double_digits_dataset(seed=0)
    dd.frames([0])
    print(f"double_digits samples={len(dd)} classes=100 frames={dd.frame_shape} "
          f"build from cached digits={time.perf_counter() - t0:5.2f} s")
    shutil.rmtree(os.environ["METALOIHI_CACHE"])


if __name__ == "__main__":
    main()
