"""Meta-training (`metaloihi train`): Adam on the meta-parameters over meta-batches of tasks.
(About 500 lines: both stages, resume and validation share one run state, _Run; _train runs
its stages in order: _open_run, _stage1, _rule_start, _optimiser, _resume, _stage2.)

Reproducible and resumable: the tasks of iteration i come from np.random.default_rng([seed, i])
and stochastic rounding from torch.manual_seed(seed * 1_000_003 + i) (every stream:
offline/seeds.py), so a resumed run draws the same tasks as an uninterrupted one. Same seed,
same device, same thread count -> same result (CPU kernels are deterministic; on GPU also set
torch.use_deterministic_algorithms(True) and CUBLAS_WORKSPACE_CONFIG=:4096:8). Under torchrun
(WORLD_SIZE > 1) every process draws the same meta-batch, takes tasks rank::world, and the
meta-gradients are summed with all_reduce (gloo on CPU, nccl on GPU); rank 0 alone validates,
logs and writes checkpoints.
"""
from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import numpy as np
import torch

from metaloihi import rules
from metaloihi.datasets.tasks import sample_task
from metaloihi.base.errors import UserError
from metaloihi.base.torch_file import theta0_key
from metaloihi.offline import checkpoint, maml, model, pretrain, seeds
from metaloihi.offline.rule_start import fit_rule_start
from metaloihi.offline.config import Config, to_dict
from metaloihi.offline.describe import made_by, network_description


@dataclass
class Setup:
    """Everything a run derives from its config: data set, network and initial meta-params."""
    cfg: Config
    dataset: object
    specs: list
    neurons: list
    dtype: torch.dtype
    device: torch.device = torch.device("cpu")


def resolve_device(name: str, what: str = "train.device") -> torch.device:
    """"cpu", "cuda" or "cuda:K" -> torch.device; cuda where torch sees no GPU (or no GPU K)
    is a UserError, never a silent fallback to the CPU."""
    name = str(name)
    if name != "cpu" and name != "cuda" and not (name.startswith("cuda:") and
                                                 name[5:].isdigit()):
        raise UserError(f"{what}={name!r}; expected cpu, cuda or cuda:K (K: a GPU index)")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            why = ("this torch is a CPU-only build" if torch.version.cuda is None else
                   f"torch (CUDA {torch.version.cuda}) finds no usable GPU")
            raise UserError(f"{what}={name!r} but torch.cuda.is_available() is False here "
                            f"({why}); use cpu")
        index, count = (int(name[5:]) if ":" in name else 0), torch.cuda.device_count()
        if index >= count:
            raise UserError(f"{what}={name!r} but torch sees {count} GPU(s) here (cuda:0 to "
                            f"cuda:{count - 1})")
    return torch.device(name)


def load_data(cfg: Config):
    from metaloihi.datasets import load_dataset
    return load_dataset(cfg.data.dataset, seed=cfg.data.seed, root=cfg.data.root or None)


def setup(cfg: Config, dataset=None, device: str | None = None) -> Setup:
    """device: overrides cfg.train.device (evaluate runs where it is asked, not where the
    checkpoint was trained)."""
    dev = resolve_device(device or cfg.train.device,
                         "--device" if device else "train.device")
    dataset = load_data(cfg) if dataset is None else dataset
    specs, neurons = model.build(dataset.frame_shape, cfg.data.ways, cfg.model)
    dtype = {"float32": torch.float32, "float64": torch.float64}.get(cfg.train.dtype)
    if dtype is None:
        raise UserError(f"train.dtype={cfg.train.dtype!r}; expected float32 or float64")
    return Setup(cfg, dataset, specs, neurons, dtype, dev)


def task_batch(s: Setup, split: str, n: int, seed: tuple, shots: int | None = None,
               queries: int | None = None) -> tuple:
    """n encoded tasks stacked: (support_x [n, S, T, C, H, W], support_y, query_x, query_y)."""
    d = s.cfg.data
    rng = np.random.default_rng(list(seed))
    tasks = [sample_task(s.dataset, split, d.ways, shots or d.shots, queries or d.queries, rng)
             for _ in range(n)]
    enc = lambda x: model.encode(x, s.cfg.model).to(s.device, s.dtype)   # noqa: E731
    return (torch.stack([enc(t.support_x) for t in tasks]),
            torch.stack([t.support_y for t in tasks]).to(s.device),
            torch.stack([enc(t.query_x) for t in tasks]),
            torch.stack([t.query_y for t in tasks]).to(s.device))


