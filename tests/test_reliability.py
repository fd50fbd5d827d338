"""Nothing lost, nothing silent. Atomic writes never replace what is not a regular
file; NaN/inf checkpoints are refused at load for every consumer; the metrics log is append-only
and survives a torn last line; run folders are claimed (refuse a non-empty one, a lock for the
run, --resume needs last.pt); signals checkpoint; paths, bundle and config values are checked.

One file over 400 lines on purpose: one test per failure mode, sharing the CLI harness. CLI cases end like the bad-input corpus: exit 1, one
line on stderr naming the thing and the value, no traceback, no temporary file."""
from __future__ import annotations

import json
import os
import shlex
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from helpers import bounded
from metaloihi import cli
from metaloihi.base import atomic
from metaloihi.base.errors import UserError

ROOT = Path(__file__).resolve().parents[1]


def run_cli(argv: str | list[str], capsys) -> tuple[int, str, str]:
    """metaloihi <argv> in-process through the CLI's error handling: (exit code, out, err)."""
    args = shlex.split(argv) if isinstance(argv, str) else argv
    with pytest.raises(SystemExit) as exc:
        cli.main(args)
    out, err = capsys.readouterr()
    return exc.value.code, out, err


def one_line_error(code: int, out: str, err: str, *fragments: str) -> str:
    """The corpus's rule: exit 1, one line on stderr, no traceback; it names `fragments`."""
    lines = err.strip().splitlines()
    assert code == 1, (code, err[-2000:])
    assert "Traceback" not in out + err
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    for f in fragments:
        assert f in lines[0], (f, lines[0])
    return lines[0]


def no_temps(folder: Path) -> None:
    assert not [p for p in folder.rglob("*") if ".tmp" in p.name], "a temporary file was left"


# --- atomic replace only ever replaces a regular file ------------------------------------
def _device_node(tmp_path: Path) -> Path | None:
    """A character device like /dev/null, made in tmp_path (root only): tests never touch the
    real /dev."""
    node = tmp_path / "null"
    try:
        os.mknod(node, stat.S_IFCHR | 0o666, os.makedev(1, 3))
    except (PermissionError, OSError):
        return None
    return node


def test_atomic_write_refuses_a_fifo_and_leaves_it_a_fifo(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    with pytest.raises(UserError, match=r"pipe.*named pipe \(FIFO\), not a regular file"):
        atomic.write_bytes(fifo, b"x", "bundle")
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)
    no_temps(tmp_path)


def test_atomic_write_refuses_a_character_device(tmp_path):
    node = _device_node(tmp_path)
    if node is None:
        pytest.skip("mknod needs root")
    with pytest.raises(UserError, match="character device, not a regular file"):
        atomic.write_bytes(node, b"x", "bundle")
    assert stat.S_ISCHR(os.stat(node).st_mode)      # still the device, not a file
    no_temps(tmp_path)


def test_export_out_device_is_one_line_and_the_device_stays(tmp_path, capsys):
    node = _device_node(tmp_path)
    if node is None:
        node = tmp_path / "pipe"
        os.mkfifo(node)
    code, out, err = run_cli(f"export --random --input-shape 2,8,8 --channels 2 --out {node}",
                             capsys)
    one_line_error(code, out, err, "cannot write bundle", str(node), "not a regular file")
    assert not stat.S_ISREG(os.stat(node).st_mode)
    no_temps(tmp_path)


