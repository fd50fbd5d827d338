"""What the benchmark scripts share for timing (run as scripts, they import it from here)."""
from __future__ import annotations

import time


def best_of(fn, reps: int) -> float:
    """Fastest of `reps` runs: the least disturbed by other load on a noisy machine."""
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)
