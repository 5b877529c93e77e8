"""Argument types: every value the command line accepts is checked where it is defined.

Each function is an argparse ``type=``: it turns the text into a value or raises ``argparse.ArgumentTypeError``, which
argparse prints as one line (``error: argument --steps: ...``, through :class:`OneLineParser`) with exit code 2,
before any work starts. Every numeric
flag of ``seggpt-vos`` and ``scripts/train.py`` uses one of them (``tests/test_arguments.py`` checks that none is a
bare ``int``/``float`` and fuzzes each with nan, inf, -1 and text). Nothing here imports torch unless a ``--device``
is given.
"""

from __future__ import annotations

import argparse
import difflib
import math
import sys
from fractions import Fraction

#: Largest ``--context``: previous predictions kept as prompts. Each one keeps its frame, slots and windows and is
#: painted against every query: with the shipped model at 480p, peak memory grew from 383 MB (context 0) to 1468 MB
#: (context 64) for one object, about 17 MB per context frame, and more with several objects (about 40 MB each was
#: seen), so 64 stays within a few GB. The paper's best is 7 (8 frames with the first).
MAX_CONTEXT = 64

#: Largest seed: numpy and torch generators both take it.
MAX_SEED = 2**32 - 1
#: Largest matte clean-up radius (--grow, --feather, ...), in pixels.
MAX_MORPHOLOGY = 256


