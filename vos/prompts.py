"""The prompt buffer of video propagation: annotated frames kept for good, plus a FIFO of recent predictions.

Each entry is a frame already at model resolution (normalised image on the device) with its label map as *slots*
(``ObjectIds`` slots, 0 = background). Colours are applied only when a batch is built, because the colours depend on
how many objects are tracked, which grows when objects appear mid-video. A tuned prompt (in-context tuning) is the
exception: its target is fixed, already drawn for the label set it was tuned for.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

import numpy as np
import torch

from seggpt_core.transforms import normalized_colours

#: Background black, object white: the colours of a one-object pass.
BLACK_WHITE = np.array([[0, 0, 0], [255, 255, 255]], np.uint8)


@dataclass
class PromptFrame:
    index: int | None  #: the frame's index in the video (None: a tuned prompt, no frame of the video)
    image: torch.Tensor  #: (3, h, w) normalised image on the model's device
    slots: torch.Tensor | None  #: (h, w) int64 object slots on the same device (None when ``target`` is fixed)
    target: torch.Tensor | None = None  #: (3, h, w) fixed normalised target (a tuned prompt), used as is
    _drawn: tuple[bytes, torch.Tensor] | None = field(default=None, repr=False)

    def drawn(self, colours: np.ndarray, normalized: torch.Tensor) -> torch.Tensor:
        """(3, h, w) normalised target: the slots in ``normalized`` (``colours`` normalised). Cached per colour set,
        so a frame is recoloured only when the colours change (an object appears), not on every frame it prompts."""
        if self.target is not None:
            return self.target
        key = colours.tobytes()
        if self._drawn is None or self._drawn[0] != key:
            self._drawn = (key, normalized[self.slots].permute(2, 0, 1))
        return self._drawn[1]


class PromptBank:
    """Permanent prompts (frames with given masks) + the last ``capacity`` predicted frames (FIFO)."""

    def __init__(self, capacity: int) -> None:
        if capacity < 0:
            raise ValueError(f"context must be >= 0, got {capacity}")
        self.permanent: list[PromptFrame] = []
        self.recent: deque[PromptFrame] = deque(maxlen=capacity)

    def __len__(self) -> int:
        return len(self.permanent) + len(self.recent)

    def add_permanent(self, frame: PromptFrame) -> None:
        self.permanent.append(frame)

    def push(self, frame: PromptFrame) -> None:
        """Remember a predicted frame; the oldest falls out when the FIFO is full."""
        self.recent.append(frame)

    def frames(self) -> list[PromptFrame]:
        """Prompts in batch order: permanent ones first (the first annotation is prompt 0), then oldest to newest."""
        return self.permanent + list(self.recent)

    def batch(self, colours: np.ndarray, only_slot: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Stack the prompts for the model.

        Args:
            colours: (K+1, 3) uint8 colours of background + K slots.
            only_slot: draw just this slot, in white on black (the per-object mode); others become background.
                A fixed target is used as is.
        Returns:
            images (P, 3, h, w) and targets (P, 3, h, w), both normalised, on the prompts' device.
        """
        frames = self.frames()
        images = torch.stack([f.image for f in frames])
        if only_slot is None:
            normalized = normalized_colours(colours, images.device)
            return images, torch.stack([f.drawn(colours, normalized) for f in frames])
        normalized = normalized_colours(BLACK_WHITE, images.device)
        targets = [f.target if f.target is not None else normalized[(f.slots == only_slot).long()].permute(2, 0, 1)
                   for f in frames]
        return images, torch.stack(targets)

