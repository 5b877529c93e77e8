"""Training pairs from videos: two frames of one video, objects keeping their ids, augmented.

Each sampler is a :data:`seggpt_core.training.PairSampler`: called with two numpy ``Generator``s (the scene's, which
picks the video, and the sample's) it returns a :class:`~seggpt_core.training.Pair`, deterministically. Sources:

* :class:`SyntheticPairs` - a fresh procedural video (:mod:`vos.training.synthetic`) per pair, seeds below
  :data:`TRAIN_SEED_LIMIT` only: seeds at or above it are held out for evaluation and never trained on;
* :class:`VideoFolderPairs` - any annotated DAVIS-layout or YouTube-VOS-layout training set.

Augmentations (:class:`Augment`) are cheap OpenCV ones: one random resized crop for the pair, moved and rescaled a
little per frame (camera shake and zoom between the frames), one horizontal flip and one colour jitter for the pair.
Frames are cropped and resized to the model's half size here (``seggpt_core.training.squash``), so everything
downstream works on small arrays.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, replace
from pathlib import Path

import cv2
import numpy as np

from seggpt_core.errors import InputError
from seggpt_core.training import Pair, jitter_colours, squash

from ..datasets import DavisLayout
from ..frame_folders import list_frames, natural_key
from ..masks import read_label_png
from .synthetic import REAL_LOOK, SyntheticVideo, SyntheticVideoConfig

#: Synthetic video seeds used for training are below this; seeds >= it are for held-out evaluation.
TRAIN_SEED_LIMIT = 1_000_000


@dataclass(frozen=True)
class Augment:
    """Random resized crop, horizontal flip and colour jitter (per pair), then resize to ``size``.

    The crop is shared by the two frames and then shifted and rescaled per frame by up to ``crop_jitter`` of its
    size: the frames of a pair keep roughly the geometry they have at inference (whole frames squashed to the model
    size), and the model still sees the camera move between them.
    """

    size: tuple[int, int]  #: (h, w) output size, the model's half size
    crop_scale: tuple[float, float] = (0.6, 1.0)  #: crop area as a fraction of the frame
    crop_ratio: tuple[float, float] = (3 / 4, 4 / 3)  #: crop aspect relative to the frame's own
    crop_jitter: float = 0.08  #: per-frame shift and log-scale change, as a fraction of the crop
    flip_prob: float = 0.5
    brightness: float = 0.3  #: factor drawn from 1 +- this
    contrast: float = 0.3
    saturation: float = 0.3
    frame_jitter: float = 0.05  #: extra brightness change between the two frames

    def __call__(self, rng: np.random.Generator, pair: Pair) -> Pair:
        flip = rng.random() < self.flip_prob
        gains = 1 + rng.uniform(-1, 1, 3) * (self.brightness, self.contrast, self.saturation)
        box = self._box(rng, *pair.labels_a.shape)
        frames = []
        for image, labels in ((pair.image_a, pair.labels_a), (pair.image_b, pair.labels_b)):
            image, labels = self._crop(self._jitter_box(rng, box, *labels.shape), image, labels)
            if flip:
                image, labels = image[:, ::-1], labels[:, ::-1]
            brightness = gains[0] * (1 + rng.uniform(-1, 1) * self.frame_jitter)
            frames += [jitter_colours(image, brightness, gains[1], gains[2]), np.ascontiguousarray(labels)]
        return Pair(*frames, seg_type=pair.seg_type)

    def _box(self, rng: np.random.Generator, fh: int, fw: int) -> tuple[float, float, float, float]:
        """A crop (y, x, h, w) in pixels of an (fh, fw) frame."""
        area = rng.uniform(*self.crop_scale) * fh * fw
        ratio = np.exp(rng.uniform(*np.log(self.crop_ratio))) * fw / fh
        cw, ch = min(fw, np.sqrt(area * ratio)), min(fh, np.sqrt(area / ratio))
        return rng.uniform(0, fh - ch), rng.uniform(0, fw - cw), ch, cw

    def _jitter_box(self, rng: np.random.Generator, box: tuple[float, float, float, float], fh: int,
                    fw: int) -> tuple[int, int, int, int]:
        """``box`` moved and rescaled by up to ``crop_jitter``, kept inside the frame, in whole pixels."""
        y, x, ch, cw = box
        scale = np.exp(rng.uniform(-1, 1) * self.crop_jitter)
        dy, dx = rng.uniform(-1, 1, 2) * self.crop_jitter
        h, w = min(fh, max(2, round(ch * scale))), min(fw, max(2, round(cw * scale)))
        top = int(np.clip(round(y + ch / 2 + dy * ch - h / 2), 0, fh - h))
        left = int(np.clip(round(x + cw / 2 + dx * cw - w / 2), 0, fw - w))
        return top, left, h, w

    def _crop(self, box: tuple[int, int, int, int], image: np.ndarray,
              labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        y, x, ch, cw = box
        return squash(image[y:y + ch, x:x + cw], labels[y:y + ch, x:x + cw], self.size)


def frame_pair(rng: np.random.Generator, length: int, max_gap: int) -> tuple[int, int]:
    """Two distinct frame positions in 0..length-1 at most ``max_gap`` apart (either order)."""
    if length < 2:
        raise InputError("a training video needs at least two annotated frames")
    gap = int(rng.integers(1, min(max_gap, length - 1) + 1))
    first = int(rng.integers(length - gap))
    return (first, first + gap) if rng.random() < 0.5 else (first + gap, first)


@dataclass(frozen=True)
class SyntheticPairs:
    """Two frames of a fresh synthetic video (seed drawn below :data:`TRAIN_SEED_LIMIT`), augmented.

    ``video`` sets the look of the videos; render them small (e.g. 128x228 for a 64x64 model): the crop and resize
    to the model size happen afterwards. Planning a video costs about ten times a pair's two renders, so the last few
    planned videos are cached: pairs that share a scene (``TrainConfig.pairs_per_scene``) plan it once.
    """

    augment: Augment
    video: SyntheticVideoConfig = SyntheticVideoConfig(size=(128, 228), num_frames=40, object_radius=(0.1, 0.25))
    max_gap: int = 8
    real_look: float = 0.0  #: share of scenes drawn in ``REAL_LOOK`` (at ``video``'s render size) instead of ``video``

    def __post_init__(self) -> None:
        if not 0 <= self.real_look <= 1:
            raise InputError(f"real-look share must be within [0, 1], got {self.real_look}")

    def __call__(self, scene: np.random.Generator, rng: np.random.Generator) -> Pair:
        seed = int(scene.integers(TRAIN_SEED_LIMIT))
        real = self.real_look > 0 and scene.random() < self.real_look  # no extra draw at 0: old runs stay identical
        video = _planned_video(seed, replace(REAL_LOOK, size=self.video.size) if real else self.video)
        a, b = frame_pair(rng, len(video), self.max_gap)
        return self.augment(rng, Pair(*video.frame(a), *video.frame(b)))


@functools.lru_cache(maxsize=4)
def _planned_video(seed: int, config: SyntheticVideoConfig) -> SyntheticVideo:
    return SyntheticVideo(seed, config)


@dataclass(frozen=True)
class AnnotatedVideo:
    name: str
    frames: tuple[Path, ...]  #: images that have an annotation, in order
    masks: tuple[Path, ...]  #: their annotation PNGs


def list_annotated_videos(root: str | Path, split: str = "train") -> list[AnnotatedVideo]:
    """Videos of a DAVIS-layout (``JPEGImages/480p/<seq>``, ``Annotations/480p/<seq>``, optional
    ``ImageSets/2017/<split>.txt``) or YouTube-VOS-layout (``JPEGImages/<vid>``, ``Annotations/<vid>``) training set,
    each with the frames that have an annotation PNG; videos with fewer than two such frames are skipped."""
    root = Path(root)
    davis = DavisLayout(root)
    if davis.frames().is_dir():
        images, annotations = davis.frames(), davis.annotations()
        listing = davis.split_file(split)
        names = listing.read_text().split() if listing.is_file() else None
    elif (root / "JPEGImages").is_dir() and (root / "Annotations").is_dir():
        images, annotations, names = root / "JPEGImages", root / "Annotations", None
    else:
        raise InputError(f"{root}: no JPEGImages/ and Annotations/ folders; give the root of a DAVIS or "
                         "YouTube-VOS training split")
    if names is None:
        names = sorted((p.name for p in images.iterdir() if p.is_dir()), key=natural_key)
    videos = []
    for name in names:
        masks = {p.stem: p for p in (annotations / name).glob("*.png")} if (annotations / name).is_dir() else {}
        frames = [p for p in list_frames(images / name) if p.stem in masks] if (images / name).is_dir() else []
        if len(frames) >= 2:
            videos.append(AnnotatedVideo(name, tuple(frames), tuple(masks[p.stem] for p in frames)))
    if not videos:
        raise InputError(f"{root}: no video with two or more annotated frames; check the layout and split")
    return videos


class VideoFolderPairs:
    """Two annotated frames of one video of a DAVIS/YouTube-VOS training set (video chosen uniformly), augmented.

    Ids are the dataset's object ids, so an object keeps its colour in both frames; 255 (void) is excluded from the
    loss.
    """

    def __init__(self, root: str | Path, augment: Augment, *, split: str = "train", max_gap: int = 8) -> None:
        self.videos = list_annotated_videos(root, split)
        self.augment, self.max_gap = augment, max_gap

    def __call__(self, scene: np.random.Generator, rng: np.random.Generator) -> Pair:
        video = self.videos[int(scene.integers(len(self.videos)))]
        a, b = frame_pair(rng, len(video.frames), self.max_gap)
        return self.augment(rng, Pair(*self._read(video, a), *self._read(video, b)))

    @staticmethod
    def _read(video: AnnotatedVideo, index: int) -> tuple[np.ndarray, np.ndarray]:
        image = cv2.imread(str(video.frames[index]), cv2.IMREAD_COLOR)
        if image is None:
            raise InputError(f"{video.frames[index]}: cannot read image; re-extract the frames")
        labels, _ = read_label_png(video.masks[index])
        if labels.shape != image.shape[:2]:
            raise InputError(f"{video.masks[index]}: mask size {labels.shape} differs from its frame "
                             f"{image.shape[:2]}")
        return cv2.cvtColor(image, cv2.COLOR_BGR2RGB), labels
