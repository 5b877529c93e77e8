"""Scoring one sequence under an evaluation protocol, and scoring many sequences on all cores.

Two protocols decide which frames and objects count:

- ``davis-exact``: the DAVIS 2017 semi-supervised protocol, identical to the official toolkit. Objects are ids
  1..K with K the largest id in frame 0 (later objects never count, id gaps become always-empty objects); frames 0 and
  n-1 are not evaluated; every object is scored on every remaining frame.
- ``sparse``: for late objects and sparse ground truth (YouTube-VOS style). Objects are all ids in any ground-truth
  PNG and are scored from the frame where they first appear on. Only frames with a ground-truth PNG are evaluated,
  the last one included. A frame where any object first appears is a *reference* frame, an input of the method (as
  frame 0 is in DAVIS), and is not scored for any object: YouTube-VOS valid/test reference PNGs annotate only the new
  object, so other objects' absence there means nothing.

In both, ground-truth void (255) is background and a result id that is not a ground-truth object is an error.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path

import cv2
import numpy as np

from .errors import EvalError
from .masks import read_ground_truth, read_result
from .metrics import frame_scores
from .statistics import MetricStats, summarize


class Protocol(str, Enum):
    """Which frames and objects are scored; every reported number carries it."""

    DAVIS_EXACT = "davis-exact"
    SPARSE = "sparse"


@dataclass(frozen=True)
class SequenceJob:
    """One sequence to score: ground-truth PNGs in ``gt_dir``, results with the same file names in ``result_dir``."""

    name: str
    gt_dir: Path
    result_dir: Path
    protocol: Protocol
    davis_compat: bool = False
    #: Ids a sparse-protocol result may hold besides the ground truth's (meta.json objects without local GT).
    extra_result_ids: frozenset[int] = frozenset()
    #: Object id -> category (YouTube-VOS meta.json), for seen/unseen splits.
    categories: dict[int, str] = field(default_factory=dict)

    def gt_paths(self) -> list[Path]:
        paths = sorted(self.gt_dir.glob("*.png"))
        if not paths:
            raise EvalError(f"{self.gt_dir} has no ground-truth PNGs; point the evaluator at the dataset root")
        return paths


@dataclass(frozen=True)
class ObjectResult:
    """Per-frame scores of one object and their statistics. ``j``, ``f``: (N,) float64, one value per frame."""

    sequence: str
    object_id: int
    frames: tuple[str, ...]
    j: np.ndarray
    f: np.ndarray
    j_stats: MetricStats
    f_stats: MetricStats
    category: str | None = None

    @property
    def name(self) -> str:
        """``<sequence>_<id>``, the toolkit's row name."""
        return f"{self.sequence}_{self.object_id}"


def _object_result(job: SequenceJob, object_id: int, frames: Sequence[str], j: Sequence[float] | np.ndarray,
                   f: Sequence[float] | np.ndarray) -> ObjectResult:
    j_arr, f_arr = np.asarray(j, dtype=np.float64), np.asarray(f, dtype=np.float64)
    return ObjectResult(job.name, object_id, tuple(frames), j_arr, f_arr, summarize(j_arr, job.davis_compat),
                        summarize(f_arr, job.davis_compat), job.categories.get(object_id))


def _score_davis_exact(job: SequenceJob) -> list[ObjectResult]:
    paths = job.gt_paths()
    if len(paths) < 3:
        raise EvalError(f"{job.gt_dir} has {len(paths)} annotated frame(s); the DAVIS protocol skips the first and "
                        "last, so it needs at least 3 (use --protocol sparse for sparse annotations)")
    object_ids = tuple(range(1, int(read_ground_truth(paths[0]).max()) + 1))
    valid_ids = frozenset(object_ids)
    evaluated = paths[1:-1]
    j = np.empty((len(object_ids), len(evaluated)))  # (K, T) like the toolkit, so rows are contiguous
    f = np.empty_like(j)
    for t, gt_path in enumerate(evaluated):
        gt = read_ground_truth(gt_path)
        pred = read_result(job.result_dir / gt_path.name, gt.shape, valid_ids)
        j[:, t], f[:, t] = frame_scores(gt, pred, object_ids)
    frames = [p.stem for p in evaluated]
    return [_object_result(job, k, frames, j[i], f[i]) for i, k in enumerate(object_ids)]


def _score_sparse(job: SequenceJob) -> list[ObjectResult]:
    paths = job.gt_paths()
    gts = [read_ground_truth(p) for p in paths]  # held to know every object before checking results
    first_seen: dict[int, int] = {}
    for t, gt in enumerate(gts):
        for object_id in np.flatnonzero(np.bincount(gt.ravel()))[1:].tolist():
            first_seen.setdefault(object_id, t)
    object_ids = sorted(first_seen)
    valid_ids = frozenset(object_ids) | job.extra_result_ids
    frames: dict[int, list[str]] = {k: [] for k in object_ids}
    j: dict[int, list[float]] = {k: [] for k in object_ids}
    f: dict[int, list[float]] = {k: [] for k in object_ids}
    reference_frames = set(first_seen.values())
    for t, (gt_path, gt) in enumerate(zip(paths, gts)):
        scored = [k for k in object_ids if first_seen[k] < t]
        if not scored or t in reference_frames:
            continue
        pred = read_result(job.result_dir / gt_path.name, gt.shape, valid_ids)
        j_t, f_t = frame_scores(gt, pred, scored)
        for i, k in enumerate(scored):
            frames[k].append(gt_path.stem)
            j[k].append(j_t[i])
            f[k].append(f_t[i])
    return [_object_result(job, k, frames[k], j[k], f[k]) for k in object_ids if frames[k]]


def score_sequence(job: SequenceJob) -> list[ObjectResult]:
    """Every scored object of one sequence, in id order."""
    if not job.result_dir.is_dir():
        raise EvalError(f"{job.result_dir} is missing; the results need one folder per sequence ({job.name})")
    if job.protocol is Protocol.DAVIS_EXACT:
        return _score_davis_exact(job)
    return _score_sparse(job)


def _init_worker() -> None:
    cv2.setNumThreads(1)  # the pool already uses every core


def _score_indexed(indexed_job: tuple[int, SequenceJob]) -> tuple[int, list[ObjectResult]]:
    return indexed_job[0], score_sequence(indexed_job[1])


def score_sequences(jobs: Sequence[SequenceJob], workers: int | None = None) -> list[list[ObjectResult]]:
    """``score_sequence`` for each job, in job order, on ``workers`` processes (default: all cores; 1 = in-process).

    Longest sequences are handed out first so the last worker does not finish alone.
    """
    workers = min(workers or os.cpu_count() or 1, len(jobs))
    if workers <= 1:
        return [score_sequence(job) for job in jobs]
    order = sorted(range(len(jobs)), key=lambda i: -len(list(jobs[i].gt_dir.glob("*.png"))))
    results: list[list[ObjectResult]] = [[] for _ in jobs]
    # fork starts workers in milliseconds, but is unsafe once torch's thread pools exist (scoring right after
    # inference in the same process): spawn then.
    start = "fork" if "fork" in multiprocessing.get_all_start_methods() and "torch" not in sys.modules else "spawn"
    with multiprocessing.get_context(start).Pool(workers, initializer=_init_worker) as pool:
        done: Iterator[tuple[int, list[ObjectResult]]] = pool.imap_unordered(_score_indexed,
                                                                              [(i, jobs[i]) for i in order])
        for i, objects in done:
            results[i] = objects
    return results