def initial_theta0(s: Setup) -> dict[str, torch.Tensor]:
    """Random theta0, calibrated on training samples to the configured firing rates."""
    gen = torch.Generator().manual_seed(seeds.theta0(s.cfg.train.seed))
    theta0 = model.init_params(s.specs, gen, s.dtype, s.cfg.model.uniform_head)
    theta0 = {k: v.to(s.device) for k, v in theta0.items()}   # drawn on the CPU: same values
    sx, _, qx, _ = task_batch(s, s.cfg.data.train_split, 2, seeds.calibration(s.cfg.train.seed))
    x = torch.cat([sx.flatten(0, 1), qx.flatten(0, 1)])
    return model.calibrate(s.specs, theta0, s.neurons, x, s.cfg.model.init_rate,
                           s.cfg.model.head_init_rate)


def initial_meta(s: Setup) -> dict[str, torch.Tensor]:
    """Calibrated theta0 with the config's head start and rule constants as configured (no rule
    fit: baselines and readers that take eta and the head grid from a checkpoint)."""
    return stage2_meta(s, initial_theta0(s), fit_rule=False)


def stage2_meta(s: Setup, theta0: dict, log=None, record: dict | None = None,
                fit_rule: bool = True) -> dict[str, torch.Tensor]:
    """Meta-parameters for meta-training from theta0 (a calibrated or a stage-1 body): the head
    start of maml.head_start, and with rule.fit_start eta and the head's grid fitted to the
    body (offline/rule_start.py; recorded as the rule card's start_values, SOEL: soel.log_eta
    and soel.head_range, and in `record`: eta, head_range, float accuracy on the fit tasks)."""
    mc = s.cfg.maml
    theta0 = dict(theta0)
    head = model.float_lif.head_key(s.specs)
    if mc.head_start == "zero":
        theta0[head] = torch.zeros_like(theta0[head])
    meta = maml.init_meta(theta0, len(s.specs), mc)
    if mc.inner_rule != "sgd" and getattr(mc.rule, "fit_start", False) and fit_rule:
        batch = task_batch(s, s.cfg.data.train_split, 16, seeds.rule_start(s.cfg.train.seed))
        eta, rng, acc = fit_rule_start(s.specs, s.neurons, theta0, batch, mc, log=log)
        like = next(iter(meta.values()))
        meta.update(rules.get(mc.rule.name).start_values(
            eta, rng, partial(torch.tensor, dtype=like.dtype, device=like.device)))
        if record is not None:
            record.update(eta=eta, head_range=rng, float_accuracy=acc, tasks=16,
                          split=s.cfg.data.train_split)
    return meta


def prototype_val(s: Setup, split: str, tasks: int, seed: int):
    """Stage 1's validation: 1-shot nearest-prototype (cosine) accuracy on the penultimate
    spike counts of a split's tasks, as a function of the params."""
    def score(params: dict) -> float:
        f, y = pretrain.split_features(s, params, split)
        return float(pretrain.prototype_eval(f, y, s.cfg.data.ways, 1, s.cfg.data.queries,
                                             tasks, seed).mean())
    return score


def evaluate_split(s: Setup, meta: dict, split: str, n_tasks: int, seed: int,
                   chunk: int = 8, cfg: maml.MamlConfig | None = None, shots: int | None = None
                   ) -> np.ndarray:
    """Per-task query accuracies after adaptation on n_tasks tasks of a split (fixed seed)."""
    accs = []
    for lo in range(0, n_tasks, chunk):
        batch = task_batch(s, split, min(chunk, n_tasks - lo), seeds.evaluation(seed, lo),
                           shots=shots)
        _, acc = maml.adapt_and_score(meta, batch, s.specs, s.neurons, cfg or s.cfg.maml)
        accs.append(acc.cpu().numpy())
    return np.concatenate(accs)


def param_groups(meta: dict, keys: list[str], tc) -> list[dict]:
    """Adam groups of meta-training (pretrain.adam_groups): with train.relative_lr each weight
    tensor's step is outer_lr times its initial RMS; log-space scalars (inner_lr, the rule's)
    take outer_lr as is."""
    return pretrain.adam_groups(meta, keys, tc.outer_lr, 2 if tc.relative_lr else None)


def _dist() -> tuple[int, int]:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not torch.distributed.is_initialized():
        torch.distributed.init_process_group("gloo", timeout=dist_timeout())
    return (torch.distributed.get_rank() if world > 1 else 0), world


