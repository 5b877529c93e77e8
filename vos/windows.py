"""Object windows (``PropagationConfig(mode="windows")``): every object segmented in a square window around where it
was last seen, at several times the resolution a whole frame gets.

A low-resolution model squashes a whole frame into its input half (the shipped model: 480x854 into 64x64), so an
object covering a few percent of the frame spans one or two tokens and its outline is lost. Here each object gets its
own white-on-black pass in which every prompt is cut around that object's mask in its own frame and the query around
the object's mask in the previous frame, with the same margin, so the object fills a similar part of every half; the
painted scores are resized back into the query's window only. This is this project's addition: the paper feeds whole
frames (``mode="joint"``), which is what the published ViT-L model gets by default.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F

from seggpt_core.transforms import Upsample, normalized_colours, resize_labels

from .config import WindowConfig
from .prompts import BLACK_WHITE

Box = tuple[int, int, int, int]
"""(top, left, height, width) in pixels of a frame."""


def object_window(mask: np.ndarray, margin: float, min_side: float) -> Box | None:
    """The square window centred on ``mask``'s bounding box, ``margin`` times its longer side and at least
    ``min_side`` of the frame's short side, shifted (or cut) to fit the (H, W) frame; None if ``mask`` is empty."""
    rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
    if not len(rows):
        return None
    fh, fw = mask.shape
    side = max(margin * max(rows[-1] + 1 - rows[0], cols[-1] + 1 - cols[0]), min_side * min(fh, fw))
    h, w = min(fh, round(side)), min(fw, round(side))
    top = int(np.clip(round((rows[0] + rows[-1] + 1 - h) / 2), 0, fh - h))
    left = int(np.clip(round((cols[0] + cols[-1] + 1 - w) / 2), 0, fw - w))
    return top, left, h, w


class ObjectWindows:
    """Cuts prompts and queries around one object and pastes the painted scores back.

    Args:
        prepare: the predictor's ``prepare_image``: (h, w, 3) uint8 crop -> (3, h', w') normalised at model size.
        half_size: the model's (h', w').
        config: the window geometry.
    """

    def __init__(self, prepare: Callable[[np.ndarray], torch.Tensor], half_size: tuple[int, int],
                 config: WindowConfig) -> None:
        self.prepare, self.half_size, self.config = prepare, half_size, config

    def box(self, mask: np.ndarray) -> Box | None:
        """The window around an object's (H, W) bool mask by this geometry, None when the mask is empty."""
        return object_window(mask, self.config.margin, self.config.min_side)

    def cut_prompt(self, rgb: np.ndarray, shown: np.ndarray, box: Box) -> tuple[torch.Tensor, torch.Tensor]:
        """A prompt cut to ``box``: image and white-on-black target of the (H, W) bool ``shown``, (3, h', w') each."""
        image = self.prepare(cut(rgb, box))
        small = torch.from_numpy(resize_labels(cut(shown, box).astype(np.uint8), self.half_size)).to(image.device)
        return image, normalized_colours(BLACK_WHITE, image.device)[small.long()].permute(2, 0, 1)

    def query(self, rgb: np.ndarray, box: Box) -> torch.Tensor:
        """(1, 3, h', w') the frame cut to ``box``, at model size."""
        return self.prepare(cut(rgb, box))[None]

    @staticmethod
    def paste(scores: torch.Tensor, window_scores: torch.Tensor, box: Box, upsample: Upsample) -> None:
        """Resize (h', w') ``window_scores`` to ``box`` and write them into the (H, W) ``scores`` there."""
        top, left, h, w = box
        resized = F.interpolate(window_scores[None, None], size=(h, w), mode=upsample,
                                **({"align_corners": False} if upsample == "bilinear" else {}))
        scores[top:top + h, left:left + w] = resized[0, 0]


def cut(array: np.ndarray, box: Box) -> np.ndarray:
    """``array[box]``, contiguous: (H, W, ...) -> (h, w, ...)."""
    top, left, h, w = box
    return np.ascontiguousarray(array[top:top + h, left:left + w])
