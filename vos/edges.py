"""Edge refinement of the windows mode: a painted window's outline moved onto the frame's own edges.

The shipped model paints a 64x64 half, so an object's window of a few hundred frame pixels gets a mask on a grid of
several pixels, resized into the window. A guided filter (He et al., "Guided Image Filtering", ECCV 2010) with the
frame's window as the guide makes the resized scores locally a linear function of the frame's colours: where the
frame has an edge the scores change across it, where it is flat they are smoothed. So the zero crossing, the outline,
follows the object's real edge within a few model pixels of where it was painted (``PropagationConfig.edges``,
``vos.config.EdgeConfig``).

    refine_window(scores, rgb, box, half_size, config)   # (H, W) scores changed in place inside box
"""

from __future__ import annotations

import cv2
import numpy as np
import torch

from .config import EdgeConfig
from .windows import Box, cut


def refine_window(scores: torch.Tensor, rgb: np.ndarray, box: Box, half_size: tuple[int, int],
                  config: EdgeConfig) -> None:
    """Guided-filter the (H, W) ``scores`` inside ``box`` (top, left, h, w; resized there from the model's
    ``half_size``) with the (H, W, 3) uint8 ``rgb`` frame's window as the guide, in place."""
    top, left, h, w = box
    radius = max(1, round(config.radius * h / half_size[0]))
    inside = scores[top:top + h, left:left + w]
    refined = cv2.ximgproc.guidedFilter(cut(rgb, box), inside.float().cpu().numpy(), radius, config.contrast ** 2)
    inside.copy_(torch.from_numpy(refined))
