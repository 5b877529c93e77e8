"""The one exception type for bad evaluation input.

``seggpt-vos eval`` turns an ``EvalError`` into one line on stderr and exit code 2. The official DAVIS toolkit instead
exits 0 without a CSV, hangs, or runs out of memory on the same inputs; every message here names the offending file
and says how to fix it.
"""


class EvalError(ValueError):
    """Bad evaluation input: missing or malformed result/ground-truth file, unknown object id, wrong layout."""
