"""Masks in, object ids through: reading label PNGs / arrays and the one map between user ids and model slots.

Users name objects with arbitrary ids 1..255 (gaps allowed, new ids may appear at any annotated frame, YouTube-VOS
style). The model paints objects with the colours of ``seggpt_core.colours.label_colours(K)``, which wants contiguous
labels 1..K. ``ObjectIds`` is the only place that translates between the two; outputs always carry the user's ids.

Reading rules (``load_mask``):
- palette ("P") PNG: the raw indices are the ids, and its palette is kept for the output PNGs;
- 8-bit greyscale ("L") PNG: the values are the ids, except a binary 0/255 image (DAVIS 2016 style), which is one
  object with id 1;
- 1-bit PNG: one object with id 1;
- an RGB(A) PNG is refused unless it is grey (R = G = B), because anti-aliased colour masks create phantom objects;
- a numpy array of integer or bool ids;
- 255 is DAVIS' "void" label (unlabelled border), read as background, unless ``void=None``.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from seggpt_core.errors import InputError
from seggpt_core.colours import MAX_LABELS, label_colours

#: DAVIS' "void" label: pixels not annotated; never an object.
VOID_ID = 255


def davis_palette() -> np.ndarray:
    """The PASCAL VOC colour map used by DAVIS and YouTube-VOS PNGs, shape (256, 3) uint8.

    Bits 0, 1, 2 of the index go to the top bit of R, G, B; the next three bits to the next lower bits, and so on.
    """
    index = np.arange(256)
    palette = np.zeros((256, 3), np.uint8)
    for shift in range(8):
        for channel in range(3):
            bit = (index >> (3 * shift + channel)) & 1
            palette[:, channel] |= (bit << (7 - shift)).astype(np.uint8)
    return palette


def read_label_png(path: str | Path) -> tuple[np.ndarray, np.ndarray | None]:
    """(H, W) uint8 ids and the PNG's (256, 3) uint8 palette (None unless it is a palette PNG), by the module rules."""
    path = Path(path)
    try:
        with Image.open(path) as im:
            im.load()
    except FileNotFoundError:
        raise InputError(f"{path}: mask file does not exist; check the path") from None
    except (OSError, Image.DecompressionBombError) as error:  # unreadable, or beyond PIL's pixel limit
        raise InputError(f"{path}: cannot read mask ({' '.join(str(error).split())}); save it as a PNG") from None
    if im.mode in ("P", "PA"):
        labels = np.array(im.getchannel(0) if im.mode == "PA" else im)
        raw = np.asarray(im.getpalette("RGB") or [], np.uint8).reshape(-1, 3)
        palette = davis_palette()
        palette[: len(raw)] = raw[:256]
        return labels, palette
    if im.mode == "1":
        return np.array(im, np.uint8), None
    if im.mode in ("L", "LA"):
        return _grey_ids(np.array(im.getchannel(0))), None
    if im.mode in ("I", "I;16", "I;16B", "I;16L", "F"):
        values = np.array(im)
        if values.min() < 0 or values.max() > 255 or not np.array_equal(values, np.round(values)):
            raise InputError(f"{path}: mask holds values outside 0..255; save object ids 1..255 as an 8-bit or "
                             "palette PNG")
        return _grey_ids(values.astype(np.uint8)), None
    if im.mode in ("RGB", "RGBA"):
        rgb = np.array(im.convert("RGB"))
        if (rgb[..., 0] == rgb[..., 1]).all() and (rgb[..., 1] == rgb[..., 2]).all():
            return _grey_ids(rgb[..., 0].copy()), None
        raise InputError(f"{path}: mask is a colour (RGB) image; save it as a palette PNG or an 8-bit PNG whose "
                         "values are object ids")
    raise InputError(f"{path}: mask has image mode {im.mode}; save it as a palette PNG or an 8-bit PNG of object ids")


def _grey_ids(values: np.ndarray) -> np.ndarray:
    """Grey values as ids; a binary 0/255 image is one object, id 1."""
    present = np.unique(values)
    if present.size and set(present.tolist()) <= {0, 255} and present[-1] == 255:
        return (values == 255).astype(np.uint8)
    return values


def labels_from_array(mask: np.ndarray, *, source: str = "mask array") -> np.ndarray:
    """An integer or bool array of ids, (H, W) or (H, W, 1), as (H, W) uint8; refuses values outside 0..255."""
    mask = np.asarray(mask)
    if mask.ndim == 3 and mask.shape[2] == 1:
        mask = mask[..., 0]
    if mask.ndim != 2:
        raise InputError(f"{source}: mask has shape {mask.shape}; give an (H, W) array of object ids")
    if mask.dtype == bool:
        return mask.astype(np.uint8)
    if not np.issubdtype(mask.dtype, np.integer):
        raise InputError(f"{source}: mask has dtype {mask.dtype}; give integer object ids (or a bool mask)")
    if mask.size and (mask.min() < 0 or mask.max() > 255):
        raise InputError(f"{source}: mask holds ids outside 0..255; use object ids 1..255")
    return mask.astype(np.uint8, copy=False)


