"""Helpers for the eval tests: writing DAVIS-layout folders, perturbing masks, and vos-benchmark's per-frame scores."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from eval.masks import encode_labels_png


def read_png(path: Path) -> np.ndarray:
    """Raw indices, the way the official toolkit reads masks."""
    return np.array(Image.open(path))


def write_png(path: Path, labels: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(encode_labels_png(labels))


def make_davis_root(root: Path, sequences: dict[str, Sequence[np.ndarray]], set_name: str = "val") -> Path:
    """DAVIS layout (Annotations/480p, ImageSets/2017/<set>.txt) holding the given ground-truth frames."""
    for name, frames in sequences.items():
        for t, labels in enumerate(frames):
            write_png(root / "Annotations" / "480p" / name / f"{t:05d}.png", labels)
    (root / "ImageSets" / "2017").mkdir(parents=True, exist_ok=True)
    (root / "ImageSets" / "2017" / f"{set_name}.txt").write_text("".join(f"{n}\n" for n in sequences))
    return root


def load_sequence(shared_root: Path, name: str, count: int | None = None) -> list[np.ndarray]:
    paths = sorted((shared_root / "Annotations" / "480p" / name).glob("*.png"))[:count]
    return [read_png(p) for p in paths]


def _shift(labels: np.ndarray, dy: int, dx: int) -> np.ndarray:
    out = np.zeros_like(labels)
    h, w = labels.shape
    out[max(dy, 0):h + min(dy, 0), max(dx, 0):w + min(dx, 0)] = labels[max(-dy, 0):h - max(dy, 0),
                                                                        max(-dx, 0):w - max(dx, 0)]
    return out


def _erode(labels: np.ndarray) -> np.ndarray:
    out = np.zeros_like(labels)
    for k in np.unique(labels)[1:]:
        out[cv2.erode((labels == k).astype(np.uint8), np.ones((7, 7), np.uint8)) > 0] = k
    return out


def _swap(labels: np.ndarray) -> np.ndarray:
    top = int(labels.max())
    out = labels.copy()
    out[labels == 1], out[labels == top] = top, 1
    return out


def _noise(labels: np.ndarray, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    out = labels.copy()
    flip = rng.random(labels.shape) < 0.02
    out[flip] = rng.integers(0, int(labels.max()) + 1, size=int(flip.sum()))
    return out


#: Name -> (ground truth (H, W) ids, K) -> predicted ids with no id above K.
PERTURBATIONS: dict[str, Callable[[np.ndarray, int], np.ndarray]] = {
    "identity": lambda gt, k: gt.copy(),
    "erode": lambda gt, k: _erode(gt),
    "shift": lambda gt, k: _shift(gt, 11, -14),  # more than the 8 px tolerance
    "drop_object": lambda gt, k: np.where(gt == k, 0, gt).astype(np.uint8),
    "swap_ids": lambda gt, k: _swap(gt),
    "noise": lambda gt, k: _noise(gt),
    "empty": lambda gt, k: np.zeros_like(gt),
    "full_frame": lambda gt, k: np.ones_like(gt),
}


def vos_benchmark_per_frame(gts: Sequence[np.ndarray], preds: Sequence[np.ndarray]) \
        -> dict[int, tuple[int, list[float], list[float]]]:
    """vos-benchmark's per-frame J and F: object id -> (index of its first scored frame, J list, F list).

    vos-benchmark starts an object at the first frame where it is in the ground truth or the prediction.
    """
    from vos_benchmark.evaluator import Evaluator

    evaluator = Evaluator()
    first: dict[int, int] = {}
    for t, (gt, pred) in enumerate(zip(gts, preds)):
        evaluator.feed_frame(pred, gt)
        for k in evaluator.object_iou:
            first.setdefault(k, t)
    return {k: (first[k], evaluator.object_iou[k], evaluator.boundary_f[k]) for k in evaluator.object_iou}

