"""Matte clean-up and matte pixels: what the alpha outputs (matte sequences, cut-outs, alpha video, EXR) draw.

``MatteCleanup`` works on a frame's (H, W) uint8 map of user object ids, before any output sees it, in a fixed
order: fill holes, drop specks, grow or shrink. Feathering is the one soft step: it applies only where a label map
becomes an alpha matte (``MatteCleanup.alpha``), so label outputs (palette PNGs, COCO RLE, numpy) stay hard.
All steps are OpenCV morphology, connected components and box filters over whole images. ``Mattes`` computes each
matte of a frame once for all the alpha outputs of a video.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from seggpt_core.errors import InputError

from .masks import object_ids_in


def _disk(radius: int) -> np.ndarray:
    """(2r+1, 2r+1) uint8 structuring element: the pixels within ``radius`` of the centre (OpenCV's own ellipse is
    not round at small sizes)."""
    y, x = np.ogrid[-radius:radius + 1, -radius:radius + 1]
    return (x * x + y * y <= radius * radius).astype(np.uint8)


def _small_components(mask: np.ndarray, max_area: int, connectivity: int) -> np.ndarray:
    """(H, W) bool: the pixels of ``mask``'s connected components that have fewer than ``max_area`` pixels."""
    count, components, stats = cv2.connectedComponentsWithStats(mask.view(np.uint8), connectivity=connectivity)[:3]
    small = stats[:, cv2.CC_STAT_AREA] < max_area
    small[0] = False  # component 0 is everything outside ``mask``
    return small[components]


def _touches_border(components: np.ndarray) -> np.ndarray:
    """Bool per component label: whether the component reaches the image border."""
    edge = np.concatenate([components[0], components[-1], components[:, 0], components[:, -1]])
    touches = np.zeros(components.max() + 1, bool)
    touches[edge] = True
    return touches


@dataclass(frozen=True)
class MatteCleanup:
    """Clean-up of the label maps before any output, then the soft edge of the alpha outputs.

    ``fill_holes``: background holes with fewer than N pixels inside an object become that object (a hole is a
    4-connected part of the background enclosed by the object, not reaching the frame border).
    ``min_area``: 8-connected pieces of an object with fewer than N pixels are dropped (specks).
    ``grow``: dilate every object by N pixels into the background (where two objects grow into the same pixel the
    higher id wins); negative N erodes every object by -N pixels (also away from other objects).
    ``feather``: the alpha mattes get a linear ramp N pixels wide centred on the edge (N box filter); 0 = hard.
    """

    fill_holes: int = 0
    min_area: int = 0
    grow: int = 0
    feather: int = 0

    def __post_init__(self) -> None:
        for option in ("fill_holes", "min_area", "feather"):
            value = getattr(self, option)
            if value < 0:
                flag = "--" + option.replace("_", "-")
                raise InputError(f"{flag} must be >= 0 pixels, got {value}; use 0 to turn it off")

    @property
    def changes_labels(self) -> bool:
        """Whether ``__call__`` can change a label map (feather does not)."""
        return bool(self.fill_holes or self.min_area or self.grow)

    def __call__(self, labels: np.ndarray) -> np.ndarray:
        """(H, W) uint8 ids -> cleaned (H, W) uint8 ids (the input itself when no step is on; never modified)."""
        if not self.changes_labels:
            return labels
        labels = np.array(labels, np.uint8)
        ids = object_ids_in(labels)
        if self.fill_holes:
            for object_id in ids:
                labels[self._holes(labels == object_id) & (labels == 0)] = object_id
        if self.min_area:
            for object_id in ids:
                labels[_small_components(labels == object_id, self.min_area, 8)] = 0
        if self.grow > 0:
            grown = cv2.dilate(labels, _disk(self.grow))  # the highest id within reach of each pixel
            labels = np.where(labels == 0, grown, labels)
        elif self.grow < 0:
            disk = _disk(-self.grow)
            # a pixel keeps its id when every pixel within reach has that same id (borders count as the same)
            uniform = cv2.erode(labels, disk) == cv2.dilate(labels, disk)
            labels = np.where(uniform, labels, 0).astype(np.uint8)
        return labels

    def _holes(self, mask: np.ndarray) -> np.ndarray:
        """(H, W) bool: the parts of ``~mask`` enclosed by ``mask`` that are smaller than ``fill_holes`` pixels."""
        outside = (~mask).view(np.uint8)
        count, components, stats = cv2.connectedComponentsWithStats(outside, connectivity=4)[:3]
        hole = (stats[:, cv2.CC_STAT_AREA] < self.fill_holes) & ~_touches_border(components)
        hole[0] = False  # component 0 is ``mask`` itself
        return hole[components]

    def alpha(self, mask: np.ndarray) -> np.ndarray:
        """(H, W) bool mask -> (H, W) uint8 alpha, 255 = object, with the ``feather`` soft edge."""
        matte = mask.view(np.uint8) * np.uint8(255)
        if self.feather <= 1:
            return matte
        return cv2.blur(matte, (self.feather, self.feather), borderType=cv2.BORDER_REPLICATE)


