"""The bad-input corpus: every user mistake the pipeline can be handed, from a bundle
cut in half to a typo on the command line, ends the same way: exit code 1, ONE line on stderr
naming the thing and the bad value, no traceback, and no half-written file.
One file over 400 lines on purpose: the corpus is one table, read and extended as a whole.

A case is one row of CASES: a name, what to run (a command line, or a Python call run through
the CLI's own error handling `metaloihi.cli.guarded`), the fragments the message must contain,
an optional setup that makes the bad input in the case's folder, and the paths that must not
exist afterwards. "{tmp}" in a command line is the case's folder, "{bundle}" a valid bundle
there (which setups may damage), "{ckpt}" a checkpoint path. Adding a case is adding a row.
The corpus runs in-process (fast); test_real_entry_point re-runs a few rows through
`python -m metaloihi` to show the installed entry point behaves the same.
"""
from __future__ import annotations

import argparse
import errno
import shlex
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import h5py
import numpy as np
import pytest
import torch

from helpers import bounded
from metaloihi import cli
from metaloihi.base.lava_support import lava_available
from metaloihi.base.torch_file import theta0_key
from metaloihi.sim.float_lif import weight_key

ROOT = Path(__file__).resolve().parents[2]
W0 = theta0_key(weight_key(0))      # theta0's first weight in a checkpoint's meta


# --- the case's folder (a copy of conftest's valid_bundle there), and ways to damage it -----------
@dataclass
class Ctx:
    tmp: Path
    bundle: Path
    monkeypatch: pytest.MonkeyPatch

    @property
    def ckpt(self) -> Path:
        return self.tmp / "ckpt.pt"


def _set(path, name, value):
    """Replace (value) or delete (None) the dataset `name` of an HDF5 file."""
    with h5py.File(path, "r+") as f:
        del f[name]
        if value is not None:
            f.create_dataset(name, data=value)


def _attr(path, group, key, value):
    with h5py.File(path, "r+") as f:
        if value is None:
            del f[group].attrs[key]
        else:
            f[group].attrs[key] = value


def _get(path, name):
    with h5py.File(path, "r") as f:
        return f[name][()]


def _poke(name, index, value):
    """Setup: one element of an integer dataset of the bundle set to value."""
    def setup(c: Ctx):
        a = _get(c.bundle, name).astype(np.int64)
        a[index] = value
        _set(c.bundle, name, a)
    return setup


def _write(rel: str, data: bytes | str):
    def setup(c: Ctx):
        p = c.tmp / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data.encode() if isinstance(data, str) else data)
    return setup


def _truncate(fraction: float):
    def setup(c: Ctx):
        data = c.bundle.read_bytes()
        (c.tmp / "cut.h5").write_bytes(data[: int(len(data) * fraction)])
    return setup


def _scribble(c: Ctx):
    """Random bytes over the middle of the bundle, its size unchanged."""
    data = bytearray(c.bundle.read_bytes())
    mid = len(data) // 2
    data[mid - 2000: mid + 2000] = np.random.default_rng(0).bytes(4000)
    (c.tmp / "scribbled.h5").write_bytes(bytes(data))


def _demo_config() -> dict:
    from metaloihi.offline import config
    return config.to_dict(config.load("demo"))


def _checkpoint(meta=None, drop=(), config_patch=None, extra=None):
    """Setup: a metaloihi.maml/1 checkpoint at {ckpt} with the given damage."""
    def setup(c: Ctx):
        from metaloihi.offline.checkpoint import FORMAT
        cfg = _demo_config()
        for dotted, val in (config_patch or {}).items():
            sec, key = dotted.split(".")
            cfg[sec][key] = val
        state = {"format": FORMAT, "config": cfg, "iteration": 3,
                 "meta": meta if meta is not None else
                 {W0: torch.zeros(16, 2, 5, 5)}, **(extra or {})}
        for k in drop:
            del state[k]
        torch.save(state, c.ckpt)
    return setup


def _nan_meta(value):
    w = torch.randn(16, 2, 5, 5)
    w[3, 1, 2, 4] = value
    return {W0: w, "log_inner_lr.2": torch.tensor(-1.0)}


def _raise_in(module_attr: str, exc: BaseException):
    """Setup: make a function raise `exc` (an interrupted or failing write)."""
    def setup(c: Ctx):
        mod, attr = module_attr.rsplit(".", 1)
        def boom(*a, **k):
            raise exc
        c.monkeypatch.setattr(f"{mod}.{attr}", boom)
    return setup


def _no_cuda(c: Ctx):
    c.monkeypatch.setattr(torch.cuda, "is_available", lambda: False)


def _aedat31(body: bytes) -> bytes:
    return b"#!AER-DAT3.1\r\n#!END-HEADER\r\n" + body


def _packet_header(capacity: int, number: int, etype: int = 1, size: int = 8) -> bytes:
    """An AEDAT 3.1 packet header: type, source, event size, ts offset, overflow, capacity,
    number, valid."""
    return np.array([(etype, 0, size, 0, 0, capacity, number, number)],
                    "<i2,<i2,<i4,<i4,<i4,<i4,<i4,<i4").tobytes()


def _gesture_folder(aedat_body: bytes):
    def setup(c: Ctx):
        _write("g/user01_led.aedat", _aedat31(aedat_body))(c)
        _write("g/user01_led_labels.csv", "class,startTime_usec,endTime_usec\n1,0,1000\n")(c)
    return setup


def _nmnist_folder(sample: bytes):
    def setup(c: Ctx):
        _write("nm/Train/0/00001.bin", sample)(c)
        _write("nm/Test/0/00001.bin", bytes(5))(c)
    return setup


def _mkdir(rel: str):
    def setup(c: Ctx):
        (c.tmp / rel).mkdir(parents=True, exist_ok=True)
    return setup


def _npz(rel: str, size=None, n=20, arrays=None):
    """Setup: a tonic-style .npz recording (fields x, y, t, p; sensor_size [W, H, 2] if given),
    or the given arrays."""
    def setup(c: Ctx):
        import io
        ev = np.zeros(n, [("x", np.int16), ("y", np.int16), ("t", np.int64), ("p", bool)])
        ev["x"], ev["y"], ev["t"] = np.arange(n) % 8, np.arange(n) % 5, np.arange(n) * 10
        extra = {} if size is None else {"sensor_size": np.array([*size, 2])}
        buf = io.BytesIO()
        np.savez(buf, **(arrays if arrays is not None else {"events": ev, **extra}))
        _write(rel, buf.getvalue())(c)
    return setup


def _npy(rel: str, arr: np.ndarray):
    def setup(c: Ctx):
        import io
        buf = io.BytesIO()
        np.save(buf, arr)
        _write(rel, buf.getvalue())(c)
    return setup


def _both(*setups):
    def setup(c: Ctx):
        for s in setups:
            s(c)
    return setup


def _own_classes(n: int):
    """Setup: {tmp}/own with n class folders of two small .npz recordings each."""
    return _both(*(_npz(f"own/class{k}/{i}.npz") for k in range(n) for i in range(2)))


def _session_with_wrong_shape(c: Ctx):
    from metaloihi.onchip.session import adapt
    x = np.zeros((3, 10, 2, 16, 16), bool)
    return adapt(c.bundle, x, np.arange(3), x, np.arange(3))


def _load_dataset(name, **kw):
    def call(c: Ctx):
        from metaloihi.datasets import load_dataset
        return load_dataset(name, **kw)
    return call


def _reader(func: str, rel: str):
    def call(c: Ctx):
        from metaloihi.datasets import aedat, readers
        mod = readers if hasattr(readers, func) and func.startswith("read_asl") else aedat
        return getattr(mod, func)(c.tmp / rel)
    return call


