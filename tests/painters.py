"""Known-answer painters for the session tests: models whose output is known exactly, and that answer computed
independently (PIL and numpy indexing, not the library's transforms)."""

from __future__ import annotations

import numpy as np
from PIL import Image

from seggpt_core.model import SegGPT


class RepaintNewestPrompt(SegGPT):
    """A painter with a known answer: every query gets the mask of the last prompt in the batch."""

    def paint(self, prompt_images, prompt_targets, query_images, seg_type="instance"):
        return prompt_targets[-1:].expand(query_images.shape[0], -1, -1, -1).clone()


class RecordingRepainter(RepaintNewestPrompt):
    """The known-answer painter, keeping the prompt targets of every call."""

    def __init__(self, config) -> None:
        super().__init__(config)
        self.targets: list = []

    def paint(self, prompt_images, prompt_targets, query_images, seg_type="instance"):
        self.targets.append(prompt_targets.clone())
        return super().paint(prompt_images, prompt_targets, query_images, seg_type)


def round_trip(labels: np.ndarray, half: tuple[int, int]) -> np.ndarray:
    """Expected labels after PIL-nearest down to model resolution and legacy-nearest back up: source index
    floor(dst * scale) with the scale in float32, as torch computes it."""
    small = np.array(Image.fromarray(labels).resize((half[1], half[0]), Image.NEAREST))
    h, w = labels.shape
    rows = np.floor(np.arange(h, dtype=np.float32) * np.float32(half[0] / h)).astype(int)
    cols = np.floor(np.arange(w, dtype=np.float32) * np.float32(half[1] / w)).astype(int)
    return small[rows][:, cols]
