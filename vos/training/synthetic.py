"""Procedural videos with exact ground truth: training data, held-out evaluation, demos, tests and benchmarks.

A video is a slowly panning textured background with 1..K textured objects (ellipses, stars, convex and concave
polygons, smooth blobs, letters) that move, rotate, scale, wobble, occlude each other in a fixed depth order and may
leave the frame and come back or enter late. Labels are ids 1..K, identical across frames; a mask holds only the
visible (unoccluded, in-frame) pixels of its object, so the ground truth is exact by construction. ``REAL_LOOK`` adds
what real footage does to a tracker (camouflage, motion blur, unlabelled occluders, lighting change, camera shake, thin
parts) through config options that are off by default.

Everything random comes from one ``numpy.random.Generator`` seeded with the video's seed: the same seed and config give
the same frames and masks. A video is planned up front (textures, shapes, per-frame poses: a few MB at most) and any
frame is rendered on demand in a few milliseconds, so a 3000-frame video streams in bounded memory and a training
pair costs two renders.

Textures are photographs bundled inside scikit-image's wheel (read through ``skimage.data``, never downloaded) mixed
with procedural ones (fractal noise, stripes, checkers, Voronoi cells), all recoloured at random; scikit-image is only
needed for ``texture_source="mixed"``, ``"procedural"`` needs nothing beyond numpy and OpenCV.
"""

from __future__ import annotations

import functools
import json
import os
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Iterable, Iterator, Literal, Mapping

import cv2
import numpy as np
from PIL import Image

from seggpt_core.errors import InputError

from seggpt_core.atomic import atomic_write

from ..datasets import DavisLayout
from ..masks import davis_palette

SyntheticFrame = tuple[np.ndarray, np.ndarray]
"""(image (H, W, 3) uint8 RGB, labels (H, W) uint8 with 0 = background and 1..K = objects)."""


@dataclass(frozen=True)
class SyntheticVideoConfig:
    """What a synthetic video looks like. Lengths are fractions of ``min(size)`` so a config works at any resolution.

    The defaults give DAVIS-style videos: every object is visible in frame 0 (``late_entry_prob=0``).
    """

    size: tuple[int, int] = (480, 854)  # (H, W)
    num_frames: int = 50
    num_objects: tuple[int, int] = (1, 4)  # inclusive range, drawn per video
    object_radius: tuple[float, float] = (0.08, 0.2)  # farthest shape point from its centre
    speed: tuple[float, float] = (0.002, 0.012)  # initial speed per frame; it drifts (random acceleration) afterwards
    rotation_speed: float = 2.0  # max |degrees per frame|
    scale_amplitude: float = 0.3  # size oscillates within exp(+-a) of its base (log-scale amplitude, drawn up to a)
    deformation: float = 0.06  # max relative radial wobble of the outline
    camera_speed: float = 0.003  # max background pan per frame
    leave_prob: float = 0.3  # chance an object roams beyond the frame (leaves, comes back) instead of staying mostly in
    late_entry_prob: float = 0.0  # chance an object other than id 1 first appears after frame 0 (YouTube-VOS style)
    camouflage_prob: float = 0.1  # chance an object is textured like the background (same source, recoloured a bit)
    min_visible_fraction: float = 0.4  # of an object's in-frame area, unoccluded at its first frame
    texture_source: Literal["mixed", "procedural"] = "mixed"  # "mixed" = scikit-image's bundled photos + procedural
    # The "real-looking" options below are all off by default (the default look, and so the shipped model's training
    # recipe and held-out set, stay bit-identical); ``REAL_LOOK`` turns them on. Their randomness comes from a second
    # generator seeded with (seed, 16), so switching one on never changes what the default draws.
    camouflage_change: tuple[float, float] = (0.15, 0.35)  # per-channel recolouring of a camouflaged object's texture
    occluders: tuple[int, int] = (0, 0)  # inclusive range of unlabelled objects drawn in front, roaming across borders
    motion_blur: float = 0.0  # exposure as a fraction of the frame interval: objects smear along their motion
    lighting: float = 0.0  # log-amplitude of a global brightness swing plus a moving shading gradient
    camera_shake: float = 0.0  # std of a per-frame jitter of the whole view (objects and background), x min(size)
    thin_parts_prob: float = 0.0  # chance an object grows 2-5 thin limbs (legs, antennae, poles)

    def __post_init__(self) -> None:
        h, w = self.size
        checks = [
            (h >= 32 and w >= 32, f"size {self.size} is too small; use at least 32x32"),
            (self.num_frames >= 1, f"num_frames must be >= 1, got {self.num_frames}"),
            (1 <= self.num_objects[0] <= self.num_objects[1] <= 255,
             f"num_objects {self.num_objects} must be an ordered range within 1..255"),
            (0 < self.object_radius[0] <= self.object_radius[1] <= 0.5,
             f"object_radius {self.object_radius} must be an ordered range within (0, 0.5]"),
            (0 <= self.speed[0] <= self.speed[1], f"speed {self.speed} must be an ordered range >= 0"),
            (0 <= self.camouflage_change[0] <= self.camouflage_change[1] <= 1,
             f"camouflage_change {self.camouflage_change} must be an ordered range within [0, 1]"),
            (0 <= self.occluders[0] <= self.occluders[1] <= 16,
             f"occluders {self.occluders} must be an ordered range within 0..16"),
            (0 <= self.motion_blur <= 1, f"motion_blur must be within [0, 1], got {self.motion_blur}"),
            (0 <= self.lighting <= 1, f"lighting must be within [0, 1], got {self.lighting}"),
            (0 <= self.camera_shake <= 0.1, f"camera_shake must be within [0, 0.1], got {self.camera_shake}"),
            (self.texture_source in ("mixed", "procedural"),
             f"texture_source must be 'mixed' or 'procedural', got {self.texture_source!r}"),
        ]
        for name in ("leave_prob", "late_entry_prob", "camouflage_prob", "min_visible_fraction", "thin_parts_prob"):
            value = getattr(self, name)
            checks.append((0 <= value <= 1, f"{name} must be within [0, 1], got {value}"))
        for ok, message in checks:
            if not ok:
                raise InputError(f"synthetic video config: {message}")


