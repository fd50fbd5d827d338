"""Memory a training config needs up front, checked before anything runs: a meta-batch that
cannot fit is refused with the estimate, instead of allocating until the OS kills the
process.

The estimate is a lower bound, the meta-batch's tasks alone (every task's frames and their
encoded input, all held at once by offline.train.task_batch), so a refusal is never wrong; the
network's activations come on top."""
from __future__ import annotations

import os
import resource

from metaloihi.base.errors import UserError


def available_bytes() -> int | None:
    """Memory this process may still take: the smaller of the system's available memory and
    what an address-space limit (ulimit -v) leaves; None when neither can be read."""
    found = []
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    found.append(int(line.split()[1]) * 1024)
    except OSError:
        pass
    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    if soft != resource.RLIM_INFINITY:
        used = 0
        try:
            with open("/proc/self/status") as fh:
                for line in fh:
                    if line.startswith("VmSize:"):
                        used = int(line.split()[1]) * 1024
        except OSError:
            pass
        found.append(max(soft - used, 0))
    return min(found) if found else None


def meta_batch_bytes(cfg, frame_shape: tuple[int, ...]) -> tuple[int, str]:
    """(bytes, how) of one meta-batch's tasks: frames (1 byte per count) + encoded input."""
    from metaloihi.offline import model
    t, c, h, w = frame_shape
    ci, hi, wi = model.input_shape(frame_shape, cfg.model)
    steps = model.encoding(cfg.model).steps_of(t)
    item = 8 if cfg.train.dtype == "float64" else 4
    d = cfg.data
    samples = cfg.train.meta_batch * d.ways * (d.shots + d.queries)
    total = samples * (t * c * h * w + steps * ci * hi * wi * item)
    return total, (f"{cfg.train.meta_batch} tasks x {d.ways * (d.shots + d.queries)} samples of "
                   f"{t}x{c}x{h}x{w} frames and {steps}x{ci}x{hi}x{wi} {cfg.train.dtype} input")


def check_meta_batch(cfg, frame_shape: tuple[int, ...], available: int | None = None) -> None:
    need, how = meta_batch_bytes(cfg, frame_shape)
    free = available_bytes() if available is None else available
    if free is not None and need > free:
        raise UserError(f"train.meta_batch={cfg.train.meta_batch} cannot fit in memory: its "
                        f"tasks alone need about {need / 2 ** 30:.1f} GiB ({how}), and "
                        f"{free / 2 ** 30:.1f} GiB are available; lower train.meta_batch")