def _nir(damage: str):
    """Setup: {tmp}/g.nir, a small Linear -> LIF -> Linear -> LIF graph with one damage."""
    def setup(c: Ctx):
        import nir
        w1, w2 = np.full((3, 4), 0.5), np.full((2, 3), 0.5)
        if damage == "nan":
            w2[1, 2] = np.nan
        if damage == "shape":
            w2 = np.full((2, 5), 0.5)
        lif = lambda n: nir.LIF(tau=np.full(n, 1e-3), r=np.full(n, 10.0),   # noqa: E731
                                v_leak=np.zeros(n), v_threshold=np.ones(n))
        nodes = {"input": nir.Input(input_type=np.array([4])), "fc1": nir.Linear(weight=w1),
                 "lif1": lif(3), "fc2": nir.Linear(weight=w2), "lif2": lif(2),
                 "output": nir.Output(output_type=np.array([2]))}
        edges = [("input", "fc1"), ("fc1", "lif1"), ("lif1", "fc2"), ("fc2", "lif2"),
                 ("lif2", "output")]
        if damage == "missing edge":
            edges.remove(("lif1", "fc2"))
        if damage == "cycle":
            nodes["fc3"], nodes["lif3"] = nir.Linear(weight=np.eye(2)), lif(2)
            edges += [("fc3", "lif3"), ("lif3", "fc3")]
        nir.write(str(c.tmp / "g.nir"), nir.NIRGraph(nodes=nodes, edges=edges,
                                                     type_check=False))
        if damage == "unknown":
            with h5py.File(c.tmp / "g.nir", "r+") as f:
                del f["node/nodes/lif1/type"]
                f["node/nodes/lif1"].create_dataset("type", data=b"Spiky")
    return setup


def _link(rel: str, target: str):
    """Setup: {tmp}/rel, a symlink to {tmp}/target (an output spelled differently)."""
    def setup(c: Ctx):
        (c.tmp / rel).symlink_to(c.tmp / target)
    return setup


def _fifo(rel: str):
    def setup(c: Ctx):
        import os
        os.mkfifo(c.tmp / rel)
    return setup


def _env(name: str, rel: str, data: str = "x"):
    """Setup: a file {tmp}/rel, and the environment variable `name` pointing at it."""
    def setup(c: Ctx):
        (c.tmp / rel).write_text(data)
        c.monkeypatch.setenv(name, str(c.tmp / rel))
    return setup


def _log_lines(*lines: str):
    return _write("m.jsonl", "\n".join(lines) + "\n")


def _eval_rows(acc, ci95=0.01):
    import json
    return _write("eval_test.json", json.dumps([{"name": "x", "shots": 1, "acc": acc,
                                                  "ci95": ci95, "tasks": 10}]))


def _nested(rel: str, depth: int = 100000):
    return _write(rel, "[" * depth + "]" * depth)


def _shipped(damage: Callable[[dict], None]):
    """Setup: the shipped demo checkpoint (it describes its network) at {ckpt}, damaged."""
    def setup(c: Ctx):
        state = torch.load(ROOT / "checkpoints" / "demo" / "theta0.pt", weights_only=True)
        damage(state)
        torch.save(state, c.ckpt)
    return setup


def _neuron0(key, value):
    return _shipped(lambda s: s["network"]["neurons"][0].__setitem__(key, value))


def _weight0(fn):
    def damage(state):
        k = W0
        state["meta"][k] = fn(state["meta"][k])
    return _shipped(damage)


def _meta_attr(key: str, value):
    """Setup: the bundle's meta attribute `key` set to the JSON of value."""
    import json
    return lambda c: _attr(c.bundle, "metaloihi/meta", key, json.dumps(value))


def _huge_weight(c: Ctx):
    """layer/1/weight replaced by one declaring 10^11 values (HDF5 stores none of them)."""
    with h5py.File(c.bundle, "r+") as f:
        del f["layer/1/weight"]
        f["layer/1"].create_dataset("weight", shape=(100000, 100000, 2, 5), dtype="i1")


def _plain_netx(c: Ctx):
    """Setup: the bundle without our group (a plain netx file, plain.net) and an input .npy of
    the wrong shape (x.npy)."""
    shutil.copy(c.bundle, c.tmp / "plain.net")
    with h5py.File(c.tmp / "plain.net", "r+") as f:
        del f["metaloihi"]
    np.save(c.tmp / "x.npy", np.zeros((1, 3, 8, 8), bool))


def _asl_folder(**variables):
    """Setup: {tmp}/asl, ASL-DVS's 24 letter folders of one valid 4-event .mat each; the first
    file read, asl/a/a_0.mat, holds the given variables instead."""
    def setup(c: Ctx):
        import scipy.io
        good = {"ts": np.array([[0.0], [10.0], [20.0], [30.0]]), "x": np.full((4, 1), 5.0),
                "y": np.full((4, 1), 6.0), "pol": np.ones((4, 1))}
        for letter in "abcdefghiklmnopqrstuvwxy":
            (c.tmp / "asl" / letter).mkdir(parents=True)
            scipy.io.savemat(str(c.tmp / "asl" / letter / f"{letter}_0.mat"),
                             {**good, **(variables if letter == "a" else {})})
    return setup


def _gesture_recording(labels: str, x7: int | None = None):
    """Setup: {tmp}/g/user01_led.aedat, 50 events in [0, 100) ms on the 128x128 sensor (event 7
    moved to x = x7 if given), and its _labels.csv with the given data lines."""
    def setup(c: Ctx):
        from helpers import event_files as ef
        ev = ef.events(np.random.default_rng(0), 50, 128, 128, 100_000)
        if x7 is not None:
            ev["x"][7] = x7
        ef.write_aedat31(c.tmp / "g" / "user01_led.aedat", ev)
        _write("g/user01_led_labels.csv", "class,startTime_usec,endTime_usec\n" + labels)(c)
    return setup


def _omniglot_character(rows: str):
    """Setup: {tmp}/no, one N-Omniglot character (50 events in 100 ms) and its csv rows."""
    def setup(c: Ctx):
        from helpers import event_files as ef
        d = "no/dvs_background_1/Greek/character01"
        ef.write_aedat4(c.tmp / d / "0001_01.aedat4",
                        ef.events(np.random.default_rng(0), 50, 346, 260, 100_000))
        _write(f"{d}/0001_01.csv", "index,start,end\n" + rows)(c)
    return setup


def _tonic_events(**columns) -> np.ndarray:
    """Three tonic-style events (x, y, t, p) with the given columns."""
    ev = np.zeros(3, [("x", np.int16), ("y", np.int16), ("t", np.int64), ("p", np.int8)])
    ev["t"] = [0, 10, 20]
    for k, v in columns.items():
        ev[k] = v
    return ev


def _aedat2_events(rel: str, **columns):
    """Setup: an AEDAT 2.0 (DVS128) recording of _tonic_events(**columns)."""
    def setup(c: Ctx):
        from helpers import event_files as ef
        ev = _tonic_events(**columns)
        ef.write_aedat2(c.tmp / rel, {"x": ev["x"], "y": ev["y"], "p": ev["p"] > 0,
                                      "t": ev["t"]})
    return setup


@dataclass
class Case:
    name: str
    run: str | Callable            # a command line (after `metaloihi`) or fn(ctx)
    expect: tuple[str, ...]        # fragments of the one-line message
    setup: Callable | None = None
    absent: tuple[str, ...] = ()   # paths (relative to {tmp}) that must not exist afterwards
    needs_lava: bool = False


