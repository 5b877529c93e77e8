"""SegGPT's label <-> colour mapping.

SegGPT reads and paints *colours*, not ids. Label ``k`` (1..n) is drawn with colour ``k`` of ``label_colours(n)``,
background (0) is black, and a painted output is decoded by the nearest label colour (squared L2), which is the rule
of the Hugging Face port and of Painter's evaluator. The colours are spread as far apart as possible: label 1 is
always white, so the single-object case is the official white-on-black target.
"""

from __future__ import annotations

import numpy as np

from .errors import InputError

#: Most labels one prompt carries: label maps are 8-bit, and adjacent colour levels stay >= 36 apart.
MAX_LABELS = 255


def label_colours(num_labels: int) -> np.ndarray:
    """Colours for background + ``num_labels`` labels, shape (num_labels + 1, 3), uint8.

    ``base = int(n ** (1/3)) + 1`` levels per channel, ``margin = 256 // base``; label k+1 has the base-``base`` digits
    (r, g, b) of k and colour (255 - r*margin, 255 - g*margin, 255 - b*margin).
    """
    if num_labels < 1:
        raise InputError(f"label colours need at least one label, got {num_labels}; give a mask with an object in it")
    if num_labels > MAX_LABELS:
        raise InputError(f"{num_labels} labels are more than the label colours separate ({MAX_LABELS}); merge objects or "
                         "use the per-object mode")
    base = int(num_labels ** (1 / 3)) + 1
    margin = 256 // base
    k = np.arange(num_labels)
    digits = np.stack([k // base**2, (k % base**2) // base, k % base], axis=1)
    colours = 255 - digits * margin
    return np.concatenate([np.zeros((1, 3), np.int64), colours]).astype(np.uint8)


def colour_scores(rgb, colours: np.ndarray):
    """How close each pixel is to each label colour: (..., 3) RGB in 0..255 -> (..., K+1) scores, higher = closer.

    score_c = 2 x.c - |c|^2 = |x|^2 - |x - c|^2: the negated squared distance up to a per-pixel constant, so the
    argmax is the nearest colour (ties to the lower label, as in the HF port), and the score is affine in the colour,
    so interpolating scores equals scoring interpolated colours. Works on numpy arrays and torch tensors (torch stays
    on its device).
    """
    if isinstance(rgb, np.ndarray):
        col = colours.astype(np.float32)
        return rgb.astype(np.float32) @ col.T * 2 - (col * col).sum(1)
    import torch

    col = torch.as_tensor(colours, dtype=torch.float32, device=rgb.device)
    return rgb.float() @ col.T * 2 - (col * col).sum(1)

