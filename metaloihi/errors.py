"""Error types shared by every layer. A UserError is bad input: the CLI prints its one-line
message and exits 1, no traceback. Anything else is a bug: exit 2 with a hint to report it."""


class UserError(ValueError):
    """Bad input from the user (a file, a value, a flag): the message names the thing and value."""