def test_atomic_write_refuses_stdout_dash(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(UserError, match="'-' \\(standard output\\)"):
        atomic.write_bytes("-", b"x", "evaluation JSON")
    assert not (tmp_path / "-").exists()


def test_atomic_write_through_a_symlink_keeps_the_link(tmp_path):
    real = tmp_path / "real.json"
    real.write_text("old")
    link = tmp_path / "link.json"
    link.symlink_to(real)
    atomic.write_bytes(link, b"new")
    assert link.is_symlink() and real.read_text() == "new"


# --- paths and stale temp files -------------------------------------------------
def test_a_255_character_name_is_written(tmp_path):
    path = tmp_path / ("n" * 251 + ".bin")
    assert len(path.name) == 255
    atomic.write_bytes(path, b"abc")
    assert path.read_bytes() == b"abc"
    no_temps(tmp_path)


def test_stale_temp_files_of_dead_processes_are_cleaned(tmp_path):
    dead = bounded.run([sys.executable, "-c", "import os; print(os.getpid())"],
                       capture_output=True, text=True, timeout=60).stdout.strip()
    stale = tmp_path / f".last.pt.tmp{dead}"
    stale.write_bytes(b"half a checkpoint")
    other = tmp_path / f".best.pt.tmp{dead}"
    other.write_bytes(b"half")
    live = tmp_path / f".last.pt.tmp{os.getppid()}"     # a live process's: left alone
    live.write_bytes(b"being written")
    atomic.write_bytes(tmp_path / "last.pt", b"whole")
    assert not stale.exists() and other.exists() and live.exists()
    assert atomic.clean_stale_temps(tmp_path) == [other]


def test_a_fifo_as_checkpoint_or_config_is_refused_not_a_hang(tmp_path, capsys):
    fifo = tmp_path / "x.pt"
    os.mkfifo(fifo)
    code, out, err = run_cli(f"evaluate {fifo} --tasks 2", capsys)
    one_line_error(code, out, err, "x.pt", "named pipe (FIFO)")
    toml = tmp_path / "c.toml"
    os.mkfifo(toml)
    code, out, err = run_cli(f"train --config {toml} --out {tmp_path}/run", capsys)
    one_line_error(code, out, err, "c.toml", "named pipe (FIFO)")
    assert not (tmp_path / "run").exists()


# --- NaN/inf checkpoints refused at load, for every consumer ---------------------------
def _nan_checkpoint(path: Path, value=float("nan")) -> Path:
    from metaloihi.offline import checkpoint, config
    cfg = config.to_dict(config.load("demo"))
    w = torch.randn(16, 2, 5, 5)
    w[3, 1, 2, 4] = value
    checkpoint.save(path, {"meta": {"theta0.layers.0.weight": w}, "config": cfg,
                           "iteration": 3})
    return path


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_checkpoint_load_refuses_nan_and_inf(tmp_path, value):
    from metaloihi.offline import checkpoint
    path = _nan_checkpoint(tmp_path / "c.pt", value)
    with pytest.raises(UserError) as err:
        checkpoint.load(path)
    msg = str(err.value)
    assert "c.pt" in msg and "theta0.layers.0.weight" in msg and "[3, 1, 2, 4]" in msg
    assert str(value) in msg


def test_checkpoint_load_refuses_nan_in_adams_state(tmp_path):
    from metaloihi.offline import checkpoint, config
    cfg = config.to_dict(config.load("demo"))
    opt = {"state": {0: {"step": torch.tensor(3.0), "exp_avg_sq": torch.tensor([1.0, np.nan])}},
           "param_groups": []}
    checkpoint.save(tmp_path / "c.pt", {"meta": {"a": torch.zeros(2)}, "config": cfg,
                                        "optimizer": opt})
    with pytest.raises(UserError, match=r"optimizer state 0.exp_avg_sq\[1\] = nan is not a finite number"):
        checkpoint.load(tmp_path / "c.pt")


@pytest.mark.parametrize("command", ["evaluate {ckpt} --tasks 2",
                                     "train --init {ckpt} --out {tmp}/run",
                                     "export --checkpoint {ckpt} --out {tmp}/b.h5"])
def test_every_consumer_refuses_a_nan_checkpoint(tmp_path, capsys, command):
    ckpt = _nan_checkpoint(tmp_path / "nan.pt")
    before = ckpt.read_bytes()
    code, out, err = run_cli(command.format(ckpt=ckpt, tmp=tmp_path), capsys)
    one_line_error(code, out, err, "nan.pt", "theta0.layers.0.weight", "nan")
    assert ckpt.read_bytes() == before


# --- run folders: no silent overwrite, one writer, --resume needs last.pt ------------
from test_offline_train import TINY  # noqa: E402  (the one tiny training config)


@pytest.fixture()
def tiny(tmp_path) -> Path:
    path = tmp_path / "tiny.toml"
    path.write_text(TINY)
    return path


def _train_argv(tiny: Path, out: Path, *extra: str) -> list[str]:
    return ["train", "--config", str(tiny), "--out", str(out), "--no-progress", *extra]


def _snapshot(folder: Path) -> dict:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


def test_train_refuses_a_folder_with_a_run_and_leaves_it_untouched(tmp_path, tiny, capsys):
    out = tmp_path / "run"
    out.mkdir()
    (out / "best.pt").write_bytes(b"sixty iterations of work")
    (out / "metrics.jsonl").write_text('{"stage": 2, "iteration": 0}\n')
    before = _snapshot(out)
    code, o, e = run_cli(_train_argv(tiny, out, "--set", "train.iterations=1"), capsys)
    one_line_error(code, o, e, str(out), "not empty", "best.pt", "--resume", "--overwrite")
    assert _snapshot(out) == before and not (out / ".lock").exists()


def test_resume_without_last_pt_is_an_error(tmp_path, tiny, capsys):
    code, o, e = run_cli(_train_argv(tiny, tmp_path / "run", "--resume"), capsys)
    one_line_error(code, o, e, "--resume", "last.pt", "does not exist", "nothing to resume")
    assert not (tmp_path / "run").exists()       # no empty folder left behind
    code, o, e = run_cli(_train_argv(tiny, tmp_path / "run", "--resume", "--overwrite"), capsys)
    one_line_error(code, o, e, "at most one of --resume and --overwrite")


def test_a_second_writer_gets_a_clear_error_naming_the_holder(tmp_path, tiny, capsys):
    out = tmp_path / "run"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from pathlib import Path; "
         "from metaloihi.offline.run_folder import RunLock; Path(sys.argv[1]).mkdir(); "
         "RunLock(Path(sys.argv[1])).acquire(); print('held', flush=True); time.sleep(60)",
         str(out)], stdout=subprocess.PIPE, text=True)
    try:
        import select
        ready, _, _ = select.select([holder.stdout], [], [], 120)
        assert ready, "the lock holder did not report within 120 s"
        assert holder.stdout.readline().strip() == "held"
        code, o, e = run_cli(_train_argv(tiny, out), capsys)
        one_line_error(code, o, e, str(out), "in use by another `metaloihi train`",
                       f"pid {holder.pid}")
    finally:
        holder.kill()
        bounded.finish(holder, 30, "the killed lock holder")
    assert sorted(p.name for p in out.iterdir()) == [".lock"]   # nothing written by us


