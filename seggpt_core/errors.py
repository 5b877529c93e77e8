"""The one exception type for bad user input.

The CLI turns an ``InputError`` into a single line on stderr and exit code 2; anything else is a bug and keeps its
traceback. Messages name the offending file and say how to fix it.
"""


class InputError(ValueError):
    """Bad input from the user (missing file, wrong size, unknown id, wrong checkpoint...)."""
