"""The `metaloihi` command line: the typer app, its entry point `main`, and the exit-code guard
every command runs under. Exit codes: 0 ok, 1 user error (one line), 2 internal error.
The commands live beside this module, one module per command group (metaloihi/cli/__init__.py
registers them)."""
from __future__ import annotations

import errno
import os
import sys

import typer

from metaloihi import __version__
from metaloihi.base.errors import Interrupted, UserError
from metaloihi.datasets.names import EMBEDDED, OWN, REAL

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="metaloihi: meta-trained spiking networks, one-shot learning on Loihi 2.")
# the data sets by name from datasets/names.py (what registry.py loads; not the loaders)
data_app = typer.Typer(no_args_is_help=True, help=(
    "Event data sets. Commands: show (a PNG grid of a data set's samples), events (check a "
    "folder of your own recordings and write its settings). Embedded "
    f"(generated here, cached, no files): {', '.join(EMBEDDED)}. Real recordings (read from "
    f"--root DIR, never downloaded): {', '.join(REAL)}. Your own recordings (--root DIR, one "
    f"subfolder per class): {', '.join(OWN)}."))
app.add_typer(data_app, name="data")
bundle_app = typer.Typer(no_args_is_help=True, help="Deployment bundles (.h5): check them.")
app.add_typer(bundle_app, name="bundle")


@app.command()
def version() -> None:
    """Print metaloihi's version and whether Lava is usable here."""
    from metaloihi.base.lava_support import lava_available
    typer.echo(f"metaloihi {__version__} (Python {sys.version.split()[0]}, "
               f"lava: {'yes' if lava_available() else 'no'})")


def _one_line(text: str) -> str:
    return " ".join(part.strip() for part in str(text).splitlines() if part.strip())


def _usage_message(err) -> str:
    """A click/typer usage error as one line, with the offending value where typer's message
    leaves it out (its pydantic coercion keeps the input on the chained error)."""
    msg = _one_line(err.format_message()).replace("Value error, ", "")
    errors = getattr(err.__cause__, "errors", None)
    if callable(errors):
        try:
            got = errors()[0].get("input")
        except Exception:  # noqa: BLE001 - only decoration
            got = None
        if got is not None and repr(str(got)) not in msg:
            msg = f"{msg.rstrip('.')}, got {str(got)!r}"
    ctx = getattr(err, "ctx", None)
    if ctx is not None:
        msg += f" (see '{ctx.command_path} --help')"
    return msg


# the file system refusing a write: the user's disk, folder or permissions, not a bug
_FS_ERRNOS = {errno.ENOSPC, errno.EROFS, errno.EDQUOT, errno.EACCES, errno.EPERM, errno.EFBIG,
              errno.ENAMETOOLONG}


def _fs_failure(err: OSError) -> str | None:
    """An OSError of the file system (full disk, read-only folder, permissions) in one line
    naming the file; None for other OSErrors (those stay internal errors)."""
    if err.errno not in _FS_ERRNOS:
        return None
    where = f" {str(err.filename)!r}" if err.filename else ""
    return f"cannot write{where}: {err.strerror or os.strerror(err.errno)}"


def guarded(fn) -> int:
    """Run fn() and turn what it raises into an exit code and at most one line on stderr:
    0 ok, 1 the user's mistake (UserError, a usage error, missing Lava, an interrupt), 2 a bug
    (with the traceback and a hint to report it). `main` runs the CLI through it. A watchdog
    (metaloihi/watchdog.py) ends a Lava run whose worker died; SIGTERM/SIGHUP interrupt like
    Ctrl-C, and an interrupted Lava run's workers and shared memory are reaped."""
    from metaloihi.watchdog import Watchdog, signals_interrupt
    with Watchdog() as dog, signals_interrupt():
        return _guarded(fn, lambda: _end_lava_run(dog))


def _end_lava_run(dog) -> None:
    """After an interrupt in a Lava run: kill its workers, unlink its segments, exit now (its
    runtime's threads could hold the interpreter's shutdown forever)."""
    from metaloihi.watchdog import lava_active
    if not lava_active():
        return
    procs, _ = dog.reap(everything=True)
    if not procs:       # no Lava run was under way (e.g. an in-process test after a Lava one)
        return
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(1)


def _guarded(fn, interrupted) -> int:
    from metaloihi.base.lava_support import LavaUnavailable
    from typer._click.exceptions import ClickException, NoArgsIsHelpError
    try:
        rv = fn()
    except UserError as err:
        typer.echo(f"error: {_one_line(err)}", err=True)
        return 1
    except LavaUnavailable as err:
        typer.echo(f"error: {_one_line(err)}", err=True)
        return 1
    except (typer.Abort, KeyboardInterrupt):
        typer.echo("aborted", err=True)
        interrupted()
        return 1
    except Interrupted as err:          # a signal that stopped a command at once
        typer.echo(f"aborted ({_one_line(err)})", err=True)
        interrupted()
        return 1
    except MemoryError:
        from metaloihi.watchdog import memory_limit
        typer.echo(f"error: out of memory{memory_limit()}; use a smaller meta_batch, "
                   "val_tasks or data set, or raise the limit", err=True)
        return 1
    except NoArgsIsHelpError as err:    # a bare `metaloihi` or group: the help, exit 1
        err.show()
        return 1
    except ClickException as err:       # click/typer usage errors: unknown command/option, ...
        typer.echo(f"error: {_usage_message(err)}", err=True)
        return 1
    except OSError as err:
        if _fs_failure(err) is None:
            return _internal(err)
        typer.echo(f"error: {_fs_failure(err)}", err=True)
        return 1
    except Exception as err:  # noqa: BLE001 - the last line of defence
        cause = _interrupt_behind(err)
        if cause is not None:     # cleanup (e.g. Lava's stop) failed after a signal: the signal
            typer.echo(f"aborted ({_one_line(cause) or 'interrupted'})", err=True)
            interrupted()
            return 1
        return _internal(err)
    if rv == 130:       # typer turns Ctrl-C inside a command into Exit(130)
        typer.echo("aborted (interrupted)", err=True)
        interrupted()
        return 1
    return rv if isinstance(rv, int) and not isinstance(rv, bool) else 0


def _interrupt_behind(err: BaseException):
    """The Interrupted / KeyboardInterrupt an exception was raised while handling, if any."""
    seen = set()
    cur = err.__context__
    while cur is not None and id(cur) not in seen:
        if isinstance(cur, (Interrupted, KeyboardInterrupt)):
            return cur
        seen.add(id(cur))
        cur = cur.__context__
    return None


def _internal(err: BaseException) -> int:
    """A bug: the traceback, a hint to report it, exit 2."""
    import traceback
    traceback.print_exception(type(err), err, err.__traceback__)
    typer.echo(f"internal error: {type(err).__name__}: {err}\n"
               "This is a bug in metaloihi: please report it with the traceback above.",
               err=True)
    return 2


def main(argv: list[str] | None = None) -> None:
    sys.exit(guarded(lambda: app(args=argv, standalone_mode=False, prog_name="metaloihi")))
