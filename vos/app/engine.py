"""The app's one door into the video engine: every call into a session or an export writer is here.

``Clip`` is what the server and the job runner see of an open video: frames by index, keyframes (the masks the user
drew), results, the frames a propagation will compute, the propagation itself (a generator of frame indices) and the
exports. Nothing else in ``vos.app`` calls into ``vos.session``, ``vos.writers`` or ``vos.pipeline``.

Session calls made here (SESSION_CONTRACT.md): ``VideoSession(predictor, path, config)``, ``.name``, ``.num_frames``,
``.frame_size``, ``.fps``, ``.frame(i)``, ``.source.frame_name(i)``, ``.source.read(indices)``,
``.add_mask(k, labels, replace=True)``, ``.remove_keyframe(k)``, ``.remove_object(id)``, ``.keyframes``, ``.objects``, ``.plan(direction)``,
``.propagate(direction)`` (closed early on Stop) and ``.result(i)``. Export calls (issue 13): ``OutputSpec(<format
field>=folder, start_number=, fps=, alpha_combined=, alpha_video_content=, overwrite=, cleanup=MatteCleanup(...),
object_names=)`` then ``spec.open(video, palette, fps, object_ids)`` and ``writer.put(index, name, labels, rgb)`` in
index order.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from fractions import Fraction
from pathlib import Path
from typing import Mapping, get_args

import numpy as np

from seggpt_core.atomic import atomic_write
from seggpt_core.errors import InputError
from seggpt_core.predictor import SegGPTPredictor

from ..config import Direction, PropagationConfig, check_direction
from ..masks import davis_palette, load_mask, read_label_png
from ..mattes import MatteCleanup
from ..pipeline import OutputSpec
from ..session import VideoSession
from ..writers import rle_decode, rle_from_string

DIRECTIONS: tuple[Direction, ...] = get_args(Direction)

#: Export formats: name -> (what it writes, the ``OutputSpec`` fields that write it into a folder for a video).
EXPORT_FORMATS: dict[str, tuple[str, Callable[[Path, str], dict]]] = {
    "alpha-png": ("8-bit matte PNG sequence per object (white = object) + sidecar JSON",
                  lambda folder, video: {"alpha": folder}),
    "cutout-png": ("RGBA PNG sequence per object, straight alpha + sidecar JSON",
                   lambda folder, video: {"cutout": folder}),
    "prores-mov": ("ProRes 4444 .mov with alpha, all objects (Resolve, Premiere, After Effects, Final Cut)",
                   lambda folder, video: {"alpha_video": folder / f"{video}.mov"}),
    "vp9-webm": ("VP9 .webm with alpha, all objects (browsers, Kdenlive, Shotcut)",
                 lambda folder, video: {"alpha_video": folder / f"{video}.webm"}),
    "ffv1-mkv": ("FFV1 lossless .mkv matte, all objects (archiving, Kdenlive, Blender)",
                 lambda folder, video: {"alpha_video": folder / f"{video}.mkv"}),
    "exr": ("one EXR per frame, half-float channel per object (Nuke, Fusion, Blender, After Effects)",
            lambda folder, video: {"exr": folder}),
    "palette-png": ("palette PNGs of object ids, DAVIS layout <video>/<frame>.png",
                    lambda folder, video: {"masks": folder}),
    "overlay-mp4": ("H.264 preview with the masks blended in",
                    lambda folder, video: {"overlay": folder / f"{video}.mp4"}),
    "coco-rle": ("COCO run-length-encoded masks of the whole video (JSON)",
                 lambda folder, video: {"rle": folder / f"{video}.json"}),
}

#: Export options (the request's ``options``) -> how each becomes an ``OutputSpec`` field.
EXPORT_OPTIONS: dict[str, Callable[[object], tuple[str, object]]] = {
    "start_number": lambda v: ("start_number", int(v)),  # 0, 1 or 1001: file number of frame 0
    "fps": lambda v: ("fps", Fraction(str(v))),  # rate of frame folders, e.g. "24" or "30000/1001"
    "alpha_combined": lambda v: ("alpha_combined", bool(v)),  # also an all-objects sequence
    "content": lambda v: ("alpha_video_content", str(v)),  # alpha videos: "matte" or "cutout"
    "overwrite": lambda v: ("overwrite", bool(v)),  # replace existing sequences / alpha video
}
#: Clean-up options, fields of ``MatteCleanup`` (pixels).
CLEANUP_OPTIONS = ("fill_holes", "min_area", "grow", "feather")

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

    def remove_keyframe(self, index: int) -> None:
        """Take back the mask drawn at frame ``index``: the frame shows no mask until a propagation computes it, and
        the frames that depended on the keyframe are recomputed by the next one (``plan``)."""
        self.session.remove_keyframe(index)
        self._computed.discard(index)  # its stored result is the removed mask until then

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
    def export(self, fmt: str, folder: Path, names: Mapping[int, str], options: Mapping[str, object]) -> list[Path]:
        """Write every frame (keyframe, else result, else empty) in format ``fmt`` into ``folder``, plus
        ``<video>.objects.json`` (ids, names, colours, frame rate); returns the files in ``folder``. Each file is
        written atomically (whole-video files appear when complete)."""
        try:
            spec = self.output_spec(fmt, folder, names, options)
            folder.mkdir(parents=True, exist_ok=True)
            writer = spec.open(self.name, PALETTE, self.fps, self.objects)
        except InputError as error:  # the writers name the command line's flags; say the API's option names
            raise InputError(re.sub(r"--([a-z-]+)", lambda m: m.group(1).replace("-", "_"), str(error))) from None
        source = self.session.source
        with writer:
            if spec.overlay is not None or spec.cutout is not None or spec.alpha_video is not None:
                for frame in source.read(range(self.num_frames)):
                    writer.put(frame.index, frame.name, self.labels(frame.index), frame.rgb)
            else:
                for index in range(self.num_frames):
                    writer.put(index, source.frame_name(index), self.labels(index))
        meta = {"video": self.name, "frames": self.num_frames, "fps": str(self.fps) if self.fps else None,
                "objects": [{"id": i, "name": names.get(i, f"object {i}"), "colour": PALETTE[i].tolist()}
                            for i in sorted(set(self.objects) | set(names))]}
        atomic_write(folder / f"{self.name}.objects.json", lambda f: f.write(json.dumps(meta, indent=1).encode()))
        return sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.startswith("."))

    def output_spec(self, fmt: str, folder: Path, names: Mapping[int, str],
                    options: Mapping[str, object]) -> OutputSpec:
        """The ``OutputSpec`` of an export request; an unknown format or option, or a bad value, is an
        ``InputError``."""
        if fmt not in EXPORT_FORMATS:
            raise InputError(f"export format {fmt!r} is not one of {', '.join(EXPORT_FORMATS)}")
        unknown = sorted(set(options) - set(EXPORT_OPTIONS) - set(CLEANUP_OPTIONS))
        if unknown:
            raise InputError(f"unknown export option(s) {', '.join(unknown)}; use "
                             f"{', '.join([*EXPORT_OPTIONS, *CLEANUP_OPTIONS])}")
        try:
            fields = dict(EXPORT_OPTIONS[k](v) for k, v in options.items() if k in EXPORT_OPTIONS)
            cleanup = MatteCleanup(**{k: int(v) for k, v in options.items() if k in CLEANUP_OPTIONS})
        except (TypeError, ValueError, ZeroDivisionError) as error:
            raise InputError(f"bad export option value: {' '.join(str(error).split())}") from None
        return OutputSpec(**EXPORT_FORMATS[fmt][1](folder, self.name), **fields, cleanup=cleanup,
                          object_names=dict(names))


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
