"""Matte clean-up against scipy.ndimage (an independent morphology implementation) and hand-built cases."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from seggpt_core.errors import InputError
from vos.mattes import Mattes, MatteCleanup, cutout, object_matte


def disk(radius: int) -> np.ndarray:
    y, x = np.mgrid[-radius:radius + 1, -radius:radius + 1]
    return x * x + y * y <= radius * radius


def square(labels: np.ndarray, object_id: int, top: int, left: int, size: int) -> None:
    labels[top:top + size, left:left + size] = object_id


def test_fill_holes_fills_small_enclosed_background_only():
    labels = np.zeros((40, 60), np.uint8)
    square(labels, 3, 5, 5, 20)
    labels[8:11, 8:11] = 0  # 9-pixel hole
    labels[14:19, 14:19] = 0  # 25-pixel hole
    square(labels, 5, 15, 15, 3)  # another object inside the big hole
    square(labels, 7, 30, 0, 8)
    labels[33:35, 0:2] = 0  # a notch open to the frame border: not a hole
    out = MatteCleanup(fill_holes=10)(labels)
    expected = labels.copy()
    expected[8:11, 8:11] = 3
    np.testing.assert_array_equal(out, expected)
    big = MatteCleanup(fill_holes=30)(labels)
    assert (big[14:19, 14:19] == np.where(labels[14:19, 14:19] == 5, 5, 3)).all()  # object 5 is kept
    assert (big[33:35, 0:2] == 0).all()


def test_min_area_drops_specks_per_object():
    labels = np.zeros((30, 30), np.uint8)
    square(labels, 1, 0, 0, 10)
    square(labels, 1, 20, 20, 2)  # 4-pixel speck of object 1
    square(labels, 2, 12, 12, 3)  # 9 pixels
    out = MatteCleanup(min_area=5)(labels)
    expected = labels.copy()
    expected[20:22, 20:22] = 0
    np.testing.assert_array_equal(out, expected)
    assert (MatteCleanup(min_area=10)(labels) == 2).sum() == 0


@pytest.mark.parametrize("grow", [2, 3, -2])
def test_grow_matches_scipy_per_object(grow):
    rng = np.random.default_rng(grow + 10)
    labels = np.zeros((48, 64), np.uint8)
    square(labels, 4, 10, 8, 14)
    square(labels, 9, 26, 40, 12)
    labels[rng.random(labels.shape) < 0.02] = 0
    out = MatteCleanup(grow=grow)(labels)
    for object_id in (4, 9):
        mask = labels == object_id
        if grow > 0:
            expected = ndimage.binary_dilation(mask, disk(grow))
            assert ((out == object_id) == expected).all()  # objects are far apart: no contest
        else:
            expected = ndimage.binary_erosion(mask, disk(-grow), border_value=1)
            assert ((out == object_id) == expected).all()


def test_grow_does_not_overwrite_other_objects_and_erosion_separates_them():
    labels = np.zeros((20, 20), np.uint8)
    labels[:, :10] = 1
    labels[:, 10:] = 2
    np.testing.assert_array_equal(MatteCleanup(grow=3)(labels), labels)
    eroded = MatteCleanup(grow=-2)(labels)
    assert (eroded[:, 8:12] == 0).all() and (eroded[:, :8] == 1).all() and (eroded[:, 12:] == 2).all()


def test_order_min_area_before_grow():
    labels = np.zeros((30, 30), np.uint8)
    square(labels, 1, 10, 10, 2)  # 4 pixels: dropped first, so growing cannot rescue it
    assert not MatteCleanup(min_area=10, grow=3)(labels).any()
    assert (MatteCleanup(grow=3)(labels) == 1).sum() > 10


def test_no_step_returns_the_input_unchanged():
    labels = np.arange(12, dtype=np.uint8).reshape(3, 4)
    assert MatteCleanup(feather=4)(labels) is labels


def test_feather_is_a_ramp_centred_on_the_edge():
    labels = np.zeros((20, 40), np.uint8)
    labels[:, 20:] = 1
    hard = object_matte(labels, 1, MatteCleanup())
    np.testing.assert_array_equal(hard, np.where(labels == 1, 255, 0))
    soft = object_matte(labels, 1, MatteCleanup(feather=8))
    row = soft[10].astype(int)
    assert (np.diff(row) >= 0).all()
    assert row[:16].max() == 0 and row[24:].min() == 255  # the ramp spans 8 pixels across the edge
    assert ((row >= 128) == (labels[10] == 1)).all()  # still on the right side of 0.5


def test_mattes_are_computed_once_a_frame_and_equal_the_direct_ones():
    cleanup = MatteCleanup(feather=9)
    mattes = Mattes(cleanup)
    first = np.zeros((30, 40), np.uint8)
    square(first, 2, 3, 3, 12)
    square(first, 9, 15, 20, 10)
    alpha = mattes.alpha(0, first, 2)
    np.testing.assert_array_equal(alpha, object_matte(first, 2, cleanup))
    assert mattes.alpha(0, first, 2) is alpha  # the second output of the frame gets the same array
    np.testing.assert_array_equal(mattes.alpha(0, first, None), object_matte(first, None, cleanup))
    assert mattes.ids(0, first) == [2, 9]
    half = mattes.half(0, first, 2)
    assert half.dtype == np.float16 and len(np.unique(alpha)) > 10  # the feather's ramp: many levels
    np.testing.assert_array_equal(half, (alpha / 255).astype(np.float16))
    assert mattes.half(0, first, 2) is half

    second = np.zeros_like(first)
    square(second, 2, 10, 10, 5)
    np.testing.assert_array_equal(mattes.alpha(1, second, 2), object_matte(second, 2, cleanup))
    assert mattes.ids(1, second) == [2]
    rewritten = first.copy()  # the same frame index again, other labels (a writer reused): computed afresh
    rewritten[:] = 0
    assert mattes.ids(0, rewritten) == [] and not mattes.alpha(0, rewritten, 2).any()


def test_cutout_is_straight_alpha():
    frame = np.full((2, 3, 3), 200, np.uint8)
    alpha = np.array([[0, 128, 255], [0, 0, 255]], np.uint8)
    rgba = cutout(frame, alpha)
    np.testing.assert_array_equal(rgba[..., :3], frame)  # colours not multiplied by alpha
    np.testing.assert_array_equal(rgba[..., 3], alpha)


@pytest.mark.parametrize("option", ["fill_holes", "min_area", "feather"])
def test_negative_sizes_are_input_errors(option):
    with pytest.raises(InputError, match="--" + option.replace("_", "-")):
        MatteCleanup(**{option: -1})
