"""Training SegGPT by in-context colouring (paper §3, §4.2; loss of the official ``forward_loss``).

A training sample is a *pair* (image a, label map a, image b, label map b) of two images that share a task (two frames
of one video, two images of one class). It becomes one canvas: a on top (the prompt half), b below (the query half),
images in one stream and their label maps, drawn in colours, in the other. Every sample draws its own random colour
mapping, so the model cannot learn "object 1 is white" and must read the colours from the prompt. Patches of the
mask stream are hidden (the whole query half, as at inference, or random blocks anywhere as in Painter) and the model
is trained to paint them back: smooth-L1 (beta 0.01) on the hidden patches only.

This module knows nothing about videos: it consumes a :data:`PairSampler`, any callable that draws a :class:`Pair`
from numpy ``Generator``s. Sample ``i`` of a run is drawn from ``default_rng([seed, i])``, so the data stream is a
pure function of (seed, sample index): data-loader workers, interruption and resumption all see the same samples, and
the sampler's whole state in a checkpoint is the step counter.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal, NamedTuple

import cv2
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from .atomic import atomic_write
from .errors import InputError
from .colours import label_colours
from .losses import masked_loss
from .model import SegGPT, SegGPTConfig
from .transforms import normalize

#: Label value of pixels that carry no supervision (DAVIS "void"): excluded from the loss, drawn as background.
IGNORE_LABEL = 255
SEMANTIC, INSTANCE = 0, 1  #: seg_type values, as ``SegGPT.forward`` reads them

Precision = Literal["fp32", "bf16"]


class Pair(NamedTuple):
    """Two images that share one task; their label maps use the same ids for the same things."""

    image_a: np.ndarray  #: (H, W, 3) uint8 RGB, becomes the prompt half
    labels_a: np.ndarray  #: (H, W) uint8 ids, 0 = background, IGNORE_LABEL = no supervision
    image_b: np.ndarray  #: (H', W', 3) uint8 RGB, becomes the query half
    labels_b: np.ndarray  #: (H', W') uint8 ids
    seg_type: int = INSTANCE  #: INSTANCE (one colour per object) or SEMANTIC (one colour per class)


#: Draws one pair as ``sampler(scene, rng)``, deterministically given the two generators' states: ``scene`` picks the
#: expensive part (which video), ``rng`` everything else (frames, augmentation). Consecutive samples that share a
#: scene get equal ``scene`` generators, so a sampler may cache what the scene costs to build.
PairSampler = Callable[[np.random.Generator, np.random.Generator], Pair]


@dataclass(frozen=True)
class TrainConfig:
    """Objective, optimisation and bookkeeping of a training run.

    Masking: with probability ``half_mask_prob`` the whole query half of the mask stream is hidden (the inference
    task); otherwise ``mask_ratio`` of all mask-stream patches are hidden in random blocks of at least
    ``min_block_patches`` patches (BEiT's block-wise masking, as Painter's trainer does with 784 of 1568 patches and
    ``half_mask_ratio`` 0.1). Painter's 0.1 suits long training of general painting; a short from-scratch run spends
    most samples on the task it will be used for, so the default is 0.75.

    Prompt noise: at inference most prompts are the model's own earlier predictions, coarse and sometimes wrong. With
    probability ``prompt_noise_prob`` a sample whose whole query half is hidden shows the model a perturbed prompt
    (``perturb_labels``: objects grown or shrunk, the map shifted) while the loss still asks for the true query
    labels, so the model learns to check the prompt against the images instead of copying its errors.

    Colours: object colours are uniform random RGB at least ``min_colour_distance`` apart (and from the background),
    or, with probability ``label_colours_prob``, the inference label colours (``label_colours``) in shuffled order; the
    background
    is black with probability ``black_background_prob`` (as at inference), else a random colour.
    """

    steps: int = 1000
    batch_size: int = 16  #: samples per optimiser step (split into ``accumulate`` micro-batches)
    accumulate: int = 1
    lr: float = 5e-4
    min_lr: float = 1e-5
    warmup_steps: int = 50
    weight_decay: float = 0.05
    betas: tuple[float, float] = (0.9, 0.999)
    clip_grad: float | None = 1.0
    seed: int = 0
    precision: Precision = "fp32"  #: "bf16" = autocast (fast on AMX CPUs and GPUs; very slow on AVX2-only CPUs)
    half_mask_prob: float = 0.75
    mask_ratio: float = 0.5
    min_block_patches: int = 4
    label_colours_prob: float = 0.7
    black_background_prob: float = 0.85
    min_colour_distance: float = 60.0
    mix_context_prob: float = 0.0  #: chance a sample stitches two pairs side by side under one colour mapping
    prompt_noise_prob: float = 0.0  #: chance the prompt labels the model sees are perturbed (query-half samples only)
    prompt_noise_px: int = 2  #: largest shift / dilation / erosion of a perturbed prompt, in model pixels
    pairs_per_scene: int = 1  #: consecutive samples drawn from one scene (video): its cost is shared between them
    num_workers: int = 1  #: data-loader processes (0 = draw samples in the training process)
    log_every: int = 10
    checkpoint_every: int = 100

    def __post_init__(self) -> None:
        if self.batch_size % self.accumulate:
            raise ValueError(f"batch_size {self.batch_size} must be a multiple of accumulate {self.accumulate}")
        if self.pairs_per_scene < 1:
            raise ValueError(f"pairs_per_scene must be >= 1, got {self.pairs_per_scene}")
        if self.precision not in ("fp32", "bf16"):
            raise ValueError(f"precision must be 'fp32' or 'bf16', got {self.precision!r}")
        if not (math.isfinite(self.lr) and self.lr > 0):
            raise ValueError(f"lr must be a finite number > 0, got {self.lr}")
        non_negative = ["min_lr", "weight_decay", "min_colour_distance"] + ["clip_grad"] * (self.clip_grad is not None)
        for name in non_negative:
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"{name} must be a finite number >= 0, got {value}")
        if len(self.betas) != 2 or not all(0 <= b < 1 for b in self.betas):
            raise ValueError(f"betas must be two numbers within [0, 1), got {self.betas}")
        for name in ("half_mask_prob", "mask_ratio", "label_colours_prob", "black_background_prob",
                     "mix_context_prob", "prompt_noise_prob"):
            value = getattr(self, name)
            if not 0 <= value <= 1:
                raise ValueError(f"{name} must be within [0, 1], got {value}")
        object.__setattr__(self, "betas", tuple(self.betas))

    @property
    def micro_batch(self) -> int:
        return self.batch_size // self.accumulate

    @classmethod
    def from_dict(cls, d: dict) -> TrainConfig:
        """A config from ``asdict`` output, also of older runs: renamed fields take their new name, fields added since
        take their defaults (which reproduce the old runs)."""
        d = {_RENAMED_FIELDS.get(k, k): v for k, v in d.items()}
        return cls(**{k: v for k, v in d.items() if k in cls.__dataclass_fields__})


#: Old TrainConfig field name -> new one, so that checkpoints of earlier runs still resume.
_RENAMED_FIELDS = {"palette_prob": "label_colours_prob"}


# ------------------------------------------------------------------------------------------------------ colours

def random_colours(rng: np.random.Generator, num_labels: int, cfg: TrainConfig) -> np.ndarray:
    """A fresh colour mapping: (num_labels + 1, 3) uint8, row 0 the background, rows 1.. the labels."""
    background = (np.zeros(3) if rng.random() < cfg.black_background_prob else rng.integers(0, 256, 3)).astype(float)
    if num_labels and rng.random() < cfg.label_colours_prob:
        inference = label_colours(num_labels)[1:].astype(float)
        colours = [background] + list(inference[rng.permutation(num_labels)])
        if background.any():  # a random background must stay apart from the label colours too
            colours[0] = _distant_colour(rng, colours[1:], cfg.min_colour_distance)
        return np.array(colours, np.uint8)
    colours = [background]
    for _ in range(num_labels):
        colours.append(_distant_colour(rng, colours, cfg.min_colour_distance))
    return np.array(colours, np.uint8)


def _distant_colour(rng: np.random.Generator, taken: list[np.ndarray], min_distance: float) -> np.ndarray:
    """A random RGB colour at least ``min_distance`` from every colour in ``taken`` (best of 64 tries otherwise)."""
    candidates = rng.integers(0, 256, (64, 3)).astype(float)
    if not taken:
        return candidates[0]
    distance = np.linalg.norm(candidates[:, None] - np.array(taken)[None], axis=-1).min(1)
    ok = np.flatnonzero(distance >= min_distance)
    return candidates[ok[0]] if ok.size else candidates[distance.argmax()]


# ------------------------------------------------------------------------------------------------------ masking

def block_mask(rng: np.random.Generator, grid: tuple[int, int], num_patches: int, min_block: int = 4,
               aspect: tuple[float, float] = (0.3, 1 / 0.3)) -> np.ndarray:
    """BEiT-style block-wise masking: exactly ``num_patches`` of the ``grid`` patches, (gh*gw,) bool, raster order.

    Rectangles of random area (``min_block`` .. what is left to mask) and log-uniform aspect are placed at random
    and kept when they add new patches without overshooting; the last few patches, when no block fits, are single
    random patches, so the count is exact.
    """
    gh, gw = grid
    mask = np.zeros((gh, gw), bool)
    count, failures = 0, 0
    log_aspect = np.log(aspect)
    while count < num_patches and failures < 10:
        left = num_patches - count
        area = rng.uniform(min(min_block, left), left)
        ratio = math.exp(rng.uniform(*log_aspect))
        h = min(gh, max(1, int(round(math.sqrt(area * ratio)))))
        w = min(gw, max(1, int(round(math.sqrt(area / ratio)))))
        top, lft = int(rng.integers(gh - h + 1)), int(rng.integers(gw - w + 1))
        added = h * w - int(mask[top:top + h, lft:lft + w].sum())
        if 0 < added <= left:
            mask[top:top + h, lft:lft + w] = True
            count += added
            failures = 0
        else:
            failures += 1
    flat = mask.ravel()
    if count < num_patches:
        flat[rng.choice(np.flatnonzero(~flat), num_patches - count, replace=False)] = True
    return flat


def perturb_labels(rng: np.random.Generator, labels: np.ndarray, max_px: int) -> np.ndarray:
    """A plausibly wrong copy of a label map: every object dilated or eroded by 0..max_px pixels (elliptic
    kernel), then the whole map shifted by up to max_px pixels (vacated pixels become background)."""
    out = labels.copy()
    for label in np.unique(labels):
        if label in (0, IGNORE_LABEL):
            continue
        radius = int(rng.integers(0, max_px + 1))
        if radius == 0:
            continue
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
        own = (labels == label).astype(np.uint8)
        if rng.random() < 0.5:
            grown = cv2.dilate(own, kernel).astype(bool)
            out[grown & (out == 0)] = label
        else:
            out[(out == label) & ~cv2.erode(own, kernel).astype(bool)] = 0
    dy, dx = (int(v) for v in rng.integers(-max_px, max_px + 1, 2))
    shifted = np.zeros_like(out)
    h, w = out.shape
    shifted[max(dy, 0):h + min(dy, 0), max(dx, 0):w + min(dx, 0)] = out[max(-dy, 0):h - max(dy, 0),
                                                                        max(-dx, 0):w - max(dx, 0)]
    return shifted


def training_mask(rng: np.random.Generator, grid: tuple[int, int], cfg: TrainConfig) -> np.ndarray:
    """The hidden mask-stream patches of one sample, (gh*gw,) bool: the query half or random blocks."""
    gh, gw = grid
    if rng.random() < cfg.half_mask_prob:
        mask = np.zeros(gh * gw, bool)
        mask[gh * gw // 2:] = True
        return mask
    return block_mask(rng, grid, int(round(cfg.mask_ratio * gh * gw)), cfg.min_block_patches)


# ------------------------------------------------------------------------------------------------------ canvases

def squash(image: np.ndarray, labels: np.ndarray, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Squash an image (area/linear) and its labels (nearest) to ``size`` (h, w), as inference squashes frames."""
    h, w = size
    if image.shape[:2] != (h, w):
        shrink = image.shape[0] > h and image.shape[1] > w
        image = cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
    if labels.shape != (h, w):
        labels = cv2.resize(labels, (w, h), interpolation=cv2.INTER_NEAREST)
    return image, labels