C = Case
MAML = "metaloihi.maml/1"
OWN_CHECK = "data events {tmp}/own --ways 1 --split-classes 50/0/50"   # 2+ classes pass the split
CASES = [
    # --- bundle files: not there, not HDF5, damaged --------------------------------------------
    C("bundle missing", "bundle validate {tmp}/nope.h5", ("nope.h5", "does not exist")),
    C("bundle is a folder", "bundle validate {tmp}", ("is a folder",)),
    C("bundle empty file", "bundle validate {tmp}/e.h5", ("e.h5", "empty file (0 bytes)"),
      _write("e.h5", b"")),
    C("bundle random bytes", "bundle validate {tmp}/r.h5", ("r.h5", "not an HDF5 file"),
      _write("r.h5", np.random.default_rng(1).bytes(4096))),
    C("bundle is text", "bundle validate {tmp}/t.h5", ("t.h5", "not an HDF5 file"),
      _write("t.h5", "layer/0/type = input\n")),
    C("bundle cut in half", "bundle validate {tmp}/cut.h5", ("cut.h5", "truncated", "eof"),
      _truncate(0.5)),
    C("bundle cut to its superblock", "bundle validate {tmp}/cut.h5", ("cut.h5", "truncated"),
      _truncate(0.05)),
    C("bundle scribbled over", "bundle validate {tmp}/scribbled.h5", ("scribbled.h5",),
      _scribble),
    # --- bundle values out of Loihi 2's ranges, wrong shapes, missing fields, NaN/inf ----------
    C("weight mantissa 9-bit", "bundle validate {bundle}",
      ("layer/1/weight[0, 0, 0, 0] = 300", "out of range", "[-256, 255]"),
      _poke("layer/1/weight", (0, 0, 0, 0), 300)),
    C("weight mantissa odd", "bundle validate {bundle}",
      ("layer/2/weight[1, 1, 1, 1] = 7", "off the grid", "deployable weight mantissa"),
      _poke("layer/2/weight", (1, 1, 1, 1), 7)),
    C("du > 4095 (iDecay 5000)", "bundle validate {bundle}",
      ("layer/1/neuron/iDecay = 5000", "out of range", "[1, 4096]"),
      lambda c: _set(c.bundle, "layer/1/neuron/iDecay", np.int64(5000))),
    C("dv > 4095", "bundle validate {bundle}", ("layer/2/neuron/vDecay = 4096", "[0, 4095]"),
      lambda c: _set(c.bundle, "layer/2/neuron/vDecay", np.int64(4096))),
    C("vth > 17 bits", "bundle validate {bundle}", ("vThMant = 131072", "[0, 131071]"),
      lambda c: _set(c.bundle, "layer/1/neuron/vThMant", np.int64(2 ** 17))),
    C("head du > 4095", "bundle validate {bundle}", ("metaloihi/head/du = 9999", "[0, 4095]"),
      lambda c: _attr(c.bundle, "metaloihi/head", "du", 9999)),
    C("head vth > 17 bits", "bundle validate {bundle}", ("metaloihi/head/vth = 200000",),
      lambda c: _attr(c.bundle, "metaloihi/head", "vth", 200000)),
    C("bias mantissa > 13 bits", "bundle validate {bundle}",
      ("layer/1/bias[0, 0, 0] = 5000", "13-bit"), _poke("layer/1/bias", (0, 0, 0), 5000)),
    C("conv weight of the wrong shape", "bundle validate {bundle}",
      ("layer/1/weight", "shape (2, 3, 5, 5)", "does not take input (2, 8, 8)"),
      lambda c: _set(c.bundle, "layer/1/weight", np.zeros((2, 3, 5, 5), np.int16))),
    C("head weight of the wrong shape", "bundle validate {bundle}",
      ("metaloihi/head/weight", "shape (3, 7)"),
      lambda c: _set(c.bundle, "metaloihi/head/weight", np.full((3, 7), 2, np.int16))),
    C("required field missing", "bundle validate {bundle}",
      ("layer/2/neuron", "'vThMant' is missing"),
      lambda c: _set(c.bundle, "layer/2/neuron/vThMant", None)),
    C("required group missing", "bundle validate {bundle}", ("'metaloihi' is missing",),
      lambda c: _set(c.bundle, "metaloihi", None)),
    C("head rule attribute missing", "bundle validate {bundle}", ("rule", "'mant' is missing"),
      lambda c: _attr(c.bundle, "metaloihi/head/rule", "mant", None)),
    C("NaN weights", "bundle validate {bundle}", ("layer/2/weight", "contains nan"),
      lambda c: _set(c.bundle, "layer/2/weight", np.full((4, 2, 5, 5), np.nan))),
    C("inf SOEL threshold", "bundle validate {bundle}", ("rule/theta", "inf"),
      lambda c: _attr(c.bundle, "metaloihi/head/rule", "theta", np.inf)),
    C("NaN scale", "bundle validate {bundle}", ("metaloihi/scales", "nan"),
      lambda c: _set(c.bundle, "metaloihi/scales", np.array([1.0, np.nan, 1.0]))),
    C("bundle from another tool", "bundle validate {bundle}", ("format 'other/2'",),
      lambda c: _attr(c.bundle, "metaloihi", "format", "other/2")),
    # --- the bundle's users: adapt and deploy refuse what validate refuses, and bad input ------
    C("adapt on a truncated bundle", "adapt {tmp}/cut.h5", ("cut.h5", "truncated"),
      _truncate(0.5)),
    C("deploy a missing bundle", "deploy {tmp}/none.h5", ("none.h5", "does not exist")),
    C("deploy with vth out of range", "deploy {bundle}", ("vThMant = -5",),
      lambda c: _set(c.bundle, "layer/2/neuron/vThMant", np.int64(-5))),
    C("session given the wrong input shape", _session_with_wrong_shape,
      ("support samples have shape (3, 10, 2, 16, 16)", "(2, 8, 8)")),
    C("adapt on frames the bundle does not take", "adapt {bundle} --ways 3 --dataset gestures",
      ("frames (100, 2, 32, 32)", "(2, 8, 8)")),
    C("adapt --ways unlike the head", "adapt {bundle} --ways 5", ("--ways=5", "3 output")),
    C("deploy --input of the wrong shape", "deploy {bundle} --input {tmp}/x.npy",
      ("input shape (2, 4, 4)", "(2, 8, 8)"),
      lambda c: np.save(c.tmp / "x.npy", np.ones((1, 5, 2, 4, 4), np.uint8))),
    C("deploy --input not a .npy", "deploy {bundle} --input {tmp}/x.npy",
      ("x.npy", "not a .npy file"), _write("x.npy", "0 1 0 1\n")),
    C("deploy --input with NaN", "deploy {bundle} --input {tmp}/x.npy", ("x.npy", "nan"),
      lambda c: np.save(c.tmp / "x.npy", np.full((1, 5, 2, 8, 8), np.nan))),
    C("deploy on a board without lava-loihi", "deploy {bundle} --backend loihi2 --steps 2",
      ("--backend loihi2", "lava-loihi", "Loihi2SimCfg"), needs_lava=True),
    C("adapt on a board without lava-loihi", "adapt {bundle} --backend loihi2 --ways 3 "
      "--dataset digits --queries 1", ("--backend loihi2", "lava-loihi", "Loihi2SimCfg"),
      needs_lava=True),
    C("deploy --input and --dataset", "deploy {bundle} --input x.npy --dataset gestures",
      ("at most one of --input",)),
    # --- checkpoints -> export ------------------------------------------------------------------
    C("export checkpoint with NaN weights", "export --checkpoint {ckpt} --out {tmp}/o.h5",
      ("ckpt.pt", W0, "nan", "[3, 1, 2, 4]"),
      _checkpoint(meta=_nan_meta(float("nan"))), absent=("o.h5",)),
    C("export checkpoint with inf weights", "export --checkpoint {ckpt} --out {tmp}/o.h5",
      (W0, "inf"), _checkpoint(meta=_nan_meta(float("inf"))),
      absent=("o.h5",)),
    C("checkpoint pickling an arbitrary object", "export --checkpoint {ckpt} --out {tmp}/o.h5",
      ("ckpt.pt", "refused", "argparse.Namespace", "weights_only=True"),
      _checkpoint(extra={"args": argparse.Namespace(lr=1)}), absent=("o.h5",)),
    C("checkpoint missing keys", "export --checkpoint {ckpt} --out {tmp}/o.h5",
      ("ckpt.pt", "lacks required key", "'config'"), _checkpoint(drop=("config",)),
      absent=("o.h5",)),
    C("checkpoint of another format", "export --checkpoint {ckpt} --out {tmp}/o.h5",
      ("ckpt.pt", "not a metaloihi.maml/1 file", "None"),
      lambda c: torch.save({"state_dict": {"w": torch.zeros(2)}}, c.ckpt), absent=("o.h5",)),
    C("checkpoint of random bytes", "export --checkpoint {ckpt} --out {tmp}/o.h5",
      ("ckpt.pt", "cannot be read"), _write("ckpt.pt", np.random.default_rng(2).bytes(999)),
      absent=("o.h5",)),
    C("checkpoint with an unknown config key", "upgrade-checkpoint {ckpt}",
      ("unknown config key train.learning_rate",),
      _checkpoint(config_patch={"train.learning_rate": 0.1})),
    C("export a checkpoint without a network description",
      "export --checkpoint {ckpt} --out {tmp}/o.h5",
      ("ckpt.pt", "does not describe its network", "upgrade-checkpoint"), _checkpoint(),
      absent=("o.h5",)),
    C("evaluate a missing checkpoint", "evaluate {tmp}/gone.pt", ("gone.pt", "does not exist")),
    C("evaluate a folder", "evaluate {tmp}", ("is a folder",)),
    # --- export's own options and destinations --------------------------------------------------
    C("export without a source", "export --out {tmp}/o.h5", ("exactly one of --checkpoint",),
      absent=("o.h5",)),
    C("export --input-shape not integers", "export --random --input-shape 2,x --out {tmp}/o.h5",
      ("--input-shape", "'2,x'"), absent=("o.h5",)),
    C("export --input-shape of 2 numbers", "export --random --input-shape 2,8 --out {tmp}/o.h5",
      ("--input-shape must be C,H,W", "'2,8'"), absent=("o.h5",)),
    C("export --channels with a 0", "export --random --channels 4,0 --out {tmp}/o.h5",
      ("--channels", "'4,0'"), absent=("o.h5",)),
    C("export --ways 0", "export --random --ways 0 --out {tmp}/o.h5",
      ("--ways", "'0'", "greater than or equal to 1"), absent=("o.h5",)),
    C("export into a folder that is a file",
      "export --random --input-shape 2,8,8 --channels 2 --out {tmp}/f.txt/o.h5",
      ("f.txt", "is a file, not a folder"), _write("f.txt", "x")),
    C("export onto a folder", "export --random --input-shape 2,8,8 --channels 2 --out {tmp}",
      ("is a folder", "give a file path")),
    C("export into a folder it may not write",
      "export --random --input-shape 2,8,8 --channels 2 --out {tmp}/o.h5",
      ("cannot write bundle", "o.h5", "Permission denied"),
      _raise_in("metaloihi.bridge.bundle.h5py.File",
                PermissionError(errno.EACCES, "Permission denied")), absent=("o.h5",)),
    C("export interrupted mid-write (Ctrl-C)",
      "export --random --input-shape 2,8,8 --channels 2 --out {tmp}/o.h5", ("aborted",),
      _raise_in("metaloihi.bridge.bundle._write_head", KeyboardInterrupt()), absent=("o.h5",)),
    C("export disk full mid-write",
      "export --random --input-shape 2,8,8 --channels 2 --out {tmp}/o.h5",
      ("cannot write bundle", "o.h5", "No space left on device"),
      _raise_in("metaloihi.bridge.bundle._write_head",
                OSError(errno.ENOSPC, "No space left on device")), absent=("o.h5",)),
    C("export --nir into a file's folder",
      "export --random --input-shape 2,8,8 --channels 2 --out {tmp}/o.h5 --nir {tmp}/f/n.nir",
      ("cannot write NIR graph", "is a file, not a folder"), _write("f", "x")),
    # --- training configs -------------------------------------------------------------------------
    C("unknown config name", "train --config demoo --out {tmp}/run",
      ("no config named 'demoo'", "demo_soel"), absent=("run",)),
    C("config file missing", "train --config {tmp}/my.toml --out {tmp}/run",
      ("my.toml", "does not exist"), absent=("run",)),
    C("config file not TOML", "train --config {tmp}/my.toml --out {tmp}/run",
      ("my.toml", "line 1"), _write("my.toml", "[train\niterations = 3\n"), absent=("run",)),
    C("unknown config key in a file", "train --config {tmp}/my.toml --out {tmp}/run",
      ("unknown config key train.iterationz",), _write("my.toml", "[train]\niterationz = 3\n"),
      absent=("run",)),
    C("unknown config section", "train --config {tmp}/my.toml --out {tmp}/run",
      ("unknown config section [optim]",), _write("my.toml", "[optim]\nlr = 3\n"),
      absent=("run",)),
    C("--set without '='", "train --set train.iterations --out {tmp}/run",
      ("--set 'train.iterations'", "section.key=value"), absent=("run",)),
    C("--set without a section", "train --set iterations=5 --out {tmp}/run",
      ("--set 'iterations=5'", "section.key=value"), absent=("run",)),
    C("--set unknown key", "train --set train.iterationz=5 --out {tmp}/run",
      ("unknown config key train.iterationz",), absent=("run",)),
    C("--set a word for an integer", "train --set train.iterations=many --out {tmp}/run",
      ("train.iterations = 'many'", "is not an integer"), absent=("run",)),
    C("--set NaN for a float", "train --set train.outer_lr=nan --out {tmp}/run",
      ("train.outer_lr = nan", "finite number"), absent=("run",)),
    C("--set a bad list", "train --set 'model.channels=[4, \"x\"]' --out {tmp}/run",
      ("model.channels = [4, 'x']", "list of integers"), absent=("run",)),
    C("--set a number for a flag", "train --set train.relative_lr=1 --out {tmp}/run",
      ("train.relative_lr = 1", "true or false"), absent=("run",)),
    C("config device unknown", "train --set train.device=tpu --out {tmp}/run",
      ("train.device='tpu'", "expected cpu, cuda or cuda:K"), absent=("run",)),
    C("--device nonsense", "train --device gpu --out {tmp}/run",
      ("--device='gpu'", "expected cpu, cuda or cuda:K"), absent=("run",)),
    C("--device cuda without a GPU", "train --device cuda --out {tmp}/run",
      ("--device='cuda'", "torch.cuda.is_available() is False"), _no_cuda, absent=("run",)),
    C("evaluate --device cuda without a GPU", "evaluate {tmp}/x.pt --device cuda",
      ("--device='cuda'", "is_available() is False"), _no_cuda),
    C("--seed not an integer", "train --seed one --out {tmp}/run", ("--seed", "'one'"),
      absent=("run",)),
    # --- config values out of their documented range (issue 15, item 6) ------------------------
    C("model.du above 1", "train --set model.du=2.0 --out {tmp}/run",
      ("model.du = 2.0", "out of range", "[0.0, 1.0]"), absent=("run",)),
    C("train.iterations 0", "train --set train.iterations=0 --out {tmp}/run",
      ("train.iterations = 0", ">= 1"), absent=("run",)),
    C("train.checkpoint_every 0", "train --set train.checkpoint_every=0 --out {tmp}/run",
      ("train.checkpoint_every = 0", ">= 1"), absent=("run",)),
    C("train.val_tasks 0", "train --set train.val_tasks=0 --out {tmp}/run",
      ("train.val_tasks = 0", ">= 1"), absent=("run",)),
    C("data.queries 0", "train --set data.queries=0 --out {tmp}/run",
      ("data.queries = 0", ">= 1"), absent=("run",)),
    C("model.channels with a 0", "train --set 'model.channels=[4, 0]' --out {tmp}/run",
      ("model.channels = [4, 0]", "each value in [1, 4096]"), absent=("run",)),
    C("model.channels empty", "train --set 'model.channels=[]' --out {tmp}/run",
      ("model.channels = []", "at least one value"), absent=("run",)),
    C("train.seed -1", "train --seed -1 --out {tmp}/run",
      ("'--seed'", "greater than or equal to 0", "'-1'"), absent=("run",)),
    C("train.seed -1 in the config", "train --set train.seed=-1 --out {tmp}/run",
      ("train.seed = -1", "[0, 4294967295]"), absent=("run",)),
    C("train.threads -1", "train --set train.threads=-1 --out {tmp}/run",
      ("train.threads = -1", "[0, 1024]"), absent=("run",)),
    C("train.meta_batch that cannot fit", "train --set train.meta_batch=1000000 --out {tmp}/run",
      ("train.meta_batch=1000000 cannot fit in memory", "GiB", "1000000 tasks x 30 samples"),
      absent=("run",)),
    C("checkpoint config out of range", "upgrade-checkpoint {ckpt}",
      ("model.dv = -0.5", "out of range"), _checkpoint(config_patch={"model.dv": -0.5})),
    # --- run folders and outputs (issue 15, items 1, 2, 7) -------------------------------------
    C("train --out under a file", "train --out {tmp}/f.txt/run", ("f.txt", "Not a directory"),
      _write("f.txt", "x")),
    C("train --out is a file", "train --out {tmp}/f.txt", ("f.txt", "exists and is not a folder"),
      _write("f.txt", "x")),
    C("train into a folder holding a run", "train --out {tmp}/run",
      ("run", "not empty", "best.pt", "--resume", "--overwrite"), _write("run/best.pt", "x")),
    C("train --resume without last.pt", "train --resume --out {tmp}/run",
      ("run/last.pt", "does not exist", "nothing to resume"), absent=("run",)),
    C("export --out '-'", "export --random --input-shape 2,8,8 --channels 2 --out -",
      ("'-' (standard output)",)),
    # --- data: real data sets' folders and files --------------------------------------------------
    C("real data set, folder missing (API)",
      _load_dataset("double_nmnist", root="/nonexistent/N-MNIST"),
      ("/nonexistent/N-MNIST", "data folder not found")),
    C("train on a real data set with no folder",
      "train --set data.dataset=double_nmnist --set data.root=/nonexistent --out {tmp}/run",
      ("/nonexistent", "data folder not found"), absent=("run",)),
    C("real data set without --root", "data show nmnist --out {tmp}/s.png",
      ("'nmnist'", "local folder"), absent=("s.png",)),
    C("embedded data set given a folder", "data show gestures --root {tmp} --out {tmp}/s.png",
      ("'gestures'", "takes no folder"), absent=("s.png",)),
    C("unknown data set", "data show gesturez --out {tmp}/s.png",
      ("unknown data set 'gesturez'",), absent=("s.png",)),
    C("N-MNIST .bin truncated", "data show nmnist --root {tmp}/nm --out {tmp}/s.png",
      ("00001.bin", "7 bytes", "5-byte"), _nmnist_folder(b"\x01" * 7), absent=("s.png",)),
    C("N-MNIST .bin of garbage", "data show nmnist --root {tmp}/nm --out {tmp}/s.png",
      ("00001.bin", "outside the 34x34"), _nmnist_folder(bytes([200, 90, 0, 0, 9]) * 4),
      absent=("s.png",)),
    C("N-MNIST folder without Train/", "data show nmnist --root {tmp} --out {tmp}/s.png",
      ("no Train/ folder",), absent=("s.png",)),
    C("AEDAT 3.1 truncated packet header",
      "data show dvs_gesture --root {tmp}/g --out {tmp}/s.png",
      ("user01_led.aedat", "truncated packet header at byte"),
      _gesture_folder(bytes(10)), absent=("s.png",)),
    C("AEDAT 3.1 truncated packet (API)", _reader("read_aedat31", "a.aedat"),
      ("a.aedat", "truncated packet", "needs 80 bytes"),
      _write("a.aedat", _aedat31(_packet_header(capacity=10, number=10) + bytes(16)))),
    C("AEDAT 3.1 that is not AEDAT (API)", _reader("read_aedat31", "a.aedat"),
      ("a.aedat", "not an AEDAT 3.1 file"), _write("a.aedat", "hello")),
    C("AEDAT 4 of garbage (API)", _reader("read_aedat4", "a.aedat4"),
      ("a.aedat4", "not an AEDAT 4.0 file"), _write("a.aedat4", bytes(64))),
    C("AEDAT 4 truncated header (API)", _reader("read_aedat4", "a.aedat4"),
      ("a.aedat4", "truncated AEDAT4 IOHeader"),
      _write("a.aedat4", b"#!AER-DAT4.0\r\n" + np.uint32(400).tobytes() + bytes(20))),
    C("ASL-DVS .mat of garbage (API)", _reader("read_asl_mat", "a.mat"),
      ("a.mat", "not a readable MATLAB .mat file"), _write("a.mat", bytes(100))),
    # --- data: your own recordings (--dataset events) --------------------------------------------
    C("events without --root", "data show events --out {tmp}/s.png",
      ("'events'", "one subfolder per class", "--root DIR"), absent=("s.png",)),
    C("events: empty folder", "data show events --root {tmp}/own --out {tmp}/s.png",
      ("own", "no class folders (0 loose files)"), _mkdir("own"), absent=("s.png",)),
    C("events: class folder with no files", "data events {tmp}/own",
      ("own/cat", "class folder 'cat' holds no files"),
      _both(_npz("own/dog/1.npz"), _mkdir("own/cat")), absent=("own/events.toml",)),
    C("events: class folder with no event files", "data events {tmp}/own",
      ("own/cat/notes.txt", "suffix '.txt' is not an event format", "1 such file(s)"),
      _both(_npz("own/dog/1.npz"), _write("own/cat/notes.txt", "hello")),
      absent=("own/events.toml",)),
    C("events: a .npy that is not events", OWN_CHECK,
      ("own/cat/a.npy", "not events", "lacks ['x', 'y', 't', 'p']"),
      _both(_own_classes(3), _npy("own/cat/a.npy", np.zeros((2, 3)))),
      absent=("own/events.toml",)),
    C("events: an .aedat that is not AEDAT", OWN_CHECK,
      ("own/cat/a.aedat", "not an AEDAT file", "'#!AER-DAT2.0'"),
      _both(_own_classes(3), _write("own/cat/a.aedat", "hello, world")),
      absent=("own/events.toml",)),
    C("events: an .npz without events", OWN_CHECK,
      ("own/cat/a.npz", "holds ['a', 'b']", "expected an array 'events'"),
      _both(_own_classes(3), _npz("own/cat/a.npz", arrays={"a": np.zeros(3),
                                                           "b": np.zeros(3)})),
      absent=("own/events.toml",)),
    C("events: mixed sensor sizes", OWN_CHECK,
      ("mixed sensor sizes", "cat/a.bin is 34x34 (N-MNIST)", "dog/b.npz is 128x128"),
      _both(_own_classes(1), _write("own/cat/a.bin", bytes([1, 2, 0, 0, 5]) * 3),
            _npz("own/dog/b.npz", size=(128, 128))), absent=("own/events.toml",)),
    C("events: an event outside the sensor",
      "data show events --root {tmp}/own --out {tmp}/s.png",
      ("own/class0/0.npz: event 4 at pixel (4, 4) is outside the 4x4 sensor",
       "sensor_size of events.toml"),
      _both(_own_classes(2), _write("own/events.toml", "sensor_size = [4, 4]\n"
                                    "split_classes = [50, 0, 50]\nways = 1\n")),
      absent=("s.png",)),
    C("events: fewer classes than the split needs",
      "data show events --root {tmp}/own --out {tmp}/s.png",
      ("own: 4 classes split 60/20/20 give train 4, val 0, test 0", "'train' needs >= 5"),
      _own_classes(4), absent=("s.png",)),
    C("events: --split-classes not percentages", "data events {tmp}/own --split-classes 70/40/0",
      ("--split-classes '70/40/0'", "sum to 100"), _own_classes(3),
      absent=("own/events.toml",)),
    C("events: --sensor-size not WxH", "data events {tmp}/own --sensor-size 34by34",
      ("--sensor-size '34by34'", "WIDTHxHEIGHT"), _own_classes(3),
      absent=("own/events.toml",)),
    C("events: events.toml with an unknown key",
      "data show events --root {tmp}/own --out {tmp}/s.png",
      ("own/events.toml", "unknown key(s) ['split']"),
      _both(_own_classes(3), _write("own/events.toml", "split = [60, 20, 20]\n")),
      absent=("s.png",)),
    # --- attach-head: the network, K, the output -----------------------------------------------
    C("attach-head: network missing", "attach-head {tmp}/nope.h5 --layer 1 --ways 2 --out {tmp}/l.h5",
      ("network", "nope.h5", "does not exist"), absent=("l.h5",)),
    C("attach-head: --layer beyond the file", "attach-head {bundle} --layer 5 --ways 2 --out "
      "{tmp}/l.h5", ("--layer 5", "has layers 0..2"), absent=("l.h5",)),
    C("attach-head: --layer 0 is the input", "attach-head {bundle} --layer 0 --ways 2 --out "
      "{tmp}/l.h5", ("--layer 0", "layer 0 (input)"), absent=("l.h5",)),
    C("attach-head: --out is the input", "attach-head {bundle} --layer 1 --ways 2 --out {bundle}",
      ("--out", "is also the input NET")),
    C("attach-head: --ways 0", "attach-head {bundle} --layer 1 --ways 0 --out {tmp}/l.h5",
      ("--ways", "'0'"), absent=("l.h5",)),
    C("attach-head: --step beyond the chip's", "attach-head {bundle} --layer 1 --ways 2 --step 1e9 "
      "--out {tmp}/l.h5", ("--step 1000000000.0", "the chip's SOEL steps"), absent=("l.h5",)),
    C("attach-head: --vth beyond 17 bits", "attach-head {bundle} --layer 1 --ways 2 --vth 200000 "
      "--out {tmp}/l.h5", ("--vth 200000", "17 bits"), absent=("l.h5",)),
    # --- NIR graphs (metaloihi import) -------------------------------------------------------------
    C("NIR graph with a missing edge", "import {tmp}/g.nir --out {tmp}/o.h5 --lava-samples 0",
      ("node 'fc2' (Linear)", "missing edge"), _nir("missing edge"), absent=("o.h5",)),
    C("NIR graph with a cycle", "import {tmp}/g.nir --out {tmp}/o.h5 --lava-samples 0",
      ("(Linear)", "cycle"), _nir("cycle"), absent=("o.h5",)),
    C("NIR graph with an unknown node", "import {tmp}/g.nir --out {tmp}/o.h5 --lava-samples 0",
      ("node 'lif1' (Spiky)", "not an NIR node type"), _nir("unknown"), absent=("o.h5",)),
    C("NIR graph with a shape mismatch", "import {tmp}/g.nir --out {tmp}/o.h5 --lava-samples 0",
      ("node 'fc2' (Linear)", "takes [[5]]", "'lif1' gives [[3]]", "shape mismatch"), _nir("shape"), absent=("o.h5",)),
    C("NIR graph with NaN weights", "import {tmp}/g.nir --out {tmp}/o.h5 --lava-samples 0",
      ("node 'fc2' (Linear)", "weight holds nan at [1, 2]"), _nir("nan"), absent=("o.h5",)),
    C("NIR import onto its own graph", "import {tmp}/g.nir --out {tmp}/g.nir --lava-samples 0",
      ("--out", "is also the input GRAPH"), _nir("none")),
    # --- an output that is an input or another output (base/paths.py, one check for all) -------
    C("export --out onto its checkpoint", "export --checkpoint {tmp}/c.pt --out {tmp}/c.pt",
      ("--out", "is also the input --checkpoint"), _write("c.pt", "x")),
    C("evaluate --out onto its checkpoint", "evaluate {tmp}/c.pt --out {tmp}/c.pt",
      ("--out", "is also the input CHECKPOINTS"), _write("c.pt", "x")),
    C("fit-soel --out a symlink to its bundle", "fit-soel {bundle} --out {tmp}/link.h5",
      ("link.h5", "is also the input BUNDLE"), _link("link.h5", "b.h5")),
    C("continual --json onto its bundle", "continual {bundle} --json {bundle}",
      ("--json", "is also the input BUNDLE")),
    C("export --nir onto --out", "export --random --input-shape 2,8,8 --channels 2 "
      "--out {tmp}/x.h5 --nir {tmp}/x.h5", ("--nir", "--out", "same path"), absent=("x.h5",)),
    C("continual --plot onto --json", "continual {bundle} --json {tmp}/x --plot {tmp}/x",
      ("--plot", "--json", "same path"), absent=("x",)),
    C("train --overwrite of the folder holding --init",
      "train --overwrite --init {tmp}/run/best.pt --out {tmp}/run",
      ("--out", "cleared", "--init"), _write("run/best.pt", "x")),
    C("report --out an existing file", "report --out {tmp}/f", ("--out", "not a folder"),
      _write("f", "x")),
    C("demo --out an existing file", "demo --out {tmp}/f --backend sim",
      ("--out", "not a folder"), _write("f", "x")),
    C("METALOIHI_CACHE a regular file", "data show digits --out {tmp}/s.png",
      ("METALOIHI_CACHE", "not a folder"), _env("METALOIHI_CACHE", "cache"),
      absent=("s.png",)),
    # --- seeds: one range for every command ----------------------------------------------------
    *[C(f"{cmd.split()[0]} --seed -1", f"{cmd} --seed -1", ("'--seed'", "'-1'"))
      for cmd in ("adapt {bundle}", "continual {bundle}", "deploy {bundle}",
                  "demo --backend sim", "data show digits", "fit-soel {bundle}")],
    C("export --seed 2**64", "export --random --seed 18446744073709551616 --out {tmp}/o.h5",
      ("'--seed'", "4294967295"), absent=("o.h5",)),
    # --- numbers and values a run cannot use ----------------------------------------------------
    C("model.time_pool past the frames", "train --set model.time_pool=1000 --out {tmp}/run",
      ("time_pool=1000", "no time step"), absent=("run",)),
    C("train.outer_lr 1e300", "train --set train.outer_lr=1e300 --out {tmp}/run",
      ("train.outer_lr = 1e+300", "[1e-12, 10.0]"), absent=("run",)),
    C("model.channels ten million", "train --set 'model.channels=[10000000]' --out {tmp}/run",
      ("model.channels", "[1, 4096]"), absent=("run",)),
    C("model.kernel 100", "train --set model.kernel=100 --out {tmp}/run",
      ("model.kernel = 100", "[1, 63]"), absent=("run",)),
    C("model.kernel past the input", "train --set model.kernel=31 --set model.pool=2 "
      "--out {tmp}/run", ("kernel 31", "larger than the network's"), absent=("run",)),
    C("continual --splits empty", "continual {bundle} --splits ''", ("--splits", "unseen")),
    C("continual --splits train", "continual {bundle} --splits train",
      ("--splits 'train'", "training split")),
    C("fit-soel on meta-test", "fit-soel {bundle} --split test --out {tmp}/f.h5",
      ("--split 'test'", "meta-test"), absent=("f.h5",)),
    # --- untrusted JSON and files (base/json_file.py) --------------------------------------------
    C("report --log a FIFO", "report --log {tmp}/fifo --out {tmp}/r", ("fifo", "FIFO"),
      _fifo("fifo"), absent=("r",)),
    C("report --log iteration -5", "report --log {tmp}/m.jsonl --out {tmp}/r",
      ("line 1", "'iteration' >= 0"), _log_lines('{"iteration": -5}', '{"iteration": 1}'),
      absent=("r",)),
    C("report --log accuracy 7.5", "report --log {tmp}/m.jsonl --out {tmp}/r",
      ("line 1", "val_acc = 7.5", "[0, 1]"), _log_lines('{"iteration": 0, "val_acc": 7.5}'),
      absent=("r",)),
    C("report --log loss 1e308", "report --log {tmp}/m.jsonl --out {tmp}/r",
      ("line 1", "loss = 1e+308"), _log_lines('{"iteration": 0, "loss": 1e308}'),
      absent=("r",)),
    C("report --log a string for a number", "report --log {tmp}/m.jsonl --out {tmp}/r",
      ("line 1", "'iteration'"), _log_lines('{"iteration": "five"}'), absent=("r",)),
    C("report --eval accuracy 500%", "report --eval {tmp}/eval_test.json --out {tmp}/r",
      ("row 0", "acc 5.0", "[0, 1]"), _eval_rows(5.0), absent=("r",)),
    C("report --eval negative CI", "report --eval {tmp}/eval_test.json --out {tmp}/r",
      ("row 0", "ci95 -0.1"), _eval_rows(0.5, -0.1), absent=("r",)),
    C("report --eval nested 100000 deep", "report --eval {tmp}/deep.json --out {tmp}/r",
      ("deep.json", "nested too deep"), _nested("deep.json"), absent=("r",)),
    C("report --figure not a PNG", "report --figure {tmp}/f.png --out {tmp}/r",
      ("f.png", "not a PNG"), _write("f.png", "GIF89a"), absent=("r",)),
    # --- what the readers use, the validator checks ---------------------------------------------
    C("bundle meta dataset an integer", "bundle validate {bundle}",
      ("meta/dataset", "5", "expected one of"), _meta_attr("dataset", 5)),
    C("bundle meta dataset a list", "bundle validate {bundle}",
      ("meta/dataset", "['gestures']"), _meta_attr("dataset", ["gestures"])),
    C("bundle meta encoding absurd", "bundle validate {bundle}",
      ("meta/encoding", "time_pool=1000000000"),
      _meta_attr("encoding", {"pool": 1, "time_pool": 10 ** 9, "steps": None})),
    C("bundle meta splits not a table", "bundle validate {bundle}", ("meta/splits", "must be"),
      _meta_attr("splits", "train")),
    C("bundle weight of uint64 2**64-2", "bundle validate {bundle}",
      ("layer/1/weight", "18446744073709551614", "out of range"),   # not read back as -2
      lambda c: _set(c.bundle, "layer/1/weight",
                     np.full(_get(c.bundle, "layer/1/weight").shape, np.uint64(2 ** 64 - 2)))),
    C("bundle meta created not JSON", "bundle validate {bundle}",
      ("metaloihi/meta/created", "'yesterday'", "not JSON"),
      lambda c: _attr(c.bundle, "metaloihi/meta", "created", "yesterday")),
    C("bundle meta created not a date", "bundle validate {bundle}",
      ("metaloihi/meta/created", "'last tuesday'", "ISO 8601"), _meta_attr("created", "last tuesday")),
    C("bundle SOEL threshold a word", "bundle validate {bundle}",
      ("metaloihi/head/rule/theta", "one number", "'high'"),
      lambda c: _attr(c.bundle, "metaloihi/head/rule", "theta", "high")),
    C("bundle scales of text", "bundle validate {bundle}",
      ("metaloihi/scales", "is not 3 numbers", "'1'"),
      lambda c: _set(c.bundle, "metaloihi/scales", np.array([b"1", b"2", b"3"]))),
    C("bundle declaring a 10^11-value weight", "bundle validate {bundle}",
      ("layer/1/weight", "100000000000 values", "synapses"), _huge_weight),
    C("checkpoint neuron du 5.0", "export --checkpoint {ckpt} --out {tmp}/o.h5",
      ("network.neurons[0].du", "5.0", "[0, 1]"), _neuron0("du", 5.0), absent=("o.h5",)),
    C("upgrade-checkpoint of a du 5.0 network", "upgrade-checkpoint {ckpt}",
      ("network.neurons[0].du", "[0, 1]"), _neuron0("du", 5.0)),
    C("checkpoint neuron vth 0", "export --checkpoint {ckpt} --out {tmp}/o.h5",
      ("network.neurons[0].vth", "> 0"), _neuron0("vth", 0.0), absent=("o.h5",)),
    C("checkpoint int64 theta0", "export --checkpoint {ckpt} --out {tmp}/o.h5",
      (weight_key(0), "int64", "float weights"), _weight0(lambda w: w.long()),
      absent=("o.h5",)),
    C("checkpoint all-zero frozen layer", "export --checkpoint {ckpt} --out {tmp}/o.h5",
      (weight_key(0), "all zero"), _weight0(torch.zeros_like), absent=("o.h5",)),
    # --- event files with impossible values (datasets/event_checks.py) ---
    C("ASL-DVS .mat with a text variable",
      "data show asl_dvs --root {tmp}/asl --out {tmp}/s.png",
      ("asl/a/a_0.mat", "variable 'x' holds text (<U3)", "expected numbers"),
      _asl_folder(x="abc"), absent=("s.png",)),
    C("ASL-DVS .mat with a cell array", "data show asl_dvs --root {tmp}/asl --out {tmp}/s.png",
      ("asl/a/a_0.mat", "variable 'pol' holds objects"),
      _asl_folder(pol=np.array([[1.0], "on"], dtype=object)), absent=("s.png",)),
    C("ASL-DVS .mat with variables of unequal length",
      "data show asl_dvs --root {tmp}/asl --out {tmp}/s.png",
      ("asl/a/a_0.mat", "variables x, y, pol, ts have lengths [4, 4, 4, 3]"),
      _asl_folder(ts=np.array([[0.0], [1.0], [2.0]])), absent=("s.png",)),
    C("ASL-DVS event at x = 1e6", "data show asl_dvs --root {tmp}/asl --out {tmp}/s.png",
      ("asl/a/a_0.mat: event 1 at pixel (1000000, 6)", "outside the 240x180 sensor (ASL-DVS"),
      _asl_folder(x=np.array([[5.0], [1e6], [5.0], [5.0]])), absent=("s.png",)),
    C("ASL-DVS NaN timestamp", "data show asl_dvs --root {tmp}/asl --out {tmp}/s.png",
      ("asl/a/a_0.mat: event 2: ts = nan", "whole microseconds"),
      _asl_folder(ts=np.array([[0.0], [10.0], [np.nan], [30.0]])), absent=("s.png",)),
    C("ASL-DVS timestamps stepping back", "data show asl_dvs --root {tmp}/asl --out {tmp}/s.png",
      ("asl/a/a_0.mat: event 2 has timestamp ts = 10 us", "49990 us before event 1's 50000"),
      _asl_folder(ts=np.array([[0.0], [50000.0], [10.0], [60000.0]])), absent=("s.png",)),
    C("ASL-DVS polarity 2", "data show asl_dvs --root {tmp}/asl --out {tmp}/s.png",
      ("asl/a/a_0.mat: event 0: pol = 2", "polarity is 0/1"),
      _asl_folder(pol=np.full((4, 1), 2.0)), absent=("s.png",)),
    C("DVS-Gesture label ending before it starts",
      "data show dvs_gesture --root {tmp}/g --out {tmp}/s.png",
      ("user01_led_labels.csv: line 2: endTime_usec = 500 <= startTime_usec = 1000",),
      _gesture_recording("1,1000,500\n"), absent=("s.png",)),
    C("DVS-Gesture label outside the recording",
      "data show dvs_gesture --root {tmp}/g --out {tmp}/s.png",
      ("user01_led_labels.csv: line 3: [startTime_usec = 200000, endTime_usec = 300000) us",
       "outside the recording"),
      _gesture_recording("1,0,50000\n2,200000,300000\n"), absent=("s.png",)),
    C("DVS-Gesture label time inf", "data show dvs_gesture --root {tmp}/g --out {tmp}/s.png",
      ("user01_led_labels.csv: line 2: 'inf' is not a whole number",),
      _gesture_recording("1,0,inf\n"), absent=("s.png",)),
    C("DVS-Gesture event outside the 128x128 sensor",
      "data show dvs_gesture --root {tmp}/g --out {tmp}/s.png",
      ("user01_led.aedat: event 7 at pixel (200,", "outside the 128x128 sensor (DVS128"),
      _gesture_recording("1,0,50000\n", x7=200), absent=("s.png",)),
    C("N-Omniglot sample ending before it starts",
      "data show nomniglot --root {tmp}/no --out {tmp}/s.png",
      ("0001_01.csv: line 2: end = 5 <= start = 10",), _omniglot_character("0,10,5\n"),
      absent=("s.png",)),
    C("events: an .npz with polarity 3", OWN_CHECK,
      ("own/cat/a.npz [events]: event 1: p = 3", "polarity is 0/1"),
      _both(_own_classes(3), _npz("own/cat/a.npz", arrays={"events": _tonic_events(p=[0, 3, 1])})),
      absent=("own/events.toml",)),
    C("events: an .npz with negative times", OWN_CHECK,
      ("own/cat/a.npz [events]: event 0: t = -20",),
      _both(_own_classes(3), _npz("own/cat/a.npz",
                                  arrays={"events": _tonic_events(t=[-20, -10, 0])})),
      absent=("own/events.toml",)),
    C("events: an AEDAT 2.0 clock stepping back", OWN_CHECK,
      ("own/cat/a.aedat: event 2 has timestamp t = 100 us", "49900 us before event 1's 50000"),
      _both(_own_classes(3), _aedat2_events("own/cat/a.aedat", t=[0, 50_000, 100])),
      absent=("own/events.toml",)),
    C("cost --synapse-memory-kib 5e-324", "cost {bundle} --synapse-memory-kib 5e-324",
      ("--synapse-memory-kib", "5e-324", "[1, 1e+06]")),
    C("cost --synapse-memory-kib inf", "cost {bundle} --synapse-memory-kib inf",
      ("--synapse-memory-kib", "inf")),
    C("cost --loihi2-gain inf", "cost {bundle} --loihi2-gain inf", ("--loihi2-gain", "inf")),
    C("cost --json onto its bundle", "cost {bundle} --json {bundle}",
      ("--json", "is also the input NET")),
    C("cost --seed -1", "cost {bundle} --seed -1", ("'--seed'", "'-1'")),
    C("sim --out onto its input", "sim {bundle} --input {tmp}/x.npy --out {tmp}/x.npy",
      ("--out", "is also the input --input"), _write("x.npy", "x")),
    C("fit-soel --out over a checkpoint", "fit-soel {bundle} --out {tmp}/c.pt --tasks 2",
      ("c.pt", "exists and is not a bundle"), _write("c.pt", "not a bundle")),
    C("deploy --input of strings", "deploy {bundle} --input {tmp}/s.npy --backend sim",
      ("s.npy", "dtype <U1", "expected numbers"),
      lambda c: np.save(c.tmp / "s.npy", np.full((2, 3, 2, 8, 8), "a"))),
    C("export an input smaller than the kernel", "export --random --input-shape 2,3,3 "
      "--out {tmp}/o.h5", ("kernel 5", "3x3 input"), absent=("o.h5",)),
    C("evaluate a gestures checkpoint on digits",
      f"evaluate {ROOT / 'checkpoints' / 'demo' / 'theta0.pt'} --dataset digits --tasks 4",
      ("input shape", "does not match the network's (256,)")),
    C("sim --input of strings", "sim {bundle} --input {tmp}/s.npy",
      ("s.npy", "dtype <U1", "expected numbers"),
      lambda c: np.save(c.tmp / "s.npy", np.full((2, 3, 2, 8, 8), "a"))),
    C("sim --input a FIFO", "sim {bundle} --input {tmp}/fifo", ("fifo", "FIFO"), _fifo("fifo")),
    # --- command-line typos -------------------------------------------------------------------
    C("unknown command", "trian", ("No such command 'trian'", "Did you mean 'train'")),
    C("unknown subcommand", "bundle valdate x.h5", ("No such command 'valdate'",)),
    C("unknown option", "adapt x.h5 --wayz 5", ("No such option: --wayz",)),
    C("missing argument", "adapt", ("Missing argument 'bundle'",)),
    C("option without its value", "export --ways", ("'--ways' requires an argument",)),
    C("--ways 0", "adapt x.h5 --ways 0", ("--ways", "'0'", "greater than or equal to 1")),
    C("--ways -1", "adapt x.h5 --ways -1", ("--ways", "'-1'")),
    C("--ways not a number", "adapt x.h5 --ways five", ("--ways", "'five'", "integer")),
    C("--backend nonsense", "adapt x.h5 --backend loihi", ("--backend", "'loihi'", "'sim'")),
    C("--shots 0 (adapt)", "adapt x.h5 --shots 0", ("--shots", "'0'")),
    C("--shots 0 (evaluate)", "evaluate x.pt --shots 0", ("--shots='0'", ">= 1")),
    C("--shots not integers", "evaluate x.pt --shots 1,five", ("--shots='1,five'",)),
    C("--tasks 1", "evaluate x.pt --tasks 1", ("--tasks=1", ">= 2")),
    C("--per-class 0", "data show gestures --per-class 0 --out {tmp}/s.png",
      ("--per-class", "'0'"), absent=("s.png",)),
    C("deploy --steps 0", "deploy {bundle} --steps 0", ("--steps", "'0'")),
    C("deploy --rate 2", "deploy {bundle} --rate 2", ("--rate", "'2'")),
    # --- cost on a netx file ------------------------------------------------------------------
    C("cost: netx file of random bytes", "cost {tmp}/r.net --json {tmp}/c.json",
      ("r.net", "not an HDF5 file"), _write("r.net", np.random.default_rng(2).bytes(4096)),
      absent=("c.json",)),
    C("cost: netx input of the wrong shape",
      "cost {tmp}/plain.net --input {tmp}/x.npy --json {tmp}/c.json",
      ("x.npy", "input of shape (1, 3, 8, 8)", "expected [batch, steps, 2, 8, 8]"),
      _plain_netx, absent=("c.json",)),
    C("cost: --input given with a bundle", "cost {bundle} --input {tmp}/x.npy",
      ("--input is for netx files",)),
]


