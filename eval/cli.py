"""``seggpt-vos eval`` (DAVIS) and ``seggpt-vos eval-ytvos`` (YouTube-VOS), also runnable as ``python -m eval``.

Registration imports nothing heavy; ``eval`` never imports torch or the model, so anyone can score any method's
results. Bad input raises ``EvalError`` (one line, exit code 2 through the CLI).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from .errors import EvalError


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--results", required=True, type=Path, help="folder with one sub-folder of PNGs per sequence")
    parser.add_argument("--workers", type=_positive_int, default=None,
                        help="processes (default: all cores; 1 = no pool)")
    parser.add_argument("--davis-compat-decay", action="store_true",
                        help="reproduce the official toolkit's uint8 Decay bins (NaN or wrong for >255 frames)")
    parser.add_argument("--csv-dir", type=Path, default=None, help="where to write the CSVs (default: --results)")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``eval`` and ``eval-ytvos`` subcommands."""
    davis = subparsers.add_parser(
        "eval", help="score results on DAVIS 2017 (semi-supervised J&F)",
        description="Score a results folder against a DAVIS 2017 root: per-object J/F Mean, Recall, Decay and their "
                    "averages over objects. Writes global_results-<set>.csv and per-sequence_results-<set>.csv "
                    "(recomputed every run).")
    davis.add_argument("--davis-root", required=True, type=Path, help="folder holding ImageSets/ and Annotations/")
    davis.add_argument("--set", default="val", dest="set_name", help="ImageSets/2017/<set>.txt (default: val)")
    davis.add_argument("--sequences", nargs="+", metavar="NAME", default=None,
                       help="score only these sequences (Annotations/480p/NAME); no ImageSets file is needed, --set "
                            "then only names the CSVs")
    davis.add_argument("--protocol", default="davis-exact", choices=["davis-exact", "sparse"],
                       help="davis-exact: the official protocol (default); sparse: late objects, reference frames "
                            "excluded, last frame included")
    _add_common(davis)
    davis.set_defaults(run=run_davis)

    ytvos = subparsers.add_parser(
        "eval-ytvos", help="score results on YouTube-VOS ground truth, or build the submission zip",
        description="Score results where YouTube-VOS ground truth exists (sparse protocol: objects from their first "
                    "frame on), optionally split into seen/unseen categories; or, with --zip, package the results "
                    "for the evaluation server.")
    ytvos.add_argument("--split-root", required=True, type=Path, help="split folder with meta.json and Annotations/")
    ytvos.add_argument("--train-meta", type=Path, default=None,
                       help="training meta.json: its categories are 'seen', all others 'unseen'")
    ytvos.add_argument("--zip", type=Path, default=None,
                       help="build this submission zip (Annotations/<video>/<frame>.png) instead of scoring")
    _add_common(ytvos)
    ytvos.set_defaults(run=run_ytvos)


def check_output(path: Path, kind: str, flag: str) -> None:
    """Before any scoring: ``path`` (a "folder" or a "file") can be written, or an ``EvalError`` naming ``flag``.
    (eval stands alone, so this is its own small version of vos.outputs.prepare_outputs.)"""
    if kind == "file" and path.is_dir():
        raise EvalError(f"{flag} {path}: is a folder; give a file path")
    if kind == "folder" and path.exists() and not path.is_dir():
        raise EvalError(f"{flag} {path}: is a file; give a folder")
    folder = path if kind == "folder" else path.parent
    existing = next(p for p in (folder, *folder.parents) if p.exists())
    if not existing.is_dir():
        raise EvalError(f"{flag} {path}: cannot be created because {existing} is a file; give a path in a folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".eval-probe-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as err:
        raise EvalError(f"{flag} {path}: cannot write there ({err.strerror or err}); give a writable "
                        "location") from None


def _csv_dir(args: argparse.Namespace) -> Path:
    """Where the CSVs go, checked: ``--csv-dir``, or the results folder (left to the evaluation when missing)."""
    if args.csv_dir is not None:
        check_output(args.csv_dir, "folder", "--csv-dir")
        return args.csv_dir
    if args.results.exists():
        check_output(args.results, "folder", "--results")
    return args.results


def _finish(report, csv_dir: Path) -> None:
    from .report import format_report, write_csvs

    print(format_report(report))
    for path in write_csvs(report, csv_dir):
        print(f"wrote {path}")


def run_davis(args: argparse.Namespace) -> int:
    from .davis import evaluate_davis
    from .report import remove_stale_csvs
    from .sequence import Protocol

    protocol = Protocol(args.protocol)
    csv_dir = _csv_dir(args)
    if Path(csv_dir).is_dir():
        remove_stale_csvs(csv_dir, args.set_name, protocol)
    report = evaluate_davis(args.davis_root, args.results, args.set_name, protocol=protocol, workers=args.workers,
                            davis_compat=args.davis_compat_decay, sequences=args.sequences)
    _finish(report, csv_dir)
    return 0


def run_ytvos(args: argparse.Namespace) -> int:
    from .report import remove_stale_csvs
    from .sequence import Protocol
    from .ytvos import build_submission, evaluate_ytvos, overall_score, seen_categories, ytvos_set_name

    if args.zip is not None:
        check_output(args.zip, "file", "--zip")
        count = build_submission(args.split_root, args.results, args.zip)
        print(f"wrote {args.zip} ({count} frames)")
        return 0
    seen = seen_categories(args.train_meta) if args.train_meta else None
    set_name = ytvos_set_name(args.split_root)
    csv_dir = _csv_dir(args)
    if Path(csv_dir).is_dir():
        remove_stale_csvs(csv_dir, set_name, Protocol.SPARSE)
    report = evaluate_ytvos(args.split_root, args.results, seen=seen, workers=args.workers,
                            davis_compat=args.davis_compat_decay)
    _finish(report, csv_dir)
    print(f"Overall (YouTube-VOS G): {overall_score(report):.3f}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Stand-alone entry point (``python -m eval``): the same subcommands without the rest of seggpt-vos."""
    parser = argparse.ArgumentParser(prog="python -m eval", description="DAVIS / YouTube-VOS J&F evaluation.")
    register(parser.add_subparsers(dest="command", metavar="COMMAND", required=True))
    args = parser.parse_args(argv)
    try:
        return int(args.run(args) or 0)
    except EvalError as err:
        print(f"{parser.prog} {args.command}: error: {err}", file=sys.stderr)
        return 2
    except OSError as err:  # the disk refused a read or write: one line naming the path
        where = f"{err.filename}: " if err.filename else ""
        print(f"{parser.prog} {args.command}: error: {where}{err.strerror or err}", file=sys.stderr)
        return 2