# ----------------------------------------------------------------------------------------------------------- textures

#: scikit-image sample photos that ship inside its wheel (no download). Grey ones get a random colour ramp.
_COLOUR_PHOTOS = ("astronaut", "chelsea", "coffee", "hubble_deep_field", "immunohistochemistry", "retina", "rocket")
_GREY_PHOTOS = ("brick", "grass", "gravel", "camera", "moon", "coins", "cell", "clock", "page")
_PROCEDURAL_KINDS = ("noise", "stripes", "checkers", "cells")


@functools.lru_cache(maxsize=1)
def _bundled_photos() -> tuple[np.ndarray, ...]:
    """The bundled photos as uint8 arrays, (H, W, 3) colour then (H, W) grey, longest side <= 1024."""
    try:
        import skimage.data
    except ImportError as err:
        raise InputError("synthetic textures 'mixed' read scikit-image's bundled sample photos: pip install "
                         "scikit-image, or use texture_source='procedural'") from err
    photos = []
    for name in _COLOUR_PHOTOS + _GREY_PHOTOS:
        photo = np.ascontiguousarray(getattr(skimage.data, name)())
        longest = max(photo.shape[:2])
        if longest > 1024:
            size = (round(photo.shape[1] * 1024 / longest), round(photo.shape[0] * 1024 / longest))
            photo = cv2.resize(photo, size, interpolation=cv2.INTER_AREA)
        photos.append(photo)
    return tuple(photos)


def _colour_ramp(rng: np.random.Generator) -> np.ndarray:
    """A random colour map, (256, 3) uint8, through 2-4 random colours."""
    stops = int(rng.integers(2, 5))
    hsv = np.stack([rng.uniform(0, 180, stops), rng.uniform(40, 255, stops), rng.uniform(40, 255, stops)], axis=1)
    colours = cv2.cvtColor(hsv.astype(np.uint8)[None], cv2.COLOR_HSV2RGB)[0].astype(np.float64)
    positions = np.linspace(0, 255, stops)
    return np.stack([np.interp(np.arange(256), positions, colours[:, c]) for c in range(3)], axis=1).astype(np.uint8)


def _apply_ramp(ramp: np.ndarray, levels: np.ndarray) -> np.ndarray:
    """Colour (h, w) uint8 levels through a (256, 3) ramp -> (h, w, 3) uint8."""
    return cv2.LUT(cv2.merge([levels] * 3), ramp[:, None, :])


def _fractal_noise(rng: np.random.Generator, h: int, w: int, cells: float) -> np.ndarray:
    """Multi-octave value noise in [0, 1], (h, w) float32; ``cells`` = size of the coarsest octave's cells in px."""
    total = np.zeros((h, w), np.float32)
    amplitude, weight = 1.0, 0.0
    for _ in range(4):
        grid = rng.random((max(2, int(h / cells) + 2), max(2, int(w / cells) + 2))).astype(np.float32)
        total += amplitude * cv2.resize(grid, (w, h), interpolation=cv2.INTER_CUBIC)
        weight += amplitude
        amplitude, cells = amplitude * 0.5, max(cells / 2, 1.0)
    total /= weight
    low, high = np.percentile(total, (1, 99))
    return np.clip((total - low) / max(high - low, 1e-6), 0, 1)