def object_matte(labels: np.ndarray, object_id: int | None, cleanup: MatteCleanup) -> np.ndarray:
    """(H, W) uint8 alpha of one object, or of all objects together when ``object_id`` is None."""
    return cleanup.alpha(labels > 0 if object_id is None else labels == object_id)


#: uint8 alpha -> the bits of half float alpha / 255 (``cv2.LUT`` into uint16 costs a sixth of a numpy gather into
#: float16 on a 480p matte).
_HALF_BITS = (np.arange(256) / 255).astype(np.float16).view(np.uint16)


class Mattes:
    """The mattes of the frame being written, computed once and shared by every alpha output of a video.

    Matte PNGs, cut-outs, EXR channels and the alpha video all draw the same mattes of the same labels; each output
    asks this object, which computes a matte the first time it is asked for in a frame and hands out the same array
    after that. A frame is its index and its label array (the writers get the same array for every output), so a new
    frame drops the old one's mattes. Outputs must not modify what they get. Not thread-safe: one writer thread.
    """

    def __init__(self, cleanup: MatteCleanup = MatteCleanup()) -> None:
        self.cleanup = cleanup
        self._frame: tuple[int, np.ndarray] | None = None
        self._ids: list[int] = []
        self._alpha: dict[int | None, np.ndarray] = {}
        self._half: dict[int | None, np.ndarray] = {}

    def _use(self, index: int, labels: np.ndarray) -> None:
        if self._frame is None or self._frame[0] != index or self._frame[1] is not labels:
            self._frame = (index, labels)
            self._ids = object_ids_in(labels)
            self._alpha, self._half = {}, {}

    def ids(self, index: int, labels: np.ndarray) -> list[int]:
        """Sorted object ids present in frame ``index``'s (H, W) uint8 ``labels``."""
        self._use(index, labels)
        return self._ids

    def alpha(self, index: int, labels: np.ndarray, object_id: int | None) -> np.ndarray:
        """(H, W) uint8 matte of one object (None: all objects together), 255 = object, with the feather."""
        self._use(index, labels)
        if object_id not in self._alpha:
            self._alpha[object_id] = object_matte(labels, object_id, self.cleanup)
        return self._alpha[object_id]

    def half(self, index: int, labels: np.ndarray, object_id: int | None) -> np.ndarray:
        """(H, W) float16 matte, 0..1: ``alpha`` / 255."""
        self._use(index, labels)
        if object_id not in self._half:
            self._half[object_id] = cv2.LUT(self.alpha(index, labels, object_id), _HALF_BITS).view(np.float16)
        return self._half[object_id]


def cutout(frame: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """(H, W, 4) uint8 RGBA with straight (unpremultiplied) alpha: the frame's own colours, ``alpha`` as A."""
    return np.dstack([frame, alpha])
