"""Per-frame J and F: the definitions' unit cases and bit-for-bit equality with vos-benchmark's copy of the toolkit."""

from __future__ import annotations

import subprocess
import sys

import cv2
import numpy as np
import pytest

from eval.metrics import boundary_tolerance, disk, disk_cover, frame_scores, object_scores, seg2bmap
from tests.eval_helpers import vos_benchmark_per_frame


def test_seg2bmap_square_is_shifted_half_a_pixel_towards_the_origin():
    mask = np.zeros((6, 6), bool)
    mask[1:4, 1:4] = True
    expected = np.zeros((6, 6), bool)
    expected[[0, 3], 0:4] = True
    expected[0:4, [0, 3]] = True
    assert np.array_equal(seg2bmap(mask), expected)


def test_seg2bmap_image_border_is_never_boundary():
    assert not seg2bmap(np.ones((5, 7), bool)).any()
    touching = np.zeros((5, 7), bool)
    touching[2:, 3:] = True  # touches the bottom and right borders
    expected = np.zeros((5, 7), bool)
    expected[1, 2:] = True  # the top edge, outside the object, reaching the right border
    expected[1:, 2] = True  # the left edge, outside the object, reaching the bottom border
    assert np.array_equal(seg2bmap(touching), expected)  # nothing along the borders themselves


@pytest.mark.parametrize("shape, radius", [((480, 854), 8), ((720, 1280), 12), ((1080, 1920), 18), ((360, 640), 6)])
def test_boundary_tolerance_table(shape, radius):
    assert boundary_tolerance(shape) == radius


@pytest.mark.parametrize("radius", [1, 2, 3, 6, 8, 12, 18])
def test_disk_and_its_rectangle_cover_match_scikit_image(radius):
    from skimage.morphology import disk as skimage_disk

    footprint = disk(radius)
    assert np.array_equal(footprint, skimage_disk(radius).astype(np.uint8))
    union = np.zeros_like(footprint)
    for half_w, half_h in disk_cover(radius):
        union[radius - half_h:radius + half_h + 1, radius - half_w:radius + half_w + 1] = 1
    assert np.array_equal(union, footprint)


def test_empty_and_full_frame_cases():
    empty = np.zeros((40, 60), bool)
    blob = empty.copy()
    blob[10:20, 15:40] = True
    assert object_scores(empty, empty, 1) == (1.0, 1.0)
    assert object_scores(blob, empty, 1) == (0.0, 0.0)
    assert object_scores(empty, blob, 1) == (0.0, 0.0)
    # A full-frame prediction has no boundary: F = 0 against an object that does not fill the frame.
    assert object_scores(blob, np.ones_like(blob), 1)[1] == 0.0


def _random_labels(rng: np.random.Generator, shape: tuple[int, int], count: int) -> np.ndarray:
    labels = np.zeros(shape, np.uint8)
    for k in range(1, count + 1):
        centre = (int(rng.integers(0, shape[1])), int(rng.integers(0, shape[0])))
        axes = (int(rng.integers(1, shape[1] // 2)), int(rng.integers(1, shape[0] // 2)))
        cv2.ellipse(labels, centre, axes, float(rng.uniform(0, 180)), 0, 360, k, -1)
    holes = rng.random(shape) < rng.choice([0.0, 0.01, 0.2])
    labels[holes] = rng.integers(0, count + 1, size=int(holes.sum()))
    return labels


@pytest.mark.parametrize("shape", [(30, 45), (97, 131), (240, 427), (480, 854)])
def test_random_masks_equal_vos_benchmark_bit_for_bit(shape):
    rng = np.random.default_rng(shape[0])
    gts = [_random_labels(rng, shape, 3) for _ in range(12)]
    preds = [_random_labels(rng, shape, 3) if t % 3 else np.roll(gt, 3, axis=t % 2) for t, gt in enumerate(gts)]
    preds[5] = np.zeros(shape, np.uint8)
    preds[7] = np.full(shape, 2, np.uint8)
    reference = vos_benchmark_per_frame(gts, preds)
    for t, (gt, pred) in enumerate(zip(gts, preds)):
        j, f = frame_scores(gt, pred, [1, 2, 3])
        for i, k in enumerate([1, 2, 3]):
            start, ref_j, ref_f = reference[k]
            expected = (ref_j[t - start], ref_f[t - start]) if t >= start else (1.0, 1.0)  # absent from both
            assert (j[i], f[i]) == expected, (shape, t, k)


def test_eval_imports_neither_torch_nor_the_model():
    code = ("import sys, eval.davis, eval.ytvos, eval.cli; "
            "bad = [m for m in sys.modules if m.split('.')[0] in ('torch', 'seggpt_core', 'vos')]; "
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True)
