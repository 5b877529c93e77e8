"""SegGPT's label <-> colour mapping.

SegGPT reads and paints *colours*, not ids. Label ``k`` (1..n) is drawn with colour ``k`` of ``build_palette(n)``,
background (0) is black, and a painted output is decoded by the nearest palette colour (squared L2), which is the rule
of the Hugging Face port and of Painter's evaluator. The palette spreads colours as far apart as possible: label 1 is
always white, so the single-object case is the official white-on-black target.
"""

from __future__ import annotations

import numpy as np

from .errors import InputError

#: Most labels one prompt carries: label maps are 8-bit, and adjacent palette levels stay >= 36 apart.
MAX_LABELS = 255


def build_palette(num_labels: int) -> np.ndarray:
    """Colours for background + ``num_labels`` labels, shape (num_labels + 1, 3), uint8.

    ``base = int(n ** (1/3)) + 1`` levels per channel, ``margin = 256 // base``; label k+1 has the base-``base`` digits
    (r, g, b) of k and colour (255 - r*margin, 255 - g*margin, 255 - b*margin).
    """
    if num_labels < 1:
        raise InputError(f"a palette needs at least one label, got {num_labels}; give a mask with an object in it")
    if num_labels > MAX_LABELS:
        raise InputError(f"{num_labels} labels are more than the palette separates ({MAX_LABELS}); merge objects or "
                         "use the per-object mode")
    base = int(num_labels ** (1 / 3)) + 1
    margin = 256 // base
    k = np.arange(num_labels)
    digits = np.stack([k // base**2, (k % base**2) // base, k % base], axis=1)
    colours = 255 - digits * margin
    return np.concatenate([np.zeros((1, 3), np.int64), colours]).astype(np.uint8)


def labels_to_rgb(labels: np.ndarray, palette: np.ndarray) -> np.ndarray:
    """(H, W) int labels in 0..len(palette)-1 -> (H, W, 3) uint8 colours."""
    if labels.max(initial=0) >= len(palette):
        raise InputError(f"label {int(labels.max())} has no colour in a {len(palette) - 1}-label palette")
    return palette[labels]


def rgb_to_labels(rgb, palette: np.ndarray):
    """Nearest palette colour of each pixel: (..., 3) float or uint8 RGB in 0..255 -> (...) int64 labels.

    Works on numpy arrays and torch tensors alike (torch stays on its device); ties go to the lower label, so a pixel
    exactly between black and white is background, as in the HF port.
    """
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a dependency, but keep the numpy path importable
        torch = None
    if torch is not None and isinstance(rgb, torch.Tensor):
        pal = torch.as_tensor(palette, dtype=torch.float32, device=rgb.device)
        x = rgb.float()
        # |x - c|^2 = |x|^2 - 2 x.c + |c|^2; |x|^2 is the same for every colour, so it can be dropped.
        score = x @ pal.T * -2 + (pal * pal).sum(1)
        return score.argmin(-1)
    x = np.asarray(rgb, np.float32)
    pal = palette.astype(np.float32)
    score = x @ pal.T * -2 + (pal * pal).sum(1)
    return score.argmin(-1)
