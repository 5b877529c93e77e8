"""One-shot adaptation of a pass to its keyframes (``PropagationConfig.adapt``; ``seggpt_core.adaptation``).

Before a pass propagates, a copy of the model is fine-tuned on pairs made from the pass's keyframes alone (image and
mask, the method's own input): both halves of a pair are different random augmentations of a keyframe (shift, scale,
rotation, flip, colour and brightness, blur), cut and painted the way the pass's mode paints them: in windows mode
one object white-on-black in a window around it (the query's window placed a little off, as the previous mask places
it at inference), in per-object mode one object white-on-black on the whole frame, in joint mode every object in its
label colour on the whole frame. The pass then paints with the adapted copy (:func:`adapted_predictor`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from seggpt_core.adaptation import AdaptConfig, adapt
from seggpt_core.predictor import SegGPTPredictor
from seggpt_core.training import INSTANCE, SEMANTIC, Pair, jitter_colours, squash

from .config import ResolvedMode, WindowConfig
from .windows import Box, cut, object_window

Keyframe = tuple[np.ndarray, np.ndarray]
"""(H, W, 3) uint8 RGB and (H, W) uint8 slots (0 = background, 1..K the pass's objects)."""


@dataclass(frozen=True)
class KeyframeAugment:
    """Random changes of one half of a pair: an affine map about the objects' centre (log-scale within
    +-``scale``, rotation within +-``rotate`` degrees, shift within +-``shift`` of the objects' box side) and a flip
    (``flip_prob``, shared by the pair) on the frame; colour gains within 1 +- ``brightness`` / ``contrast`` /
    ``saturation`` and, with probability ``blur_prob``, a Gaussian blur (sigma up to ``blur`` px) at the model's input
    size. In windows mode the query's window is moved by up to ``window_shift`` of its side and rescaled by up to that
    much (log), as a window placed by the previous frame sits a little off the object.

    With probability ``paste_prob`` a half is "lucid data dreaming" (Khoreva et al. 2017): the object alone is moved
    (by up to ``paste_shift`` of its box side) over the keyframe's background with the objects inpainted away, which
    keeps its place, so the object is seen against other parts of its background."""

    scale: float = 0.15
    rotate: float = 10.0
    shift: float = 0.15
    brightness: float = 0.2
    contrast: float = 0.2
    saturation: float = 0.2
    blur: float = 1.0
    blur_prob: float = 0.3
    flip_prob: float = 0.5
    window_shift: float = 0.1
    paste_prob: float = 0.5
    paste_shift: float = 0.5

    def geometry(self, rng: np.random.Generator, rgb: np.ndarray, slots: np.ndarray, flip: bool,
                 background: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The affine map and flip of one half: (H, W, 3) uint8 and (H, W) uint8 slots, same size; ``background``:
        the keyframe without its objects (for pasting)."""
        paste = self.paste_prob > 0 and rng.random() < self.paste_prob  # no draw at 0
        h, w = slots.shape
        rows, cols = np.flatnonzero(slots.any(1)), np.flatnonzero(slots.any(0))
        centre = ((cols[0] + cols[-1]) / 2, (rows[0] + rows[-1]) / 2)
        side = max(rows[-1] - rows[0], cols[-1] - cols[0]) + 1
        matrix = cv2.getRotationMatrix2D(centre, float(rng.uniform(-1, 1) * self.rotate),
                                         float(np.exp(rng.uniform(-1, 1) * self.scale)))
        matrix[:, 2] += rng.uniform(-1, 1, 2) * (self.paste_shift if paste else self.shift) * side
        moved = cv2.warpAffine(slots, matrix, (w, h), flags=cv2.INTER_NEAREST, borderValue=0)
        if not moved.any():  # moved out of the frame: keep the keyframe's geometry
            moved, image = slots, rgb
        else:
            image = cv2.warpAffine(rgb, matrix, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
            if paste:
                image = np.where(moved[..., None] > 0, image, background)
        if flip:
            image, moved = image[:, ::-1], moved[:, ::-1]
        return image, moved

    def photometric(self, rng: np.random.Generator, image: np.ndarray) -> np.ndarray:
        """Colour gains and, sometimes, a blur (sigma in pixels of ``image``, the model's input size)."""
        image = jitter_colours(image, *(1 + rng.uniform(-1, 1, 3) * (self.brightness, self.contrast,
                                                                     self.saturation)))
        if rng.random() < self.blur_prob:
            image = cv2.GaussianBlur(image, (0, 0), float(rng.uniform(0.3, self.blur)))
        return image

    def window(self, rng: np.random.Generator, box: Box, frame: tuple[int, int]) -> Box:
        """``box`` moved and rescaled a little, kept inside the (H, W) frame."""
        top, left, h, w = box
        fh, fw = frame
        scale = float(np.exp(rng.uniform(-1, 1) * self.window_shift))
        dy, dx = rng.uniform(-1, 1, 2) * self.window_shift
        nh, nw = min(fh, max(2, round(h * scale))), min(fw, max(2, round(w * scale)))
        top = int(np.clip(round(top + h / 2 + dy * h - nh / 2), 0, fh - nh))
        left = int(np.clip(round(left + w / 2 + dx * w - nw / 2), 0, fw - nw))
        return top, left, nh, nw


class KeyframePairs:
    """A :data:`seggpt_core.training.PairSampler` over a pass's keyframes, cut as ``mode`` paints.

    Args:
        keyframes: the pass's keyframes, each with at least one object.
        mode: the pass's resolved mode.
        windows: the window geometry (windows mode).
        size: (h, w) the halves are squashed to (the model's half size), before the colour changes.
        seg_type: ``INSTANCE`` or ``SEMANTIC``, the predictor's type token.
    """

    def __init__(self, keyframes: Sequence[Keyframe], mode: ResolvedMode, windows: WindowConfig,
                 size: tuple[int, int], seg_type: int = INSTANCE,
                 augment: KeyframeAugment = KeyframeAugment()) -> None:
        self.keyframes = [k for k in keyframes if k[1].any()]
        if not self.keyframes:
            raise ValueError("adaptation needs a keyframe with at least one object")
        self.mode, self.windows, self.size, self.seg_type, self.augment = mode, windows, size, seg_type, augment
        self.backgrounds = [without_objects(*k) if augment.paste_prob > 0 else None for k in self.keyframes]

    def __call__(self, scene: np.random.Generator, rng: np.random.Generator) -> Pair:
        a = int(scene.integers(len(self.keyframes)))
        if self.mode != "joint":  # one object, white on black
            objects = np.unique(self.keyframes[a][1])
            obj = int(scene.choice(objects[objects > 0]))
            with_obj = [i for i, k in enumerate(self.keyframes) if (k[1] == obj).any()]
            b = with_obj[int(scene.integers(len(with_obj)))]
            chosen = [(self.keyframes[i][0], (self.keyframes[i][1] == obj).astype(np.uint8)) for i in (a, b)]
        else:
            b = int(scene.integers(len(self.keyframes)))
            chosen = [self.keyframes[i] for i in (a, b)]
        flip = rng.random() < self.augment.flip_prob
        halves = [self.augment.geometry(rng, rgb, slots, flip, self.backgrounds[i])
                  for i, (rgb, slots) in zip((a, b), chosen)]
        if self.mode == "windows":
            margin, min_side = self.windows.margin, self.windows.min_side
            (image_a, labels_a), (image_b, labels_b) = halves
            box_a = object_window(labels_a > 0, margin, min_side)
            box_b = self.augment.window(rng, object_window(labels_b > 0, margin, min_side), labels_b.shape)
            halves = [(cut(image_a, box_a), cut(labels_a, box_a)), (cut(image_b, box_b), cut(labels_b, box_b))]
        (image_a, labels_a), (image_b, labels_b) = (squash(image, labels, self.size) for image, labels in halves)
        return Pair(self.augment.photometric(rng, image_a), labels_a, self.augment.photometric(rng, image_b),
                    labels_b, seg_type=self.seg_type)


def without_objects(rgb: np.ndarray, slots: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8: the frame with its objects inpainted away (OpenCV Telea, at a quarter of the size for speed,
    pasted back into the objects' pixels and a few around them only)."""
    h, w = slots.shape
    hole = cv2.dilate((slots > 0).astype(np.uint8), np.ones((9, 9), np.uint8))
    small = (max(8, w // 4), max(8, h // 4))
    filled = cv2.inpaint(cv2.resize(rgb, small, interpolation=cv2.INTER_AREA),
                         cv2.resize(hole, small, interpolation=cv2.INTER_NEAREST), 3, cv2.INPAINT_TELEA)
    filled = cv2.resize(filled, (w, h), interpolation=cv2.INTER_LINEAR)
    return np.where(hole[..., None] > 0, filled, rgb)


def adapted_predictor(predictor: SegGPTPredictor, keyframes: Sequence[Keyframe], mode: ResolvedMode,
                      windows: WindowConfig, config: AdaptConfig) -> SegGPTPredictor:
    """A predictor like ``predictor`` (device, dtype, type token) whose model is adapted to ``keyframes``."""
    seg_type = SEMANTIC if predictor.seg_type == "semantic" else INSTANCE
    model = adapt(predictor.model, KeyframePairs(keyframes, mode, windows, predictor.half_size, seg_type), config)
    return SegGPTPredictor(model, device=predictor.device, dtype=predictor.dtype, seg_type=predictor.seg_type)
