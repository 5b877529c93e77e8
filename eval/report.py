"""What an evaluation returns, how it is averaged, written to CSV and printed.

Global numbers average **objects**, not sequences, and J&F-Mean is the mean of the global J-Mean and F-Mean, as in
the official toolkit. The DAVIS-exact CSVs keep the toolkit's names, columns and ``%.3f`` format; CSVs of other
protocols carry the protocol in their name so the two can never be mistaken for each other.
"""

from __future__ import annotations

import csv
import io
import math
import os
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .sequence import ObjectResult, Protocol
from .statistics import MetricStats, decay_differs_from_toolkit

GLOBAL_COLUMNS = ("J&F-Mean", "J-Mean", "J-Recall", "J-Decay", "F-Mean", "F-Recall", "F-Decay")
PER_SEQUENCE_COLUMNS = ("Sequence", "J-Mean", "F-Mean")


@dataclass(frozen=True)
class GlobalScores:
    """Averages over ``num_objects`` objects; J&F-Mean = (J-Mean + F-Mean) / 2."""

    jf_mean: float
    j: MetricStats
    f: MetricStats
    num_objects: int

    @classmethod
    def of(cls, objects: Sequence[ObjectResult]) -> GlobalScores:
        def average(values: list[float]) -> float:
            return float(np.mean(values)) if values else math.nan

        j = MetricStats(*(average([getattr(o.j_stats, s) for o in objects]) for s in ("mean", "recall", "decay")))
        f = MetricStats(*(average([getattr(o.f_stats, s) for o in objects]) for s in ("mean", "recall", "decay")))
        return cls((j.mean + f.mean) / 2, j, f, len(objects))

    def row(self) -> tuple[float, ...]:
        """Values in ``GLOBAL_COLUMNS`` order."""
        return (self.jf_mean, self.j.mean, self.j.recall, self.j.decay, self.f.mean, self.f.recall, self.f.decay)


@dataclass(frozen=True)
class Report:
    """The result of one evaluation: per-object scores, global averages and how they were produced.

    ``groups`` holds extra averages over subsets of objects (YouTube-VOS ``seen`` / ``unseen``).
    """

    dataset: str
    set_name: str
    protocol: Protocol
    davis_compat: bool
    objects: tuple[ObjectResult, ...]
    overall: GlobalScores
    groups: dict[str, GlobalScores] = field(default_factory=dict)

    @property
    def decay_mode(self) -> str:
        return "davis-compat (uint8 bins)" if self.davis_compat else "correct"

    def decay_deviations(self) -> list[str]:
        """Objects whose Decay differs from the official toolkit's (more than 255 frames, default Decay mode)."""
        if self.davis_compat:
            return []
        return [o.name for o in self.objects if decay_differs_from_toolkit(len(o.frames))]

    def describe_mode(self) -> str:
        """One line naming the protocol and Decay mode that produced every number in this report."""
        line = f"{self.dataset} {self.set_name}, protocol {self.protocol.value}, Decay {self.decay_mode}"
        deviating = self.decay_deviations()
        if self.protocol is Protocol.DAVIS_EXACT and not deviating:
            line += " (identical to the official davis2017-evaluation toolkit)"
        if self.protocol is Protocol.SPARSE:
            line += " (reference frames excluded, last frame included: not comparable with DAVIS-exact numbers)"
        if deviating:
            line += (f"; Decay of {len(deviating)} object(s) with >255 frames differs from the official toolkit, "
                     "whose uint8 bins give NaN or wrong frames there")
        return line


def format_number(value: float) -> str:
    """``%.3f``, empty for NaN: what pandas writes with ``float_format="%.3f"``."""
    return "" if math.isnan(value) else "%.3f" % value


def csv_names(set_name: str, protocol: Protocol) -> tuple[str, str]:
    """(global, per-object) CSV file names; the toolkit's names for the DAVIS-exact protocol."""
    suffix = "" if protocol is Protocol.DAVIS_EXACT else f"-{protocol.value}"
    return f"global_results-{set_name}{suffix}.csv", f"per-sequence_results-{set_name}{suffix}.csv"


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path`` and move it onto ``path`` when the block succeeds, so readers never
    see half a file and a failed write leaves nothing behind.

    The rest of the project uses ``seggpt_core.atomic``; ``eval`` keeps this copy because it stands alone (it never
    imports ``vos`` or ``seggpt_core``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, newline="")


def _csv_text(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue()


def global_csv(report: Report) -> str:
    """``global_results-<set>.csv``: one row of ``GLOBAL_COLUMNS``; with groups (YouTube-VOS seen/unseen), a leading
    ``Group`` column and one row per group after ``all``."""
    if not report.groups:
        return _csv_text(GLOBAL_COLUMNS, [[format_number(v) for v in report.overall.row()]])
    rows = [["all", *map(format_number, report.overall.row())]]
    rows += [[name, *map(format_number, scores.row())] for name, scores in report.groups.items()]
    return _csv_text(("Group", *GLOBAL_COLUMNS), rows)


def per_sequence_csv(report: Report) -> str:
    """``per-sequence_results-<set>.csv``: one row per object (``<seq>_<id>``, J-Mean, F-Mean)."""
    rows = [[o.name, format_number(o.j_stats.mean), format_number(o.f_stats.mean)] for o in report.objects]
    return _csv_text(PER_SEQUENCE_COLUMNS, rows)


def write_csvs(report: Report, out_dir: Path) -> tuple[Path, Path]:
    """Write both CSVs atomically into ``out_dir``; returns their paths."""
    global_name, per_sequence_name = csv_names(report.set_name, report.protocol)
    global_path, per_sequence_path = Path(out_dir) / global_name, Path(out_dir) / per_sequence_name
    write_atomic(per_sequence_path, per_sequence_csv(report))
    write_atomic(global_path, global_csv(report))
    return global_path, per_sequence_path


def remove_stale_csvs(out_dir: Path, set_name: str, protocol: Protocol) -> None:
    """Delete CSVs of an earlier run before evaluating, so a failed run never leaves old numbers beside new results
    (the toolkit silently re-reads them)."""
    for name in csv_names(set_name, protocol):
        (Path(out_dir) / name).unlink(missing_ok=True)


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(str(c)) for c in column) for column in zip(header, *rows)]
    lines = [" ".join(str(c).rjust(w) for c, w in zip(line, widths)) for line in (header, *rows)]
    return "\n".join(lines)


def format_report(report: Report) -> str:
    """Human-readable global and per-object tables, headed by the mode line."""
    title = f"Results: {report.describe_mode()}"
    global_rows = [["all", str(report.overall.num_objects), *map(format_number, report.overall.row())]]
    global_rows += [[name, str(g.num_objects), *map(format_number, g.row())] for name, g in report.groups.items()]
    per_object = [[o.name, str(len(o.frames)), format_number(o.j_stats.mean), format_number(o.f_stats.mean)]
                  for o in report.objects]
    return "\n".join([title, "", _table(("Group", "Objects", *GLOBAL_COLUMNS), global_rows), "",
                      _table(("Sequence", "Frames", "J-Mean", "F-Mean"), per_object)])