def _run(case: Case, c: Ctx) -> int:
    if callable(case.run):
        return cli.guarded(lambda: case.run(c))
    argv = shlex.split(case.run.format(tmp=c.tmp, bundle=c.bundle, ckpt=c.ckpt))
    with pytest.raises(SystemExit) as exc:
        cli.main(argv)
    return exc.value.code


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_input(case: Case, valid_bundle, tmp_path, monkeypatch, capsys):
    if case.needs_lava and not lava_available():
        pytest.skip("needs Lava")
    c = Ctx(tmp_path, tmp_path / "b.h5", monkeypatch)
    shutil.copy(valid_bundle, c.bundle)
    if case.setup:
        case.setup(c)
    code = _run(case, c)
    out, err = capsys.readouterr()
    lines = err.strip().splitlines()
    assert code == 1, (code, err[-3000:])
    assert "Traceback" not in out + err
    assert len(lines) == 1 and lines[0].startswith(("error: ", "aborted")), err
    for fragment in case.expect:
        assert fragment in lines[0], (fragment, lines[0])
    for rel in case.absent:
        assert not (tmp_path / rel).exists(), f"{rel} was left behind"
    assert not [p for p in tmp_path.rglob("*") if ".tmp" in p.name], "a temporary file was left"


def test_the_corpus_is_large_and_names_are_unique():
    assert len(CASES) >= 30
    assert len({c.name for c in CASES}) == len(CASES)


