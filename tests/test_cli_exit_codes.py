"""The CLI's guard (metaloihi/cli/app.py: guarded, main): what each way of ending becomes. Success
exits 0; a user error exits 1 with one line; an OS refusal to write, anywhere, and running out of
memory are user errors too, naming what was refused and the limit; an interrupt is "aborted"
even when a cleanup fails after it; a bug exits 2 with the traceback (the bad-input corpus holds
every user mistake to the one-line rule)."""
import platform

from helpers.cli import run_cli
from metaloihi import cli
from metaloihi.base.lava_support import lava_available


def test_version_exits_0(capsys):
    code, out, _ = run_cli(["version"], capsys)
    lava = "yes" if lava_available() else "no"
    assert code == 0
    assert out == f"metaloihi 0.1.0 (Python {platform.python_version()}, lava: {lava})\n"


def test_user_error_exits_1_with_one_line(capsys):
    code, _, err = run_cli(["demo", "--backend", "loihi"], capsys)
    assert code == 1
    assert err.strip().splitlines() == ["error: backend 'loihi'; expected one of sim, lava, loihi2"]


def test_internal_exit_codes_pass_through(capsys):
    import typer
    def exits_2():
        raise typer.Exit(2)
    assert cli.guarded(lambda: cli.app(args=["version"], standalone_mode=False)) == 0
    assert cli.guarded(exits_2) == 2


def test_an_os_level_write_refusal_anywhere_is_one_line(capsys):
    def append_to_log():
        raise OSError(28, "No space left on device", "/runs/x/metrics.jsonl")
    assert cli.guarded(append_to_log) == 1
    err = capsys.readouterr().err
    assert err == "error: cannot write '/runs/x/metrics.jsonl': No space left on device\n"


def test_memory_error_is_reported_as_out_of_memory_with_the_limit(capsys, monkeypatch):
    import resource
    monkeypatch.setattr(resource, "getrlimit", lambda what: (3 * 2 ** 30, resource.RLIM_INFINITY))

    def allocate():
        raise MemoryError()
    assert cli.guarded(allocate) == 1
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert err.startswith("error: out of memory (address-space limit `ulimit -v` 3145728 KiB")


def test_a_cleanup_failure_after_a_signal_is_reported_as_the_signal(capsys):
    """A signal during a Lava run can make Lava's stop() raise while the Interrupted unwinds;
    that is the interrupt (exit 1, 'aborted'), not a bug report."""
    from metaloihi.base.errors import Interrupted

    def fn():
        try:
            raise Interrupted("SIGTERM")
        finally:
            raise RuntimeError("Runtime Received [-6.]")
    called = []
    assert cli._guarded(fn, lambda: called.append(1)) == 1
    err = capsys.readouterr().err
    assert err.strip() == "aborted (SIGTERM)" and called == [1]

    def bug():
        raise RuntimeError("a real bug")
    assert cli._guarded(bug, lambda: None) == 2                    # still a bug report