def leave_group() -> None:
    """Sync the processes, then destroy the group, without torch < 2.8's teardown deadlock:
    barrier() keeps weak refs to the last all_reduce's work, so that work (and its tensor, which
    Python has dropped) is freed in a gloo thread that needs the GIL, while destroy_process_group
    holds the GIL joining that thread. An all_reduce of a tensor Python holds until the group is
    gone syncs the same and leaves the gloo threads nothing to free (pytorch/pytorch#154976)."""
    token = torch.zeros(1)
    torch.distributed.all_reduce(token)
    torch.distributed.destroy_process_group()
    del token


def dist_timeout():
    """How long joining the group or a collective (all_reduce) waits for the other processes
    before it fails instead of hanging: METALOIHI_DIST_TIMEOUT_S seconds, default 1800 (torch's
    own; the others wait at the next all_reduce while rank 0 validates alone)."""
    from datetime import timedelta
    text = os.environ.get("METALOIHI_DIST_TIMEOUT_S", "1800")
    try:
        seconds = float(text)
    except ValueError:
        seconds = -1.0
    if not 0 < seconds < float("inf"):
        raise UserError(f"METALOIHI_DIST_TIMEOUT_S={text!r}; expected seconds > 0")
    return timedelta(seconds=seconds)


def distributed_meta_gradient(meta: dict, batch: tuple, s: Setup, rank: int, world: int):
    """This process's share (tasks rank::world) of the meta-batch; the sum over processes of
    local-mean x local-count / total = the 1-process meta-gradient (all_reduce)."""
    local = tuple(b[rank::world] for b in batch)
    n_local, n_total = local[0].shape[0], batch[0].shape[0]
    grads, losses, accs = maml.meta_gradient(meta, local, s.specs, s.neurons, s.cfg.maml,
                                             s.cfg.train.mode)
    if world > 1:
        flat = torch.cat([grads[k].reshape(-1) * n_local for k in grads]
                         + [losses.sum()[None], accs.sum()[None]])
        torch.distributed.all_reduce(flat)
        flat = flat / n_total
        out, lo = {}, 0
        for k, g in grads.items():
            out[k] = flat[lo:lo + g.numel()].view_as(g)
            lo += g.numel()
        return out, flat[-2], flat[-1]
    return grads, losses.mean(), accs.mean()


def _load_init(meta: dict, path: str | Path) -> dict:
    """Copy a checkpoint's meta-parameters into meta (same names and shapes, else UserError)."""
    from metaloihi.base.atomic import file_sha256
    state = checkpoint.load(path)
    theirs = state["meta"]
    if set(theirs) != set(meta) or any(theirs[k].shape != meta[k].shape for k in meta):
        diff = sorted(set(theirs) ^ set(meta)) or [k for k in meta
                                                   if theirs[k].shape != meta[k].shape]
        raise UserError(f"--init {str(path)!r}: its meta-parameters do not fit this config's "
                        f"network (first difference: {diff[0]})")
    with torch.no_grad():
        for k, v in theirs.items():
            meta[k].copy_(v.to(meta[k].device, meta[k].dtype))
    return {"path": str(path), "sha256": file_sha256(path),
            "iteration": int(state.get("iteration", 0)),
            "init_from": state.get("init_from", {})}


def _same_run(cfg_dict: dict) -> dict:
    """The config without the keys a resumed run may change (its horizon, where it runs; a
    different thread count changes float summation order, not the run's meaning)."""
    tr = {k: v for k, v in cfg_dict["train"].items()
          if k not in ("iterations", "time_limit_min", "device", "threads")}
    return {**cfg_dict, "train": tr}


def _covered_bytes(path: Path, data: bytes, iteration: int) -> tuple[int, bool]:
    """(length of the log's prefix the checkpoint covers, whether its last line lacks "\n").
    Records are in order (stage 1, then stage 2 by iteration), so what a resume redoes is a
    tail. A torn last line (a kill -9 mid-append) ends the prefix, with a warning; a damaged
    line before the end is an error naming it (cutting there would lose covered records)."""
    lines = data.split(b"\n")
    final = max([k for k, ln in enumerate(lines) if ln.strip()], default=-1)
    pos = 0
    for k, line in enumerate(lines):
        last = k >= final
        try:
            rec = json.loads(line) if line.strip() else {}
            rec.get("iteration")
        except (ValueError, AttributeError):
            if not last:
                raise UserError(f"--resume: {str(path)!r} line {k + 1} is not a JSON record "
                                f"({line[:60]!r}); the log is damaged before its end") from None
            print(f"warning: {str(path)!r}: dropped a torn last line ({len(line)} bytes, "
                  "an interrupted write)", file=sys.stderr, flush=True)
            return pos, False
        if rec.get("stage") != 1 and rec.get("iteration", 0) > iteration:
            return pos, False
        pos += len(line) + (k < len(lines) - 1)
    return pos, bool(data) and not data.endswith(b"\n")


