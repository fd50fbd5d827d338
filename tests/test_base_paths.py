"""base/paths.py (what a command reads and writes, checked before any work), base/json_file.py
(untrusted JSON) and the frame cache's damaged headers: the mechanisms behind the bad-input
corpus's path, JSON and cache rows."""
import json
import os

import numpy as np
import pytest

from helpers.cli import one_line_error, run_cli
from metaloihi.base.errors import UserError
from metaloihi.base.json_file import read_json
from metaloihi.base.paths import check_io
from metaloihi.datasets import store


def test_an_output_that_is_an_input_is_refused_through_symlinks_and_spellings(tmp_path,
                                                                              monkeypatch):
    src = tmp_path / "in.h5"
    src.write_bytes(b"data")
    (tmp_path / "link.h5").symlink_to(src)
    monkeypatch.chdir(tmp_path)
    for out in (src, tmp_path / "link.h5", "in.h5", tmp_path / "sub" / ".." / "in.h5"):
        (tmp_path / "sub").mkdir(exist_ok=True)
        with pytest.raises(UserError, match=r"--out .* is also the input BUNDLE"):
            check_io({"BUNDLE": src}, {"--out": out})
    assert src.read_bytes() == b"data"
    check_io({"BUNDLE": src}, {"--out": tmp_path / "new.h5", "--json": None})   # passes


def test_two_outputs_on_one_path_and_kinds_are_refused(tmp_path):
    with pytest.raises(UserError, match=r"--nir 'x' and --out 'x' are the same path"):
        check_io({}, {"--out": "x", "--nir": "x"})
    (tmp_path / "f").write_text("x")
    with pytest.raises(UserError, match="exists and is not a folder"):
        check_io({}, folders={"--out": tmp_path / "f"})
    with pytest.raises(UserError, match="is a folder; give a file path"):
        check_io({}, {"--out": tmp_path})
    with pytest.raises(UserError, match=r"--out .* would be cleared .* holds the input --init"):
        check_io({"--init": tmp_path / "run" / "best.pt"}, cleared={"--out": tmp_path / "run"})
    check_io({"--init": tmp_path / "other.pt"}, cleared={"--out": tmp_path / "run"})


def test_untrusted_json_is_bounded_and_named(tmp_path):
    p = tmp_path / "ok.json"
    p.write_text(json.dumps({"a": [1, 2.5]}))
    assert read_json(p, "results") == {"a": [1, 2.5]}
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100000 + "]" * 100000)
    with pytest.raises(UserError, match=r"results .*deep.json.*nested too deep"):
        read_json(deep, "results")
    os.mkfifo(tmp_path / "fifo")
    with pytest.raises(UserError, match="fifo"):
        read_json(tmp_path / "fifo", "results")          # refused unopened: never blocks
    (tmp_path / "bin.json").write_bytes(b"\xff\xfe")
    with pytest.raises(UserError, match="not UTF-8"):
        read_json(tmp_path / "bin.json", "results")


@pytest.mark.parametrize("header", [
    {"meta": {}},                                                      # no arrays
    {"arrays": [{"name": "x", "dtype": "<f4", "shape": [-3], "offset": 0}], "meta": {}},
    {"arrays": [{"name": "x", "dtype": "not a dtype", "shape": [1], "offset": 0}], "meta": {}},
    {"arrays": 5, "meta": {}},
])
def test_a_cache_entry_with_a_valid_magic_and_a_damaged_header_is_rebuilt(tmp_path, monkeypatch,
                                                                           header):
    monkeypatch.setenv("METALOIHI_CACHE", str(tmp_path))
    params = {"v": 1}
    path = tmp_path / f"frames-{store.cache_key(params)}.mlf"
    text = json.dumps(header).encode()
    path.write_bytes(store.MAGIC + len(text).to_bytes(8, "little") + text)
    with pytest.raises(UserError, match="corrupt cache header"):
        store.load_arrays(path)
    built = {"x": np.arange(3, dtype=np.int16)}
    arrays, _ = store.cached("frames", params, lambda: (built, {"made": 1}))
    assert np.array_equal(arrays["x"], built["x"])
    assert np.array_equal(store.load_arrays(path)[0]["x"], built["x"])     # replaced on disk


def test_a_cache_folder_that_is_a_file_is_named(tmp_path, monkeypatch):
    (tmp_path / "c").write_text("x")
    monkeypatch.setenv("METALOIHI_CACHE", str(tmp_path / "c"))
    with pytest.raises(UserError, match=r"cache folder .*METALOIHI_CACHE.* not a folder"):
        store.cache_dir()


def test_run_writes_a_relative_out_where_the_user_stands(tmp_path):
    """`./run CMD --out rel` from another folder writes tmp/rel, not into the repository."""
    import sys
    from pathlib import Path
    sys.path.insert(0, str(Path(__file__).parent))
    from helpers import bounded
    repo = Path(__file__).resolve().parents[1]
    res = bounded.run(["bash", str(repo / "run"), "export", "--random", "--input-shape", "2,8,8",
                       "--channels", "2", "--out", "rel.h5"], cwd=tmp_path, capture_output=True,
                      text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    assert (tmp_path / "rel.h5").is_file() and not (repo / "rel.h5").exists()


def test_a_disk_without_room_is_refused_before_anything_is_written(tmp_path, monkeypatch):
    """libhdf5 may crash (SIGSEGV) when a write hits a full disk: bundle and NIR writers check
    the free space first, for both outputs, and write nothing (measured on a 3.2 MB tmpfs)."""
    import collections
    from metaloihi.bridge.export import export_bundle, random_float_network
    real = os.statvfs
    Fake = collections.namedtuple("Fake", "f_bavail f_frsize")
    monkeypatch.setattr(os, "statvfs", lambda p: Fake(3 * 1024 * 1024 // 4096, 4096)
                        if str(p).startswith(str(tmp_path)) else real(p))
    specs, params, neurons = random_float_network((2, 8, 8), ways=3, channels=(2, 4), seed=1)
    with pytest.raises(UserError, match=r"bundle and NIR graph .*o\.h5.*No space left.*3072 "
                                        r"KiB free"):
        export_bundle(tmp_path / "o.h5", specs, params, neurons, nir_path=tmp_path / "o.nir")
    assert list(tmp_path.iterdir()) == []
    export_bundle(tmp_path / "o.h5", specs, params, neurons)      # one output fits
    assert [p.name for p in tmp_path.iterdir()] == ["o.h5"]


# --- through the commands: inputs that are not files, outputs where they cannot go ---------
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