def test_a_stale_lock_of_a_killed_run_is_taken_over(tmp_path):
    from metaloihi.offline.run_folder import RunLock
    out = tmp_path / "run"
    out.mkdir()
    (out / ".lock").write_text("pid 999999 on elsewhere, since 2020-01-01T00:00:00+00:00\n")
    lock = RunLock(out).acquire()        # no flock on it: the holder is gone
    assert f"pid {os.getpid()}" in (out / ".lock").read_text()
    lock.release()
    assert not (out / ".lock").exists()


# --- metrics.jsonl is append-only; a torn tail is dropped with a warning --------------
def _log(path: Path, records: list[dict], tail: bytes = b"") -> bytes:
    data = b"".join(json.dumps(r).encode() + b"\n" for r in records) + tail
    path.write_bytes(data)
    return data


def test_trim_log_cuts_only_the_uncovered_tail_in_place(tmp_path):
    from metaloihi.offline.train import _trim_log
    path = tmp_path / "metrics.jsonl"
    recs = ([{"stage": 1, "iteration": i} for i in range(1, 4)]
            + [{"stage": 2, "iteration": 0, "rule_start": {"eta": 1.0}},
               {"stage": 2, "iteration": 0, "meta_val_acc": 0.2}]
            + [{"stage": 2, "iteration": i} for i in range(1, 8)])
    data = _log(path, recs)
    inode = path.stat().st_ino
    _trim_log(path, 4)
    kept = path.read_bytes()
    assert data.startswith(kept) and path.stat().st_ino == inode     # cut, never rewritten
    its = [json.loads(ln) for ln in kept.decode().splitlines()]
    assert its == recs[:9]              # stage 1, rule start, iteration 0, 1..4


def test_trim_log_drops_a_torn_last_line_with_a_warning(tmp_path, capsys):
    from metaloihi.offline.train import _trim_log
    path = tmp_path / "metrics.jsonl"
    recs = [{"stage": 2, "iteration": i} for i in range(3)]
    data = _log(path, recs, tail=b'{"stage": 2, "iteration": 3, "meta_lo')
    _trim_log(path, 5)
    assert path.read_bytes() == data[: data.rindex(b"\n") + 1]
    err = capsys.readouterr().err
    assert "warning" in err and "metrics.jsonl" in err and "torn last line (37 bytes" in err


def test_trim_log_refuses_a_damaged_line_before_the_end(tmp_path):
    from metaloihi.offline.train import _trim_log
    path = tmp_path / "metrics.jsonl"
    data = _log(path, [{"stage": 2, "iteration": 0}]) + b"garbage\n" + b'{"iteration": 1}\n'
    path.write_bytes(data)
    with pytest.raises(UserError, match="line 2 is not a JSON record"):
        _trim_log(path, 5)
    assert path.read_bytes() == data


def test_resume_after_a_torn_append_continues_the_log(tmp_path, tiny, capsys):
    out = tmp_path / "run"
    code, o, e = run_cli(_train_argv(tiny, out, "--set", "train.iterations=4"), capsys)
    assert code == 0, e
    log = out / "metrics.jsonl"
    covered = log.read_bytes()
    with open(log, "ab") as fh:
        fh.write(b'{"stage": 2, "iteration": 5, "meta_loss": 0.')     # a kill mid-append
    code, o, e = run_cli(_train_argv(tiny, out, "--resume"), capsys)
    assert code == 0, e
    assert "dropped a torn last line" in e and "Traceback" not in e
    data = log.read_bytes()
    assert data.startswith(covered)
    assert [json.loads(ln)["iteration"] for ln in data.decode().splitlines()] == \
        list(range(0, 7))
    # and a fresh run on it is refused; --overwrite replaces it
    code, o, e = run_cli(_train_argv(tiny, out, "--set", "train.iterations=1"), capsys)
    one_line_error(code, o, e, "not empty")
    assert log.read_bytes() == data
    code, o, e = run_cli(_train_argv(tiny, out, "--set", "train.iterations=1", "--overwrite"),
                         capsys)
    assert code == 0, e
    assert [json.loads(ln)["iteration"] for ln in log.read_text().splitlines()] == [0, 1]
    assert torch.load(out / "last.pt", weights_only=True)["iteration"] == 1


