"""In-context tuning (paper §3.3): SegGPT stays frozen and the prompt itself is optimised.

The result is a :class:`~seggpt_core.tuned_prompt.TunedPrompt` (its file format lives in
:mod:`seggpt_core.tuned_prompt`): an example tuned with the training loss until the frozen model, given it as the
in-context example, paints the labels of a handful of annotated images.

:func:`tune_prompt` runs the deduplicated painting path with autograd: the prompt is the only example, the annotated
images (randomly flipped and cropped) are the queries, and the loss is the training loss of the painted queries
against their labels drawn in label colours (the whole query half is masked, as at inference). Runs are seeded and
resumable: the prompt, the optimiser state, the step and the sampler's random state are checkpointed, so a resumed run
reproduces the uninterrupted one exactly.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import os
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from .atomic import atomic_write
from .colours import label_colours
from .errors import InputError
from .losses import masked_loss
from .model import IMAGENET_MEAN, IMAGENET_STD
from .predictor import Prompt, SegGPTPredictor
from .transforms import draw_labels, normalized_colours, resize_labels
from .tuned_prompt import TunedPrompt, weights_fingerprint

#: Range of a normalised pixel whose RGB is in [0, 1], per channel: the tuned image is kept a real image.
_PIXEL_MIN = torch.tensor([(0 - m) / s for m, s in zip(IMAGENET_MEAN, IMAGENET_STD)]).view(3, 1, 1)
_PIXEL_MAX = torch.tensor([(1 - m) / s for m, s in zip(IMAGENET_MEAN, IMAGENET_STD)]).view(3, 1, 1)


@dataclass(frozen=True)
class TuningConfig:
    """How a prompt is tuned. Adam on the prompt tensors with a cosine-decayed learning rate (normalised pixel units).

    ``batch_size`` annotated images are painted per step (all of them when there are fewer); with ``augment`` each is
    randomly flipped and cropped (scale ``crop_scale`` of its area), so the prompt generalises beyond the exact frames.
    """

    steps: int = 100
    lr: float = 0.05
    batch_size: int = 4
    seed: int = 0
    tune_target: bool = False  #: also learn the target (mask) half, not only the image half
    augment: bool = True
    crop_scale: tuple[float, float] = (0.5, 1.0)
    save_every: int = 10  #: checkpoint period in steps (when a checkpoint path is given)

    def __post_init__(self) -> None:
        checks = [(self.steps >= 1, f"steps must be >= 1, got {self.steps}"),
                  (math.isfinite(self.lr) and self.lr > 0, f"lr must be a finite number > 0, got {self.lr}"),
                  (self.batch_size >= 1, f"batch size must be >= 1, got {self.batch_size}"),
                  (0 < self.crop_scale[0] <= self.crop_scale[1] <= 1,
                   f"crop scale {self.crop_scale} must be an ordered range within (0, 1]"),
                  (self.save_every >= 1, f"save_every must be >= 1, got {self.save_every}")]
        for ok, message in checks:
            if not ok:
                raise InputError(f"tuning: {message}")

    def fingerprint_fields(self) -> dict:
        """Settings that change the result (the checkpoint period does not)."""
        d = asdict(self)
        d.pop("save_every")
        return d


class TuningSet:
    """The annotated images at model resolution, and the random (augmented) batches drawn from them.

    Args:
        predictor: gives the model resolution and device.
        examples: annotated images; labels 0..K (0 = background, label k is label colour k).
        num_labels: K (default: the largest label present).
    """

    def __init__(self, predictor: SegGPTPredictor, examples: Sequence[Prompt], num_labels: int | None = None) -> None:
        if not examples:
            raise InputError("in-context tuning needs at least one annotated image")
        for i, ex in enumerate(examples):
            if ex.image.shape[:2] != ex.labels.shape[:2]:
                raise InputError(f"annotated image {i}: mask size {ex.labels.shape[:2]} differs from its image size "
                                 f"{ex.image.shape[:2]}; give the mask of that image")
        present = max(int(ex.labels.max()) for ex in examples)
        self.num_labels = num_labels or present
        if present < 1:
            raise InputError("the masks to tune on are all background; give masks with at least one object")
        if present > self.num_labels:
            raise InputError(f"a mask holds label {present} but the prompt is tuned for {self.num_labels} labels")
        self.device = predictor.device
        size = predictor.half_size
        self.images = torch.stack([predictor.prepare_image(ex.image) for ex in examples])  # (N, 3, h, w)
        self.labels = torch.stack([torch.from_numpy(resize_labels(ex.labels, size).astype(np.int64))
                                   for ex in examples]).to(self.device)  # (N, h, w)
        self.colours = normalized_colours(label_colours(self.num_labels), self.device)  # (K+1, 3)

    def __len__(self) -> int:
        return len(self.images)

    def targets(self, labels: torch.Tensor) -> torch.Tensor:
        """(B, h, w) labels -> (B, 3, h, w) normalised label colours."""
        return draw_labels(labels, self.colours)

    def fingerprint(self) -> str:
        digest = hashlib.sha256()
        for t in (self.images, self.labels):
            digest.update(t.detach().float().cpu().contiguous().numpy().tobytes())
        return digest.hexdigest()[:16]

    def sample(self, generator: torch.Generator, config: TuningConfig) -> tuple[torch.Tensor, torch.Tensor]:
        """A batch (B, 3, h, w) images and (B, h, w) labels; all randomness comes from the CPU ``generator``."""
        n = len(self)
        index = torch.randperm(n, generator=generator)[:config.batch_size] if n > config.batch_size else torch.arange(n)
        images, labels = self.images[index.to(self.device)], self.labels[index.to(self.device)]
        if not config.augment:
            return images, labels
        return tuple(map(torch.stack, zip(*(self._augment(i, l, generator, config)
                                             for i, l in zip(images, labels)))))

    @staticmethod
    def _augment(image: torch.Tensor, labels: torch.Tensor, generator: torch.Generator, config: TuningConfig
                 ) -> tuple[torch.Tensor, torch.Tensor]:
        """Random resized crop (aspect 3/4..4/3) back to full size, and a horizontal flip half of the time."""
        h, w = labels.shape
        u = torch.rand(5, generator=generator, dtype=torch.float64).tolist()
        lo, hi = config.crop_scale
        area = (lo + (hi - lo) * u[0]) * h * w
        aspect = math.exp(math.log(3 / 4) + (math.log(4 / 3) - math.log(3 / 4)) * u[1])
        ch = min(h, max(1, round(math.sqrt(area / aspect))))
        cw = min(w, max(1, round(math.sqrt(area * aspect))))
        y0, x0 = int(u[2] * (h - ch + 1)), int(u[3] * (w - cw + 1))
        image = F.interpolate(image[None, :, y0:y0 + ch, x0:x0 + cw], size=(h, w), mode="bilinear",
                              align_corners=False)[0]
        labels = F.interpolate(labels[None, None, y0:y0 + ch, x0:x0 + cw].float(), size=(h, w),
                               mode="nearest")[0, 0].long()
        if u[4] < 0.5:
            image, labels = image.flip(-1), labels.flip(-1)
        return image, labels


def tuning_loss(predictor: SegGPTPredictor, image: torch.Tensor, target: torch.Tensor,
                queries: torch.Tensor, query_targets: torch.Tensor) -> torch.Tensor:
    """The training loss of painting ``queries`` (B, 3, h, w) with the single example (image, target) (3, h, w),
    against ``query_targets`` (B, 3, h, w) normalised colours. Differentiable in the example; the model is frozen."""
    model = predictor.model
    painted = model.paint(image[None], target[None], queries, seg_type=predictor.seg_type)
    p = model.config.patch_size
    b, _, h, w = painted.shape
    hidden = torch.ones(b, (h // p) * (w // p), dtype=torch.bool, device=painted.device)  # the whole query half
    return masked_loss(painted, query_targets, hidden, p)


def _lr_at(step: int, config: TuningConfig) -> float:
    """Cosine decay from ``lr`` to 0 over the run (a function of the step only, so resuming needs no scheduler)."""
    return 0.5 * config.lr * (1 + math.cos(math.pi * step / config.steps))


class _Checkpoint:
    """Resumable state of a tuning run: prompt tensors, optimiser, step, sampler RNG, loss history."""

    def __init__(self, path: Path | None, run_id: str) -> None:
        self.path = path
        self.run_id = run_id

    def load(self) -> dict | None:
        if self.path is None or not self.path.is_file():
            return None
        try:
            state = torch.load(str(self.path), map_location="cpu", weights_only=True)
        except Exception as err:
            raise InputError(f"{self.path}: cannot read the tuning checkpoint ({type(err).__name__}); delete it and "
                             "start again without --resume") from None
        if state.get("run_id") != self.run_id:
            raise InputError(f"{self.path}: this checkpoint belongs to a run with other images, masks, settings or "
                             "model; delete it or drop --resume to start afresh")
        return state

    def save(self, state: dict) -> None:
        if self.path is None:
            return
        atomic_write(self.path, lambda f: torch.save({"run_id": self.run_id, **state}, f))


def tune_prompt(predictor: SegGPTPredictor, examples: Sequence[Prompt], config: TuningConfig = TuningConfig(), *,
                init: Prompt | None = None, num_labels: int | None = None,
                label_ids: Sequence[int] | None = None, checkpoint: str | os.PathLike | None = None,
                resume: bool = False, progress: bool = True,
                on_step: Callable[[int, float], None] | None = None) -> TunedPrompt:
    """Tune a prompt on annotated images with the model frozen.

    Args:
        predictor: the model, its device and compute dtype (bf16 or fp32; fp16 is refused).
        examples: the annotated images: (H, W, 3) uint8 and (H, W) labels 0..K, any sizes.
        config: steps, learning rate, batch, seed, what is learnt.
        init: the example the prompt starts from (default: the first of ``examples``).
        num_labels: K (default: the largest label in ``examples``).
        label_ids: what labels 1..K stand for to the user, stored in the prompt (default 1..K).
        checkpoint: where the resumable state is written every ``config.save_every`` steps, at the end, and when
            interrupted (KeyboardInterrupt); delete it once the returned prompt is saved.
        resume: continue from ``checkpoint`` when it exists (it must come from the same images, settings and model).
        on_step: called with (step number from 1, loss) after every step.
    Returns:
        the tuned prompt (tensors on the CPU).
    """
    model = predictor.model
    if model.compute_dtype == torch.float16:
        raise InputError("fp16 gradients underflow without loss scaling; tune with --dtype bf16 or fp32")
    for p in model.parameters():
        p.requires_grad_(False)
    data = TuningSet(predictor, examples, num_labels)
    label_ids = tuple(label_ids) if label_ids is not None else tuple(range(1, data.num_labels + 1))
    if len(label_ids) != data.num_labels:
        raise InputError(f"{len(label_ids)} label ids for {data.num_labels} labels; give one id per label")
    start = init or examples[0]
    if start.image.shape[:2] != start.labels.shape[:2]:
        raise InputError(f"initial example: mask size {start.labels.shape[:2]} differs from its image size "
                         f"{start.image.shape[:2]}")
    image = predictor.prepare_image(start.image).clone().requires_grad_(True)
    target = data.targets(torch.as_tensor(resize_labels(start.labels, predictor.half_size).astype(np.int64),
                                          device=data.device)[None])[0].clone().requires_grad_(config.tune_target)
    params = [image, target] if config.tune_target else [image]
    optimizer = torch.optim.Adam(params, lr=config.lr)
    generator = torch.Generator().manual_seed(config.seed)
    fingerprint = weights_fingerprint(model)
    run = {"config": config.fingerprint_fields(), "data": data.fingerprint(), "model": fingerprint,
           "model_config": model.config.to_dict(), "dtype": str(model.compute_dtype), "labels": label_ids,
           "init": hashlib.sha256(image.detach().cpu().numpy().tobytes()).hexdigest()[:16]}
    ckpt = _Checkpoint(Path(checkpoint) if checkpoint is not None else None,
                       hashlib.sha256(json.dumps(run, sort_keys=True).encode()).hexdigest()[:16])
    step, losses = 0, []
    state = ckpt.load() if resume else None
    if state is not None:
        with torch.no_grad():
            image.copy_(state["image"])
            target.copy_(state["target"])
        optimizer.load_state_dict(state["optimizer"])
        generator.set_state(state["generator"])
        step, losses = int(state["step"]), list(state["losses"])

    def snapshot() -> dict:
        """A copy of the state at a step boundary (nothing in it changes when the loop goes on)."""
        return copy.deepcopy({"image": image.detach().cpu(), "target": target.detach().cpu(),
                              "optimizer": optimizer.state_dict(), "generator": generator.get_state(), "step": step,
                              "losses": losses})

    low, high = _PIXEL_MIN.to(data.device), _PIXEL_MAX.to(data.device)  # (3, 1, 1)
    bar = tqdm(total=config.steps, initial=step, desc="tuning prompt", unit="step", disable=not progress)
    # An interrupt can land anywhere in a step (sampling done, Adam half applied, step not yet counted): what it saves
    # is ``committed``, the copy taken after the last completed step, so resuming redoes the partial step exactly.
    committed = snapshot()
    try:
        while step < config.steps:
            for group in optimizer.param_groups:
                group["lr"] = _lr_at(step, config)
            queries, labels = data.sample(generator, config)
            loss = tuning_loss(predictor, image, target, queries, data.targets(labels))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            with torch.no_grad():
                image.clamp_(min=low, max=high)  # stay a displayable image
            step += 1
            losses.append(float(loss.detach()))
            committed = snapshot()
            bar.update()
            bar.set_postfix(loss=f"{losses[-1]:.4f}")
            if on_step is not None:
                on_step(step, losses[-1])
            if step % config.save_every == 0 and step < config.steps:
                ckpt.save(committed)
    except KeyboardInterrupt:
        ckpt.save(committed)  # the last completed step: resuming reproduces the uninterrupted run
        raise
    finally:
        bar.close()
    ckpt.save(snapshot())
    info = {"steps": config.steps, "lr": config.lr, "batch_size": config.batch_size, "seed": config.seed,
            "tune_target": config.tune_target, "augment": config.augment, "examples": len(data),
            "dtype": str(model.compute_dtype).removeprefix("torch."),
            "first_loss": losses[0] if losses else None, "final_loss": losses[-1] if losses else None}
    return TunedPrompt(image.detach().cpu().clone(), target.detach().cpu().clone(), label_ids, model.config,
                       fingerprint, info)