def jitter_colours(image: np.ndarray, brightness: float, contrast: float, saturation: float) -> np.ndarray:
    """(H, W, 3) uint8 with brightness, saturation (about the grey value) and contrast (about the mean) scaled."""
    x = image.astype(np.float32) * brightness
    grey = x @ np.array([0.299, 0.587, 0.114], np.float32)
    x = grey[..., None] + (x - grey[..., None]) * saturation
    x = x.mean() + (x - x.mean()) * contrast
    return np.clip(x, 0, 255).astype(np.uint8)


def _compact_ids(labels_a: np.ndarray, labels_b: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """Renumber the ids of a pair to 1..K (same id -> same number in both); IGNORE_LABEL is kept."""
    ids = np.union1d(np.unique(labels_a), np.unique(labels_b))
    ids = ids[(ids != 0) & (ids != IGNORE_LABEL)]
    table = np.zeros(256, np.uint8)
    table[ids] = np.arange(1, len(ids) + 1)
    table[IGNORE_LABEL] = IGNORE_LABEL
    return table[labels_a], table[labels_b], len(ids)


class CanvasSample(NamedTuple):
    images: torch.Tensor  #: (3, H, W) image canvas, prompt over query, normalised
    shown: torch.Tensor  #: (3, H, W) colour canvas the model is given (hidden patches are masked inside the model)
    targets: torch.Tensor  #: (3, H, W) colour canvas, normalised: the answer the loss compares with
    mask: torch.Tensor  #: (N,) bool, hidden mask-stream patches
    valid: torch.Tensor  #: (H, W) float, 0 where the label is IGNORE_LABEL
    seg_type: torch.Tensor  #: () long, SEMANTIC or INSTANCE


class ContextCanvases(Dataset):
    """Sample ``i`` of a run as a training canvas, drawn from ``default_rng([seed, i])``; its scene from
    ``default_rng([seed, i // pairs_per_scene, 1])``, or from the sample's own stream when ``pairs_per_scene`` is 1 (so
    runs from before scenes were shared draw the same data)."""

    def __init__(self, sampler: PairSampler, model_config: SegGPTConfig, cfg: TrainConfig, length: int) -> None:
        self.sampler, self.model_config, self.cfg, self.length = sampler, model_config, cfg, length

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> CanvasSample:
        group = self.cfg.pairs_per_scene
        scene = None if group == 1 else np.random.default_rng([self.cfg.seed, index // group, 1])
        return make_canvas(np.random.default_rng([self.cfg.seed, index]), self.sampler, self.model_config, self.cfg,
                           scene)


def make_canvas(rng: np.random.Generator, sampler: PairSampler, model_config: SegGPTConfig, cfg: TrainConfig,
                scene: np.random.Generator | None = None) -> CanvasSample:
    """Draw a pair from ``scene`` (default: ``rng``) or, with ``mix_context_prob``, that pair and one of another scene
    stitched side by side, and colour it at random."""
    h, w = model_config.half_size
    scene = rng if scene is None else scene
    if rng.random() < cfg.mix_context_prob:
        first, second = sampler(scene, rng), sampler(rng, rng)
        a1, b1, shift = _compact_ids(first.labels_a, first.labels_b)
        a2, b2, _ = _compact_ids(second.labels_a, second.labels_b)
        a2, b2 = (np.where((x == 0) | (x == IGNORE_LABEL), x, x + shift).astype(np.uint8) for x in (a2, b2))
        halves = []
        for left, right in (((first.image_a, a1), (second.image_a, a2)), ((first.image_b, b1), (second.image_b, b2))):
            left, right = squash(*left, (h, w // 2)), squash(*right, (h, w - w // 2))
            halves.append((np.concatenate([left[0], right[0]], 1), np.concatenate([left[1], right[1]], 1)))
        (image_a, labels_a), (image_b, labels_b) = halves
        seg_type = first.seg_type
    else:
        pair = sampler(scene, rng)
        (image_a, labels_a), (image_b, labels_b) = squash(pair[0], pair[1], (h, w)), squash(pair[2], pair[3], (h, w))
        seg_type = pair.seg_type
    labels_a, labels_b, num_labels = _compact_ids(labels_a, labels_b)
    colours = random_colours(rng, num_labels, cfg)
    labels = np.concatenate([labels_a, labels_b])
    valid = labels != IGNORE_LABEL
    targets = normalize(colours[np.where(valid, labels, 0)])
    mask = training_mask(rng, model_config.grid, cfg)
    shown = targets
    if mask[mask.size // 2:].all() and not mask[:mask.size // 2].any() and rng.random() < cfg.prompt_noise_prob:
        noisy = perturb_labels(rng, labels_a, cfg.prompt_noise_px)  # voids stay voids, drawn as background
        shown = torch.cat([normalize(colours[np.where(noisy == IGNORE_LABEL, 0, noisy)]), targets[:, len(noisy):]], 1)
    return CanvasSample(normalize(np.concatenate([image_a, image_b])), shown, targets, torch.from_numpy(mask),
                        torch.from_numpy(valid.astype(np.float32)), torch.tensor(seg_type))


# ------------------------------------------------------------------------------------------------------ trainer

def warmup_cosine(cfg: TrainConfig) -> Callable[[int], float]:
    """LR factor of step s: linear warm-up to 1 over ``warmup_steps``, then cosine down to ``min_lr / lr``."""
    floor = cfg.min_lr / cfg.lr

    def factor(step: int) -> float:
        if step < cfg.warmup_steps:
            return (step + 1) / cfg.warmup_steps
        progress = (step - cfg.warmup_steps) / max(1, cfg.steps - cfg.warmup_steps)
        return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))

    return factor


def init_for_training(model: SegGPT) -> SegGPT:
    """Painter/MAE initialisation for training from scratch: Xavier-uniform weights for every linear and conv layer
    (convs as their flattened matrix), zero biases; LayerNorms, tokens and position tables as ``reset_parameters``.

    ``reset_parameters`` draws every weight with std 0.02, which leaves the decoder head (1x1 conv, 16 inputs) painting
    amplitudes ~0.1 where the targets span about -2..2.6 (ImageNet-normalised colours): Adam then spends thousands of
    steps just growing the output scale, and the model sits at "paint the background" meanwhile.
    """
    model.reset_parameters()
    for m in model.modules():
        if isinstance(m, (torch.nn.Linear, torch.nn.Conv2d)):
            torch.nn.init.xavier_uniform_(m.weight.data.view(m.weight.shape[0], -1))
            torch.nn.init.zeros_(m.bias)
    return model


def parameter_groups(model: torch.nn.Module, weight_decay: float) -> list[dict]:
    """No weight decay on biases, norms, learned tokens and position tables (standard ViT practice)."""
    decay, no_decay = [], []
    for name, prm in model.named_parameters():
        if not prm.requires_grad:
            continue
        skip = prm.ndim <= 1 or "token" in name or "pos_embed" in name or "rel_pos" in name
        (no_decay if skip else decay).append(prm)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def _worker_init(_: int) -> None:
    torch.set_num_threads(1)
    cv2.setNumThreads(1)


class Trainer:
    """Runs (and resumes) one training run in ``out_dir``.

    ``out_dir/checkpoint.pt`` holds the model, optimiser, schedule, step and torch RNG state (the data stream is a
    function of the step), so a resumed run computes exactly the losses the uninterrupted run would have.
    ``out_dir/loss.jsonl`` logs one line per ``log_every`` steps.
    """

    def __init__(self, model: SegGPT, sampler: PairSampler, cfg: TrainConfig, out_dir: str | Path,
                 device: str | torch.device = "cpu") -> None:
        self.model = model.to(device).train()
        self.sampler, self.cfg, self.device = sampler, cfg, torch.device(device)
        self.out_dir = Path(out_dir)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.optimizer = torch.optim.AdamW(parameter_groups(model, cfg.weight_decay), lr=cfg.lr, betas=cfg.betas)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, warmup_cosine(cfg))
        self.step = 0
        self.elapsed = 0.0  #: training seconds of the run so far, across resumptions
        self.dataset = ContextCanvases(sampler, model.config, cfg, cfg.steps * cfg.batch_size)

    @property
    def checkpoint_path(self) -> Path:
        return self.out_dir / "checkpoint.pt"

    @property
    def log_path(self) -> Path:
        return self.out_dir / "loss.jsonl"

    # ------------------------------------------------------------------------------------------ checkpoints
    def save_checkpoint(self) -> Path:
        state = {
            "model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(), "step": self.step, "elapsed": self.elapsed,
            "torch_rng": torch.get_rng_state(), "train_config": asdict(self.cfg),
            "model_config": self.model.config.to_dict(),
        }
        if self.device.type == "cuda":
            state["cuda_rng"] = torch.cuda.get_rng_state(self.device)
        atomic_write(self.checkpoint_path, lambda f: torch.save(state, f))
        return self.checkpoint_path

    def resume(self) -> bool:
        """Load ``checkpoint.pt`` when present (and drop log lines past it); False when starting fresh."""
        if not self.checkpoint_path.is_file():
            return False
        try:  # tensors and plain containers only: a crafted pickle cannot run code here
            state = torch.load(self.checkpoint_path, map_location=self.device, weights_only=True)
        except Exception as err:
            raise InputError(f"{self.checkpoint_path}: not a training checkpoint this code wrote ({type(err).__name__}:"
                             f" {str(err).splitlines()[0][:120] if str(err) else 'unreadable'}); delete it to start "
                             "afresh, or use a new output folder") from None
        # from_dict: fields added since the checkpoint was written take their defaults, which reproduce the old runs
        same_config = TrainConfig.from_dict(state["train_config"]) == self.cfg
        if not same_config or state["model_config"] != self.model.config.to_dict():
            raise ValueError(f"{self.checkpoint_path} belongs to another configuration; use a new output folder")
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.step, self.elapsed = state["step"], state["elapsed"]
        torch.set_rng_state(state["torch_rng"])
        if "cuda_rng" in state and self.device.type == "cuda":
            torch.cuda.set_rng_state(state["cuda_rng"], self.device)
        if self.log_path.is_file():
            kept = [line for line in self.log_path.read_text().splitlines() if json.loads(line)["step"] <= self.step]
            atomic_write(self.log_path, lambda f: f.write("".join(line + "\n" for line in kept).encode()))
        return True

    # ------------------------------------------------------------------------------------------ loop
    def batches(self) -> Iterator[CanvasSample]:
        """Micro-batches from the current step on, in sample order."""
        start = self.step * self.cfg.batch_size
        # The loader's own generator: drawing its base seed from the global RNG would shift the model's random
        # stream (drop path) on every resumption. Workers are spawned: a forked child of a process that has run
        # OpenMP threads can deadlock in its first parallel region.
        workers = self.cfg.num_workers
        loader = DataLoader(self.dataset, batch_size=self.cfg.micro_batch, sampler=range(start, len(self.dataset)),
                            num_workers=workers, worker_init_fn=_worker_init, prefetch_factor=4 if workers else None,
                            multiprocessing_context="spawn" if workers else None,
                            generator=torch.Generator().manual_seed(self.cfg.seed))
        return iter(loader)

    def train_step(self, micro_batches: list[CanvasSample]) -> float:
        """One optimiser step over ``accumulate`` micro-batches; returns the mean loss."""
        self.optimizer.zero_grad(set_to_none=True)
        total = 0.0
        autocast = torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.cfg.precision == "bf16")
        for batch in micro_batches:
            images, shown, targets, mask, valid, seg_type = (t.to(self.device, non_blocking=True) for t in batch)
            with autocast:
                pred = self.model(images, shown, mask, seg_type=seg_type)
            loss = masked_loss(pred, targets, mask, self.model.config.patch_size, valid) / len(micro_batches)
            loss.backward()
            total += loss.item()
        if self.cfg.clip_grad:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.clip_grad)
        self.optimizer.step()
        self.scheduler.step()
        self.step += 1
        return total

    def train(self, until: int | None = None, progress: bool = True) -> list[float]:
        """Train up to step ``until`` (default: the configured ``steps``); returns the losses of the steps run."""
        from tqdm import tqdm

        until = self.cfg.steps if until is None else min(until, self.cfg.steps)
        losses: list[float] = []
        if self.step >= until:
            return losses
        batches = self.batches()
        window: list[float] = []
        with tqdm(total=until, initial=self.step, disable=not progress, unit="step", dynamic_ncols=True) as bar, \
                open(self.log_path, "a") as log:
            tick = time.perf_counter()
            while self.step < until:
                loss = self.train_step([next(batches) for _ in range(self.cfg.accumulate)])
                now = time.perf_counter()
                self.elapsed += now - tick
                tick = now
                losses.append(loss)
                window.append(loss)
                bar.update()
                bar.set_postfix(loss=f"{loss:.4f}", lr=f"{self.scheduler.get_last_lr()[0]:.2e}")
                if self.step % self.cfg.log_every == 0 or self.step == until:
                    log.write(json.dumps({"step": self.step, "loss": float(np.mean(window)),
                                          "lr": self.scheduler.get_last_lr()[0],
                                          "elapsed_s": round(self.elapsed, 2)}) + "\n")
                    log.flush()
                    window = []
                if self.step % self.cfg.checkpoint_every == 0 or self.step == until:
                    self.save_checkpoint()
        return losses