# --- SIGINT/SIGTERM/SIGHUP save last.pt, then exit 1 with a line ---------------------
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP])
def test_a_signal_during_training_saves_last_pt(tmp_path, tiny, sig):
    tiny.write_text(TINY.replace("iterations = 6", "iterations = 10000")
                    .replace("checkpoint_every = 2", "checkpoint_every = 1000"))
    out = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-m", "metaloihi", *_train_argv(tiny, out)],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 300
        while time.time() < deadline and proc.poll() is None:
            log = out / "metrics.jsonl"
            if log.exists() and len(log.read_text().splitlines()) >= 4:
                break
            time.sleep(0.2)
        proc.send_signal(sig)
        stdout, stderr = bounded.finish(proc, 120, f"training after {signal.Signals(sig).name}")
    finally:
        proc.kill()
    assert proc.returncode == 1, stderr
    assert "Traceback" not in stderr
    last = torch.load(out / "last.pt", weights_only=True)["iteration"]
    logged = [json.loads(ln)["iteration"] for ln in (out / "metrics.jsonl").read_text()
              .splitlines()]
    assert last >= 3 and logged[-1] == last          # nothing done after the checkpoint is lost
    name = signal.Signals(sig).name
    assert stderr.strip().splitlines()[-1] == (f"stopped by {name} at iteration {last}: "
                                               f"{out / 'last.pt'} saved; continue with --resume")
    assert f"(stopped: signal {name})" in stdout
    assert not (out / ".lock").exists()


# --- write failures are one-line user errors, not tracebacks --------------------------
def _read_only_temps(monkeypatch):
    """The folder refuses new files (as a read-only mount does; chmod means nothing to root)."""
    import builtins
    real_open = builtins.open

    def fake_open(file, mode="r", *a, **k):
        if ".tmp" in str(file) and "w" in mode:
            raise OSError(30, "Read-only file system", str(file))
        return real_open(file, mode, *a, **k)
    monkeypatch.setattr(atomic, "open", fake_open, raising=False)


@pytest.mark.parametrize("command,what", [
    ("export --random --input-shape 2,8,8 --channels 2 --out {tmp}/o.h5", "bundle"),
    ("data show gestures --per-class 1 --classes 1 --out {tmp}/s.png", "figure"),
])
def test_a_read_only_folder_is_a_one_line_error(tmp_path, capsys, monkeypatch, command, what):
    _read_only_temps(monkeypatch)
    code, o, e = run_cli(command.format(tmp=tmp_path), capsys)
    one_line_error(code, o, e, f"cannot write {what}", str(tmp_path), "Read-only file system")
    assert not [p for p in tmp_path.iterdir() if p.is_file()]


def test_a_full_disk_during_a_checkpoint_write_says_so(tmp_path, monkeypatch):
    """torch.save reports ENOSPC as RuntimeError("... unexpected pos 448 vs 342")."""
    from metaloihi.offline import checkpoint

    def full(obj, f, *a, **k):
        Path(f).write_bytes(b"half")
        raise RuntimeError("[enforce fail at inline_container.cc:595] . unexpected pos 448 vs 342")
    monkeypatch.setattr(torch, "save", full)
    monkeypatch.setattr(atomic, "_disk_full", lambda folder: True)
    (tmp_path / "last.pt").write_bytes(b"previous")
    with pytest.raises(UserError, match=r"cannot write checkpoint .*last.pt.*No space left on "
                                        r"device \(\[enforce fail"):
        checkpoint.save(tmp_path / "last.pt", {"meta": {}})
    assert (tmp_path / "last.pt").read_bytes() == b"previous"
    no_temps(tmp_path)


def test_a_bug_in_a_writer_stays_an_internal_error(tmp_path):
    with pytest.raises(ZeroDivisionError):
        with atomic.atomic_path(tmp_path / "x", "file"):
            1 / 0
    no_temps(tmp_path)


def test_an_os_level_write_refusal_anywhere_is_one_line(capsys):
    def append_to_log():
        raise OSError(28, "No space left on device", "/runs/x/metrics.jsonl")
    assert cli.guarded(append_to_log) == 1
    err = capsys.readouterr().err
    assert err == "error: cannot write '/runs/x/metrics.jsonl': No space left on device\n"


# --- MemoryError is "out of memory", with the limit --------------------------------
def test_memory_error_is_reported_as_out_of_memory_with_the_limit(capsys, monkeypatch):
    import resource
    monkeypatch.setattr(resource, "getrlimit", lambda what: (3 * 2 ** 30, resource.RLIM_INFINITY))

    def allocate():
        raise MemoryError()
    assert cli.guarded(allocate) == 1
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert err.startswith("error: out of memory (address-space limit `ulimit -v` 3145728 KiB")


# --- paths ----------------------------------------------------------------------------
def test_data_show_writes_the_file_it_names(tmp_path, capsys):
    code, o, e = run_cli(f"data show gestures --per-class 1 --classes 2 --out {tmp_path}/grid",
                         capsys)
    assert code == 0, e
    assert o.strip() == f"wrote {tmp_path}/grid"
    assert (tmp_path / "grid").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["grid"]


