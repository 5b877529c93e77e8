"""The app's one door into the video engine: every call into a session, a frame source or an export writer is here.

``Clip`` is what the server and the job runner see of an open video: frames by index, keyframes (the masks the user
drew), results, the frames a propagation will compute, the propagation itself (a generator of frame indices) and the
exports. Nothing else in ``vos.app`` calls into ``vos.session``, ``vos.writers`` or ``vos.pipeline``.

Today's ``VideoSession`` streams forward from its first frame. Until the keyframe session of SESSION_CONTRACT.md
lands, keyframes, both directions and re-propagation are built on it here: a propagation from frame ``s`` runs a
fresh ``VideoSession`` over the frames s, s+1, ... (forward) or s, s-1, ... (backward), seeded with the mask at ``s``
(its keyframe, else its current result) and given every keyframe met on the way; results are kept in a dict, so
stopping keeps every frame computed so far and a correction at ``s`` recomputes only the frames on the far side of
``s``.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path
from types import MappingProxyType
from typing import Literal, Mapping

import numpy as np

from seggpt_core.errors import InputError
from seggpt_core.predictor import SegGPTPredictor

from ..masks import davis_palette, load_mask, object_ids_in, read_label_png
from ..pipeline import OutputSpec
from ..readers import FrameFolderSource, VideoFileSource, read_image
from ..session import PropagationConfig, VideoSession
from ..writers import AsyncWriter, atomic_write, rle_decode, rle_from_string

Direction = Literal["forward", "backward", "both"]
DIRECTIONS: tuple[Direction, ...] = ("forward", "backward", "both")

#: Export formats: name -> (what it writes, the OutputSpec writing it into a folder for a video named ``video``).
EXPORT_FORMATS = {
    "palette-png": ("palette PNGs of object ids: <video>/<frame>.png",
                    lambda folder, video: OutputSpec(masks=folder)),
    "alpha-png": ("one 0/255 matte sequence per object: <video>/<id>/<frame>.png",
                  lambda folder, video: OutputSpec(alpha=folder)),
    "overlay-mp4": ("H.264 video with the masks blended in: <video>.mp4",
                    lambda folder, video: OutputSpec(overlay=folder / f"{video}.mp4")),
    "coco-rle": ("COCO run-length-encoded masks of the whole video: <video>.json",
                 lambda folder, video: OutputSpec(rle=folder / f"{video}.json")),
}

PALETTE = davis_palette()  #: object id -> RGB colour, in the page and in the exports


class FrameReader:
    """Random access to a frame folder or a video file: ``frame(i)`` and ``frames(indices)``, (H, W, 3) uint8 RGB.

    Video files are read with OpenCV's FFmpeg backend: one capture for random access (seeks, under a lock) and a
    fresh capture per ``frames`` call, read sequentially (descending runs are read in forward blocks, reversed).
    """

    BLOCK = 16  #: frames decoded per block when a video is read backwards

    def __init__(self, path: Path):
        if path.is_dir():
            self.source = FrameFolderSource(path)
            self.names = list(self.source.names)
        else:
            self.source = VideoFileSource(path)
            if self.source.num_frames is None:
                raise InputError(f"{path.name}: the video header has no frame count; re-encode it (e.g. ffmpeg -i IN "
                                 "-c:v libx264 OUT.mp4) or give a frame folder")
            self.names = [f"{i:05d}" for i in range(self.source.num_frames)]
        self.path = path
        self.num_frames = len(self.names)
        self.size: tuple[int, int] = tuple(self.source.size)
        self._lock = threading.Lock()
        self._capture = None
        self._next = 0  #: index the random-access capture reads next

    @property
    def is_video(self) -> bool:
        return isinstance(self.source, VideoFileSource)

    def frame(self, index: int) -> np.ndarray:
        if not 0 <= index < self.num_frames:
            raise InputError(f"{self.path.name}: no frame {index}; the video has frames 0..{self.num_frames - 1}")
        if not self.is_video:
            return read_image(self.source.files[index])
        with self._lock:
            if self._capture is None:
                self._capture = self._open()
            rgb = self._read_at(self._capture, index, self._next)
            self._next = index + 1
            return rgb

    def _open(self):
        import cv2

        capture = cv2.VideoCapture(str(self.path), cv2.CAP_FFMPEG)
        if not capture.isOpened():
            raise InputError(f"{self.path.name}: cannot open the video any more; was it moved or deleted?")
        return capture

    def _read_at(self, capture, index: int, position: int) -> np.ndarray:
        """Frame ``index`` from ``capture`` whose next frame is ``position`` (seeks unless they are equal)."""
        import cv2

        if index != position:
            capture.set(cv2.CAP_PROP_POS_FRAMES, index)
        ok, bgr = capture.read()
        if not ok:
            raise InputError(f"{self.path.name}: frame {index} cannot be decoded (truncated or corrupt video); "
                             "re-encode it")
        return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)

    def frames(self, indices: list[int]) -> Iterator[np.ndarray]:
        """The frames at ``indices`` (an ascending or descending run of consecutive indices), in that order."""
        if not self.is_video:
            for i in indices:
                yield read_image(self.source.files[i])
            return
        capture = self._open()
        try:
            if len(indices) < 2 or indices[1] > indices[0]:
                position = -1
                for i in indices:
                    yield self._read_at(capture, i, position)
                    position = i + 1
                return
            for high in range(indices[0], indices[-1] - 1, -self.BLOCK):
                low = max(indices[-1], high - self.BLOCK + 1)
                block = [self._read_at(capture, i, i if i > low else -1) for i in range(low, high + 1)]
                yield from reversed(block)
        finally:
            capture.release()


class Clip:
    """One video opened in the app: frames, keyframes (user-drawn (H, W) uint8 object ids), results, propagation.

    Args:
        predictor: the shared model.
        path: a video file or a frame folder.
        config: propagation settings.
    """

    def __init__(self, predictor: SegGPTPredictor, path: Path, config: PropagationConfig = PropagationConfig()):
        self.predictor = predictor
        self.config = config
        self.reader = FrameReader(path)
        self.name = path.stem if path.is_file() else path.name
        fps = self.reader.source.fps
        self.fps: Fraction | None = Fraction(fps).limit_denominator(1001) if fps else None
        self._keyframes: dict[int, np.ndarray] = {}
        self._results: dict[int, np.ndarray] = {}
        self._last_edit: int | None = None

    # --- what the video is
    @property
    def num_frames(self) -> int:
        return self.reader.num_frames

    @property
    def frame_size(self) -> tuple[int, int]:
        return self.reader.size

    def frame(self, index: int) -> np.ndarray:
        """(H, W, 3) uint8 RGB."""
        return self.reader.frame(index)

    # --- masks
    @property
    def keyframes(self) -> Mapping[int, np.ndarray]:
        return MappingProxyType(self._keyframes)

    @property
    def objects(self) -> tuple[int, ...]:
        """Object ids present in any keyframe or result."""
        present: set[int] = set()
        for labels in (*self._keyframes.values(), *self._results.values()):
            present.update(object_ids_in(labels))
        return tuple(sorted(present))

    @property
    def computed(self) -> list[int]:
        """Frames that have a result."""
        return sorted(self._results)

    def set_keyframe(self, index: int, labels: np.ndarray, *, source: str) -> None:
        """Make ``labels`` (H, W) uint8 the mask at frame ``index``, replacing any mask drawn there before."""
        if not 0 <= index < self.num_frames:
            raise InputError(f"{source}: no frame {index}; the video has frames 0..{self.num_frames - 1}")
        if labels.shape != self.frame_size:
            h, w = labels.shape
            raise InputError(f"{source}: mask is {w}x{h} but the frames are {self.frame_size[1]}x{self.frame_size[0]}; "
                             "give a mask of the frame size")
        if labels.any():
            self._keyframes[index] = labels
        else:
            self._keyframes.pop(index, None)
        self._last_edit = index

    def remove_object(self, object_id: int) -> None:
        """Drop an object from every keyframe and result."""
        if object_id not in self.objects:
            raise InputError(f"object {object_id} is in no mask of {self.name}")
        for store in (self._keyframes, self._results):
            for index, labels in list(store.items()):
                store[index] = np.where(labels == object_id, 0, labels).astype(np.uint8)
        self._keyframes = {i: m for i, m in self._keyframes.items() if m.any()}

    def result(self, index: int) -> np.ndarray | None:
        return self._results.get(index)

    def labels(self, index: int) -> np.ndarray:
        """What frame ``index`` shows and exports: its keyframe, else its result, else background."""
        if not 0 <= index < self.num_frames:
            raise InputError(f"{self.name}: no frame {index}; the video has frames 0..{self.num_frames - 1}")
        labels = self._keyframes.get(index)
        if labels is None:
            labels = self._results.get(index)
        return labels if labels is not None else np.zeros(self.frame_size, np.uint8)

    # --- propagation
    def start_frame(self, start: int | None) -> int:
        """The frame a propagation starts from: ``start``, or by default the keyframe edited last."""
        if start is None:
            start = self._last_edit if self._last_edit in self._keyframes else max(self._keyframes, default=None)
            if start is None:
                raise InputError(f"{self.name}: no mask yet; draw an object on a frame (or put a mask) first")
        if not 0 <= start < self.num_frames:
            raise InputError(f"{self.name}: no frame {start}; the video has frames 0..{self.num_frames - 1}")
        if not self.labels(start).any():
            raise InputError(f"{self.name}: frame {start} has no mask to start from; draw an object there or "
                             "propagate to it first")
        return start

    def _runs(self, direction: Direction, start: int) -> list[list[int]]:
        """Consecutive frame runs, each beginning at ``start``: backward first, then forward."""
        if direction not in DIRECTIONS:
            raise InputError(f"direction {direction!r} is not one of {', '.join(DIRECTIONS)}")
        runs = []
        if direction in ("backward", "both"):
            runs.append(list(range(start, -1, -1)))
        if direction in ("forward", "both"):
            runs.append(list(range(start, self.num_frames)))
        return runs

    def plan(self, direction: Direction = "both", start: int | None = None) -> list[int]:
        """The frames ``propagate`` computes, in order (``start`` once)."""
        start = self.start_frame(start)
        order: list[int] = []
        for run in self._runs(direction, start):
            order.extend(i for i in run if not (order and i == start))
        return order

    def propagate(self, direction: Direction = "both", start: int | None = None) -> Iterator[int]:
        """Compute the frames of ``plan`` in order, yielding each index once its result is stored.

        Closing the generator stops after the current frame; every result computed so far is kept.
        """
        start = self.start_frame(start)
        first = True
        for run in self._runs(direction, start):
            seed = self.labels(start)
            session = VideoSession(self.predictor, self.reader.frames(run), self.config, name=self.name)
            for position, index in enumerate(run):
                mask = seed if position == 0 else self._keyframes.get(index)
                if mask is not None:
                    session.add_mask(position, mask)
            stream = session.propagate()
            try:
                for pred in stream:
                    index = run[pred.index]
                    if index == start and not first:
                        continue
                    self._results[index] = pred.labels
                    first = False
                    yield index
            finally:
                stream.close()

    # --- exports
    def export(self, fmt: str, folder: Path, names: Mapping[int, str]) -> list[Path]:
        """Write every frame (keyframe, else result, else empty) in format ``fmt`` into ``folder``, plus
        ``<video>.objects.json`` (ids, names, colours, frame rate). Each file is written atomically."""
        if fmt not in EXPORT_FORMATS:
            raise InputError(f"export format {fmt!r} is not one of {', '.join(EXPORT_FORMATS)}")
        folder.mkdir(parents=True, exist_ok=True)
        spec = EXPORT_FORMATS[fmt][1](folder, self.name)
        fps = float(self.fps) if self.fps else None
        formats = spec.writers(self.name, PALETTE, fps)
        needs_frame = any(f.needs_frame for f in formats)
        with AsyncWriter(formats) as writer:
            for index, name in enumerate(self.reader.names):
                writer.put(index, name, self.labels(index), self.frame(index) if needs_frame else None)
        meta = {"video": self.name, "frames": self.num_frames, "fps": str(self.fps) if self.fps else None,
                "first_frame_name": self.reader.names[0],
                "objects": [{"id": i, "name": names.get(i, f"object {i}"), "colour": PALETTE[i].tolist()}
                            for i in sorted(set(self.objects) | set(names))]}
        sidecar = folder / f"{self.name}.objects.json"
        atomic_write(sidecar, lambda f: f.write(json.dumps(meta, indent=1).encode()))
        return sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.startswith("."))


def decode_mask_png(path: Path, *, source: str) -> np.ndarray:
    """(H, W) uint8 ids from a mask PNG file, by the library's reading rules (palette, grey or 0/255 PNGs)."""
    try:
        labels, _ = read_label_png(path)
    except InputError as error:
        raise InputError(str(error).replace(str(path), source)) from None
    return load_mask(labels)[0]


