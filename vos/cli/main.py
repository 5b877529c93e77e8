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
    "vos.cli.app",
    "eval.cli",
)


class Parser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose unknown options are reported by the subcommand that got them (its usage, exit 2),
    and whose errors name the nearest option to a mistyped one (did you mean ``--output`` instead of ``--ouput``?),
    also when the typo makes a required option look missing. Subparsers inherit the class."""

    def parse_known_args(self, args=None, namespace=None):
        self._given = list(sys.argv[1:] if args is None else args)
        return super().parse_known_args(args, namespace)

    def parse_args(self, args=None, namespace=None):
        namespace, unknown = self.parse_known_args(args, namespace)
        if unknown:
            self._subcommand_parser(namespace).error(f"unrecognized arguments: {' '.join(unknown)}")
        return namespace

    def error(self, message: str):
        super().error(message + self._suggestion())

    def _subcommand_parser(self, namespace: argparse.Namespace) -> Parser:
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
