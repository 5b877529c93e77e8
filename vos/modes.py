"""The three ways a query frame is painted from the prompt bank, one small object each behind one interface.

- ``JointMode`` (the paper): whole frames, every object drawn in its own label colour, one forward pass per frame.
- ``PerObjectMode``: whole frames, one white-on-black pass per object; the argmax over objects merges them.
- ``WindowsMode``: one white-on-black pass per object, prompts and query cut around the object (``vos.windows``).

A mode object lives for one propagation pass (``make_mode``); whatever it caches (the windows mode's cut prompts) is
its own and dies with the pass.
"""

from __future__ import annotations

from typing import NamedTuple, Protocol

import numpy as np
import torch

from seggpt_core.predictor import SegGPTPredictor
from seggpt_core.transforms import resize_labels, scores_to_labels

from .config import PropagationConfig, ResolvedMode
from .motion import Fusion
from .prompts import BLACK_WHITE, PromptBank
from .windows import Box, ObjectWindows


class Query(NamedTuple):
    """One frame to paint."""

    index: int  #: frame index in the video
    image: torch.Tensor  #: (3, h, w) normalised at model size, on the device
    rgb: np.ndarray  #: (H, W, 3) uint8 at the frame's size
    previous: np.ndarray | None  #: (H, W) uint8 slots of the frame computed just before in this pass (None: none)
    warped: np.ndarray | None = None
    """(H, W) uint8 ``previous`` moved to this frame along optical flow (``vos.motion``; None: no motion prior)."""


