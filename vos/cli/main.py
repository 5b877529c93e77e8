"""``seggpt-vos``: a thin command-line layer over the Python API.

Each subcommand lives next to the code it drives and plugs in through ``register(subparsers)``, which adds its
parser(s) and sets ``run=<callable(args) -> int>``. Registration imports no torch, so ``seggpt-vos eval`` stays light;
heavy imports happen inside ``run``. Bad input raises an ``InputError`` (or eval's ``EvalError``), printed here as one
line with exit code 2.
"""

from __future__ import annotations

import argparse
import difflib
import importlib
import sys

#: Modules that contribute subcommands, in the order they appear in ``--help``.
COMMAND_MODULES = (
    "vos.cli.commands",
    "vos.cli.tune",
    "eval.cli",
)


class Parser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose unknown options are reported by the subcommand that got them (its usage, exit 2),
    with the nearest option it has (``--ouput``: did you mean ``--output``?). Subparsers inherit the class."""

    def parse_args(self, args=None, namespace=None):
        namespace, unknown = self.parse_known_args(args, namespace)
        if unknown:
            parser = self._subcommand_parser(namespace)
            parser.error(f"unrecognized arguments: {' '.join(unknown)}{parser.suggestion(unknown)}")
        return namespace

    def _subcommand_parser(self, namespace: argparse.Namespace) -> Parser:
        for action in self._actions:
            if isinstance(action, argparse._SubParsersAction):
                chosen = action.choices.get(getattr(namespace, action.dest, None))
                if chosen is not None:
                    return chosen._subcommand_parser(namespace)
        return self

    def suggestion(self, unknown: list[str]) -> str:
        """`` (did you mean --output?)`` for the first unknown option with a close match, else ''."""
        options = {option.lstrip("-"): option for option in self._option_string_actions}
        for arg in unknown:
            if arg.startswith("-"):
                close = difflib.get_close_matches(arg.split("=", 1)[0].lstrip("-"), list(options), n=1)
                if close:
                    return f" (did you mean {options[close[0]]}?)"
        return ""


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="seggpt-vos", description="Segment and track objects in videos with SegGPT.")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def user_error_types() -> tuple[type[Exception], ...]:
    from eval.errors import EvalError
    from seggpt_core.errors import InputError

    return (InputError, EvalError, FileNotFoundError)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.run(args) or 0)
    except user_error_types() as err:
        print(f"seggpt-vos {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"seggpt-vos {args.command}: interrupted; finished outputs are kept, rerun to resume", file=sys.stderr)
        return 130
