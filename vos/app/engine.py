"""The app's one door into the video engine: every call into a session or an export writer is here.

``Clip`` is what the server and the job runner see of an open video: frames by index, keyframes (the masks the user
drew), results, the frames a propagation will compute, the propagation itself (a generator of frame indices) and the
exports. Nothing else in ``vos.app`` calls into ``vos.session``, ``vos.writers`` or ``vos.pipeline``.

Session calls made here (SESSION_CONTRACT.md): ``VideoSession(predictor, path, config)``, ``.name``, ``.num_frames``,
``.frame_size``, ``.fps``, ``.frame(i)``, ``.source.frame_name(i)``, ``.source.read(indices)``,
``.add_mask(k, labels, replace=True)``, ``.remove_object(id)``, ``.keyframes``, ``.objects``, ``.plan(direction)``,
``.propagate(direction)`` (closed early on Stop) and ``.result(i)``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Mapping

import numpy as np

from seggpt_core.errors import InputError
from seggpt_core.predictor import SegGPTPredictor

from ..config import Direction, PropagationConfig, check_direction
from ..masks import davis_palette, load_mask, read_label_png
from ..pipeline import OutputSpec
from ..session import VideoSession
from ..writers import AsyncWriter, atomic_write, rle_decode, rle_from_string

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


class Clip:
    """One video opened in the app: a ``VideoSession`` plus which frames have results and which keyframe was edited
    last (the default start of a propagation).

    Args:
        predictor: the shared model.
        path: a video file or a frame folder.
        config: propagation settings.
    """

    def __init__(self, predictor: SegGPTPredictor, path: Path, config: PropagationConfig = PropagationConfig()):
        self.session = VideoSession(predictor, path, config)
        if self.session.num_frames is None:
            raise InputError(f"{path.name}: the video header has no frame count; re-encode it (e.g. ffmpeg -i IN "
                             "-c:v libx264 OUT.mp4) or give a frame folder")
        self._computed: set[int] = set()
        self._last_edit: int | None = None

    # --- what the video is
    @property
    def name(self) -> str:
        return self.session.name

    @property
    def num_frames(self) -> int:
        return self.session.num_frames

    @property
    def frame_size(self) -> tuple[int, int]:
        return tuple(self.session.frame_size)

    @property
    def fps(self):
        """The exact frame rate (a ``Fraction``), None for frame folders."""
        return self.session.fps

    def frame(self, index: int) -> np.ndarray:
        """(H, W, 3) uint8 RGB."""
        self._check_index(index)
        return self.session.frame(index)

    def _check_index(self, index: int, source: str | None = None) -> None:
        if not 0 <= index < self.num_frames:
            raise InputError(f"{source or self.name}: no frame {index}; the video has frames 0..{self.num_frames - 1}")

    # --- masks
    @property
    def keyframes(self) -> Mapping[int, np.ndarray]:
        return self.session.keyframes

    @property
    def objects(self) -> tuple[int, ...]:
        """Object ids of the keyframes."""
        return self.session.objects

    @property
    def computed(self) -> list[int]:
        """Frames that have a result."""
        return sorted(self._computed)

    def set_keyframe(self, index: int, labels: np.ndarray, *, source: str) -> None:
        """Make ``labels`` (H, W) uint8 the mask at frame ``index``, replacing any mask drawn there before."""
        self._check_index(index, source)
        if labels.shape != self.frame_size:
            h, w = labels.shape
            raise InputError(f"{source}: mask is {w}x{h} but the frames are {self.frame_size[1]}x{self.frame_size[0]}; "
                             "give a mask of the frame size")
        self.session.add_mask(index, labels, replace=True)
        self._last_edit = index

    def remove_object(self, object_id: int) -> None:
        """Drop an object from every keyframe and result."""
        self.session.remove_object(object_id)

    def result(self, index: int) -> np.ndarray | None:
        return self.session.result(index) if index in self._computed else None

    def labels(self, index: int) -> np.ndarray:
        """What frame ``index`` shows and exports: its keyframe, else its result, else background."""
        self._check_index(index)
        labels = self.session.keyframes.get(index)
        if labels is None:
            labels = self.result(index)
        return labels if labels is not None else np.zeros(self.frame_size, np.uint8)

    # --- propagation
    def start_frame(self, start: int | None) -> int:
        """The frame a propagation starts from: ``start``, or by default the keyframe edited last. A ``start`` that
        is not a keyframe becomes one, with its current mask (its result), so tracking restarts from what it shows."""
        keyframes = self.session.keyframes
        if start is None:
            start = self._last_edit if self._last_edit in keyframes else max(keyframes, default=None)
            if start is None:
                raise InputError(f"{self.name}: no mask yet; draw an object on a frame (or put a mask) first")
        self._check_index(start)
        if start not in keyframes:
            labels = self.labels(start)
            if not labels.any():
                raise InputError(f"{self.name}: frame {start} has no mask to start from; draw an object there or "
                                 "propagate to it first")
            self.set_keyframe(start, labels, source=f"result of frame {start}")
        return start

    def plan(self, direction: Direction = "both") -> list[int]:
        """The frames ``propagate`` computes, in order (only those whose result can have changed)."""
        return self.session.plan(check_direction(direction))

    def propagate(self, direction: Direction = "both") -> Iterator[int]:
        """Compute the frames of ``plan`` in order, yielding each index once its result is stored.

        Closing the generator stops after the current frame; every result computed so far is kept.
        """
        stream = self.session.propagate(check_direction(direction))
        try:
            for pred in stream:
                self._computed.add(pred.index)
                yield pred.index
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
        formats = spec.writers(self.name, PALETTE, self.fps)
        source = self.session.source
        with AsyncWriter(formats) as writer:
            if any(f.needs_frame for f in formats):
                for frame in source.read(range(self.num_frames)):
                    writer.put(frame.index, frame.name, self.labels(frame.index), frame.rgb)
            else:
                for index in range(self.num_frames):
                    writer.put(index, source.frame_name(index), self.labels(index))
        meta = {"video": self.name, "frames": self.num_frames, "fps": str(self.fps) if self.fps else None,
                "first_frame_name": source.frame_name(0),
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