def _trim_log(path: Path, iteration: int) -> None:
    """After a resume, cut the log back to what the checkpoint covers (the rest is redone). The
    log is only ever appended to or cut at its end (one ftruncate), never rewritten: a kill -9
    at any moment leaves every covered record in place."""
    if not path.exists():
        return
    with open(path, "rb+") as fh:
        data = fh.read()
        keep, unterminated = _covered_bytes(path, data, iteration)
        if keep < len(data):
            fh.truncate(keep)
        elif unterminated:        # a whole record whose newline was lost: the next appends
            fh.write(b"\n")       # must not join it
        fh.flush()
        os.fsync(fh.fileno())


def train(cfg: Config, out: str | Path, resume: bool = False, progress: bool = True,
          dataset=None, init: str | Path | None = None, overwrite: bool = True) -> dict:
    """Run meta-training into folder `out` (last.pt, best.pt, metrics.jsonl), holding it
    (offline/run_folder.py: a lock; with overwrite=False a folder with files is refused unless
    resume; resume needs last.pt). The command line passes overwrite=False unless --overwrite;
    API callers own their folders. SIGINT/SIGTERM/SIGHUP save last.pt and stop ("stopped":
    "signal SIGTERM"). init: start from another run's meta-parameters (a second stage with other
    settings, e.g. a smaller outer learning rate); the checkpoints record it as "init_from"."""
    from metaloihi.offline import budget, run_folder
    if init is not None:
        checkpoint.load(init)       # a bad --init is refused before minutes of stage 1
    dataset = load_data(cfg) if dataset is None else dataset
    budget.check_meta_batch(cfg, dataset.frame_shape)
    primary = int(os.environ.get("RANK", "0")) == 0
    with run_folder.claimed(out, resume, overwrite, primary), \
            run_folder.GracefulStop() as stop:
        return _train(cfg, out, resume, progress, dataset, init, stop)


@dataclass
class _Run:
    """One training run's state, which its stages share (rank 0 alone writes files)."""
    cfg: Config
    s: Setup
    out: Path
    rank: int
    world: int
    fresh: bool                  # not continuing from last.pt
    stop: object                 # run_folder.GracefulStop: a signal asks for a checkpoint
    t_start: float
    last: Path                   # the run folder's files
    best: Path
    log_path: Path
    stage1_path: Path
    split: dict | None = None    # the class ids of each split, recorded in the checkpoints
    meta: dict | None = None
    keys: list | None = None     # the learnt meta-parameters
    opt: torch.optim.Optimizer | None = None
    init_from: dict = field(default_factory=dict)
    start: int = 0               # the last iteration done before this process
    best_val: float = -1.0
    best_it: int = -1


def _append(path: Path, rec: dict) -> None:
    with open(path, "a") as fh:
        fh.write(json.dumps(rec) + "\n")


def _open_run(cfg: Config, out: str | Path, resume: bool, dataset, stop) -> _Run:
    """Threads, the process group, the setup; a fresh run's folder made and its log cleared."""
    t_start = time.perf_counter()
    if cfg.train.threads:
        torch.set_num_threads(cfg.train.threads)
    rank, world = _dist()
    if cfg.train.meta_batch < world:
        raise UserError(f"train.meta_batch={cfg.train.meta_batch} is smaller than the {world} "
                        "processes")
    s = setup(cfg, dataset)
    out = Path(out)
    run = _Run(cfg, s, out, rank, world, not (resume and (out / "last.pt").exists()), stop,
               t_start, out / "last.pt", out / "best.pt", out / "metrics.jsonl",
               out / "stage1.pt")
    if run.fresh and rank == 0:
        out.mkdir(parents=True, exist_ok=True)
        run.log_path.unlink(missing_ok=True)
    return run