def decode_mask_rle(payload: dict, size: tuple[int, int], *, source: str) -> np.ndarray:
    """(H, W) uint8 ids from ``{"objects": [{"id": k, "rle": {"size": [H, W], "counts": list or COCO string}}]}``;
    later objects are drawn over earlier ones."""
    labels = np.zeros(size, np.uint8)
    objects = payload.get("objects") if isinstance(payload, dict) else None
    if not isinstance(objects, list):
        raise InputError(f"{source}: JSON mask needs 'objects': a list of {{'id', 'rle': {{'size', 'counts'}}}}")
    for item in objects:
        try:
            object_id, rle = int(item["id"]), item["rle"]
            height, width = (int(v) for v in rle["size"])
            counts = rle["counts"]
            counts = rle_from_string(counts) if isinstance(counts, str) else [int(c) for c in counts]
        except (KeyError, TypeError, ValueError, IndexError):
            raise InputError(f"{source}: each object needs an integer 'id' and 'rle' with 'size' [H, W] and "
                             "'counts'") from None
        if not 1 <= object_id <= 254:
            raise InputError(f"{source}: object id {object_id} is outside 1..254")
        if (height, width) != tuple(size):
            raise InputError(f"{source}: mask is {width}x{height} but the frames are {size[1]}x{size[0]}; give a "
                             "mask of the frame size")
        try:
            mask = rle_decode(counts, height, width)
        except ValueError as error:
            raise InputError(f"{source}: object {object_id}: {error}") from None
        labels[mask] = object_id
    return labels
