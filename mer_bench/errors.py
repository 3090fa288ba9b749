"""Exceptions the CLI turns into one-line messages (exit code 2; 130 for an interrupted run)."""


class MerBenchError(ValueError):
    """Bad input from the user: an unknown name, a malformed file, an impossible setting.

    The message names the value, file or row at fault and, where there is a list of valid
    choices, the choices.
    """


class RunInterrupted(MerBenchError):
    """Ctrl-C during a run: the message says what was kept and how to resume."""
