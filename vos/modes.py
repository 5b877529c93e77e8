"""The three ways a query frame is painted from the prompt bank, one small object each behind one interface.

- ``JointMode`` (the paper): whole frames, every object drawn in its own label colour, one forward pass per frame.
- ``PerObjectMode``: whole frames, one white-on-black pass per object; the argmax over objects merges them.
- ``WindowsMode``: one white-on-black pass per object, prompts and query cut around the object (``vos.windows``).

A mode object lives for one propagation pass (``make_mode``); whatever it caches (the windows mode's cut prompts) is
its own and dies with the pass.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import NamedTuple, Protocol

import numpy as np
import torch

from seggpt_core.predictor import SegGPTPredictor
from seggpt_core.transforms import Upsample, resize_labels, upsample_labels

from .config import PropagationConfig, ResolvedMode
from .edges import refine_window
from .motion import Fusion
from .prompts import BLACK_WHITE, PromptBank
from .windows import Box, ObjectWindows


class Slots:
    """One frame's object slots 0..K: ``small`` (h, w) uint8 at model resolution and ``full`` (H, W) uint8 at the
    frame's size.

    ``full`` is either given or decoded from the painting on first use (``decode``), once, on whichever thread asks
    first: the whole-frame modes never look at it, so the session decodes it on the caller's thread while the model's
    thread paints the next frame.
    """

    def __init__(self, small: np.ndarray, full: np.ndarray | None = None,
                 decode: Callable[[], np.ndarray] | None = None) -> None:
        if (full is None) == (decode is None):
            raise ValueError("give exactly one of the full-resolution slots and a way to decode them")
        self.small = small
        self._full, self._decode, self._lock = full, decode, threading.Lock()

    @classmethod
    def painted(cls, scores: torch.Tensor, out_size: tuple[int, int], upsample: Upsample) -> Slots:
        """The slots of (K+1, h, w) painted ``scores`` (``transforms.painted_scores``): the argmax now, the
        full-resolution labels at ``out_size`` when first asked for (``transforms.upsample_labels``)."""
        small = scores.argmax(0)
        return cls(small.to(torch.uint8).cpu().numpy(),
                   decode=lambda: upsample_labels(scores[None], small[None], out_size, upsample)[0].cpu().numpy())

    @classmethod
    def at_full_size(cls, full: np.ndarray, model_size: tuple[int, int]) -> Slots:
        """Slots known at the frame's size (a mask, a stored result); ``small`` by nearest resizing."""
        return cls(resize_labels(full, model_size), full)

    @property
    def full(self) -> np.ndarray:
        with self._lock:
            if self._full is None:
                self._full, self._decode = self._decode(), None
            return self._full


class Query(NamedTuple):
    """One frame to paint."""

    index: int  #: frame index in the video
    image: torch.Tensor  #: (3, h, w) normalised at model size, on the device
    rgb: np.ndarray  #: (H, W, 3) uint8 at the frame's size
    previous: Slots | None  #: the slots of the frame computed just before in this pass (None: none)
    warped: np.ndarray | None = None
    """(H, W) uint8 ``previous.full`` moved to this frame along optical flow (``vos.motion``; None: no motion
    prior)."""


class PaintMode(Protocol):
    def predict(self, bank: PromptBank, query: Query, colours: np.ndarray) -> Slots:
        """Slots 0..K (``colours``: (K+1, 3) label colours) of ``query``. ``bank`` holds at least one prompt."""

    def observe(self, index: int, rgb: np.ndarray, slots: Slots) -> None:
        """Frame ``index`` ((H, W, 3) RGB and its slots) has just become a prompt of ``bank``."""


class JointMode:
    """All objects as colours of one painting (the paper's rule, §4.4)."""

    def __init__(self, predictor: SegGPTPredictor, config: PropagationConfig) -> None:
        self.predictor, self.upsample, self.mirror = predictor, config.upsample, config.uses_mirror("joint")

    def predict(self, bank: PromptBank, query: Query, colours: np.ndarray) -> Slots:
        scores = self.predictor.paint_scores(*bank.batch(colours), query.image[None], colours, self.mirror)
        return Slots.painted(scores[0], query.rgb.shape[:2], self.upsample)

    def observe(self, index: int, rgb: np.ndarray, slots: Slots) -> None:
        pass


