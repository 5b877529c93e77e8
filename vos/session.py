"""Mask propagation through one video: the session object users drive.

Data flows one way: frame source -> prompt bank -> SegGPT -> palette decoder -> (caller / writer). For every frame
the model sees the annotated frames (kept for good) plus the last ``context`` predicted frames, feature-ensembled in
one forward pass, with every object drawn in its own palette colour (paper §4.4, done for all objects at once; the
official demo binarises its cache and so tracks one object). A mask given at a later frame adds new objects
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

from .masks import ObjectIds, check_mask, check_mask_frame, load_mask, object_ids_in
from .prompts import PromptBank, PromptFrame
from .readers import FrameSource, open_source, prefetched

if TYPE_CHECKING:
    from seggpt_core.tuning import TunedPrompt


@dataclass(frozen=True)
class PropagationConfig:
    """How a video is propagated.

    ``context`` = 7 recent predictions + the first frame is the paper's best DAVIS setting ("8 frames", Table 4b:
    75.6 J&F vs 70.0 with the first frame alone).
    """

    context: int = 7
    mode: Literal["joint", "per-object"] = "joint"  #: all objects as colours in one pass, or one binary pass each
    upsample: Upsample = "nearest"  #: "nearest" is the official behaviour; "bilinear" smooths the painted colours


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
                             f"{list(prompt.label_ids)}); tune a prompt on masks with these objects or drop --prompt")

    @torch.inference_mode()
    def propagate(self) -> Iterator[Prediction]:
        """Stream the video and yield one ``Prediction`` per frame, in order.

        Frames before the first mask are all background. Memory stays bounded: only the prompt bank (at model
        resolution) and a few prefetched frames are held.
        """
        if not self._masks and self._tuned is None:
            raise InputError(f"{self.name}: no mask given; add the first frame's mask (add_mask / --masks) or a tuned "
                             "prompt (add_prompt / --prompt)")
        bank = PromptBank(self.config.context)
        if self._tuned is not None:
            prompt, _ = self._tuned
            self.objects.add(prompt.label_ids)
            device = self.predictor.device
            bank.add_permanent(PromptFrame(prompt.image.to(device), None, prompt.target.to(device)))
        prepare = self.predictor.prepare_image
        frames = prefetched(self.source, lambda f: (f, prepare(f.rgb)), depth=4)
        last = -1
        for frame, image in frames:
            last = frame.index
            size = frame.rgb.shape[:2]
            given = self._masks.get(frame.index)
            slots_small, slots = self._predict(bank, image, size)
            if given is not None:
                labels, source = given
                check_mask(labels, frame_size=size, source=source)
                self.objects.add_from(labels, source=source)
                given_slots = torch.as_tensor(self.objects.to_slots(labels, source=source), dtype=torch.uint8,
                                              device=slots.device)
                slots = torch.where(given_slots > 0, given_slots, self._drop(slots, given_slots))
                small = resize_labels(slots.cpu().numpy(), self.predictor.half_size)
                bank.add_permanent(PromptFrame(image, torch.from_numpy(small).to(image.device).long()))
            elif slots_small is not None:
                bank.push(PromptFrame(image, slots_small))
            yield Prediction(frame.index, frame.name, self.objects.to_ids(slots.cpu().numpy()), frame.rgb)
        pending = [i for i in self._masks if i > last]
        if pending:
            raise InputError(f"{self._masks[pending[0]][1]}: mask is given for frame {pending[0]} but the video "
                             f"ended at frame {last}; fix the frame index")

    @staticmethod
    def _drop(slots: torch.Tensor, given_slots: torch.Tensor) -> torch.Tensor:
        """The prediction with every object of the given mask removed (its given pixels replace it)."""
        redrawn = torch.unique(given_slots[given_slots > 0])
        return torch.where(torch.isin(slots, redrawn), torch.zeros_like(slots), slots)

    def _predict(self, bank: PromptBank, image: torch.Tensor, size: tuple[int, int]
                 ) -> tuple[torch.Tensor | None, torch.Tensor]:
        """Slots at model resolution, (h, w) int64 (None before any prompt), and at the frame's size, (H, W) uint8."""
        if not len(bank) or not len(self.objects):
            return None, torch.zeros(size, dtype=torch.uint8, device=image.device)
        palette = self.objects.palette()
        if self.config.mode == "joint":
            scores = painted_scores(self.predictor.paint(*bank.batch(palette), image[None]), palette)
        else:
            scores = self._per_object_scores(bank, image, len(palette) - 1)
        small, full = scores_to_labels(scores, size, self.config.upsample)
        return small[0], full[0]

    def _per_object_scores(self, bank: PromptBank, image: torch.Tensor, k: int) -> torch.Tensor:
        """(1, K+1, h, w): one white-on-black pass per object; an object's score is how much closer to white than to
        black its painting is, background scores 0, so the argmax merges the objects without overlap."""
        bw = np.array([[0, 0, 0], [255, 255, 255]], np.uint8)
        scores = [torch.zeros(1, *self.predictor.half_size, device=image.device)]
        for slot in range(1, k + 1):
            s = painted_scores(self.predictor.paint(*bank.batch(bw, only_slot=slot), image[None]), bw)
            scores.append(s[:, 1] - s[:, 0])
        return torch.stack(scores, 1)
