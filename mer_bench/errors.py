"""The one exception type the CLI turns into a one-line message and exit code 2."""


class MerBenchError(ValueError):
    """Bad input from the user: an unknown name, a malformed file, an impossible setting.

    The message names the value, file or row at fault and, where there is a list of valid
    choices, the choices.
    """
