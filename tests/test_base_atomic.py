"""base/atomic.py: a write replaces its target whole or not at all, and only ever replaces a
regular file (a FIFO, a device or `-` is refused and stays what it was; a symlink is written
through); long names, temporary files of dead processes, a read-only folder, a full disk and a
bug in the writer each end as documented, with no temporary file left."""
from __future__ import annotations

import os
import stat
import sys
from pathlib import Path

import pytest
import torch

from helpers import bounded
from helpers.cli import no_temps, one_line_error, run_cli
from metaloihi.base import atomic
from metaloihi.base.errors import UserError


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
