"""The training objective of SegGPT (the official ``forward_loss``), shared by training and in-context tuning."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def masked_loss(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor, patch_size: int,
                valid: torch.Tensor | None = None) -> torch.Tensor:
    """Smooth-L1 (beta 0.01) over the hidden patches only: sum over hidden (valid) pixels and channels / their count.

    pred, target: (B, 3, H, W); mask: (B, N) bool hidden patches in raster order; valid: (B, H, W) or None.
    """
    b, _, h, w = pred.shape
    pixels = mask.view(b, 1, h // patch_size, w // patch_size).float()
    pixels = pixels.repeat_interleave(patch_size, 2).repeat_interleave(patch_size, 3)
    if valid is not None:
        pixels = pixels * valid[:, None]
    weight = pixels.expand(-1, pred.shape[1], -1, -1)
    loss = F.smooth_l1_loss(pred.float(), target.float(), beta=0.01, reduction="none")
    return (loss * weight).sum() / weight.sum().clamp_min(1)