class PaintMode(Protocol):
    def predict(self, bank: PromptBank, query: Query, colours: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """Slots 0..K (``colours``: (K+1, 3) label colours) of ``query``: (h, w) int64 at model resolution and
        (H, W) uint8 at the frame's size. ``bank`` holds at least one prompt."""

    def observe(self, index: int, rgb: np.ndarray, slots: np.ndarray) -> None:
        """Frame ``index`` ((H, W, 3) RGB, (H, W) uint8 slots) has just become a prompt of ``bank``."""


class JointMode:
    """All objects as colours of one painting (the paper's rule, §4.4)."""

    def __init__(self, predictor: SegGPTPredictor, config: PropagationConfig) -> None:
        self.predictor, self.upsample = predictor, config.upsample

    def predict(self, bank: PromptBank, query: Query, colours: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        small, full = self.predictor.paint_labels(*bank.batch(colours), query.image[None], colours,
                                                  query.rgb.shape[:2], self.upsample)
        return small[0], full[0]

    def observe(self, index: int, rgb: np.ndarray, slots: np.ndarray) -> None:
        pass


def object_score(predictor: SegGPTPredictor, prompts: tuple[torch.Tensor, torch.Tensor],
                 query: torch.Tensor) -> torch.Tensor:
    """(1, 1, h, w): how much closer to white than to black ``query`` is painted from white-on-black ``prompts``;
    background scores 0, so the argmax over objects merges them without overlap."""
    scores = predictor.paint_scores(*prompts, query, BLACK_WHITE)
    return scores[:, 1:] - scores[:, :1]


class PerObjectMode:
    """One white-on-black painting per object on whole frames."""

    def __init__(self, predictor: SegGPTPredictor, config: PropagationConfig) -> None:
        self.predictor, self.upsample = predictor, config.upsample

    def predict(self, bank: PromptBank, query: Query, colours: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        image = query.image[None]
        scores = torch.cat([torch.zeros(1, 1, *self.predictor.half_size, device=image.device)] +
                           [object_score(self.predictor, bank.batch(BLACK_WHITE, only_slot=slot), image)
                            for slot in range(1, len(colours))], 1)
        small, full = scores_to_labels(scores, query.rgb.shape[:2], self.upsample)
        return small[0], full[0]

    def observe(self, index: int, rgb: np.ndarray, slots: np.ndarray) -> None:
        pass


class WindowsMode:
    """Each object painted in a window around where it was in the previous frame (``vos.windows``). Keeps the
    prompt frames it was shown (RGB and slots at full size) and their cut windows, for the frames still in the bank.

    With a motion prior (``query.warped``) the warped previous mask is used as ``PropagationConfig.flow`` says
    (``vos.motion.Fusion``): windows placed around it, the query shown with it as a prompt, painted scores blended
    with it, lost objects recovered from it.
    """

    def __init__(self, predictor: SegGPTPredictor, config: PropagationConfig) -> None:
        self.predictor, self.upsample, self.fusion = predictor, config.upsample, Fusion(config.flow)
        self.windows = ObjectWindows(predictor.prepare_image, predictor.half_size, config.windows)
        self._frames: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self._cuts: dict[tuple[int, int], tuple[torch.Tensor, torch.Tensor] | None] = {}

    def observe(self, index: int, rgb: np.ndarray, slots: np.ndarray) -> None:
        self._frames[index] = (rgb, slots)

    def predict(self, bank: PromptBank, query: Query, colours: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        indices = [f.index for f in bank.frames()]
        self._forget(set(indices))
        full = self._scores(bank, indices, query, len(colours) - 1).argmax(0).to(torch.uint8)
        full = self.fusion.recover(full, query.warped)
        return torch.from_numpy(resize_labels(full.cpu().numpy(), self.predictor.half_size)), full

    def _forget(self, keep: set[int]) -> None:
        """Drop the frames (and their cuts) that left the bank."""
        for index in [i for i in self._frames if i not in keep]:
            del self._frames[index]
        for key in [k for k in self._cuts if k[0] not in keep]:
            del self._cuts[key]

    def _prompt(self, index: int, slot: int) -> tuple[torch.Tensor, torch.Tensor] | None:
        if (index, slot) not in self._cuts:
            rgb, slots = self._frames[index]
            shown = slots == slot
            box = self.windows.box(shown)
            self._cuts[index, slot] = None if box is None else self.windows.cut_prompt(rgb, shown, box)
        return self._cuts[index, slot]

    def _scores(self, bank: PromptBank, indices: list[int], query: Query, k: int) -> torch.Tensor:
        """(K+1, H, W) scores at the frame's size: each object's inside its window, -inf outside, background 0.

        An object missing from the previous frame (lost, occluded, out of view) or from every prompt is searched for
        in the whole frame with whole-frame prompts, as in per-object mode.
        """
        h, w = query.rgb.shape[:2]
        scores = torch.full((k + 1, h, w), -torch.inf, device=query.image.device)
        scores[0] = 0
        placed = self.fusion.placed(query.previous, query.warped)
        for slot in range(1, k + 1):
            box: Box | None = None if placed is None else self.windows.box(placed == slot)
            if box is None and placed is not query.previous and query.previous is not None:
                box = self.windows.box(query.previous == slot)  # warped out of the frame: where it was
            cuts = [] if box is None else [c for c in (self._prompt(i, slot) for i in indices) if c is not None]
            if cuts:
                cuts += self.fusion.prompts(query.rgb, query.warped, slot, box, self.windows)
                prompts = torch.stack([c[0] for c in cuts]), torch.stack([c[1] for c in cuts])
                window = self.windows.query(query.rgb, box)
            else:
                box, prompts, window = (0, 0, h, w), bank.batch(BLACK_WHITE, only_slot=slot), query.image[None]
            self.windows.paste(scores[slot], object_score(self.predictor, prompts, window)[0, 0], box, self.upsample)
            self.fusion.blend(scores[slot], box, query.warped, slot)
        return scores


MODES = {"joint": JointMode, "per-object": PerObjectMode, "windows": WindowsMode}


def make_mode(mode: ResolvedMode, predictor: SegGPTPredictor, config: PropagationConfig) -> PaintMode:
    """A fresh mode object for one propagation pass."""
    return MODES[mode](predictor, config)
