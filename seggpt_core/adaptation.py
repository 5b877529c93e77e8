"""One-shot adaptation: a copy of a SegGPT fine-tuned on pairs made from the annotated examples alone.

OSVOS (Caelles et al., CVPR 2017) fine-tunes a network on a video's first annotated frame before segmenting the rest.
This is the same idea in SegGPT's in-context form: every training sample is a pair whose two halves are different
random augmentations of an annotated example (image and mask, the method's own input: no other image's labels), drawn
into one canvas and painted as inference paints it (black background, label colours, the whole query half hidden),
with the training loss (``seggpt_core.losses.masked_loss``, the official ``forward_loss``). The model then paints the
real queries with weights that have seen what the object looks like against that background.

This module knows nothing of videos: the pairs come from any :data:`~seggpt_core.training.PairSampler` (``vos``
cuts them around objects the way its windows mode does). The settings are torch-free, so ``vos.config`` can hold
them; torch is imported when :func:`adapt` runs.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .errors import InputError

if TYPE_CHECKING:
    from collections.abc import Callable

    from .model import SegGPT
    from .training import PairSampler


@dataclass(frozen=True)
class AdaptConfig:
    """Optimisation of one adaptation: ``steps`` AdamW steps (0: no adaptation) of ``batch_size`` pairs at a constant
    learning rate ``lr``; pair ``i`` of step ``s`` is drawn from ``numpy.random.default_rng([seed, s, i])``, so the
    adapted weights are a function of (model, examples, settings)."""

    steps: int = 0
    lr: float = 1e-4
    batch_size: int = 8
    seed: int = 0

    def __post_init__(self) -> None:
        checks = [(isinstance(self.steps, int) and self.steps >= 0,
                   f"steps must be an integer >= 0, got {self.steps!r}"),
                  (math.isfinite(self.lr) and self.lr > 0, f"lr must be a finite number > 0, got {self.lr}"),
                  (isinstance(self.batch_size, int) and self.batch_size >= 1,
                   f"batch size must be an integer >= 1, got {self.batch_size!r}"),
                  (isinstance(self.seed, int) and 0 <= self.seed < 2**32, f"seed must be within [0, 2**32), got "
                                                                          f"{self.seed!r}")]
        for ok, message in checks:
            if not ok:
                raise InputError(f"adaptation: {message}")

    @property
    def enabled(self) -> bool:
        return self.steps > 0


def adapt(model: SegGPT, pairs: PairSampler, config: AdaptConfig, *,
          on_step: Callable[[int, float], None] | None = None) -> SegGPT:
    """A copy of ``model`` fine-tuned on ``config.steps`` batches of canvases drawn from ``pairs``.

    The copy trains in fp32 whatever ``model``'s compute dtype (without drop path), and is returned in that dtype, in
    eval mode, without gradients; ``model`` itself is not touched. ``pairs`` is called as ``pairs(rng, rng)`` (one
    generator per pair); ``on_step`` gets (step from 1, loss) after every step.
    """
    import numpy as np
    import torch

    from .losses import masked_loss
    from .training import TrainConfig, make_canvas, parameter_groups

    # Canvases painted as inference paints them: black background, the label colours (only their order is drawn), the
    # whole query half hidden, the prompt shown as given.
    canvas = TrainConfig(half_mask_prob=1.0, label_colours_prob=1.0, black_background_prob=1.0)
    dtype = model.compute_dtype
    # The caller may be in inference mode (a session propagating): tensors made there cannot enter autograd, so the
    # copy is made, trained and cast back with inference mode off.
    with torch.inference_mode(False), torch.enable_grad():
        # Eval mode: no drop path (the only train-time difference), so the result depends on the seed alone.
        adapted = copy.deepcopy(model).set_compute_dtype(torch.float32).eval()
        for p in adapted.parameters():
            p.requires_grad_(True)
        optimizer = torch.optim.AdamW(parameter_groups(adapted, canvas.weight_decay), lr=config.lr,
                                      betas=canvas.betas)
        device = adapted.device
        for step in range(config.steps):
            samples = [make_canvas(np.random.default_rng([config.seed, step, i]), pairs, adapted.config, canvas)
                       for i in range(config.batch_size)]
            images, shown, targets, mask, valid, seg_type = (torch.stack(t).to(device) for t in zip(*samples))
            loss = masked_loss(adapted(images, shown, mask, seg_type=seg_type), targets, mask,
                               adapted.config.patch_size, valid)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(adapted.parameters(), canvas.clip_grad)
            optimizer.step()
            if on_step is not None:
                on_step(step + 1, float(loss.detach()))
        for p in adapted.parameters():
            p.requires_grad_(False)
        return adapted.set_compute_dtype(dtype)