def _stage1(run: _Run, init, progress: bool) -> tuple[dict, dict]:
    """(theta0 for stage 2, stage 1's summary): the calibrated random start, through stage 1
    when [pretrain] asks for it and no --init replaces it (on a resume: stage1.pt's body)."""
    cfg, s = run.cfg, run.s
    theta0 = initial_theta0(s)
    if cfg.pretrain.iterations == 0 or init is not None:
        return theta0, {}
    if run.stage1_path.exists() and not run.fresh:
        theta0 = maml.theta0_of(checkpoint.load(run.stage1_path)["meta"])
        return {k: v.to(s.device, s.dtype) for k, v in theta0.items()}, {}
    theta0, summary = pretrain.pretrain_body(
        s, theta0, cfg.pretrain, log_path=run.log_path if run.rank == 0 else None,
        progress=progress and run.rank == 0, seed=cfg.train.seed,
        evaluate=prototype_val(s, cfg.data.val_split, cfg.pretrain.val_tasks,
                               seeds.validation(cfg.train.seed)))
    if run.rank == 0:
        body = {theta0_key(k): v.detach().clone() for k, v in theta0.items()}
        checkpoint.save(run.stage1_path, {
            "meta": body, "config": to_dict(cfg), "stage": 1, "summary": summary,
            "made_by": made_by(to_dict(cfg), None),
            "network": network_description(cfg, s.dataset.frame_shape, s.specs, s.neurons,
                                           body)})
    return theta0, summary


def _rule_start(run: _Run, theta0: dict, progress: bool) -> None:
    """Stage 2's meta-parameters from theta0 (stage2_meta: the rule's fitted start, logged as
    iteration 0's rule_start record of a fresh run)."""
    record: dict = {}
    run.meta = stage2_meta(run.s, theta0, record=record,
                           log=(lambda m: print(m, flush=True)) if progress else None)
    if record and run.fresh and run.rank == 0:
        _append(run.log_path, {"stage": 2, "iteration": 0, "rule_start": record})


def _optimiser(run: _Run, init) -> None:
    """--init's meta-parameters copied in, the learnt ones marked, Adam over them."""
    run.init_from = _load_init(run.meta, init) if init is not None else {}
    run.keys = maml.learnable(run.meta, run.cfg.maml)
    for k in run.keys:
        run.meta[k].requires_grad_(True)
    run.opt = torch.optim.Adam(param_groups(run.meta, run.keys, run.cfg.train),
                               lr=run.cfg.train.outer_lr)


def _resume(run: _Run) -> None:
    """last.pt's meta-parameters, optimiser and counters, after checking it is this run's."""
    state = checkpoint.load(run.last)
    missing = [k for k in ("optimizer", "iteration", "best_val", "best_iteration")
               if k not in state]
    if missing:
        raise UserError(f"--resume: {str(run.last)!r} lacks {missing}; it is not a training "
                        "run's last.pt")
    if _same_run(state["config"]) != _same_run(to_dict(run.cfg)):
        raise UserError(f"--resume: {str(run.last)!r} was written with another config (only "
                        "train.iterations, train.time_limit_min and train.device may change)")
    with torch.no_grad():
        for k, v in state["meta"].items():
            run.meta[k].copy_(v.to(run.meta[k].device))
    run.opt.load_state_dict(state["optimizer"])
    run.start, run.best_val, run.best_it = (state["iteration"], state["best_val"],
                                            state["best_iteration"])


def _save(run: _Run, path: Path, iteration: int) -> None:
    cfg, s = run.cfg, run.s
    checkpoint.save(path, {"meta": {k: v.detach().clone() for k, v in run.meta.items()},
                           "optimizer": run.opt.state_dict(), "iteration": iteration,
                           "best_val": run.best_val, "best_iteration": run.best_it,
                           "config": to_dict(cfg), "split": run.split,
                           "made_by": made_by(to_dict(cfg), iteration, run.init_from),
                           "network": network_description(
                               cfg, s.dataset.frame_shape, s.specs, s.neurons, run.meta),
                           **({"init_from": run.init_from} if run.init_from else {})})


def _validate(run: _Run) -> float:
    """Meta-validation accuracy of run.meta."""
    tc = run.cfg.train
    return float(evaluate_split(run.s, run.meta, run.cfg.data.val_split, tc.val_tasks,
                                seed=seeds.validation(tc.seed)).mean())


def _best(run: _Run, val: float, iteration: int) -> None:
    """Iteration `iteration` (meta-val accuracy val) is the best so far: best.pt."""
    run.best_val, run.best_it = val, iteration
    _save(run, run.best, iteration)