@pytest.mark.parametrize("command,fragments", [
    ("data show gestures --out {tmp}/f.txt/s.png", ("f.txt", "is a file, not a folder")),
    ("data show gestures --out {tmp}/s.jpg", ("s.jpg", "must be a .png file")),
    ("data show gestures --per-class 100000 --out {tmp}/s.png", ("--per-class", "100000")),
    ("data show gestures --classes 1000 --out {tmp}/s.png", ("--classes", "1000")),
    ("evaluate {tmp}/f.txt/x.pt", ("x.pt", "does not exist")),
])
def test_bad_output_paths_are_one_line(tmp_path, capsys, command, fragments):
    (tmp_path / "f.txt").write_text("a file")
    code, o, e = run_cli(command.format(tmp=tmp_path), capsys)
    one_line_error(code, o, e, *fragments)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.txt"]


# --- what bundle validate passes, every consumer runs -----------------------------------
@pytest.fixture(scope="module")
def good_bundle(tmp_path_factory) -> Path:
    from metaloihi.bridge.export import export_bundle, random_float_network
    specs, params, neurons = random_float_network((2, 8, 8), ways=3, channels=(2, 4), seed=1)
    path, _ = export_bundle(tmp_path_factory.mktemp("good") / "good.h5", specs, params, neurons)
    return path


def _fields(path: Path) -> tuple[list[str], list[tuple[str, str]]]:
    """Every dataset and every (group, attribute) of a bundle."""
    import h5py
    datasets, attrs = [], []
    with h5py.File(path, "r") as f:
        def visit(name, obj):
            if isinstance(obj, h5py.Dataset):
                datasets.append(name)
            attrs.extend((name, k) for k in obj.attrs)
        f.visititems(visit)
        attrs.extend(("/", k) for k in f.attrs)
    return datasets, attrs


BIG_U64 = np.uint64(2 ** 64 - 2)


def _mutations(value):
    """Values a damaged or hand-edited bundle may hold in place of `value` (None: deleted)."""
    shape = np.shape(value)
    yield "a string", "abc"
    yield "uint64 2**64-2", np.full(shape, BIG_U64)
    yield "-1", np.full(shape, -1, np.int64)
    yield "0.5", np.full(shape, 0.5)
    yield "nan", np.full(shape, np.nan)
    yield "2**40", np.full(shape, 2 ** 40, np.int64)
    yield "two numbers", np.array([1, 2])
    yield "deleted", None


def _consumers(path: Path) -> None:
    """What reads a bundle: the reader, the encoder, and an on-chip session in sim/."""
    from metaloihi.bridge.bundle import read_bundle
    from metaloihi.onchip.session import adapt
    b = read_bundle(path)
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 2, (3, 6, 2, 8, 8)).astype(np.uint8)
    x = b.encode(frames)
    ways = b.net[-1].spec.out_features
    adapt(path, x[:ways], np.arange(ways), x[:ways], np.arange(ways), backend="sim")


def test_a_bundle_validate_passes_never_crashes_a_consumer(good_bundle, tmp_path):
    """Mutate each field of a good bundle: validate refuses it (one-line UserError) or every
    consumer runs (a UserError of theirs is fine too; an internal error is not)."""
    import h5py
    from metaloihi.bridge.validate import validate_bundle
    datasets, attrs = _fields(good_bundle)
    assert len(datasets) >= 15 and len(attrs) >= 15
    crashes, tried = [], 0
    path = tmp_path / "m.h5"
    for kind, names in (("dataset", datasets), ("attr", attrs)):
        for name in names:
            with h5py.File(good_bundle, "r") as f:
                old = f[name][()] if kind == "dataset" else f[name[0]].attrs[name[1]]
            for label, new in _mutations(old):
                path.write_bytes(good_bundle.read_bytes())
                with h5py.File(path, "r+") as f:
                    if kind == "dataset":
                        del f[name]
                        if new is not None:
                            f.create_dataset(name, data=new)
                    elif new is None:
                        del f[name[0]].attrs[name[1]]
                    else:
                        f[name[0]].attrs[name[1]] = new
                tried += 1
                try:
                    validate_bundle(path)
                except UserError as err:
                    assert "\n" not in str(err)
                    continue
                except Exception as err:  # noqa: BLE001 - validate itself must not crash
                    crashes.append(f"validate: {kind} {name} = {label}: "
                                   f"{type(err).__name__}: {err}")
                    continue
                try:
                    _consumers(path)
                except UserError:
                    pass
                except Exception as err:  # noqa: BLE001 - what the test looks for
                    crashes.append(f"{kind} {name} = {label}: {type(err).__name__}: {err}")
    assert tried >= 250
    assert not crashes, "\n".join(crashes)


