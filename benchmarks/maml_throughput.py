"""Meta-training throughput, same network, same tasks, same hardware, one run:

- ours (`maml.meta_gradient(..., "vmap")`): the frozen layers once for the whole meta-batch,
  layer by layer over the time axis (one conv per layer and window), the tasks' inner loops
  vmapped with torch.func.grad inside, the outer gradient by torch.autograd.grad;
- our per-task loop (`"loop"`): the same model one task at a time;
- the reference code's way (nmi-lab/snn_maml `MAML.get_outer_loss`/`adapt`): per task, the
  whole network stepped time step by time step (`float_lif.step`, burn-in without graph) on the
  support set in every inner step, torch.autograd.grad(create_graph=True) for the inner update,
  then the whole network again on the query set.

Prints tasks/s of each, the ratios (the one that matters: ours / the reference's way), and the
largest relative difference between the three meta-gradients. Then the peak RSS of a short run of
the demo config.

Workload: meta-batch 4, 5-way 1-shot, 10 queries per class, 100 steps, gradients
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
from functools import partial

import torch


def reference_way(meta, batch, specs, neurons, cfg):
    """The meta-gradient as the reference code computes it (module docstring): a plain per-task
    loop, the network stepped in time, full forward passes for support and query."""
    import torch.nn.functional as F

    from metaloihi.offline import maml, model
    from metaloihi.sim import float_lif, readout

    def net_logits(params, x):
        b, t_all = x.shape[:2]
        t0 = t_all - cfg.trunc
        state = float_lif.init_state(specs, b, x.dtype)
        a_in = [ls.a for ls in state]            # each connection's sum, delivered next step
        u = [ls.u for ls in state]
        v = [ls.v for ls in state]
        counts = 0
        for t in range(t_all):
            s = x[:, t]
            for i, spec in enumerate(specs):
                w = params[float_lif.weight_key(i)]
                # truncation as in float_lif.run: the window's first input sum has a graph
                with torch.set_grad_enabled(t >= t0 - 1):
                    a_next = float_lif.synapse(spec, w, s)
                with torch.set_grad_enabled(t >= t0):
                    u[i], v[i], s = float_lif.lif_step(
                        u[i], v[i], a_in[i], float_lif.layer_neuron(i, neurons[i], params, w))
                a_in[i] = a_next
            counts = counts + s
        return readout.logits({"counts": counts, "v_last": v[-1]}, neurons[-1].vth)

    leaves = {k: v.detach().requires_grad_(True) for k, v in meta.items()}
    keys = [float_lif.weight_key(i) for i in maml.adapted_layers(len(specs), cfg)]
    grads = {k: torch.zeros_like(v) for k, v in leaves.items()}
    n = batch[0].shape[0]
    for t in range(n):
        sx, sy, qx, qy = (b[t] for b in batch)
        params = maml.theta0_of(leaves)
        for _ in range(cfg.inner_steps):
            loss = F.cross_entropy(cfg.loss_scale * net_logits(params, sx), sy)
            gs = torch.autograd.grad(loss, [params[k] for k in keys],
                                     create_graph=not cfg.first_order)
            params = {**params, **{k: params[k] - leaves[f"log_inner_lr.{k.split('.')[1]}"].exp()
                                   * g for k, g in zip(keys, gs)}}
        loss = F.cross_entropy(cfg.loss_scale * net_logits(params, qx), qy) / n
        for k, g in zip(leaves, torch.autograd.grad(loss, list(leaves.values()),
                                                    allow_unused=True)):
            if g is not None:
                grads[k] += g
    return grads


def throughput(model_name: str, repeats: int, adapt: str, device: str) -> dict:
    from metaloihi.offline import config, maml, train
    over = {"data.queries": 10, "model.time_pool": 1, "maml.trunc": 30, "maml.adapt": adapt,
            "train.meta_batch": 4}
    if model_name == "paper":
        over.update({"model.pool": 1, "model.channels": [32, 64, 128]})
    cfg = config.load("demo_maml", over)    # the paper's MAML (SGD inner), as the reference code
    s = train.setup(cfg)
    meta = {k: v.to(device) for k, v in train.initial_meta(s).items()}
    ways = {"vmap": partial(maml.meta_gradient, mode="vmap"),
            "loop": partial(maml.meta_gradient, mode="loop"),
            "reference": reference_way}
    times, grads = {name: [] for name in ways}, {}
    for r in range(repeats + 1):          # round robin: the machine's noise hits every way alike
        batch = tuple(b.to(device) for b in train.task_batch(s, "train", 4, (0, r)))
        for name, fn in ways.items():
            if device == "cuda":
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            g = fn(meta, batch, s.specs, s.neurons, cfg.maml)
            if device == "cuda":
                torch.cuda.synchronize()
            times[name].append(time.perf_counter() - t0)
            if r == 0:                    # the first call warms up (lazy imports, allocator)
                grads[name] = g[0] if isinstance(g, tuple) else g
    out = {name: 4 / (sum(t[1:]) / repeats) for name, t in times.items()}
    ref = grads["reference"]
    out["max_rel_diff"] = max(
        float((grads[w][k] - ref[k]).abs().max() / ref[k].abs().max().clamp_min(1e-30))
        for w in ("vmap", "loop") for k in ref if ref[k].abs().max() > 0)
    return out


def demo_peak_rss(iterations: int) -> float:
    """Peak RSS (GiB) of `metaloihi train --config demo` for a few iterations, in a child."""
    code = ("from metaloihi.offline import config, train; import tempfile;"
            f"train.train(config.load('demo_maml', {{'train.iterations': {iterations}, "
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
    print(f"  ours: frozen layers batched, vmapped inner loops  {res['vmap']:7.2f} tasks/s")
    print(f"  our model, per-task loop                          {res['loop']:7.2f} tasks/s")
    print(f"  the reference code's way (per task, time-stepped) {res['reference']:7.2f} tasks/s")
    print(f"  ratio ours / reference's way  {res['vmap'] / res['reference']:6.2f}x   "
          f"(ours / our per-task loop {res['vmap'] / res['loop']:.2f}x)")
    print(f"  meta-gradients agree: max relative difference {res['max_rel_diff']:.1e}")
    faster = "vmap" if res["vmap"] > res["loop"] else "loop"
    auto = "vmap" if args.device.startswith("cuda") else "loop"
    print(f"  faster here: {faster}; train.mode = \"auto\" picks {auto} on {args.device}"
          + ("" if faster == auto else "  <- auto's choice is NOT the faster one here"))
    print(f"  peak RSS of this benchmark (both modes): "
          f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20:.2f} GiB")
    if rss is not None:
        print(f"  demo config peak RSS ({args.rss_iterations} iterations + validation): "
              f"{rss:.2f} GiB")


if __name__ == "__main__":
    main()