def _meta_step(run: _Run, it: int) -> tuple[torch.Tensor, torch.Tensor]:
    """One Adam step on iteration it's meta-batch: (meta-loss, meta-train accuracy)."""
    tc = run.cfg.train
    batch = task_batch(run.s, run.cfg.data.train_split, tc.meta_batch,
                       seeds.meta_batch(tc.seed, it))
    torch.manual_seed(seeds.rounding(tc.seed, it))
    grads, loss, acc = distributed_meta_gradient(run.meta, batch, run.s, run.rank, run.world)
    for k in run.keys:
        run.meta[k].grad = grads[k].detach()
    run.opt.step()
    run.opt.zero_grad(set_to_none=True)
    return loss, acc


def _stopping(run: _Run) -> bool:
    """Past train.time_limit_min, or a signal asked to stop; every process stops at the same
    iteration (else one waits forever at the next all_reduce)."""
    tc = run.cfg.train
    over = bool(tc.time_limit_min) and \
        time.perf_counter() - run.t_start > 60 * tc.time_limit_min
    over = run.stop.requested() or over
    if run.world > 1:
        flag = torch.tensor([float(over)])
        torch.distributed.all_reduce(flag, op=torch.distributed.ReduceOp.MAX)
        over = bool(flag.item())
    return over


def _stage2(run: _Run, progress: bool) -> tuple[int, str]:
    """Meta-training from run.start to train.iterations: (the last iteration, why it
    stopped). Rank 0 validates every train.val_every iterations, logs each one and writes
    last.pt every train.checkpoint_every, at the end and when stopped."""
    tc = run.cfg.train
    bar = None
    if progress and run.rank == 0:
        from tqdm import tqdm
        bar = tqdm(total=tc.iterations, initial=run.start, unit="it", dynamic_ncols=True)
    val_acc, it, t_loop, n_tasks = float("nan"), run.start, time.perf_counter(), 0
    cpu0 = time.process_time()
    stopped = "iterations"
    if run.fresh and run.rank == 0 and tc.iterations > 0:
        # the start is a candidate too: meta-training must beat what stage 1 hands it
        val_acc = _validate(run)
        _best(run, val_acc, 0)
        _append(run.log_path, {"stage": 2, "iteration": 0, "meta_val_acc": val_acc,
                               "elapsed_s": time.perf_counter() - run.t_start,
                               **maml.learnt_values(run.meta)})
    for it in range(run.start + 1, tc.iterations + 1):
        loss, acc = _meta_step(run, it)
        n_tasks += tc.meta_batch
        over_time = _stopping(run)
        if run.rank != 0:
            if over_time:
                break
            continue
        rate = n_tasks / (time.perf_counter() - t_loop)
        rec = {"stage": 2, "iteration": it, "meta_loss": float(loss),
               "meta_train_acc": float(acc), "tasks_per_s": rate,
               "elapsed_s": time.perf_counter() - run.t_start,
               "cpu_s": time.process_time() - cpu0}
        if it % tc.val_every == 0 or it == tc.iterations:
            val_acc = rec["meta_val_acc"] = _validate(run)
            if val_acc > run.best_val:
                _best(run, val_acc, it)
        rec.update(maml.learnt_values(run.meta))
        _append(run.log_path, rec)
        if bar is not None:
            bar.update(1)
            bar.set_postfix(loss=f"{float(loss):.3f}", val=f"{val_acc:.3f}",
                            tasks_s=f"{rate:.1f}")
        if it % tc.checkpoint_every == 0 or it == tc.iterations or over_time:
            _save(run, run.last, it)
        if over_time:
            stopped = run.stop.reason or "time limit"
            break
    if bar is not None:
        bar.close()
    return it, stopped


def _train(cfg: Config, out: str | Path, resume: bool, progress: bool, dataset,
           init: str | Path | None, stop) -> dict:
    run = _open_run(cfg, out, resume, dataset, stop)
    theta0, stage1 = _stage1(run, init, progress)
    _rule_start(run, theta0, progress)
    _optimiser(run, init)
    if not run.fresh:
        _resume(run)
        if run.rank == 0:
            _trim_log(run.log_path, run.start)
    run.split = {k: [int(c) for c in run.s.dataset.split_classes(v)] for k, v in
                 (("train", cfg.data.train_split), ("val", cfg.data.val_split),
                  ("test", cfg.data.test_split))}
    it, stopped = _stage2(run, progress)
    if run.world > 1:
        leave_group()
    return {"iterations": it, "best_val": run.best_val, "best_iteration": run.best_it,
            "rank": run.rank, "stopped": stopped, "wall_s": time.perf_counter() - run.t_start,
            "out": str(run.out), "stage1": stage1, "cpu_s": time.process_time()}