def _rotated_grid(rng: np.random.Generator, h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel coordinates rotated by a random angle, each (h, w) float32."""
    angle = rng.uniform(0, np.pi)
    x, y = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    return x * np.cos(angle) + y * np.sin(angle), -x * np.sin(angle) + y * np.cos(angle)


def _voronoi_cells(rng: np.random.Generator, h: int, w: int, cell: float) -> np.ndarray:
    """Voronoi cells with a random level each and darker borders, (h, w) float32 in [0, 1]."""
    seeds = np.full((h, w), 255, np.uint8)
    count = max(2, int(h * w / cell ** 2))
    seeds[rng.integers(0, h, count), rng.integers(0, w, count)] = 0
    distance, cell_ids = cv2.distanceTransformWithLabels(seeds, cv2.DIST_L2, 5, labelType=cv2.DIST_LABEL_CCOMP)
    levels = rng.random(int(cell_ids.max()) + 1).astype(np.float32)
    return levels[cell_ids] * (1 - 0.5 * np.clip(distance / cell, 0, 1))


@dataclass(frozen=True)
class _TextureFamily:
    """A look (a photo or a procedural kind, with its colouring) that can be sampled many times with fresh detail."""

    kind: str  # "photo" or one of _PROCEDURAL_KINDS
    photo_index: int
    ramp: np.ndarray  # (256, 3) uint8, for grey photos and procedural kinds
    gains: np.ndarray  # (3,) per-channel gain for colour photos
    channel_order: np.ndarray  # (3,) permutation for colour photos
    feature_size: float  # px, the scale of procedural detail

    @staticmethod
    def draw(rng: np.random.Generator, source: str, unit: float) -> "_TextureFamily":
        kinds = ("photo",) * 4 + _PROCEDURAL_KINDS if source == "mixed" else _PROCEDURAL_KINDS
        kind = kinds[int(rng.integers(len(kinds)))]
        photo_index = int(rng.integers(len(_COLOUR_PHOTOS) + len(_GREY_PHOTOS)))
        ramp = _colour_ramp(rng)
        gains = rng.uniform(0.7, 1.3, 3)
        channel_order = rng.permutation(3) if rng.random() < 0.3 else np.arange(3)
        return _TextureFamily(kind, photo_index, ramp, gains, channel_order, max(3.0, unit * rng.uniform(0.02, 0.08)))

    def variant(self, rng: np.random.Generator, change: tuple[float, float] = (0.15, 0.35)) -> "_TextureFamily":
        """The same kind and source, recoloured by ``change`` (15-35 %: alike, but still tellable apart) per channel."""
        change = 1 + rng.choice([-1, 1], 3) * rng.uniform(*change, 3)
        return replace(self, ramp=np.clip(self.ramp * change, 0, 255).astype(np.uint8), gains=self.gains * change)

    def sample(self, rng: np.random.Generator, h: int, w: int) -> np.ndarray:
        """A fresh (h, w, 3) uint8 texture of this family, with per-pixel grain."""
        if self.kind == "photo":
            texture = self._photo_crop(rng, h, w)
        else:
            size = self.feature_size
            if self.kind == "noise":
                field = _fractal_noise(rng, h, w, size * 4)
            elif self.kind == "stripes":
                u, _ = _rotated_grid(rng, h, w)
                warp = _fractal_noise(rng, h, w, size * 6) * rng.uniform(0, 4)
                field = 0.5 + 0.5 * np.sin(np.pi * (u / size + warp))
            elif self.kind == "checkers":
                u, v = _rotated_grid(rng, h, w)
                board = ((np.floor(u / (2 * size)) + np.floor(v / (2 * size))) % 2).astype(np.float32)
                field = 0.15 + 0.6 * board + 0.25 * _fractal_noise(rng, h, w, size * 3)
            else:
                field = _voronoi_cells(rng, h, w, size * 2)
            texture = _apply_ramp(self.ramp, (np.clip(field, 0, 1) * 255).astype(np.uint8))
        grain = rng.integers(0, 13, (h, w), dtype=np.uint8)
        return cv2.subtract(cv2.add(texture, cv2.merge([grain] * 3)), (6, 6, 6, 0))

    def _photo_crop(self, rng: np.random.Generator, h: int, w: int) -> np.ndarray:
        photo = np.rot90(_bundled_photos()[self.photo_index], int(rng.integers(4)))
        ph, pw = photo.shape[:2]
        scale = min(ph / h, pw / w) * rng.uniform(0.35, 1.0)  # crop of the output's aspect ratio
        ch, cw = max(2, int(h * scale)), max(2, int(w * scale))
        y, x = int(rng.integers(ph - ch + 1)), int(rng.integers(pw - cw + 1))
        crop = np.ascontiguousarray(photo[y:y + ch, x:x + cw])
        crop = cv2.resize(crop, (w, h), interpolation=cv2.INTER_AREA if ch > h else cv2.INTER_LINEAR)
        if crop.ndim == 2:  # stretch the crop's own range, so dim or flat corners of a photo still show detail
            low, high = np.percentile(crop[::4, ::4], (1, 99))
            return _apply_ramp(self.ramp, np.clip((crop - low) * (255 / max(high - low, 1)), 0, 255).astype(np.uint8))
        jitter = rng.uniform(0.9, 1.1, 3)
        return np.clip(crop[..., self.channel_order] * (self.gains * jitter), 0, 255).astype(np.uint8)


# ------------------------------------------------------------------------------------------------------------- shapes

_LETTERS = "ABEFGHKMNPRSTUVWXYZ234567&#@"
_FONTS = (cv2.FONT_HERSHEY_SIMPLEX, cv2.FONT_HERSHEY_DUPLEX, cv2.FONT_HERSHEY_TRIPLEX, cv2.FONT_HERSHEY_COMPLEX)


def _radial_polygon(angles: np.ndarray, radii: np.ndarray) -> np.ndarray:
    return np.stack([radii * np.cos(angles), radii * np.sin(angles)], axis=1)


def _letter_contours(rng: np.random.Generator) -> list[np.ndarray]:
    canvas = np.zeros((160, 160), np.uint8)
    letter = _LETTERS[int(rng.integers(len(_LETTERS)))]
    cv2.putText(canvas, letter, (20, 130), _FONTS[int(rng.integers(len(_FONTS)))], 4.0, 255, int(rng.integers(12, 20)))
    contours, _ = cv2.findContours(canvas, cv2.RETR_CCOMP, cv2.CHAIN_APPROX_SIMPLE)
    return [c[:, 0, :].astype(np.float64) for c in contours if len(c) >= 3]


def _draw_outline(rng: np.random.Generator) -> list[np.ndarray]:
    """A random shape as contours (even-odd filled, so inner contours are holes), centred, farthest point at 1."""
    kind = int(rng.integers(6))
    if kind == 0:  # ellipse
        angles = np.linspace(0, 2 * np.pi, 64, endpoint=False)
        contours = [np.stack([np.cos(angles), rng.uniform(0.45, 1.0) * np.sin(angles)], axis=1)]
    elif kind == 1:  # star
        points = int(rng.integers(4, 9))
        angles = np.linspace(0, 2 * np.pi, 2 * points, endpoint=False)
        contours = [_radial_polygon(angles, np.tile([1.0, rng.uniform(0.35, 0.7)], points))]
    elif kind == 2:  # convex polygon: hull of random points
        hull = cv2.convexHull(rng.uniform(-1, 1, (int(rng.integers(5, 12)), 2)).astype(np.float32))
        contours = [hull[:, 0, :].astype(np.float64)]
    elif kind == 3:  # concave polygon: random radii at sorted random angles
        count = int(rng.integers(6, 15))
        contours = [_radial_polygon(np.sort(rng.uniform(0, 2 * np.pi, count)), rng.uniform(0.35, 1.0, count))]
    elif kind == 4:  # blob: smooth random radial function
        angles = np.linspace(0, 2 * np.pi, 96, endpoint=False)
        harmonics = np.arange(2, 6)[:, None]
        radii = 1 + (rng.uniform(0, 0.35, (4, 1)) / harmonics * 2 * np.cos(
            harmonics * angles + rng.uniform(0, 2 * np.pi, (4, 1)))).sum(0)
        contours = [_radial_polygon(angles, radii)]
    else:
        contours = _letter_contours(rng)
    points = np.concatenate(contours)
    centre = (points.min(0) + points.max(0)) / 2
    reach = np.linalg.norm(points - centre, axis=1).max()
    return [(c - centre) / reach for c in contours]


def _with_thin_parts(rng: np.random.Generator, contours: list[np.ndarray]) -> list[np.ndarray]:
    """The unit outline ``contours`` with 2-5 thin limbs (3-7 % of the radius wide, reaching 1.3-2 radii out, bent
    once) grown from inside the body, as the contours of their union; centred, farthest point at 1 again."""
    size, scale = 512, 100.0
    canvas = np.zeros((size, size), np.uint8)
    cv2.fillPoly(canvas, [np.round((c * scale + size / 2) * 16).astype(np.int32) for c in contours], 255,
                 cv2.LINE_8, shift=4)
    for _ in range(int(rng.integers(2, 6))):
        angle, bend = rng.uniform(0, 2 * np.pi), rng.uniform(-0.5, 0.5)
        reach, width = rng.uniform(1.3, 2.0), max(2, round(scale * rng.uniform(0.03, 0.07)))
        joints = [0.4, (0.4 + reach) / 2, reach]
        angles = [angle, angle, angle + bend]
        points = [(size / 2 + scale * r * np.cos(a), size / 2 + scale * r * np.sin(a)) for r, a in zip(joints, angles)]
        for a, b in zip(points, points[1:]):
            cv2.line(canvas, tuple(int(round(v)) for v in a), tuple(int(round(v)) for v in b), 255, width)
    found, _ = cv2.findContours(canvas, cv2.RETR_CCOMP, cv2.CHAIN_APPROX_SIMPLE)
    grown = [c[:, 0, :].astype(np.float64) for c in found if len(c) >= 3]
    points = np.concatenate(grown)
    centre = (points.min(0) + points.max(0)) / 2
    reach = np.linalg.norm(points - centre, axis=1).max()
    return [(c - centre) / reach for c in grown]


def _line_kernel(smear: np.ndarray) -> np.ndarray:
    """A normalised (k, k) float32 kernel: a line of length |``smear``| px along (dx, dy), centred."""
    k = 2 * int(np.ceil(np.abs(smear).max() / 2)) + 1
    kernel = np.zeros((k, k), np.float32)
    a, b = (np.round((k / 2 - 0.5 + sign * smear / 2) * 16).astype(int) for sign in (-1, 1))
    cv2.line(kernel, tuple(int(v) for v in a), tuple(int(v) for v in b), 1.0, 1, cv2.LINE_AA, shift=4)
    return kernel / kernel.sum()


# ------------------------------------------------------------------------------------------------------------ objects


@dataclass(frozen=True)
class _Object:
    """One object: outline, texture and per-frame pose."""

    label: int
    contours: list[np.ndarray]  # unit-radius outline, (N, 2) each
    texture: np.ndarray  # (S, S, 3) uint8 covering the unit square [-1, 1]^2 of the outline's frame
    wobble: tuple[float, int, float, float]  # amplitude, lobes, angular speed (rad/frame), phase
    first_frame: int  # not drawn before this frame
    form: np.ndarray  # (T, 3): radius (px), angle (rad), aspect (x stretch; y is divided by it)
    centres: np.ndarray  # (T, 2): x, y (px)

    def placement(self, t: int) -> tuple[np.ndarray, np.ndarray]:
        """(2, 2) linear map and (2,) centre taking unit outline coordinates to frame pixels at frame t."""
        radius, angle, aspect = self.form[t]
        cos, sin = np.cos(angle), np.sin(angle)
        return np.array([[cos, -sin], [sin, cos]]) @ np.diag([radius * aspect, radius / aspect]), self.centres[t]

    def outline_at(self, t: int) -> list[np.ndarray]:
        """Unit outline at frame t with its radial wobble applied."""
        amplitude, lobes, speed, phase = self.wobble
        wobbled = []
        for contour in self.contours:
            theta = np.arctan2(contour[:, 1], contour[:, 0])
            wobbled.append(contour * (1 + amplitude * np.sin(lobes * theta + speed * t + phase))[:, None])
        return wobbled


def _simulate_paths(rng: np.random.Generator, config: SyntheticVideoConfig, radii: np.ndarray,
                    first_frames: np.ndarray) -> np.ndarray:
    """Centres (T, K, 2) in px: smooth random-acceleration motion, bouncing inside per-object boxes.

    An object that stays has a box that keeps its centre half a radius inside the frame; one that roams has a box two
    radii beyond the frame, so it can leave completely and come back. Objects present at frame 0 start fully inside;
    late ones start on a random edge, moving inwards.
    """
    h, w = config.size
    unit = min(h, w)
    count = len(radii)
    roams = rng.random(count) < config.leave_prob
    inset = np.where(roams, -2.0, 0.5)[:, None] * radii[:, None]
    low, high = inset, np.array([w, h]) - inset
    high = np.maximum(high, low + 1)

    start = np.empty((count, 2))
    for k in range(count):
        if first_frames[k] == 0:
            margin = np.minimum(radii[k], np.array([w, h]) / 2)
            start[k] = rng.uniform(margin, np.array([w, h]) - margin)
        else:
            start[k] = rng.uniform([0, 0], [w, h])
            axis, side = int(rng.integers(2)), int(rng.integers(2))
            start[k, axis] = side * (w, h)[axis]
    # heading: random for objects present at frame 0, towards a random inner point for late ones
    targets = rng.uniform([0.25 * w, 0.25 * h], [0.75 * w, 0.75 * h], (count, 2))
    heading = np.where(first_frames > 0, np.arctan2(*(targets - start).T[::-1]), rng.uniform(0, 2 * np.pi, count))
    speed = np.maximum(rng.uniform(*config.speed, count), 0.5 * config.speed[1] * (first_frames > 0)) * unit
    velocity = speed[:, None] * np.stack([np.cos(heading), np.sin(heading)], 1)

    max_speed = 1.5 * config.speed[1] * unit
    kicks = rng.normal(0, 0.1 * config.speed[1] * unit, (config.num_frames, count, 2))
    centres = np.empty((config.num_frames, count, 2))
    position = start
    for t in range(config.num_frames):
        if t > 0:
            velocity = velocity + kicks[t]
            speed = np.linalg.norm(velocity, axis=1, keepdims=True)
            velocity = velocity * np.minimum(1, max_speed / np.maximum(speed, 1e-9))
            position = position + velocity
            velocity = np.where(((position < low) & (velocity < 0)) | ((position > high) & (velocity > 0)),
                                -velocity, velocity)
        centres[t] = position
    return centres


def _oscillation(rng: np.random.Generator, amplitude: float, frames: np.ndarray) -> np.ndarray:
    """exp(a sin(2 pi t / period + phase)) with a random a in [0, amplitude]: a smooth bounded log-scale factor."""
    period, phase = rng.uniform(40, 200), rng.uniform(0, 2 * np.pi)
    return np.exp(rng.uniform(0, amplitude) * np.sin(2 * np.pi * frames / period + phase))


# -------------------------------------------------------------------------------------------------------------- video


class SyntheticVideo:
    """One planned synthetic video; ``frame(t)`` renders frame t in a few ms, iteration streams all frames in order.

    Planning draws the background, the objects (outline, texture, depth order, per-frame poses) and the first frame of
    each object; it redraws the motion until every object shows at least ``min_visible_fraction`` of its in-frame
    area at its first frame, so frame 0 (and a late object's entry frame) always holds the object.
    """

    def __init__(self, seed: int, config: SyntheticVideoConfig = SyntheticVideoConfig()) -> None:
        self.seed, self.config = seed, config
        rng = np.random.default_rng(seed)
        h, w = config.size
        unit = min(h, w)
        self._margin = max(1, round(0.12 * unit))  # background overscan each side, the room for the camera pan
        background_family = _TextureFamily.draw(rng, config.texture_source, unit)
        self._background = background_family.sample(rng, h + 2 * self._margin, w + 2 * self._margin)

        self._pan = self._simulate_pan(rng)

        count = int(rng.integers(config.num_objects[0], config.num_objects[1] + 1))
        radii = rng.uniform(*config.object_radius, count) * unit
        late = (np.arange(count) > 0) & (rng.random(count) < config.late_entry_prob)
        last_entry = max(1, int(0.6 * config.num_frames))
        first_frames = np.where(late & (config.num_frames > 1), rng.integers(1, last_entry + 1, count), 0)
        self.first_frames = tuple(int(t) for t in first_frames)
        """Planned first frame of object k at index k - 1 (0 unless it enters late)."""

        frames = np.arange(config.num_frames)
        max_spin = np.deg2rad(config.rotation_speed)
        objects = []
        for k in range(count):
            radius = radii[k] * _oscillation(rng, config.scale_amplitude, frames)
            aspect = _oscillation(rng, 0.15, frames)
            spin = rng.uniform(-max_spin, max_spin) + rng.normal(0, 0.05 * max_spin, config.num_frames).cumsum()
            angle = rng.uniform(0, 2 * np.pi) + np.cumsum(np.clip(spin, -max_spin, max_spin))
            camouflaged = rng.random() < config.camouflage_prob
            family = (background_family.variant(rng, config.camouflage_change) if camouflaged
                      else _TextureFamily.draw(rng, config.texture_source, unit))
            side = int(np.clip(2 * (radius * aspect.clip(1)).max(), 16, 1024))
            wobble = (rng.uniform(0, config.deformation), int(rng.integers(2, 5)), rng.uniform(0.05, 0.2),
                      rng.uniform(0, 2 * np.pi))
            objects.append(_Object(k + 1, _draw_outline(rng), family.sample(rng, side, side), wobble,
                                   self.first_frames[k], np.stack([radius, angle, aspect], 1), np.empty(0)))
        objects = [objects[k] for k in rng.permutation(count)]

        look = np.random.default_rng([seed, 16])  # the real-looking options' own randomness (see the config)
        objects = [replace(obj, contours=_with_thin_parts(look, obj.contours)) if look.random() < config.thin_parts_prob
                   else obj for obj in objects] if config.thin_parts_prob else objects
        shift = self._shake(look)
        occluders, occluder_radii = self._plan_occluders(look, background_family)
        self._occluders: list[_Object] = []
        self._lighting = (look.uniform(15, 60), look.uniform(0, 2 * np.pi), look.uniform(0, 2 * np.pi),
                          look.uniform(-0.1, 0.1)) if config.lighting else None

        for _ in range(100):
            centres = _simulate_paths(rng, config, radii * np.exp(config.scale_amplitude), first_frames) - shift
            self._objects_back_to_front = [replace(obj, centres=centres[:, obj.label - 1]) for obj in objects]
            if self._entries_visible():
                break
        else:
            raise InputError(f"synthetic video seed {seed}: could not place {count} objects visibly in "
                             f"{config.size}; use fewer or smaller objects")
        # occluders are placed afterwards, so the objects move the same with or without them
        roaming = replace(config, leave_prob=1.0)
        for _ in range(100 if occluders else 0):
            paths = _simulate_paths(look, roaming, occluder_radii, np.zeros(len(occluders), int)) - shift
            self._occluders = [replace(obj, centres=paths[:, k]) for k, obj in enumerate(occluders)]
            if self._entries_visible():
                break
        else:
            if occluders:
                raise InputError(f"synthetic video seed {seed}: could not place {len(occluders)} occluders without "
                                 "hiding an object's entry; use fewer or smaller occluders")

    @property
    def num_objects(self) -> int:
        return len(self._objects_back_to_front)

    def __len__(self) -> int:
        return self.config.num_frames

    def __iter__(self) -> Iterator[SyntheticFrame]:
        return (self.frame(t) for t in range(len(self)))

    def frame(self, t: int) -> SyntheticFrame:
        """Frame t: (image (H, W, 3) uint8 RGB, labels (H, W) uint8)."""
        image, labels, _ = self._render(t, draw_image=True)
        return image, labels

    def background(self, t: int) -> np.ndarray:
        """Frame t without objects, (H, W, 3) uint8: the camera's crop of the background."""
        h, w = self.config.size
        x, y = self._pan[t]
        return self._background[y:y + h, x:x + w].copy()

    def _shake(self, look: np.random.Generator) -> np.ndarray:
        """Camera shake: (T, 1, 2) px the whole view moved by at each frame. The background crop (``_pan``) moves by
        an integer jitter (kept inside the overscan) and the objects' centres by the same amount, the other way."""
        if not self.config.camera_shake:
            return np.zeros((1, 1, 2))
        jitter = np.round(look.normal(0, self.config.camera_shake * min(self.config.size), self._pan.shape))
        shaken = np.clip(self._pan + jitter.astype(int), 0, 2 * self._margin)
        moved, self._pan = shaken - self._pan, shaken
        return moved[:, None, :].astype(float)

    def _plan_occluders(self, look: np.random.Generator, background: "_TextureFamily"
                        ) -> tuple[list[_Object], np.ndarray]:
        """Unlabelled objects (label 0: they hide what they cover) drawn in front of every labelled one, their paths
        still to be simulated; one in three is textured like the background. Returns them and their radii in px."""
        config, unit = self.config, min(self.config.size)
        count = int(look.integers(config.occluders[0], config.occluders[1] + 1))
        frames = np.arange(config.num_frames)
        occluders, radii = [], look.uniform(*config.object_radius, count) * unit
        for radius in radii:
            family = (background.variant(look, config.camouflage_change) if look.random() < 1 / 3
                      else _TextureFamily.draw(look, config.texture_source, unit))
            form = np.stack([radius * _oscillation(look, 0.1, frames), look.uniform(0, 2 * np.pi) +
                             np.deg2rad(look.uniform(-1, 1)) * frames, _oscillation(look, 0.3, frames)], 1)
            side = int(np.clip(2 * (form[:, 0] * form[:, 2].clip(1)).max(), 16, 1024))
            occluders.append(_Object(0, _draw_outline(look), family.sample(look, side, side), (0.0, 2, 0.0, 0.0), 0,
                                     form, np.empty(0)))
        return occluders, radii * np.exp(0.1)

    def _simulate_pan(self, rng: np.random.Generator) -> np.ndarray:
        """Integer crop offsets (T, 2) (x, y): a slow smooth drift bouncing inside the overscan margin."""
        limit = 2 * self._margin
        velocity = rng.uniform(-1, 1, 2) * self.config.camera_speed * min(self.config.size)
        kicks = rng.normal(0, 0.05 * abs(velocity).max() + 1e-9, (self.config.num_frames, 2))
        position, offsets = np.array([self._margin, self._margin], float), []
        for t in range(self.config.num_frames):
            position = position + velocity
            velocity = np.where((position < 0) | (position > limit), -velocity, velocity + kicks[t])
            position = np.clip(position, 0, limit)
            offsets.append(np.round(position).astype(int))
        return np.array(offsets)

    def _entries_visible(self) -> bool:
        """Whether each object shows enough of itself at its first frame (checked on label maps only)."""
        fraction = self.config.min_visible_fraction
        for t in sorted(set(self.first_frames)):
            _, labels, drawn = self._render(t, draw_image=False)
            visible = np.bincount(labels.ravel(), minlength=self.num_objects + 1)
            for obj in self._objects_back_to_front:
                if obj.first_frame == t and (drawn[obj.label] < 16 or visible[obj.label] < fraction * drawn[obj.label]):
                    return False
        return True

    def _render(self, t: int, draw_image: bool) -> tuple[np.ndarray | None, np.ndarray, dict[int, int]]:
        """Painter's algorithm, back to front, unlabelled occluders last. Returns the image (or None), the labels,
        and each object's in-frame pixel count before occlusion. An object owns a pixel where its anti-aliased
        coverage is >= 1/2; with motion blur its colour smears beyond that, its label does not."""
        if not 0 <= t < len(self):
            raise IndexError(f"frame {t} out of range for a {len(self)}-frame synthetic video")
        h, w = self.config.size
        image = self.background(t) if draw_image else None
        labels = np.zeros((h, w), np.uint8)
        drawn: dict[int, int] = {}
        for obj in self._objects_back_to_front:
            if t >= obj.first_frame:
                drawn[obj.label] = self._draw(obj, t, image, labels)
        for occluder in self._occluders:
            self._draw(occluder, t, image, labels)
        if image is not None and self._lighting is not None:
            image = self._lit(image, t)
        return image, labels, drawn

    def _draw(self, obj: _Object, t: int, image: np.ndarray | None, labels: np.ndarray) -> int:
        """Draw ``obj`` at frame t into (H, W) ``labels`` and (H, W, 3) ``image`` (unless None), in place; returns
        its in-frame pixel count."""
        h, w = self.config.size
        linear, centre = obj.placement(t)
        outline = [contour @ linear.T + centre for contour in obj.outline_at(t)]
        points = np.concatenate(outline)
        smear = self._smear(obj, t) if image is not None else None
        pad = 0 if smear is None else int(np.ceil(np.abs(smear).max() / 2)) + 1
        x0, y0 = np.maximum(np.floor(points.min(0)).astype(int) - 1 - pad, 0)
        x1, y1 = np.minimum(np.ceil(points.max(0)).astype(int) + 2 + pad, (w, h))
        if x1 <= x0 or y1 <= y0:
            return 0
        coverage = np.zeros((y1 - y0, x1 - x0), np.uint8)
        fixed_point = [np.round((c - (x0, y0)) * 16).astype(np.int32) for c in outline]
        cv2.fillPoly(coverage, fixed_point, 255, cv2.LINE_AA, shift=4)
        owned = coverage >= 128
        labels[y0:y1, x0:x1][owned] = obj.label
        if image is not None:
            side = obj.texture.shape[0]
            # texture pixel q -> unit coords (2q + 1) / side - 1 -> frame px -> crop px
            offset = linear @ np.full(2, 1 / side - 1) + centre - (x0, y0)
            to_crop = np.hstack([linear * (2 / side), offset[:, None]])
            texture = cv2.warpAffine(obj.texture, to_crop, (x1 - x0, y1 - y0), flags=cv2.INTER_LINEAR,
                                     borderMode=cv2.BORDER_REFLECT)
            alpha = coverage.astype(np.float32) * (1 / 255)
            if smear is None:
                image[y0:y1, x0:x1] = cv2.blendLinear(texture, image[y0:y1, x0:x1], alpha, 1 - alpha)
            else:  # premultiplied colour and coverage smeared along the motion
                kernel = _line_kernel(smear)
                alpha = cv2.filter2D(alpha, -1, kernel, borderType=cv2.BORDER_CONSTANT)
                colour = cv2.filter2D(texture * (coverage[..., None] * (1 / 255)).astype(np.float32), -1, kernel,
                                      borderType=cv2.BORDER_CONSTANT)
                blended = colour + image[y0:y1, x0:x1] * (1 - alpha)[..., None]
                image[y0:y1, x0:x1] = np.clip(np.round(blended), 0, 255).astype(np.uint8)
        return int(owned.sum())

    def _smear(self, obj: _Object, t: int) -> np.ndarray | None:
        """(2,) px an object moves during the exposure of frame t (``motion_blur`` x its motion per frame), None when
        under a pixel."""
        if not self.config.motion_blur or self.config.num_frames < 2:
            return None
        step = obj.centres[max(t, 1)] - obj.centres[max(t, 1) - 1]
        smear = self.config.motion_blur * step
        return smear if np.abs(smear).max() >= 1 else None

    def _lit(self, image: np.ndarray, t: int) -> np.ndarray:
        """``image`` under frame t's lighting: a global brightness swing and a slowly turning shading gradient."""
        period, phase, direction, turn = self._lighting
        h, w = self.config.size
        gain = np.exp(self.config.lighting * np.sin(2 * np.pi * t / period + phase))
        angle = direction + turn * t
        x, y = np.meshgrid(np.linspace(-0.5, 0.5, w, dtype=np.float32), np.linspace(-0.5, 0.5, h, dtype=np.float32))
        shade = gain * (1 + self.config.lighting * 2 * (x * np.cos(angle) + y * np.sin(angle)))
        return np.clip(image * shade[..., None], 0, 255).astype(np.uint8)


# ------------------------------------------------------------------------------------------------------ DAVIS writer


def _save_frame(image_path: Path, mask_path: Path, image: np.ndarray, labels: np.ndarray, jpeg_quality: int) -> None:
    _, jpeg = cv2.imencode(".jpg", image[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, jpeg_quality])
    atomic_write(image_path, lambda file: file.write(jpeg.tobytes()))
    mask = Image.fromarray(labels, mode="P")
    mask.putpalette(davis_palette().ravel().tolist())
    atomic_write(mask_path, lambda file: mask.save(file, format="PNG"))


#: The "real-looking" validation look (issue 16): what real footage does to a tracker and the default look does not -
#: camouflage (object textures drawn from the background's, barely recoloured), fast motion with motion blur, objects
#: roaming out of the frame, unlabelled occluders crossing in front, lighting change, camera shake and thin parts.
REAL_LOOK = SyntheticVideoConfig(num_frames=25, num_objects=(1, 2), speed=(0.01, 0.035), leave_prob=0.4,
                                 camouflage_prob=0.5, camouflage_change=(0.0, 0.12), occluders=(0, 2), motion_blur=0.7,
                                 lighting=0.25, camera_shake=0.006, thin_parts_prob=0.3, camera_speed=0.006)


def video_name(seed: int) -> str:
    """The sequence name ``write_davis_dataset`` gives video ``seed`` when no name is given."""
    return f"synthetic-{seed:05d}"


def write_davis_dataset(root: str | os.PathLike, videos: Mapping[str, int] | Iterable[int],
                        config: SyntheticVideoConfig = SyntheticVideoConfig(), split: str = "val",
                        jpeg_quality: int = 90, progress: bool = False) -> list[str]:
    """Write synthetic videos in DAVIS 2017 layout under ``root``; returns the sequence names, in order.

    ``videos`` maps sequence names to seeds, or lists seeds (named by ``video_name``). Writes
    ``JPEGImages/480p/<name>/%05d.jpg``, ``Annotations/480p/<name>/%05d.png`` (8-bit palette PNGs, every frame) and
    ``ImageSets/2017/<split>.txt`` (exactly these names), each file atomically. ``root/synthetic.json`` records each
    sequence's seed and config: a rerun skips frames already written (resume) and refuses a name already written with
    another seed or config.
    """
    from tqdm import tqdm

    root = Path(root)
    layout = DavisLayout(root)
    named = dict(videos) if isinstance(videos, Mapping) else {video_name(seed): int(seed) for seed in videos}
    manifest_path = root / "synthetic.json"
    manifest = json.loads(manifest_path.read_text()) if manifest_path.exists() else {}
    for name, seed in named.items():
        entry = {"seed": seed, "config": asdict(config)}
        if name in manifest and manifest[name] != json.loads(json.dumps(entry)):
            raise InputError(f"{manifest_path}: sequence {name!r} was written with another seed or config; "
                             "write to a new root or delete that sequence")
        manifest[name] = entry
    atomic_write(manifest_path, lambda file: file.write(json.dumps(manifest, indent=1).encode()))

    with tqdm(total=len(named) * config.num_frames, unit="frame", disable=not progress) as bar:
        for name, seed in named.items():
            image_dir, mask_dir = layout.frames(name), layout.annotations(name)
            video = SyntheticVideo(seed, config)
            for t in range(len(video)):
                image_path, mask_path = image_dir / f"{t:05d}.jpg", mask_dir / f"{t:05d}.png"
                if not (image_path.exists() and mask_path.exists()):
                    _save_frame(image_path, mask_path, *video.frame(t), jpeg_quality)
                bar.update()
    split_list = "".join(f"{name}\n" for name in named).encode()
    atomic_write(layout.split_file(split), lambda file: file.write(split_list))
    return list(named)
