"""In-context segmentation with one or many (image, label map) examples: the image API of SegGPT.

``SegGPTPredictor`` owns a model placed on a device in a compute dtype and turns user arrays into label maps:
prompts are drawn in label colours, queries are painted, and the painting is decoded back to ids at each query's
own resolution. Several prompts are combined by the feature ensemble (default, the official rule) or, on request, by
the spatial ensemble (the examples tiled into one grid prompt).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np
import torch

from .checkpoint import DEFAULT_MODEL
from .errors import InputError
from .model import SegGPT, SegType
from .colours import label_colours
from .transforms import (Upsample, painted_scores, prepare_image, prepare_target, resize_image, resize_labels,
                         scores_to_labels)

if TYPE_CHECKING:
    from .tuned_prompt import TunedPrompt

DType = Literal["fp32", "bf16", "fp16"]
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


def default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def resolve_device(device: str | torch.device | None) -> torch.device:
    """``device`` as a ``torch.device`` this machine has (default: CUDA when available); an unknown or absent device
    (``cuda`` on a machine without CUDA, ``cuda:7`` with two GPUs) is an :class:`InputError`."""
    if device is None:
        return default_device()
    text = str(device)
    if not re.fullmatch(r"cpu|mps|cuda(:\d+)?", text):
        raise InputError(f"unknown device {text!r}; use cpu, cuda, cuda:N or mps")
    if text.startswith("cuda"):
        if not torch.cuda.is_available():
            why = "no GPU found" if torch.version.cuda else "built without CUDA"
            raise InputError(f"{text}: CUDA is not available here (torch {torch.__version__}, {why}); use cpu")
        index, count = int(text.partition(":")[2] or 0), torch.cuda.device_count()
        if index >= count:
            raise InputError(f"{text}: this machine has {count} CUDA device(s), cuda:0..cuda:{count - 1}")
    if text == "mps" and not torch.backends.mps.is_available():
        raise InputError("mps is not available on this machine; use cpu")
    return torch.device(text)


def default_dtype(device: torch.device) -> DType:
    """bf16 where the hardware runs it fast (CUDA with bf16, or a CPU with AMX/AVX-512 bf16), else fp32."""
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    return "bf16" if torch.backends.mkldnn.is_available() and _cpu_has_fast_bf16() else "fp32"


def _cpu_has_fast_bf16() -> bool:
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "amx_bf16" in flags or "avx512_bf16" in flags


def check_array(value: object, what: str) -> None:
    """Refuse a file path (or anything else that is not an array) where an array is needed, in one line."""
    if isinstance(value, np.ndarray):
        return
    if isinstance(value, (str, Path)):
        raise InputError(f"{what} is the path {str(value)!r}, but arrays are needed here; read the file first "
                         "(vos.readers.read_image for an image, vos.masks.load_mask for a mask PNG)")
    raise InputError(f"{what} is a {type(value).__name__}; give a numpy array")


@dataclass(frozen=True)
class Prompt:
    """One in-context example: an image and its label map (0 = background, 1..K = the labels to segment).

    Arrays only: a file path is refused with an ``InputError`` saying how to read it.
    """

    image: np.ndarray  #: (H, W, 3) uint8 RGB
    labels: np.ndarray  #: (H, W) integer ids

    def __post_init__(self) -> None:
        check_array(self.image, "Prompt image")
        check_array(self.labels, "Prompt labels")


class SegGPTPredictor:
    """A SegGPT model ready for inference on one device, in one compute dtype.

    Args:
        model: the model (its weights are moved and cast in place).
        device: "cpu", "cuda", ... (default: CUDA when available).
        dtype: "fp32", "bf16" or "fp16" for the matmuls (default: the fastest accurate one for the device).
        compile: wrap the painting function in ``torch.compile`` (worth it for long videos).
        seg_type: the type token, "instance" (official default) or "semantic".
    """

    def __init__(self, model: SegGPT, *, device: str | torch.device | None = None, dtype: DType | None = None,
                 compile: bool = False, seg_type: SegType = "instance") -> None:
        self.device = resolve_device(device)
        self.dtype: DType = dtype or default_dtype(self.device)
        if self.dtype not in DTYPES:
            raise InputError(f"unknown dtype {self.dtype!r}; use one of {', '.join(DTYPES)}")
        self.model = model.eval().to(self.device).set_compute_dtype(DTYPES[self.dtype])
        for p in self.model.parameters():
            p.requires_grad_(False)
        self.seg_type = seg_type
        self._paint = torch.compile(self.model.paint, dynamic=True) if compile else self.model.paint

    @classmethod
    def from_pretrained(cls, name_or_path: str | Path = DEFAULT_MODEL, **kwargs) -> SegGPTPredictor:
        return cls(SegGPT.from_pretrained(name_or_path), **kwargs)

    @property
    def half_size(self) -> tuple[int, int]:
        """(h, w) every prompt and query is resized to."""
        return self.model.config.half_size

    # ------------------------------------------------------------------------------------------------ tensors
    def prepare_image(self, image: np.ndarray) -> torch.Tensor:
        """(H, W, 3) uint8 -> (3, h, w) normalised, on the device. On a GPU the host tensor is pinned and copied
        asynchronously, so preparing the next frame (on the reader thread) overlaps the model."""
        tensor = prepare_image(image, self.half_size)
        if self.device.type == "cuda":
            tensor = tensor.pin_memory()
        return tensor.to(self.device, non_blocking=True)

    @torch.inference_mode()
    def paint(self, prompt_images: torch.Tensor, prompt_targets: torch.Tensor, queries: torch.Tensor) -> torch.Tensor:
        """(P, 3, h, w), (P, 3, h, w), (Q, 3, h, w) normalised -> (Q, 3, h, w) painted, feature-ensembled."""
        return self._paint(prompt_images.to(self.device), prompt_targets.to(self.device), queries.to(self.device),
                           seg_type=self.seg_type)

    def paint_scores(self, prompt_images: torch.Tensor, prompt_targets: torch.Tensor, queries: torch.Tensor,
                     colours: np.ndarray, mirror: bool = False) -> torch.Tensor:
        """Paint ``queries`` and score each pixel against the label ``colours`` ((K+1, 3) uint8): (Q, K+1, h, w),
        higher = closer colour (``transforms.painted_scores``).

        ``mirror``: test-time augmentation at twice the cost: the whole task is painted a second time mirrored left to
        right (prompts, their targets and the queries flipped), and the two paintings' scores are averaged, the
        mirrored one flipped back. Not in the paper.
        """
        scores = painted_scores(self.paint(prompt_images, prompt_targets, queries), colours)
        if mirror:
            mirrored = self.paint(prompt_images.flip(-1), prompt_targets.flip(-1), queries.flip(-1))
            scores = (scores + painted_scores(mirrored, colours).flip(-1)) / 2
        return scores

    def paint_labels(self, prompt_images: torch.Tensor, prompt_targets: torch.Tensor, queries: torch.Tensor,
                     colours: np.ndarray, out_size: tuple[int, int], upsample: Upsample = "nearest"
                     ) -> tuple[torch.Tensor, torch.Tensor]:
        """The painted image -> scores -> labels step: labels 0..K of ``queries`` at model resolution (Q, h, w)
        int64 and at ``out_size`` (Q, H, W) uint8 (``transforms.scores_to_labels``)."""
        return scores_to_labels(self.paint_scores(prompt_images, prompt_targets, queries, colours), out_size, upsample)

    # ------------------------------------------------------------------------------------------------ arrays
    @torch.inference_mode()
    def segment(self, prompts: Sequence[Prompt], queries: Sequence[np.ndarray], *, num_labels: int | None = None,
                ensemble: Literal["feature", "spatial"] = "feature", upsample: Upsample = "nearest",
                tuned: Sequence[TunedPrompt] = ()) -> list[np.ndarray]:
        """Label maps for ``queries`` given the in-context ``prompts``.

        Args:
            prompts: examples; every label of every prompt becomes a label colour.
            queries: (H, W, 3) uint8 images of any sizes.
            num_labels: the largest label (default: the largest in the prompts, or the tuned prompts' label count).
            tuned: learned examples (in-context tuning), put before ``prompts`` in the feature ensemble; their labels
                1..K are this call's labels 1..K.
        Returns:
            one (H, W) uint8 label map per query, at that query's resolution.
        """
        if not prompts and not tuned:
            raise InputError("at least one prompt (image + mask, or a tuned prompt) is needed")
        for i, q in enumerate(queries):
            check_array(q, f"query {i}")
        for i, p in enumerate(prompts):
            if p.image.shape[:2] != p.labels.shape[:2]:
                raise InputError(f"prompt {i}: mask size {p.labels.shape[:2]} differs from its image size "
                                 f"{p.image.shape[:2]}; resize the mask to the image")
        k = num_labels or max([int(p.labels.max()) for p in prompts] + [t.num_labels for t in tuned])
        if k < 1:
            raise InputError("the prompt masks are empty; give at least one labelled pixel")
        for i, t in enumerate(tuned):
            t.check_model(self.model, source=f"tuned prompt {i}")
            if t.num_labels != k:
                raise InputError(f"tuned prompt {i} paints {t.num_labels} labels but this call has {k}; use masks "
                                 "with the tuned prompt's labels")
        colours = label_colours(k)
        if ensemble == "spatial":
            if tuned:
                raise InputError("a tuned prompt cannot be tiled into a spatial ensemble; use the feature ensemble")
            images, targets = self._spatial_prompt(prompts, colours)
        else:
            images = torch.stack([t.image.to(self.device) for t in tuned]
                                 + [self.prepare_image(p.image) for p in prompts])
            targets = torch.stack([t.target.to(self.device) for t in tuned]
                                  + [prepare_target(p.labels, colours, self.half_size).to(self.device)
                                     for p in prompts])
        out = []
        for q in queries:
            _, labels = self.paint_labels(images, targets, self.prepare_image(q)[None], colours, q.shape[:2], upsample)
            out.append(labels[0].cpu().numpy())
        return out

    def _spatial_prompt(self, prompts: Sequence[Prompt], colours: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """Tile the examples into an n x n grid the size of one example (paper §3.2), empty cells black."""
        n = math.ceil(math.sqrt(len(prompts)))
        h, w = self.half_size
        ch, cw = h // n, w // n
        image = np.zeros((h, w, 3), np.uint8)
        labels = np.zeros((h, w), np.uint8)
        for i, p in enumerate(prompts):
            r, c = divmod(i, n)
            image[r * ch:(r + 1) * ch, c * cw:(c + 1) * cw] = resize_image(p.image, (ch, cw))
            labels[r * ch:(r + 1) * ch, c * cw:(c + 1) * cw] = resize_labels(p.labels, (ch, cw))
        return (self.prepare_image(image)[None],
                prepare_target(labels, colours, self.half_size)[None].to(self.device))
