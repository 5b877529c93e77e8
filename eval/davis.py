"""Evaluating a results folder against a DAVIS 2017 root (semi-supervised task).

Layout read: ``<root>/ImageSets/2017/<set>.txt`` (sequence names, unless they are given) and
``<root>/Annotations/480p/<seq>/*.png``; results are ``<results>/<seq>/<frame>.png`` with the ground truth's file
names. JPEGs are not needed.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from .errors import EvalError
from .report import GlobalScores, Report
from .sequence import Protocol, SequenceJob, score_sequences

#: The resolution the official metrics are defined at. (``vos.datasets.DavisLayout`` spells the same layout for the
#: runtime; ``eval`` keeps its own because it stands alone.)
RESOLUTION = "480p"


def list_sequences(davis_root: Path, set_name: str = "val") -> list[str]:
    """Sequence names of ``ImageSets/2017/<set_name>.txt``, in file order."""
    listing = Path(davis_root) / "ImageSets" / "2017" / f"{set_name}.txt"
    if not listing.is_file():
        raise EvalError(f"{listing} is missing; pass the DAVIS root (the folder holding ImageSets/ and Annotations/) "
                        "and a --set that exists there")
    names = [line.strip() for line in listing.read_text().splitlines() if line.strip()]
    if not names:
        raise EvalError(f"{listing} lists no sequences")
    return names


def sequence_jobs(davis_root: Path, results_dir: Path, set_name: str, protocol: Protocol,
                  davis_compat: bool, sequences: Sequence[str] | None = None) -> list[SequenceJob]:
    """One ``SequenceJob`` per sequence (``sequences``, else those of the set), after checking the ground-truth
    folders exist."""
    annotations = Path(davis_root) / "Annotations" / RESOLUTION
    listed_by = "--sequences names" if sequences else f"ImageSets/2017/{set_name}.txt lists"
    jobs = []
    for name in dict.fromkeys(sequences) if sequences else list_sequences(davis_root, set_name):
        gt_dir = annotations / name
        if not gt_dir.is_dir():
            raise EvalError(f"{gt_dir} is missing; {listed_by} {name} but the DAVIS root has no annotations for it "
                            f"(ground truth goes in {annotations}/<sequence>/<frame>.png)")
        jobs.append(SequenceJob(name, gt_dir, Path(results_dir) / name, protocol, davis_compat))
    return jobs


def evaluate_davis(davis_root: str | Path, results_dir: str | Path, set_name: str = "val", *,
                   protocol: Protocol = Protocol.DAVIS_EXACT, workers: int | None = None,
                   davis_compat: bool = False, sequences: Sequence[str] | None = None) -> Report:
    """Score ``results_dir`` against the DAVIS set; per-object J/F Mean, Recall, Decay and their object averages.

    ``protocol``: ``DAVIS_EXACT`` (the official semi-supervised protocol) or ``SPARSE`` (late objects, every frame
    after an object's first annotation). ``davis_compat`` reproduces the toolkit's uint8 Decay bins (only differs for
    objects with more than 255 evaluated frames). ``workers``: processes, default all cores. ``sequences``: score only
    these (``ImageSets`` is then not read; ``set_name`` still names the report and its CSVs).
    """
    if not Path(results_dir).is_dir():
        raise EvalError(f"{results_dir} is not a folder; pass the folder holding one sub-folder of PNGs per sequence")
    jobs = sequence_jobs(Path(davis_root), Path(results_dir), set_name, Protocol(protocol), davis_compat, sequences)
    objects = tuple(o for sequence in score_sequences(jobs, workers) for o in sequence)
    return Report("DAVIS 2017", set_name, Protocol(protocol), davis_compat, objects, GlobalScores.of(objects))
