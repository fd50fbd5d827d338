"""What a command reads and what it writes, checked before any work: an output is never one of
the command's inputs or another of its outputs (symlinks and relative spellings resolved), an
output file is not a folder, an output folder is not a file, and a folder that the command
clears (--overwrite) holds none of its inputs. One mechanism for every command (the CLI
declares each command's inputs and outputs once: metaloihi/cli/options.py `io_paths`)."""
from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Iterable, Mapping

from metaloihi.base.errors import UserError



def _resolved(p) -> Path:
    """The real path (symlinks followed, also for a path that does not exist yet)."""
    return Path(os.path.realpath(os.path.expanduser(os.fspath(p))))


def _each(named: Mapping[str, object]) -> Iterable[tuple[str, Path, Path]]:
    """(name, as given, resolved) for every path of a mapping of name -> path, list or None."""
    for name, val in named.items():
        for p in (val if isinstance(val, (list, tuple)) else [val]):
            if p is not None and os.fspath(p) != "":
                yield name, Path(p), _resolved(p)


def _inside(child: Path, folder: Path) -> bool:
    return child == folder or folder in child.parents


def check_io(inputs: Mapping[str, object], outputs: Mapping[str, object] | None = None,
             folders: Mapping[str, object] | None = None,
             cleared: Mapping[str, object] | None = None) -> None:
    """Refuse, in one line naming both options and the path, before any work:
    - an output file (outputs) or output folder (folders) that is one of the inputs, or that
      is another output;
    - an output file that is an existing folder, an output folder that is an existing file;
    - an input inside a folder the command clears before writing (cleared)."""
    ins = list(_each(inputs))
    outs = [(n, g, r, False) for n, g, r in _each(outputs or {})] + \
           [(n, g, r, True) for n, g, r in _each(folders or {})]
    for i, (name, given, real, is_folder) in enumerate(outs):
        for in_name, in_given, in_real in ins:
            if real == in_real:
                raise UserError(f"{name} {str(given)!r} is also the input {in_name} "
                                f"{str(in_given)!r}: writing it would destroy what the command "
                                "reads; give another path")
        for other, o_given, o_real, _ in outs[:i]:
            if real == o_real:
                raise UserError(f"{name} {str(given)!r} and {other} {str(o_given)!r} are the "
                                "same path: one output would replace the other; give each its "
                                "own path")
        _kind(name, given, real, is_folder)
    for name, given, real in _each(cleared or {}):
        for in_name, in_given, in_real in ins:
            if _inside(in_real, real):
                raise UserError(f"{name} {str(given)!r} would be cleared (--overwrite) but holds "
                                f"the input {in_name} {str(in_given)!r}; copy it elsewhere first")


def _kind(name: str, given: Path, real: Path, is_folder: bool) -> None:
    try:
        mode = os.stat(real).st_mode
    except OSError:
        return                               # does not exist yet (or unreadable: the writer says)
    if is_folder and not stat.S_ISDIR(mode):
        raise UserError(f"{name} {str(given)!r} exists and is not a folder; give a folder path")
    if not is_folder and stat.S_ISDIR(mode):
        raise UserError(f"{name} {str(given)!r} is a folder; give a file path")

