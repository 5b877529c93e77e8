"""Pre- and post-processing between user arrays and the model's canvases, as the official code does it.

Images are squashed (aspect ratio not kept) to the half size with PIL's bicubic filter, label maps with nearest;
both are ImageNet-normalised. A painted output goes back to labels by the nearest label colour, decoded at model
resolution and then resized to the original size: per-pixel argmin commutes with nearest resizing, so this equals the
official resize-then-threshold order and is cheaper. ``upsample="bilinear"`` interpolates the painted colours instead,
for smoother edges (not the official behaviour).
"""

from __future__ import annotations

import functools
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from .model import IMAGENET_MEAN, IMAGENET_STD
from .colours import colour_scores

Upsample = Literal["nearest", "bilinear"]

_MEAN = torch.tensor(IMAGENET_MEAN).view(3, 1, 1)
_STD = torch.tensor(IMAGENET_STD).view(3, 1, 1)


def resize_image(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(H, W, 3) uint8 -> (h, w, 3) uint8 with PIL bicubic (the official and HF pre-processing)."""
    if image.shape[:2] == tuple(size):
        return image
    return np.array(Image.fromarray(image).resize((size[1], size[0]), Image.BICUBIC))


def resize_labels(labels: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(H, W) integer labels -> (h, w) with PIL nearest (as the official code resizes targets)."""
    if labels.shape == tuple(size):
        return labels
    return np.array(Image.fromarray(labels.astype(np.uint8)).resize((size[1], size[0]), Image.NEAREST))


def normalize(rgb: np.ndarray | torch.Tensor) -> torch.Tensor:
    """(h, w, 3) uint8 (or float 0..255) -> (3, h, w) float32, ImageNet-normalised."""
    t = torch.as_tensor(np.require(rgb, requirements=('C', 'W'))).permute(2, 0, 1).float().div_(255)
    return ((t - _MEAN) / _STD).contiguous()  # stacking prompts (each frame) then copies no strided channels


def normalized_colours(colours: np.ndarray, device: torch.device | str = "cpu") -> torch.Tensor:
    """(K+1, 3) uint8 colours -> (K+1, 3) float32 in the model's ImageNet-normalised space, on ``device``."""
    return normalize(colours[None])[:, 0].T.contiguous().to(device)


def draw_labels(labels: torch.Tensor, normalized: torch.Tensor) -> torch.Tensor:
    """(..., h, w) int64 labels -> (..., 3, h, w) model input: label k drawn with row k of ``normalized``
    (:func:`normalized_colours`), on the labels' device."""
    return normalized[labels].movedim(-1, -3)


def prepare_image(image: np.ndarray, size: tuple[int, int]) -> torch.Tensor:
    """(H, W, 3) uint8 -> (3, h, w) model input."""
    return normalize(resize_image(image, size))


def prepare_target(labels: np.ndarray, colours: np.ndarray, size: tuple[int, int]) -> torch.Tensor:
    """(H, W) labels 0..K -> (3, h, w) model input: resized with nearest, drawn in label colours, normalised."""
    return normalize(colours[resize_labels(labels, size)])


def denormalize(painted: torch.Tensor) -> torch.Tensor:
    """(..., 3, h, w) ImageNet-normalised -> (..., 3, h, w) RGB in [0, 255] (clipped as the official code does)."""
    mean, std = _MEAN.to(painted.device), _STD.to(painted.device)
    return ((painted * std + mean) * 255).clamp_(0, 255)


def painted_scores(painted: torch.Tensor, colours: np.ndarray) -> torch.Tensor:
    """(Q, 3, h, w) ImageNet-normalised model output -> (Q, K+1, h, w) colour scores (higher = closer colour)."""
    return colour_scores(denormalize(painted.float()).permute(0, 2, 3, 1), colours).permute(0, 3, 1, 2)


def scores_to_labels(scores: torch.Tensor, out_size: tuple[int, int], upsample: Upsample = "nearest"
                     ) -> tuple[torch.Tensor, torch.Tensor]:
    """Labels from (Q, K+1, h, w) scores (K <= 255): at model resolution (Q, h, w) int64 and at ``out_size``
    (Q, H, W) uint8.

    "nearest" decodes at model resolution and resizes the labels with torch's legacy nearest (src = floor(dst *
    scale)); since the argmax commutes with nearest resizing this equals the official resize-the-RGB-then-decode.
    "bilinear" interpolates the scores (equivalently the colours, the scores being affine in them) before decoding.
    """
    small = scores.argmax(1)
    return small, upsample_labels(scores, small, out_size, upsample)


def upsample_labels(scores: torch.Tensor, small: torch.Tensor, out_size: tuple[int, int],
                    upsample: Upsample = "nearest") -> torch.Tensor:
    """The full-resolution half of :func:`scores_to_labels`: (Q, H, W) uint8 labels at ``out_size`` from the (Q, K+1,
    h, w) ``scores`` and their argmax ``small`` (Q, h, w); separate so that it can run off the model's thread."""
    if upsample == "bilinear":
        return F.interpolate(scores, size=out_size, mode="bilinear", align_corners=False).argmax(1).to(torch.uint8)
    return upsample_nearest(small.to(torch.uint8), out_size)


def upsample_nearest(labels: torch.Tensor, out_size: tuple[int, int]) -> torch.Tensor:
    """(..., h, w) -> (..., H, W) in the input's dtype, equal to ``F.interpolate(mode="nearest")`` (legacy nearest)
    but a plain gather: no float copy of a full-resolution frame, about 10x cheaper per 480p frame on a CPU."""
    rows = _nearest_source(labels.shape[-2], out_size[0], labels.device)
    cols = _nearest_source(labels.shape[-1], out_size[1], labels.device)
    return labels.index_select(-2, rows).index_select(-1, cols)


@functools.lru_cache(maxsize=32)
def _nearest_source(size_in: int, size_out: int, device: torch.device) -> torch.Tensor:
    """Source index of every output position under torch's legacy nearest: min(floor(dst * in / out), in - 1), in
    float32 as its kernels compute it; cached per device, so a video's frames reuse one index."""
    index = (torch.arange(size_out, dtype=torch.float32) * (size_in / size_out)).floor().long()
    return index.clamp_max_(size_in - 1).to(device)
