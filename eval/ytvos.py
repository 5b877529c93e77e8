"""YouTube-VOS: reading ``meta.json``, scoring where ground truth exists, and building the submission zip.

Layout: ``<split>/Annotations/<video>/<frame>.png``, ``<split>/meta.json`` with
``{"videos": {video: {"objects": {id: {"category": str, "frames": [frame, ...]}}}}}``. Objects appear mid-video, so
scores use the ``sparse`` protocol (see ``eval.sequence``). The valid/test ground truth is private: their
Annotations hold only each object's reference frame, so nothing can be scored locally and the submission zip is the
way to a score. Results may be laid out as ``<results>/<video>/<frame>.png`` or ``<results>/Annotations/<video>/...``.
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from .errors import EvalError
from .masks import encode_labels_png, is_palette_png, read_labels, read_result
from .report import GlobalScores, Report, atomic_path
from .sequence import ObjectResult, Protocol, SequenceJob, score_sequences


@dataclass(frozen=True)
class YtvosVideo:
    """One video of ``meta.json``: object id -> category, and the frames a submission must contain (sorted union of
    the objects' frames)."""

    name: str
    categories: dict[int, str]
    frames: tuple[str, ...]


def read_meta(path: str | Path) -> list[YtvosVideo]:
    """Videos of a YouTube-VOS ``meta.json``, in name order."""
    path = Path(path)
    try:
        videos = json.loads(path.read_text())["videos"]
    except FileNotFoundError:
        raise EvalError(f"{path} is missing; pass the split folder that holds meta.json and Annotations/") from None
    except (json.JSONDecodeError, KeyError, TypeError) as err:
        raise EvalError(f"{path} is not a YouTube-VOS meta.json ({err!r}); it needs a top-level 'videos' object") \
            from None
    out = []
    for name in sorted(videos):
        objects = videos[name].get("objects", {})
        try:
            categories = {int(k): str(v.get("category", "")) for k, v in objects.items()}
        except ValueError:
            raise EvalError(f"{path}: video {name} has a non-integer object id; ids are the PNG values") from None
        frames = sorted({frame for v in objects.values() for frame in v.get("frames", [])})
        out.append(YtvosVideo(name, categories, tuple(frames)))
    return out


def seen_categories(train_meta: str | Path) -> frozenset[str]:
    """Categories of a training ``meta.json``: objects of these are "seen", all others "unseen"."""
    return frozenset(c for video in read_meta(train_meta) for c in video.categories.values())


def _results_root(results_dir: Path) -> Path:
    if not results_dir.is_dir():
        raise EvalError(f"{results_dir} is not a folder; pass the folder of per-video result PNGs")
    nested = results_dir / "Annotations"
    return nested if nested.is_dir() else results_dir


def ytvos_set_name(split_root: Path) -> str:
    """Set name in reports and CSV names: ``ytvos-<split folder>``, e.g. ``global_results-ytvos-train-sparse.csv``."""
    return f"ytvos-{Path(split_root).name}"


def overall_score(report: Report) -> float:
    """YouTube-VOS's overall G = mean(J_seen, F_seen, J_unseen, F_unseen); the object average without categories."""
    if {"seen", "unseen"} <= report.groups.keys():
        seen, unseen = report.groups["seen"], report.groups["unseen"]
        return (seen.j.mean + seen.f.mean + unseen.j.mean + unseen.f.mean) / 4
    return report.overall.jf_mean


def _groups(objects: Iterable[ObjectResult], seen: frozenset[str] | None) -> dict[str, GlobalScores]:
    if seen is None:
        return {}
    objects = list(objects)
    groups = {"seen": [o for o in objects if o.category in seen],
              "unseen": [o for o in objects if o.category is not None and o.category not in seen]}
    return {name: GlobalScores.of(members) for name, members in groups.items() if members}


def evaluate_ytvos(split_root: str | Path, results_dir: str | Path, *, seen: frozenset[str] | None = None,
                   workers: int | None = None, davis_compat: bool = False) -> Report:
    """Score the videos of ``<split_root>/meta.json`` that have ground truth beyond their reference frames.

    ``seen``: training categories (``seen_categories``) to split the averages into ``seen`` / ``unseen`` groups.
    """
    split_root = Path(split_root)
    results_root = _results_root(Path(results_dir))
    jobs = [SequenceJob(video.name, split_root / "Annotations" / video.name, results_root / video.name,
                        Protocol.SPARSE, davis_compat, extra_result_ids=frozenset(video.categories),
                        categories=video.categories)
            for video in read_meta(split_root / "meta.json") if (split_root / "Annotations" / video.name).is_dir()]
    if not jobs:
        raise EvalError(f"{split_root / 'Annotations'} has no folder for any video of meta.json; pass the split "
                        "folder (e.g. <root>/train)")
    objects = tuple(o for sequence in score_sequences(jobs, workers) for o in sequence)
    if not objects:
        raise EvalError(f"{split_root / 'Annotations'} has no ground truth beyond each object's reference frame (the "
                        "valid/test ground truth is private); build the submission zip with --zip instead")
    return Report("YouTube-VOS", ytvos_set_name(split_root), Protocol.SPARSE, davis_compat, objects,
                  GlobalScores.of(objects), _groups(objects, seen))


def build_submission(split_root: str | Path, results_dir: str | Path, zip_path: str | Path) -> int:
    """Zip ``Annotations/<video>/<frame>.png`` for every frame of every video in ``<split_root>/meta.json``.

    Each result is checked (8-bit ids, only the video's object ids, the reference annotation's size); palette PNGs
    are stored as they are, greyscale ones re-encoded with the DAVIS palette. Extra frames are left out. The zip is
    written atomically; returns the number of frames.
    """
    split_root, zip_path = Path(split_root), Path(zip_path)
    results_root = _results_root(Path(results_dir))
    videos = read_meta(split_root / "meta.json")
    count = 0
    with atomic_path(zip_path) as tmp, zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED) as archive:
        for video in videos:
            references = sorted((split_root / "Annotations" / video.name).glob("*.png"))
            shape = read_labels(references[0]).shape if references else None
            for frame in video.frames:
                path = results_root / video.name / f"{frame}.png"
                labels = read_result(path, shape or read_labels(path).shape, frozenset(video.categories))
                data = path.read_bytes()
                archive.writestr(f"Annotations/{video.name}/{frame}.png",
                                 data if is_palette_png(data) else encode_labels_png(labels))
                count += 1
    return count
