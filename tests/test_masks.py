"""Mask reading rules, the DAVIS palette, validation errors and the user-id <-> slot map."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from seggpt_core.errors import InputError
from seggpt_core.colours import MAX_LABELS, label_colours
from vos.masks import (ObjectIds, check_mask, check_mask_frame, davis_palette, labels_from_array, load_mask,
                       object_ids_in, read_label_png)


@pytest.fixture(scope="module")
def multi(shared_data) -> Path:
    return shared_data / "davis-mini-multi" / "Annotations" / "480p" / "blackswan-x3"


@pytest.fixture(scope="module")
def void(shared_data) -> Path:
    return shared_data / "davis-edge-void" / "Annotations" / "480p" / "libby-void"


def save(path: Path, array: np.ndarray, mode: str | None = None, palette: list[int] | None = None) -> Path:
    image = Image.fromarray(array)
    if mode is not None:
        image = image.convert(mode)
    if palette is not None:
        image.putpalette(palette)
    image.save(path)
    return path


# --- palette ----------------------------------------------------------------------------------------------------------


def test_davis_palette_equals_the_palette_in_davis_pngs(multi):
    with Image.open(multi / "00000.png") as im:
        shipped = np.asarray(im.getpalette("RGB"), np.uint8).reshape(-1, 3)
    np.testing.assert_array_equal(davis_palette()[: len(shipped)], shipped)


def test_davis_palette_first_colours():
    expected = [(0, 0, 0), (128, 0, 0), (0, 128, 0), (128, 128, 0), (0, 0, 128), (128, 0, 128), (0, 128, 128),
                (128, 128, 128), (64, 0, 0), (192, 0, 0)]
    assert [tuple(c) for c in davis_palette()[:10].tolist()] == expected
    assert davis_palette().shape == (256, 3) and davis_palette().dtype == np.uint8


# --- reading ----------------------------------------------------------------------------------------------------------


def test_read_davis_palette_png(multi):
    labels, palette = read_label_png(multi / "00000.png")
    assert labels.dtype == np.uint8 and labels.shape == (480, 854)
    assert object_ids_in(labels) == [1, 2, 3]
    np.testing.assert_array_equal(labels, np.array(Image.open(multi / "00000.png")))
    np.testing.assert_array_equal(palette[:4], davis_palette()[:4])


def test_palette_png_round_trip_keeps_ids_and_palette(tmp_path):
    labels = np.zeros((20, 30), np.uint8)
    labels[2:8, 3:9] = 7
    labels[10:15, 20:28] = 200
    custom = np.random.default_rng(1).integers(0, 256, (256, 3), dtype=np.uint8)
    path = save(tmp_path / "m.png", labels, palette=custom.ravel().tolist())
    got, palette = read_label_png(path)
    np.testing.assert_array_equal(got, labels)
    np.testing.assert_array_equal(palette, custom)


def test_short_palette_is_padded_with_davis_colours(tmp_path):
    path = save(tmp_path / "m.png", np.array([[0, 1], [2, 1]], np.uint8), palette=[0, 0, 0, 9, 9, 9, 7, 7, 7])
    _, palette = read_label_png(path)
    assert palette.shape == (256, 3)
    assert palette[1].tolist() == [9, 9, 9] and palette[2].tolist() == [7, 7, 7]
    np.testing.assert_array_equal(palette[3:], davis_palette()[3:])


def test_binary_grey_png_is_object_one(tmp_path):
    mask = np.zeros((10, 12), np.uint8)
    mask[3:6, 2:9] = 255
    labels, palette = read_label_png(save(tmp_path / "bin.png", mask))
    assert palette is None
    np.testing.assert_array_equal(labels, (mask == 255).astype(np.uint8))
    labels, _ = read_label_png(save(tmp_path / "bit.png", mask, mode="1"))
    np.testing.assert_array_equal(labels, (mask == 255).astype(np.uint8))


def test_grey_label_png_values_are_ids(tmp_path):
    mask = np.zeros((10, 12), np.uint8)
    mask[1:3] = 3
    mask[5:9, 4:] = 17
    labels, _ = read_label_png(save(tmp_path / "l.png", mask))
    np.testing.assert_array_equal(labels, mask)


def test_grey_rgb_png_is_accepted_colour_png_is_refused(tmp_path):
    mask = np.zeros((6, 6), np.uint8)
    mask[2:4, 2:4] = 5
    labels, _ = read_label_png(save(tmp_path / "grey.png", np.repeat(mask[..., None], 3, -1)))
    np.testing.assert_array_equal(labels, mask)
    colour = np.zeros((6, 6, 3), np.uint8)
    colour[2:4, 2:4] = (200, 10, 10)
    with pytest.raises(InputError, match=r"colour\.png: mask is a colour \(RGB\) image; save it as a palette PNG"):
        read_label_png(save(tmp_path / "colour.png", colour))


def test_sixteen_bit_png(tmp_path):
    ids = np.zeros((4, 4), np.uint16)
    ids[1, 1] = 9
    labels, _ = read_label_png(save(tmp_path / "ok16.png", ids))
    np.testing.assert_array_equal(labels, ids.astype(np.uint8))
    ids[2, 2] = 300
    with pytest.raises(InputError, match="big16.png.*outside 0..255"):
        read_label_png(save(tmp_path / "big16.png", ids))


def test_missing_and_corrupt_mask_files(tmp_path):
    with pytest.raises(InputError, match="nope.png: mask file does not exist"):
        read_label_png(tmp_path / "nope.png")
    (tmp_path / "bad.png").write_bytes(b"\x89PNG garbage")
    with pytest.raises(InputError, match="bad.png: cannot read mask") as err:
        load_mask(tmp_path / "bad.png")
    assert "\n" not in str(err.value)


def test_void_is_background_unless_asked(void):
    raw, _ = read_label_png(void / "00000.png")
    assert 255 in raw
    labels, _ = load_mask(void / "00000.png")
    assert object_ids_in(labels) == [1]
    np.testing.assert_array_equal(labels, np.where(raw == 255, 0, raw))
    kept, _ = load_mask(void / "00000.png", void=None)
    np.testing.assert_array_equal(kept, raw)


def test_arrays():
    bool_mask = np.zeros((3, 4), bool)
    bool_mask[1, 2] = True
    np.testing.assert_array_equal(labels_from_array(bool_mask), bool_mask.astype(np.uint8))
    ids = np.array([[0, 4], [250, 4]], np.int64)
    labels, palette = load_mask(ids)
    assert labels.dtype == np.uint8 and palette is None
    np.testing.assert_array_equal(labels, ids)
    np.testing.assert_array_equal(labels_from_array(ids[..., None]), ids)
    with pytest.raises(InputError, match="outside 0..255"):
        labels_from_array(np.array([[0, 256]]))
    with pytest.raises(InputError, match="outside 0..255"):
        labels_from_array(np.array([[0, -1]]))
    with pytest.raises(InputError, match="dtype float"):
        labels_from_array(np.zeros((2, 2), np.float32))
    with pytest.raises(InputError, match=r"shape \(2, 2, 3\)"):
        labels_from_array(np.zeros((2, 2, 3), np.uint8))


# --- validation -------------------------------------------------------------------------------------------------------


def test_check_mask_size():
    labels = np.zeros((10, 20), np.uint8)
    with pytest.raises(InputError, match=r"m\.png: mask is 20x10 but the frames are 21x10"):
        check_mask(labels, frame_size=(10, 21), source="m.png")
    check_mask(labels, frame_size=(10, 20), source="later.png")  # an empty mask is fine here (nothing to add)


def test_check_mask_frame():
    check_mask_frame(9, 10, source="m.png")
    check_mask_frame(10_000, None, source="m.png")  # live stream: length unknown
    with pytest.raises(InputError, match="m.png: mask is given for frame 10 but the video has frames 0..9"):
        check_mask_frame(10, 10, source="m.png")
    with pytest.raises(InputError):
        check_mask_frame(-1, 10, source="m.png")


# --- object ids -------------------------------------------------------------------------------------------------------


def test_davis_ids_map_to_themselves():
    ids = ObjectIds([1, 2, 3])
    labels = np.array([[0, 1], [2, 3]], np.uint8)
    np.testing.assert_array_equal(ids.to_slots(labels), labels)
    np.testing.assert_array_equal(ids.to_ids(labels), labels)


def test_ids_with_gaps_and_late_objects():
    ids = ObjectIds()
    first = np.array([[0, 200, 7], [3, 3, 0]], np.uint8)
    assert ids.add(object_ids_in(first)) == [3, 7, 200]
    assert ids.ids == (3, 7, 200) and len(ids) == 3
    np.testing.assert_array_equal(ids.to_slots(first), [[0, 3, 2], [1, 1, 0]])
    # A later mask brings id 5 and repeats 7: 5 gets the next slot, old slots do not move.
    later = np.array([[5, 7, 0], [0, 5, 5]], np.uint8)
    assert ids.add(object_ids_in(later)) == [5]
    np.testing.assert_array_equal(ids.to_slots(np.array([3, 7, 200, 5], np.uint8)), [1, 2, 3, 4])
    slots = np.array([[0, 1, 2], [3, 4, 4]])
    np.testing.assert_array_equal(ids.to_ids(slots), [[0, 3, 7], [200, 5, 5]])
    for labels in (first, later):
        np.testing.assert_array_equal(ids.to_ids(ids.to_slots(labels)), labels)
    np.testing.assert_array_equal(ids.label_colours(), label_colours(4))
    assert 200 in ids and 9 not in ids and len(ids) == 4


def test_unknown_ids_and_out_of_range_slots_are_errors():
    ids = ObjectIds([4])
    with pytest.raises(InputError, match="later.png: object id 9 is not tracked"):
        ids.to_slots(np.array([[4, 9]], np.uint8), source="later.png")
    with pytest.raises(ValueError, match="slot 2"):
        ids.to_ids(np.array([[0, 2]]))


def test_too_many_objects():
    ids = ObjectIds(range(1, 4), max_objects=4)
    with pytest.raises(InputError, match="m.png: 5 objects are more than the label colours separate"):
        ids.add([10, 11], source="m.png")
    assert ids.ids == (1, 2, 3)  # nothing half-added
    full = ObjectIds(range(1, MAX_LABELS + 1))
    assert len(full) == MAX_LABELS
    with pytest.raises(InputError):
        ObjectIds(range(1, MAX_LABELS + 1), max_objects=MAX_LABELS - 1)
    with pytest.raises(InputError, match="outside 1..255"):
        ObjectIds([0])


def test_remove_repacks_slots():
    ids = ObjectIds([2, 5, 9])
    ids.remove([5])
    assert ids.ids == (2, 9)
    np.testing.assert_array_equal(ids.to_slots(np.array([[2, 9, 0]], np.uint8)), [[1, 2, 0]])
    with pytest.raises(InputError):
        ids.to_slots(np.array([[5]], np.uint8))


def test_object_ids_in_agrees_with_numpy_unique():
    rng = np.random.default_rng(3)
    dense = rng.integers(0, 256, (480, 854), dtype=np.uint8)
    sparse = np.zeros((480, 854), np.uint8)
    sparse[rng.integers(0, 480, 5), rng.integers(0, 854, 5)] = [1, 17, 17, 200, 255]
    for labels in (dense, sparse, dense[::3, 1::2], sparse.T, np.zeros((4, 4), np.uint8), np.zeros((0, 3), np.uint8)):
        assert object_ids_in(labels) == [int(i) for i in np.unique(labels) if i != 0]


def test_to_ids_on_frames_of_any_shape_matches_a_table_lookup():
    ids = ObjectIds([3, 7, 200, 5])
    table = np.array([0, *ids.ids], np.uint8)
    rng = np.random.default_rng(1)
    for shape in ((480, 854), (2, 64, 64), (7,), (0, 4)):
        slots = rng.integers(0, 5, shape)
        for dtype in (np.uint8, np.int64):
            out = ids.to_ids(slots.astype(dtype))
            assert out.dtype == np.uint8 and out.shape == shape
            np.testing.assert_array_equal(out, table[slots])
