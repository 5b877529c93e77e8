"""Mask propagation through one video: the session object users drive.

Data flows one way: frame source -> prompt bank -> SegGPT -> palette decoder -> (caller / writer). For every frame
the model sees the annotated frames (kept for good) plus the last ``context`` predicted frames, feature-ensembled in
one forward pass, with every object drawn in its own palette colour (paper §4.4, done for all objects at once; the
official demo binarises its cache and so tracks one object). Low-resolution models (the shipped one) instead see each
object in a window around where it was last seen (:mod:`vos.windows`). A mask given at a later frame adds new objects
(YouTube-VOS style) or corrects existing ones: its objects replace their prediction on that frame and the frame
becomes a permanent prompt. A tuned prompt (in-context tuning, ``add_prompt``) is a permanent prompt from frame 0 on,
alongside the masks or instead of them.

    session = VideoSession(predictor, "video.mp4")
    session.add_mask(0, first_mask)            # (H, W) uint8 object ids, any ids 1..255
    for pred in session.propagate():            # one frame at a time, nothing accumulates but the prompt bank
        save(pred.name, pred.labels)
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal, NamedTuple

import numpy as np
import torch

from seggpt_core.errors import InputError
from seggpt_core.predictor import SegGPTPredictor
from seggpt_core.transforms import Upsample, painted_scores, resize_labels, scores_to_labels

from .config import Mode
from .masks import ObjectIds, check_mask, check_mask_frame, load_mask, object_ids_in
from .prompts import BLACK_WHITE, PromptBank, PromptFrame
from .readers import FrameSource, open_source, prefetched
from .windows import ObjectWindows, WindowConfig

if TYPE_CHECKING:
    from seggpt_core.tuned_prompt import TunedPrompt

#: ``mode="auto"`` uses object windows for models whose input half is smaller than this on either side.
WINDOWS_BELOW = 256


@dataclass(frozen=True)
class PropagationConfig:
    """How a video is propagated.

    ``context`` = 7 recent predictions + the first frame is the paper's best DAVIS setting ("8 frames", Table 4b:
    75.6 J&F vs 70.0 with the first frame alone).

    ``mode``: "joint" (the paper: whole frames, all objects as colours in one pass), "per-object" (whole frames, one
    white-on-black pass per object), "windows" (one pass per object in a window around it, :mod:`vos.windows`), or
    "auto": windows for low-resolution models (input half under ``WINDOWS_BELOW`` px, such as the shipped 64x64 one),
    joint otherwise and with a tuned prompt.
    """

    context: int = 7
    mode: Mode = "auto"
    upsample: Upsample = "nearest"  #: "nearest" is the official behaviour; "bilinear" smooths the painted colours
    windows: WindowConfig = WindowConfig()  #: window geometry (windows mode)

    def resolved_mode(self, half_size: tuple[int, int], tuned: bool = False) -> Literal["joint", "per-object",
                                                                                       "windows"]:
        """The mode used with a model of input half ``half_size`` (and a tuned prompt or not)."""
        if self.mode != "auto":
            return self.mode
        return "windows" if min(half_size) < WINDOWS_BELOW and not tuned else "joint"


class Prediction(NamedTuple):
    index: int  #: position in the stream
    name: str  #: output name of the frame (file stem or %05d)
    labels: np.ndarray  #: (H, W) uint8 user object ids at the frame's own resolution
    frame: np.ndarray  #: (H, W, 3) uint8 RGB input frame (for overlays)


class VideoSession:
    """State of one video: its frame source, the masks given so far, the object ids and the prompt bank.

    Args:
        predictor: the SegGPT predictor (model, device, dtype) shared by all sessions.
        video: a video file, a frame folder, a ``cv2.VideoCapture`` or any iterable of (H, W, 3) uint8 RGB frames.
        config: propagation settings.
        name: the video's name for outputs (default: from the path).
    """

    def __init__(self, predictor: SegGPTPredictor, video: str | Path | Iterable | FrameSource,
                 config: PropagationConfig = PropagationConfig(), *, name: str | None = None) -> None:
        self.predictor = predictor
        self.config = config
        self.source = open_source(video, name=name)
        self.objects = ObjectIds()
        self.palette: np.ndarray | None = None  #: colours of the first mask PNG that had a palette (for outputs)
        self._masks: dict[int, tuple[np.ndarray, str]] = {}
        self._tuned: tuple[TunedPrompt, str] | None = None

    @property
    def name(self) -> str:
        return self.source.name

    @property
    def mode(self) -> Literal["joint", "per-object", "windows"]:
        """The propagation mode in effect (``config.mode`` with "auto" resolved for this model)."""
        return self.config.resolved_mode(self.predictor.half_size, tuned=self._tuned is not None)

    def add_mask(self, frame_index: int, mask: str | Path | np.ndarray) -> None:
        """Give the objects' masks at ``frame_index``: a palette/label PNG path or an (H, W) array of object ids.

        Objects not seen before start being tracked there; objects already tracked are corrected on that frame.
        Can be called for any frame before ``propagate`` reaches it.
        """
        source = str(mask) if isinstance(mask, (str, Path)) else f"mask for frame {frame_index}"
        check_mask_frame(frame_index, self.source.num_frames, source=source)
        labels, palette = load_mask(mask)
        if self.palette is None:
            self.palette = palette
        first = not self._masks or frame_index < min(self._masks)
        if first and not labels.any():
            raise InputError(f"{source}: the first mask has no object (all background); give a mask with at least "
                             "one object id > 0")
        if self.source.size is not None:
            check_mask(labels, frame_size=self.source.size, source=source)
        self._check_tuned_ids(labels, source)
        self._masks[frame_index] = (labels, source)

    def add_prompt(self, prompt: TunedPrompt, *, source: str = "tuned prompt") -> None:
        """Use a tuned prompt as a permanent example from frame 0 on (first in the prompt batch).

        Its objects (``prompt.label_ids``) are tracked from the start, so masks become optional; masks given too may
        only use those ids, because the prompt's colours are fixed to its label set.
        """
        prompt.check_model(self.predictor.model, source=source)
        if self.config.mode == "per-object" and prompt.num_labels > 1:
            raise InputError(f"{source} paints {prompt.num_labels} objects in colours at once; use --mode joint")
        if self.config.mode == "windows":
            raise InputError(f"{source} was tuned on whole frames and cannot be cut into object windows; use --mode "
                             "joint (or auto)")
        self._tuned = (prompt, source)
        for labels, mask_source in self._masks.values():
            self._check_tuned_ids(labels, mask_source)

    def _check_tuned_ids(self, labels: np.ndarray, source: str) -> None:
        if self._tuned is None:
            return
        prompt, prompt_source = self._tuned
        extra = sorted(set(object_ids_in(labels)) - set(prompt.label_ids))
        if extra:
            raise InputError(f"{source}: object id(s) {extra} are not in {prompt_source} (tuned for ids "
                             f"{list(prompt.label_ids)}); tune a prompt on masks with these objects or drop "
                             "--tuned-prompt")

    @torch.inference_mode()
    def propagate(self) -> Iterator[Prediction]:
        """Stream the video and yield one ``Prediction`` per frame, in order.

        Frames before the first mask are all background. Memory stays bounded: only the prompt bank (at model
        resolution) and a few prefetched frames are held.
        """
        if not self._masks and self._tuned is None:
            raise InputError(f"{self.name}: no mask given; add the first frame's mask (add_mask / --masks) or a tuned "
                             "prompt (add_prompt / --tuned-prompt)")
        bank = PromptBank(self.config.context)
        if self._tuned is not None:
            prompt, _ = self._tuned
            self.objects.add(prompt.label_ids)
            device = self.predictor.device
            bank.add_permanent(PromptFrame(prompt.image.to(device), None, prompt.target.to(device)))
        prepare = self.predictor.prepare_image
        frames = prefetched(self.source, lambda f: (f, prepare(f.rgb)), depth=4)
        windows = ObjectWindows(prepare, self.predictor.half_size, self.config.windows)
        last, previous = -1, None
        for frame, image in frames:
            last = frame.index
            given = self._masks.get(frame.index)
            slots_small, slots = self._predict(bank, image, frame.rgb, previous, windows)
            if given is not None:
                labels, source = given
                check_mask(labels, frame_size=frame.rgb.shape[:2], source=source)
                self.objects.add_from(labels, source=source)
                given_slots = torch.as_tensor(self.objects.to_slots(labels, source=source), dtype=torch.uint8,
                                              device=slots.device)
                slots = torch.where(given_slots > 0, given_slots, self._drop(slots, given_slots))
            previous = slots.cpu().numpy()
            if given is not None:
                slots_small = torch.from_numpy(resize_labels(previous, self.predictor.half_size))
                bank.add_permanent(self._prompt_frame(image, slots_small, frame.rgb, previous))
            elif slots_small is not None:
                bank.push(self._prompt_frame(image, slots_small, frame.rgb, previous))
            yield Prediction(frame.index, frame.name, self.objects.to_ids(previous), frame.rgb)
        pending = [i for i in self._masks if i > last]
        if pending:
            raise InputError(f"{self._masks[pending[0]][1]}: mask is given for frame {pending[0]} but the video "
                             f"ended at frame {last}; fix the frame index")

    @staticmethod
    def _drop(slots: torch.Tensor, given_slots: torch.Tensor) -> torch.Tensor:
        """The prediction with every object of the given mask removed (its given pixels replace it)."""
        redrawn = torch.unique(given_slots[given_slots > 0])
        return torch.where(torch.isin(slots, redrawn), torch.zeros_like(slots), slots)

    def _prompt_frame(self, image: torch.Tensor, slots_small: torch.Tensor, rgb: np.ndarray,
                      slots: np.ndarray) -> PromptFrame:
        """A prompt at model resolution; in windows mode it keeps the frame and its (H, W) slots as well."""
        small = slots_small.to(image.device).long()
        if self.mode != "windows":
            return PromptFrame(image, small)
        return PromptFrame(image, small, rgb=rgb, full_slots=slots)

    def _predict(self, bank: PromptBank, image: torch.Tensor, rgb: np.ndarray, previous: np.ndarray | None,
                 windows: ObjectWindows) -> tuple[torch.Tensor | None, torch.Tensor]:
        """Slots at model resolution, (h, w) int64 (None before any prompt), and at the frame's size, (H, W) uint8.

        ``previous``: the last frame's (H, W) slots (windows mode cuts each query around its object there).
        """
        size = rgb.shape[:2]
        if not len(bank) or not len(self.objects):
            return None, torch.zeros(size, dtype=torch.uint8, device=image.device)
        palette = self.objects.label_colours()
        if self.mode == "windows":
            full = self._window_scores(bank, image, rgb, previous, len(palette) - 1, windows).argmax(0).to(torch.uint8)
            return torch.from_numpy(resize_labels(full.cpu().numpy(), self.predictor.half_size)), full
        if self.mode == "joint":
            scores = painted_scores(self.predictor.paint(*bank.batch(palette), image[None]), palette)
        else:
            scores = torch.cat([torch.zeros(1, 1, *self.predictor.half_size, device=image.device)] +
                               [self._object_score(bank.batch(BLACK_WHITE, only_slot=slot), image[None])
                                for slot in range(1, len(palette))], 1)
        small, full = scores_to_labels(scores, size, self.config.upsample)
        return small[0], full[0]

    def _object_score(self, prompts: tuple[torch.Tensor, torch.Tensor], query: torch.Tensor) -> torch.Tensor:
        """(1, 1, h, w): how much closer to white than to black the query is painted from white-on-black ``prompts``;
        background scores 0, so the argmax over objects merges them without overlap."""
        scores = painted_scores(self.predictor.paint(*prompts, query), BLACK_WHITE)
        return scores[:, 1:] - scores[:, :1]

    def _window_scores(self, bank: PromptBank, image: torch.Tensor, rgb: np.ndarray, previous: np.ndarray | None,
                       k: int, windows: ObjectWindows) -> torch.Tensor:
        """(K+1, H, W) scores at the frame's size: each object's inside its window, -inf outside, background 0.

        An object missing from the previous frame (lost, occluded, out of view) or from every prompt is searched for
        in the whole frame with whole-frame prompts, as in per-object mode.
        """
        h, w = rgb.shape[:2]
        scores = torch.full((k + 1, h, w), -torch.inf, device=image.device)
        scores[0] = 0
        frames = bank.frames()
        for slot in range(1, k + 1):
            box = None if previous is None else windows.config.box(previous == slot)
            prompts = None if box is None else windows.prompts(frames, slot)
            if prompts is None:
                box, prompts, query = (0, 0, h, w), bank.batch(BLACK_WHITE, only_slot=slot), image[None]
            else:
                query = windows.query(rgb, box)
            windows.paste(scores[slot], self._object_score(prompts, query)[0, 0], box, self.config.upsample)
        return scores