def load_mask(mask: str | Path | np.ndarray, *, void: int | None = VOID_ID) -> tuple[np.ndarray, np.ndarray | None]:
    """A mask file or array as ((H, W) uint8 ids, palette or None), with ``void`` pixels set to background."""
    if isinstance(mask, (str, Path)):
        labels, palette = read_label_png(mask)
    else:
        labels, palette = labels_from_array(mask), None
    if void is not None and (labels == void).any():
        labels = np.where(labels == void, 0, labels).astype(np.uint8)
    return labels, palette


def object_ids_in(labels: np.ndarray) -> list[int]:
    """Sorted ids present in a (H, W) uint8 label map, background excluded."""
    if not labels.size:
        return []
    # OpenCV's histogram counts uint8 directly (np.bincount first widens every pixel to int64: 8x the time)
    counts = cv2.calcHist([np.ascontiguousarray(labels, np.uint8)], [0], None, [256], [0, 256]).ravel()
    return [int(i) for i in np.flatnonzero(counts[1:]) + 1]


def check_mask(labels: np.ndarray, *, frame_size: tuple[int, int], source: str) -> None:
    """Refuse a mask whose size differs from the frames'."""
    if tuple(labels.shape) != tuple(frame_size):
        h, w = labels.shape
        raise InputError(f"{source}: mask is {w}x{h} but the frames are {frame_size[1]}x{frame_size[0]}; give a "
                         "mask of the frame size")


def check_mask_frame(index: int, num_frames: int | None, *, source: str) -> None:
    """Refuse a mask given at a frame index the video does not have (``num_frames`` None = live, unknown)."""
    if index < 0 or (num_frames is not None and index >= num_frames):
        raise InputError(f"{source}: mask is given for frame {index} but the video has frames 0..{num_frames - 1}; "
                         "fix the frame index")


class ObjectIds:
    """User object ids <-> model slots 1..K (slot k is colour k of ``label_colours(K)``), with 0 = background both ways.

    Slots are handed out in order of first appearance (ids of one mask in increasing order), so DAVIS ids 1..K map to
    themselves. Lookups are 256-entry tables, so converting a whole label map is one numpy gather.
    """

    def __init__(self, ids: Iterable[int] = (), *, max_objects: int = MAX_LABELS):
        self.max_objects = max_objects
        self._ids: list[int] = []
        self._to_slot = np.zeros(256, np.uint8)
        self.add(ids)

    @property
    def ids(self) -> tuple[int, ...]:
        """User ids in slot order: ``ids[k - 1]`` is painted with slot k."""
        return tuple(self._ids)

    def __len__(self) -> int:
        return len(self._ids)

    def __contains__(self, object_id: int) -> bool:
        return object_id in self._ids

    def add(self, ids: Iterable[int], *, source: str = "mask") -> list[int]:
        """Give slots to the ids not seen before; returns those new ids. Raises when the label colours would run out."""
        new = [int(i) for i in sorted(set(ids)) if int(i) not in self._ids]
        for object_id in new:
            if not 1 <= object_id <= 255:
                raise InputError(f"{source}: object id {object_id} is outside 1..255; renumber the objects")
        if len(self._ids) + len(new) > self.max_objects:
            raise InputError(f"{source}: {len(self._ids) + len(new)} objects are more than the label colours separate "
                             f"({self.max_objects}); track fewer objects at once or use the per-object mode")
        for object_id in new:
            self._ids.append(object_id)
            self._to_slot[object_id] = len(self._ids)
        return new

    def remove(self, ids: Iterable[int]) -> None:
        """Forget objects; the remaining ones are re-packed into slots 1..K' in their old order."""
        drop = {int(i) for i in ids}
        self._ids = [i for i in self._ids if i not in drop]
        self._to_slot[:] = 0
        self._to_slot[self._ids] = np.arange(1, len(self._ids) + 1)

    def to_slots(self, labels: np.ndarray, *, source: str = "mask") -> np.ndarray:
        """(H, W) uint8 user ids -> (H, W) uint8 slots; an id that was never added is an error, not background."""
        slots = self._to_slot[labels]
        unknown = (slots == 0) & (labels != 0)
        if unknown.any():
            raise InputError(f"{source}: object id {int(labels[unknown][0])} is not tracked; add it first")
        return slots

    def to_ids(self, slots: np.ndarray) -> np.ndarray:
        """(H, W) integer slots 0..K (e.g. a decoded model output) -> (H, W) uint8 user ids."""
        if not slots.size:
            return np.zeros(slots.shape, np.uint8)
        if int(slots.max()) > len(self._ids):
            raise ValueError(f"slot {int(slots.max())} is beyond the {len(self._ids)} tracked objects")
        table = np.zeros(256, np.uint8)
        table[1:len(self._ids) + 1] = self._ids
        # OpenCV's 256-entry lookup takes a fifth of numpy's gather on a 480p frame (this runs on the model's thread)
        flat = np.ascontiguousarray(slots, np.uint8).reshape(-1)
        return cv2.LUT(flat, table).reshape(slots.shape)

    def label_colours(self) -> np.ndarray:
        """Model colours of slots 0..K, (K + 1, 3) uint8 (``label_colours(K)``)."""
        return label_colours(len(self._ids))