@pytest.mark.parametrize("setup,fragments", [
    (lambda f: f["layer/1/weight"].__setitem__(..., 0) or _replace(
        f, "layer/1/weight", np.full(f["layer/1/weight"].shape, BIG_U64)),
     ("layer/1/weight", "18446744073709551614", "out of range")),
    (lambda f: f["metaloihi/meta"].attrs.__setitem__("created", "yesterday"),
     ("metaloihi/meta/created", "'yesterday'", "not JSON")),
    (lambda f: f["metaloihi/meta"].attrs.__setitem__("created", '"last tuesday"'),
     ("metaloihi/meta/created", "'last tuesday'", "ISO 8601")),
    (lambda f: f["metaloihi/head/rule"].attrs.__setitem__("theta", "high"),
     ("metaloihi/head/rule/theta", "one number", "'high'")),
    (lambda f: _replace(f, "metaloihi/scales", np.array([b"1", b"2", b"3"])),
     ("metaloihi/scales", "is not 3 numbers", "'1'")),
    (lambda f: f["metaloihi/meta"].attrs.__setitem__("encoding", '{"pool": "x"}'),
     ("metaloihi/meta/encoding", "pool")),
])
def test_bundle_validate_names_the_field_and_value(good_bundle, tmp_path, capsys, setup,
                                                    fragments):
    import h5py
    path = tmp_path / "b.h5"
    path.write_bytes(good_bundle.read_bytes())
    with h5py.File(path, "r+") as f:
        setup(f)
    code, o, e = run_cli(f"bundle validate {path}", capsys)
    one_line_error(code, o, e, *fragments)


def _replace(f, name, value):
    del f[name]
    f.create_dataset(name, data=value)


# --- sizes that cannot fit are refused up front, with the estimate ------------------
def test_meta_batch_memory_estimate(tmp_path, tiny):
    from metaloihi.offline import budget, config
    cfg = config.load(str(tiny))                 # 2 tasks x 5 ways x (1 shot + 1 query)
    need, how = budget.meta_batch_bytes(cfg, (100, 2, 32, 32))
    # frames 100x2x32x32 bytes + input 20 steps (time_pool 5) x 2x8x8 (pool 4) float32
    assert need == 2 * 10 * (100 * 2 * 32 * 32 + 20 * 2 * 8 * 8 * 4)
    assert how == "2 tasks x 10 samples of 100x2x32x32 frames and 20x2x8x8 float32 input"
    budget.check_meta_batch(cfg, (100, 2, 32, 32), available=need)
    with pytest.raises(UserError, match=r"train.meta_batch=2 cannot fit in memory: .* about "
                                        r"0.0 GiB .* and 0.0 GiB are available"):
        budget.check_meta_batch(cfg, (100, 2, 32, 32), available=need - 1)
    assert budget.available_bytes() > 0


# --- determinism, and kill -9 at random moments then --resume, measured -------------
def _meta_and_opt(path: Path) -> tuple[dict, dict]:
    state = torch.load(path, weights_only=True)
    return state["meta"], state["optimizer"]["state"]


def _same_tensors(a: dict, b: dict) -> bool:
    if a.keys() != b.keys():
        return False
    for k in a:
        x, y = a[k], b[k]
        if isinstance(x, dict):
            if not _same_tensors(x, y):
                return False
        elif not torch.equal(torch.as_tensor(x), torch.as_tensor(y)):
            return False
    return True


