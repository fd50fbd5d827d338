"""Run under torchrun by tests/test_offline_train.py: each process computes its share of one
meta-batch's meta-gradient (offline.train.distributed_meta_gradient); rank 0 saves the result.
The test gives torchrun a free port and METALOIHI_DIST_TIMEOUT_S: a peer that never comes is an
error within that time (init_process_group's timeout), not a hang."""
import sys

import torch

from metaloihi.offline import config, maml, model, train


def synthetic_setup():
    cfg = config.from_dict({"model": {"channels": [3], "kernel": 3},
                            "maml": {"inner_steps": 2, "inner_lr": 0.05, "trunc": 6},
                            "data": {"ways": 3}, "train": {"meta_batch": 4}})
    specs, neurons = model.build((12, 2, 6, 6), 3, cfg.model)
    g = torch.Generator().manual_seed(0)
    p = model.init_params(specs, g, torch.float64)
    x = (torch.rand(4, 6, 12, 2, 6, 6, generator=g, dtype=torch.float64) < 0.3).double()
    p = model.calibrate(specs, p, neurons, x.flatten(0, 1), 0.15, 0.2)
    y = torch.tensor([[0, 1, 2]] * 4)
    batch = (x[:, :3], y, x[:, 3:], y)
    meta = maml.init_meta(p, len(specs), cfg.maml)
    return train.Setup(cfg, None, specs, neurons, torch.float64), meta, batch


if __name__ == "__main__":
    s, meta, batch = synthetic_setup()
    rank, world = train._dist()
    grads, loss, acc = train.distributed_meta_gradient(meta, batch, s, rank, world)
    if rank == 0:
        torch.save({"grads": grads, "loss": loss, "world": world}, sys.argv[1])
    # leave the group before exiting: gloo's threads still running at exit abort the process
    # ("terminate called without an active exception"), now and then
    train.leave_group()