def object_score(predictor: SegGPTPredictor, prompts: tuple[torch.Tensor, torch.Tensor],
                 query: torch.Tensor, mirror: bool) -> torch.Tensor:
    """(1, 1, h, w): how much closer to white than to black ``query`` is painted from white-on-black ``prompts``
    (with test-time ``mirror``ing or not); background scores 0, so the argmax over objects merges them without
    overlap."""
    scores = predictor.paint_scores(*prompts, query, BLACK_WHITE, mirror)
    return scores[:, 1:] - scores[:, :1]


class PerObjectMode:
    """One white-on-black painting per object on whole frames."""

    def __init__(self, predictor: SegGPTPredictor, config: PropagationConfig) -> None:
        self.predictor, self.upsample, self.mirror = predictor, config.upsample, config.uses_mirror("per-object")

    def predict(self, bank: PromptBank, query: Query, colours: np.ndarray) -> Slots:
        image = query.image[None]
        scores = torch.cat([torch.zeros(1, 1, *self.predictor.half_size, device=image.device)] +
                           [object_score(self.predictor, bank.batch(BLACK_WHITE, only_slot=slot), image, self.mirror)
                            for slot in range(1, len(colours))], 1)
        return Slots.painted(scores[0], query.rgb.shape[:2], self.upsample)

    def observe(self, index: int, rgb: np.ndarray, slots: Slots) -> None:
        pass


class WindowsMode:
    """Each object painted in a window around where it was in the previous frame (``vos.windows``), its outline
    moved onto the frame's edges (``vos.edges``, unless ``PropagationConfig.edges`` is off). Keeps the
    prompt frames it was shown (RGB and slots at full size) and their cut windows, for the frames still in the bank.

    With a motion prior (``query.warped``) the warped previous mask is used as ``PropagationConfig.flow`` says
    (``vos.motion.Fusion``): windows placed around it, the query shown with it as a prompt, painted scores blended
    with it, lost objects recovered from it.
    """

    def __init__(self, predictor: SegGPTPredictor, config: PropagationConfig) -> None:
        self.predictor, self.fusion, self.edges = predictor, Fusion(config.flow), config.edges
        self.mirror = config.uses_mirror("windows")
        self.upsample = "bilinear" if config.edges.enabled else config.upsample
        self.windows = ObjectWindows(predictor.prepare_image, predictor.half_size, config.windows)
        self._frames: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self._cuts: dict[tuple[int, int], tuple[torch.Tensor, torch.Tensor] | None] = {}

    def observe(self, index: int, rgb: np.ndarray, slots: Slots) -> None:
        self._frames[index] = (rgb, slots.full)

    def predict(self, bank: PromptBank, query: Query, colours: np.ndarray) -> Slots:
        indices = [f.index for f in bank.frames()]
        self._forget(set(indices))
        full = self._scores(bank, indices, query, len(colours) - 1).argmax(0).to(torch.uint8)
        full = self.fusion.recover(full, query.warped).cpu().numpy()
        return Slots.at_full_size(full, self.predictor.half_size)

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
        previous = None if query.previous is None else query.previous.full
        placed = self.fusion.placed(previous, query.warped)
        for slot in range(1, k + 1):
            box: Box | None = None if placed is None else self.windows.box(placed == slot)
            if box is None and placed is not previous and previous is not None:
                box = self.windows.box(previous == slot)  # warped out of the frame: where it was
            cuts = [] if box is None else [c for c in (self._prompt(i, slot) for i in indices) if c is not None]
            if cuts:
                cuts += self.fusion.prompts(query.rgb, query.warped, slot, box, self.windows)
                prompts = torch.stack([c[0] for c in cuts]), torch.stack([c[1] for c in cuts])
                window = self.windows.query(query.rgb, box)
            else:
                box, prompts, window = (0, 0, h, w), bank.batch(BLACK_WHITE, only_slot=slot), query.image[None]
            painted = object_score(self.predictor, prompts, window, self.mirror)
            self.windows.paste(scores[slot], painted[0, 0], box, self.upsample)
            if self.edges.enabled:
                refine_window(scores[slot], query.rgb, box, self.predictor.half_size, self.edges)
            self.fusion.blend(scores[slot], box, query.warped, slot)
        return scores


MODES = {"joint": JointMode, "per-object": PerObjectMode, "windows": WindowsMode}


def make_mode(mode: ResolvedMode, predictor: SegGPTPredictor, config: PropagationConfig) -> PaintMode:
    """A fresh mode object for one propagation pass."""
    return MODES[mode](predictor, config)