def test_same_seed_twice_gives_identical_checkpoints(tmp_path, tiny, capsys):
    for name in ("a", "b"):
        code, o, e = run_cli(_train_argv(tiny, tmp_path / name), capsys)
        assert code == 0, e
    for f in ("last.pt", "best.pt"):
        ma, oa = _meta_and_opt(tmp_path / "a" / f)
        mb, ob = _meta_and_opt(tmp_path / "b" / f)
        assert _same_tensors(ma, mb) and _same_tensors(oa, ob), f
        assert (tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes(), f


def test_three_random_kill_9s_then_resume_equal_an_uninterrupted_run(tmp_path, tiny, capsys):
    """Kill -9 at three random moments (seeded; METALOIHI_KILLS=N for more), --resume each
    time: the final tensors equal an uninterrupted run's bit for bit, at most one checkpoint
    interval (2) is redone per kill, and the log holds each iteration once."""
    kills = int(os.environ.get("METALOIHI_KILLS", "3"))
    total = 8 * kills
    tiny.write_text(TINY.replace("iterations = 6", f"iterations = {total}"))
    code, o, e = run_cli(_train_argv(tiny, tmp_path / "whole"), capsys)
    assert code == 0, e
    out = tmp_path / "killed"
    rng = np.random.default_rng(15)
    redone, done_before = [], 0
    for kill in range(kills + 1):
        argv = _train_argv(tiny, out) + (["--resume"] if kill else [])
        proc = subprocess.Popen([sys.executable, "-m", "metaloihi", *argv], cwd=ROOT,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        if kill == kills:                               # the last run goes to the end
            _, err = bounded.finish(proc, 300, "the last resumed run")
            assert proc.returncode == 0, err
            break
        target = done_before + int(rng.integers(2, 6))  # a random iteration to die after
        deadline = time.time() + 300
        log = out / "metrics.jsonl"
        while time.time() < deadline and proc.poll() is None:
            lines = log.read_text().splitlines() if log.exists() else []
            if len(lines) - 1 >= target:
                time.sleep(float(rng.uniform(0, 0.3)))     # a random moment within it
                break
            time.sleep(0.02)
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
        _, err = bounded.finish(proc, 60, "the run to be killed")
        assert proc.returncode == -signal.SIGKILL, f"the run ended by itself: {err[-2000:]}"
        logged = len(log.read_text().splitlines()) - 1
        saved = torch.load(out / "last.pt", weights_only=True)["iteration"]
        redone.append(logged - saved)
        done_before = saved
    print(f"{kills} kill -9s: iterations redone after each {redone}")
    assert all(0 <= r <= 2 for r in redone), redone
    its = [json.loads(ln)["iteration"] for ln in (out / "metrics.jsonl").read_text().splitlines()]
    assert its == list(range(total + 1))
    mw, ow = _meta_and_opt(tmp_path / "whole" / "last.pt")
    mk, ok = _meta_and_opt(out / "last.pt")
    assert _same_tensors(mw, mk) and _same_tensors(ow, ok)


# --- N-MNIST readers say what they skip or cannot read, with offsets ------------------
def _nmnist_bytes(x, y, t, p=None) -> bytes:
    """Events in N-MNIST's 5-byte layout: x, y, polarity bit + 23-bit timestamp (us)."""
    x, y, t = (np.asarray(v, np.int64) for v in (x, y, t))
    p = np.zeros_like(t) if p is None else np.asarray(p, np.int64)
    raw = np.stack([x, y, (p << 7) | ((t >> 16) & 0x7F), (t >> 8) & 0xFF, t & 0xFF], 1)
    return raw.astype(np.uint8).tobytes()


def _nmnist_tree(root: Path, digits=range(10), per=(2, 1)) -> None:
    for part, n in zip(("Train", "Test"), per):
        for d in digits:
            for i in range(n):
                f = root / part / str(d) / f"{i:05d}.bin"
                f.parent.mkdir(parents=True, exist_ok=True)
                f.write_bytes(_nmnist_bytes([d, 3, 5], [1, 2, 3], [0, 1000, 2000]))


def test_nmnist_other_class_folders_are_named_not_skipped(tmp_path):
    from metaloihi.datasets import paper_splits
    _nmnist_tree(tmp_path)
    for letter in "ab":
        f = tmp_path / "Train" / letter / "00000.bin"
        f.parent.mkdir()
        f.write_bytes(_nmnist_bytes([1], [1], [0]))
    with pytest.raises(UserError, match=r"Train: folder\(s\) 'a', 'b' \(2 folders, 2 .bin "
                                        r"files\) are not N-MNIST digit classes 0-9"):
        paper_splits.nmnist(tmp_path, use_cache=False)


def test_nmnist_empty_and_backwards_files_are_refused_with_the_offset(tmp_path):
    from metaloihi.datasets.readers import read_nmnist_bin
    empty = tmp_path / "e.bin"
    empty.write_bytes(b"")
    with pytest.raises(UserError, match=r"e.bin: empty file \(0 bytes\), no events"):
        read_nmnist_bin(empty)
    back = tmp_path / "b.bin"
    back.write_bytes(_nmnist_bytes([1, 2, 3, 4], [1, 1, 1, 1], [0, 50000, 400, 60000]))
    with pytest.raises(UserError, match=r"b.bin: event 2 \(byte offset 10\) has timestamp t = "
                                        r"400 us, 49600 us before event 1's 50000 us"):
        read_nmnist_bin(back)
    out = tmp_path / "o.bin"
    out.write_bytes(_nmnist_bytes([1, 40], [1, 1], [0, 5]))
    with pytest.raises(UserError, match=r"o.bin: event 1 \(byte offset 5\) at pixel \(40, 1\)"):
        read_nmnist_bin(out)
    cut = tmp_path / "c.bin"
    cut.write_bytes(_nmnist_bytes([1, 2], [1, 1], [0, 5])[:8])
    with pytest.raises(UserError, match=r"c.bin: 8 bytes .* last event starts at byte offset 5"):
        read_nmnist_bin(cut)


def test_double_nmnist_names_the_class_that_is_missing(tmp_path):
    from metaloihi.datasets import paper_splits
    _nmnist_tree(tmp_path, digits=[d for d in range(10) if d != 7])
    with pytest.raises(UserError) as err:
        paper_splits.double_nmnist(tmp_path, pairs_per_class=2, use_cache=False)
    msg = str(err.value)
    assert "no source samples of class '7' (needed for pair class" in msg
    assert " or " not in msg.split("class '7'")[0]


# --- SOEL values the chip cannot represent are refused ----------------------------------------
@pytest.mark.parametrize("attr,value,fragments", [
    ("mant", 8, ("metaloihi/head/rule/mant = 8", "out of range", "[1, 7]")),
    ("exp", -8, ("metaloihi/head/rule/exp = -8", "[-7, 8]")),
    ("theta", 1e-300, ("metaloihi/head/rule/theta", "1e-300", "[0.0078125, ")),
    ("theta", 1e300, ("metaloihi/head/rule/theta", "1e+300",)),
])
def test_soel_values_the_chip_cannot_represent_are_refused(good_bundle, tmp_path, capsys, attr,
                                                           value, fragments):
    import h5py
    path = tmp_path / "b.h5"
    path.write_bytes(good_bundle.read_bytes())
    with h5py.File(path, "r+") as f:
        f["metaloihi/head/rule"].attrs[attr] = value
    code, o, e = run_cli(f"bundle validate {path}", capsys)
    one_line_error(code, o, e, *fragments)


@pytest.mark.parametrize("eta,theta,fragments", [
    (1e300, 1.0, ("SOEL eta 1e+300 x scale 2 = 2e+300", "16x outside the chip's steps")),
    (1e-300, 1.0, ("SOEL eta 1e-300", "[0.000976562, 224]")),
    (0.1, 1e-300, ("SOEL theta = 1e-300", "[0.0078125, ")),
])
def test_a_float_rule_the_chip_cannot_approximate_is_refused_at_export(eta, theta, fragments):
    from metaloihi.rules.soel import LearntRule, to_chip
    with pytest.raises(UserError) as err:
        to_chip(LearntRule(theta=theta, eta=eta), scale=2.0)
    assert all(f in str(err.value) for f in fragments), str(err.value)


# --- Lava runs have a watchdog; an interrupted one leaves nothing behind --------------
def test_watchdog_ignores_dead_children_that_are_not_lavas(monkeypatch):
    from metaloihi import watchdog
    dog = watchdog.Watchdog(grace=0.0)
    aborted = []
    monkeypatch.setattr(dog, "abort", aborted.append)
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    deadline = time.time() + 30
    while watchdog.state(child.pid) != "Z" and time.time() < deadline:
        time.sleep(0.05)
    try:
        assert watchdog.state(child.pid) == "Z"
        dog.check(now=0.0)
        dog.check(now=100.0)
        assert aborted == []                    # not seen mapping shared memory: not Lava's
        dog.lava_pids.add(child.pid)
        dog.check(now=200.0)
        assert len(aborted) == 1 and f"pid {child.pid}" in aborted[0]
        assert "exited with code 0" in aborted[0]
    finally:
        bounded.finish(child, 30, "python -c pass")


def _lava_deploy(tmp_path: Path) -> tuple[subprocess.Popen, list[int], set[str]]:
    """A long `deploy` of a small bundle in Lava, once its workers are up: (process, Lava's
    processes, the /dev/shm segments they map)."""
    from metaloihi import watchdog
    from metaloihi.bridge.export import export_bundle, random_float_network
    specs, params, neurons = random_float_network((2, 8, 8), ways=3, channels=(2, 4), seed=1)
    bundle, _ = export_bundle(tmp_path / "b.h5", specs, params, neurons)
    # as a terminal's Ctrl-C reaches it: a test run started in the background (`cmd &` in a
    # non-interactive shell) ignores SIGINT, and the child would inherit that
    proc = subprocess.Popen([sys.executable, "-m", "metaloihi", "deploy", str(bundle),
                             "--samples", "500", "--steps", "200"], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.time() + 180
    while time.time() < deadline and proc.poll() is None:
        lava = [p for p in watchdog.descendants(proc.pid) if watchdog.shm_segments(p)]
        if len(lava) >= 3:
            time.sleep(2)
            break
        time.sleep(0.2)
    lava = [p for p in watchdog.descendants(proc.pid) if watchdog.shm_segments(p)]
    segments = set().union(*(watchdog.shm_segments(p) for p in lava)) if lava else set()
    assert lava and segments, "Lava's workers did not start"
    return proc, lava, segments


def _nothing_left(procs: list[int], segments: set[str]) -> None:
    from metaloihi import watchdog
    time.sleep(0.5)
    assert [p for p in procs if watchdog.state(p) not in (None, "Z")] == []
    assert [s for s in segments if os.path.exists(s)] == []


@pytest.mark.lava
def test_a_dead_lava_worker_ends_the_run_with_a_line_and_nothing_left(tmp_path):
    proc, lava, segments = _lava_deploy(tmp_path)
    try:
        os.kill(max(lava), signal.SIGKILL)          # as the OS kills one under ulimit -v
        t0 = time.time()
        _, err = bounded.finish(proc, 120, "the deploy whose Lava worker was killed")
    finally:
        proc.kill()
    assert proc.returncode == 1 and time.time() - t0 < 60
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err[-3000:]
    assert lines[0].startswith(f"error: a Lava worker process (pid {max(lava)}) was killed by "
                               "SIGKILL")
    assert "worker process(es) killed" in lines[0] and "segment(s) removed" in lines[0]
    _nothing_left(lava, segments)


@pytest.mark.lava
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_to_a_lava_run_reaps_its_workers_and_shared_memory(tmp_path, sig):
    proc, lava, segments = _lava_deploy(tmp_path)
    try:
        proc.send_signal(sig)
        _, err = bounded.finish(proc, 60, f"the Lava deploy after {signal.Signals(sig).name}")
    finally:
        proc.kill()
    assert proc.returncode == 1, err[-3000:]
    assert err.strip().splitlines()[-1].startswith("aborted"), err[-3000:]
    assert "Traceback" not in err
    _nothing_left(lava, segments)
