"""The command line as a user meets it, run in-process: `run_cli` is `metaloihi <argv>` through
cli.main (the guard that turns every error into one line); `one_line_error` holds a result to
the bad-input corpus's rule; `no_temps` says no temporary file was left."""
from __future__ import annotations

import shlex
from pathlib import Path

import pytest

from metaloihi import cli


def run_cli(argv, capsys) -> tuple[int, str, str]:
    """metaloihi <argv> (a command line, or a list of arguments: paths and numbers are turned
    into text): (exit code, stdout, stderr)."""
    args = shlex.split(argv) if isinstance(argv, str) else [str(a) for a in argv]
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


def sim_compare(net: Path, x, folder: Path, capsys, last: str, *extra) -> tuple[str, dict]:
    """`metaloihi sim NET --input X.npy --compare --out T.npz [extra]` on input array x: exit 0,
    the last population `last` ("layer 5 (dense)") identical to Lava in s, u and v, and the
    speed line says so; (stdout, the trace)."""
    import numpy as np
    np.save(folder / "x.npy", x)
    code, out, err = run_cli(["sim", net, "--input", folder / "x.npy", "--compare", "--out",
                              folder / "t.npz", *extra], capsys)
    assert code == 0, err
    assert f"{last}: spikes identical, u identical, v identical" in out and "(identical)" in out
    return out, dict(np.load(folder / "t.npz"))