class OneLineParser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose errors are one line (the full usage is one ``--help`` away), exit code 2.

    Unknown options are reported by the subcommand that got them (``seggpt-vos propagate: error: ...``, pointing at
    its ``--help``), and an error names the nearest option to a mistyped one (did you mean ``--output`` instead of
    ``--ouput``?), also when the typo makes a required option look missing. Subparsers inherit the class.
    """

    def parse_known_args(self, args=None, namespace=None):
        self._given = list(sys.argv[1:] if args is None else args)
        return super().parse_known_args(args, namespace)

    def parse_args(self, args=None, namespace=None):
        namespace, unknown = self.parse_known_args(args, namespace)
        if unknown:
            self._subcommand_parser(namespace).error(f"unrecognized arguments: {' '.join(unknown)}")
        return namespace

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message}{self._suggestion()} (see '{self.prog} --help')\n")

    def _subcommand_parser(self, namespace: argparse.Namespace) -> OneLineParser:
        for action in self._actions:
            if isinstance(action, argparse._SubParsersAction):
                chosen = action.choices.get(getattr(namespace, action.dest, None))
                if chosen is not None:
                    return chosen._subcommand_parser(namespace)
        return self

    def _suggestion(self) -> str:
        """``; did you mean --output instead of --ouput?`` for the first given option this parser lacks and has a near
        miss of, else ''."""
        options = {option.lstrip("-"): option for option in self._option_string_actions}
        for arg in getattr(self, "_given", []):
            name = arg.split("=", 1)[0].lstrip("-")
            if arg.startswith("--") and not any(option.startswith(name) for option in options):
                close = difflib.get_close_matches(name, list(options), n=1)
                if close:
                    return f"; did you mean {options[close[0]]} instead of {arg.split('=', 1)[0]}?"
        return ""


def _integer(text: str) -> int:
    try:
        return int(text, 10)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None


def _real(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
    return value


def int_range(low: int, high: int | None = None, *, why: str = ""):
    """A whole number within ``low..high`` (no upper bound when ``high`` is None); ``why`` explains the bound."""

    def check(text: str) -> int:
        value = _integer(text)
        if value < low or (high is not None and value > high):
            bound = f">= {low}" if high is None else f"within {low}..{high}"
            raise argparse.ArgumentTypeError(f"must be {bound}, got {value}{why}")
        return value

    check.__name__ = f"int_range({low}, {high})"
    check.out_of_range = str(low - 1)  # an example the check refuses (the tests fuzz every flag with it)
    return check


def float_range(low: float, high: float | None = None, *, low_open: bool = False):
    """A finite number >= ``low`` (> ``low`` when ``low_open``) and <= ``high`` when given."""

    def check(text: str) -> float:
        value = _real(text)
        if (value <= low if low_open else value < low) or (high is not None and value > high):
            bound = f"{'>' if low_open else '>='} {low}" + (f" and <= {high}" if high is not None else "")
            raise argparse.ArgumentTypeError(f"must be {bound}, got {value:g}")
        return value

    check.__name__ = f"float_range({low}, {high})"
    check.out_of_range = f"{low:g}" if low_open else f"{low - 1:g}"  # an example the check refuses
    return check


positive_int = int_range(1)
non_negative_int = int_range(0)
seed = int_range(0, MAX_SEED)
context_size = int_range(0, MAX_CONTEXT, why=f" (each context frame costs memory and time; the paper's best is 7, "
                                              f"and more than {MAX_CONTEXT} exhausts memory on long videos)")
#: One-shot adaptation steps: each costs about 0.25 s on one CPU core with the shipped model, so 10,000 is already
#: most of an hour per pass.
adapt_steps = int_range(0, 10_000, why=" (each step costs about 0.25 s per pass on a CPU core)")
loader_workers = int_range(0, 64, why=" (each is a process holding its own copy of the data pipeline)")
positive_float = float_range(0.0, low_open=True)
non_negative_float = float_range(0.0)
probability = float_range(0.0, 1.0)
fraction = float_range(0.0, 1.0, low_open=True)  #: within (0, 1]
edge_radius = float_range(0.0, 64.0)  #: model pixels (``EdgeConfig``)
edge_contrast = float_range(0.0, 255.0, low_open=True)  #: grey levels
#: Matte clean-up sizes in pixels: a morphology radius beyond a few hundred pixels is a typo, not a matte.
grow_pixels = int_range(-MAX_MORPHOLOGY, MAX_MORPHOLOGY)
port = int_range(0, 65535, why=" (0 picks a free port)")
session_count = int_range(1, 64, why=" (each open video holds its results and decoder)")
upload_mib = int_range(1, 1 << 20)
morphology_pixels = int_range(0, MAX_MORPHOLOGY)

def frame_rate(text: str) -> Fraction:
    """A frame rate: a positive finite number or fraction, e.g. ``25``, ``29.97`` or ``30000/1001``."""
    try:
        value = Fraction(text)
    except (ValueError, ZeroDivisionError):
        raise argparse.ArgumentTypeError(f"{text!r} is not a frame rate; give e.g. 25 or 30000/1001") from None
    if not 0 < value <= 1000:
        raise argparse.ArgumentTypeError(f"must be > 0 and <= 1000 frames per second, got {text}")
    return value


frame_rate.out_of_range = "0"

#: The numeric types of this module: flags using them are fuzzed by the tests.
NUMERIC_TYPES = (positive_int, non_negative_int, seed, context_size, loader_workers, positive_float, non_negative_float,
                 probability, fraction, grow_pixels, morphology_pixels, port, session_count, upload_mib, frame_rate,
                 adapt_steps, edge_radius, edge_contrast)


def device(text: str) -> str:
    """``cpu``, ``cuda``, ``cuda:N`` or ``mps``, and only one this machine has."""
    from seggpt_core.errors import InputError
    from seggpt_core.predictor import resolve_device

    try:
        resolve_device(text)
    except InputError as err:
        raise argparse.ArgumentTypeError(str(err)) from None
    return text


def file_name(text: str) -> str:
    """A single file or folder name (no path separators, not '.' or '..'): outputs stay inside their folder."""
    if not text or text in (".", "..") or any(c in text for c in "/\\\0") or text != text.strip():
        raise argparse.ArgumentTypeError(f"{text!r} is not a plain name; give a name without '/', '\\' or '..' "
                                         "(outputs go inside the output folder)")
    return text


class FrameAndPath(argparse.Action):
    """``--flag FRAME PATH`` (nargs=2, repeatable): appends (frame index >= 0, path)."""

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        frame, path = values
        try:
            index = non_negative_int(frame)
        except argparse.ArgumentTypeError as err:
            raise argparse.ArgumentError(self, f"frame index: {err}") from None
        items = list(getattr(namespace, self.dest, None) or [])
        items.append((index, path))
        setattr(namespace, self.dest, items)
