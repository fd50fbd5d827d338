"""Error types shared by every layer. A UserError is bad input: the CLI prints its one-line
message and exits 1, no traceback. Anything else is a bug: exit 2 with a hint to report it."""


class UserError(ValueError):
    """Bad input from the user (a file, a value, a flag): the message names the thing and value."""


class Interrupted(BaseException):
    """A signal (SIGINT/SIGTERM/SIGHUP) that ends a command at once: the CLI prints "aborted
    (<message>)" and exits 1. A BaseException, like KeyboardInterrupt, so that no `except
    Exception` on the way swallows it; not a KeyboardInterrupt, so that typer does not turn
    it into a bare exit code 130 and lose the message."""
