"""Reading JSON a user hands us (logs, evaluations, results) as untrusted input: only regular
files (a FIFO or device would block or never end), a bounded size, gzip by suffix, and every
failure (not UTF-8, not JSON, nested deeper than the parser's stack) one UserError naming the
file. Values are then the caller's to check."""
from __future__ import annotations

import gzip
import json
import zlib

from metaloihi.base.errors import UserError
from metaloihi.base.atomic import regular_input

MAX_BYTES = 1 << 30          # 1 GiB of text: far above any file this project writes


def read_text(path, what: str) -> str:
    """The text of a regular file (.gz decompressed), bounded by MAX_BYTES."""
    p = regular_input(path, what)
    try:
        if p.stat().st_size > MAX_BYTES:
            raise UserError(f"{what} {str(p)!r} is {p.stat().st_size} bytes, more than "
                            f"{MAX_BYTES} (not a file this project writes)")
        if p.suffix == ".gz":
            with gzip.open(p, "rb") as fh:
                data = fh.read(MAX_BYTES + 1)
        else:
            data = p.read_bytes()
        if len(data) > MAX_BYTES:
            raise UserError(f"{what} {str(p)!r} decompresses to more than {MAX_BYTES} bytes")
        return data.decode("utf-8")
    except (OSError, EOFError, zlib.error) as err:
        raise UserError(f"{what} {str(p)!r} cannot be read: {err}") from None
    except UnicodeDecodeError:
        raise UserError(f"{what} {str(p)!r} is not UTF-8 text") from None


def parse(text: str, what: str):
    """json.loads with its failures as one UserError naming `what`."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise UserError(f"{what} is not valid JSON: {err}") from None
    except RecursionError:
        raise UserError(f"{what}: JSON nested too deep to read") from None


def read_json(path, what: str):
    """The JSON value of a regular file (see read_text)."""
    return parse(read_text(path, what), f"{what} {str(path)!r}")