REAL = ["unknown command", "--ways 0", "bundle cut in half", "export checkpoint with NaN weights",
        "--set a word for an integer"]


@pytest.mark.parametrize("name", REAL)
def test_real_entry_point(name, valid_bundle, tmp_path, monkeypatch):
    """The same rows through `python -m metaloihi` (the console script's main): same exit code,
    same one line, no traceback."""
    case = next(c for c in CASES if c.name == name)
    c = Ctx(tmp_path, tmp_path / "b.h5", monkeypatch)
    shutil.copy(valid_bundle, c.bundle)
    if case.setup:
        case.setup(c)
    argv = shlex.split(case.run.format(tmp=c.tmp, bundle=c.bundle, ckpt=c.ckpt))
    r = bounded.run([sys.executable, "-m", "metaloihi", *argv], capture_output=True,
                    text=True, cwd=ROOT, timeout=120)
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 1 and "Traceback" not in r.stdout + r.stderr, r.stderr[-3000:]
    assert len(lines) == 1 and all(f in lines[0] for f in case.expect), r.stderr
    for rel in case.absent:
        assert not (tmp_path / rel).exists()


def test_internal_errors_exit_2_with_the_traceback_and_a_hint(capsys):
    def bug():
        raise ZeroDivisionError("division by zero")
    assert cli.guarded(bug) == 2
    err = capsys.readouterr().err
    assert "Traceback" in err and "internal error: ZeroDivisionError" in err
    assert "bug in metaloihi: please report it" in err


def test_an_interrupted_export_keeps_the_previous_bundle(valid_bundle, tmp_path, monkeypatch,
                                                         capsys):
    """Atomic write: a failure mid-write leaves the old file byte for byte, and no temp file."""
    out = tmp_path / "o.h5"
    shutil.copy(valid_bundle, out)
    before = out.read_bytes()
    def boom(*a, **k):
        raise KeyboardInterrupt
    monkeypatch.setattr("metaloihi.bridge.bundle._write_head", boom)
    with pytest.raises(SystemExit) as exc:
        cli.main(["export", "--random", "--input-shape", "2,8,8", "--channels", "2",
                  "--out", str(out)])
    assert exc.value.code == 1 and out.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["o.h5"]
