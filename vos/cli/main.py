"""``seggpt-vos``: a thin command-line layer over the Python API.

Each subcommand lives next to the code it drives and plugs in through ``register(subparsers)``, which adds its
parser(s) and sets ``run=<callable(args) -> int>``. Registration imports no torch, so ``seggpt-vos eval`` stays light;
heavy imports happen inside ``run``. Bad input raises an ``InputError`` (or eval's ``EvalError``), printed here as one
line with exit code 2, and so is an OS error (disk full, read-only or missing folder): finished outputs are kept.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from ..allocator import keep_freed_blocks

#: Modules that contribute subcommands, in the order they appear in ``--help``.
COMMAND_MODULES = (
    "vos.cli.commands",
    "vos.cli.tune",
    "vos.cli.app",
    "eval.cli",
)


def build_parser() -> argparse.ArgumentParser:
    from .arguments import OneLineParser

    parser = OneLineParser(prog="seggpt-vos", description="Segment and track objects in videos with SegGPT.")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def user_error_types() -> tuple[type[Exception], ...]:
    from eval.errors import EvalError
    from seggpt_core.errors import InputError

    return (InputError, EvalError, FileNotFoundError)


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as done:  # --help, or a bad argument (already reported in one line)
        return done.code or 0
    keep_freed_blocks()  # this process streams video: reuse freed frame-sized blocks (vos.allocator)
    try:
        return int(args.run(args) or 0)
    except user_error_types() as err:
        print(f"seggpt-vos {args.command}: error: {err}", file=sys.stderr)
        return 2
    except OSError as err:  # the disk or file system refused a read or write: one line naming the path
        from ..outputs import describe_os_error

        print(f"seggpt-vos {args.command}: error: {describe_os_error(err)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"seggpt-vos {args.command}: interrupted; finished outputs are kept, rerun to resume", file=sys.stderr)
        return 130
