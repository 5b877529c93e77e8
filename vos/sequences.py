"""Numbered image sequences for editors: ``NAME.%04d.png`` mattes and cut-outs, the timeline, the sidecar JSON.

Editors import a sequence from its first file and its numbering, so every frame gets a file (empty ones too: a gap
breaks the import or is filled with placeholders) and numbers run ``start_number + frame index``. An image sequence
carries no frame rate: each one gets ``NAME.json`` beside it with the rate as an exact fraction, the start number,
the frame count and the objects, written when the sequence completes.

Writers here take frames in index order (0, 1, 2, ...) and refuse anything else, as a gap would be silent.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Literal

import cv2
import numpy as np

from seggpt_core.atomic import atomic_write, remove_stale_temps
from seggpt_core.errors import InputError

from .mattes import Mattes, cutout

#: Frame rate of outputs whose input has none (frame folders, live streams) unless told otherwise.
DEFAULT_FPS = Fraction(24)

MatteContent = Literal["matte", "cutout"]


@dataclass(frozen=True)
class Timeline:
    """Timing of the outputs: the exact frame rate, the number of frame index 0, and where the rate came from."""

    fps: Fraction = DEFAULT_FPS
    start_number: int = 0
    fps_from: Literal["source", "--fps", "default"] = "default"

    def __post_init__(self) -> None:
        if self.start_number < 0:
            raise InputError(f"--start-number must be >= 0, got {self.start_number}; editors use 0, 1 or 1001")
        if self.fps <= 0:
            raise InputError(f"--fps must be > 0, got {self.fps}; e.g. 24, 25 or 30000/1001")

    def number(self, index: int) -> int:
        """File number of frame ``index``."""
        return self.start_number + index

    def describe(self) -> dict:
        """The timing fields of a sidecar."""
        return {"fps": f"{self.fps.numerator}/{self.fps.denominator}", "fps_float": float(self.fps),
                "fps_from": self.fps_from, "start_number": self.start_number}


def object_name(object_id: int, names: Mapping[int, str]) -> str:
    return names.get(object_id, f"object {object_id}")


def objects_entry(object_ids: Iterable[int], names: Mapping[int, str]) -> list[dict]:
    """The ``objects`` list of a sidecar: id, name and the channel / folder name ``object_<id>``."""
    return [{"id": i, "name": object_name(i, names), "channel": f"object_{i}"} for i in sorted(object_ids)]


def claim_folder(folder: Path, overwrite: bool, flag: str) -> None:
    """Refuse to write into a non-empty ``folder`` unless ``overwrite`` (an old run's frames would mix with ours)."""
    if not overwrite and folder.is_dir() and any(not p.name.startswith(".") for p in folder.iterdir()):
        raise InputError(f"{folder}: {flag} output folder is not empty; pass --overwrite to replace its sequences "
                         "or choose another folder")
    folder.mkdir(parents=True, exist_ok=True)


@dataclass(frozen=True)
class NumberedFiles:
    """The files of one sequence: ``folder/prefix.%04d<suffix>`` and the sidecar ``folder/prefix.json``."""

    folder: Path
    prefix: str
    suffix: str

    def path(self, number: int) -> Path:
        return self.folder / f"{self.prefix}.{number:04d}{self.suffix}"

    @property
    def pattern(self) -> str:
        return f"{self.prefix}.%04d{self.suffix}"

    @property
    def sidecar(self) -> Path:
        return self.folder / f"{self.prefix}.json"

    def start(self) -> None:
        """Create the folder; remove this sequence's files from an earlier run (and temps a killed run left)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        remove_stale_temps(self.folder, self.suffix)  # temps of numbered files (the folder holds this sequence only)
        remove_stale_temps(self.folder, ".json", self.prefix)
        numbered = re.compile(re.escape(self.prefix) + r"\.\d+" + re.escape(self.suffix) + "$")
        for p in self.folder.iterdir():
            if numbered.match(p.name):
                p.unlink()
        self.sidecar.unlink(missing_ok=True)

    def write_sidecar(self, fields: dict) -> None:
        text = json.dumps({"pattern": self.pattern, **fields}, indent=2) + "\n"
        atomic_write(self.sidecar, lambda f: f.write(text.encode()))


#: PNG row filter (and zlib strategy) by the number of array dimensions: a matte is flat, so rows left unfiltered
#: and run-length matches compress it to a third of the size of adaptive filtering (what PIL's encoder always does)
#: at 60% of its CPU; a cut-out carries the frame's texture, where the Sub filter keeps adaptive filtering's size at
#: 55% of its CPU (480p, README *Pipeline*).
_PNG_FILTERS = {2: [cv2.IMWRITE_PNG_FILTER, cv2.IMWRITE_PNG_FILTER_NONE,
                    cv2.IMWRITE_PNG_STRATEGY, cv2.IMWRITE_PNG_STRATEGY_RLE],
                3: [cv2.IMWRITE_PNG_FILTER, cv2.IMWRITE_PNG_FILTER_SUB]}


def save_png(path: Path, pixels: np.ndarray, compress_level: int) -> None:
    """Atomically save a (H, W) grey or (H, W, 4) RGBA uint8 image as an 8-bit grey or RGBA PNG (OpenCV's encoder,
    zlib ``compress_level`` 0..9)."""
    if pixels.ndim == 3:
        pixels = cv2.cvtColor(pixels, cv2.COLOR_RGBA2BGRA)  # OpenCV writes colour channels in BGR order
    params = [cv2.IMWRITE_PNG_COMPRESSION, compress_level, *_PNG_FILTERS[pixels.ndim]]
    ok, data = cv2.imencode(".png", np.ascontiguousarray(pixels), params)
    if not ok:
        raise OSError(f"{path}: OpenCV could not encode a {pixels.shape} {pixels.dtype} image as PNG")
    atomic_write(path, lambda f: f.write(data))


class MatteSequenceWriter:
    """Per-object PNG sequences: ``out_dir/object_<id>/<video>_object_<id>.%04d.png`` (and, with ``combined``,
    ``out_dir/all/<video>_all.%04d.png`` for all objects together).

    ``content="matte"``: 8-bit greyscale, 255 = object. ``content="cutout"``: RGBA, the frame's colours with the
    matte as straight (unpremultiplied) alpha. Mattes are drawn by ``mattes`` (shared with the other alpha outputs;
    they carry its clean-up's feather). ``object_ids`` known up front get a sequence from the first frame; an id first
    seen later gets empty frames back-filled, so every sequence has every frame. ``out_dir`` must be empty unless
    ``overwrite``.
    """

    def __init__(self, out_dir: str | Path, *, video: str, timeline: Timeline = Timeline(),
                 content: MatteContent = "matte", combined: bool = False, object_ids: Iterable[int] = (),
                 names: Mapping[int, str] | None = None, mattes: Mattes | None = None, overwrite: bool = False,
                 compress_level: int = 1):
        if content not in ("matte", "cutout"):
            raise InputError(f"matte content must be 'matte' or 'cutout', got {content!r}")
        self.out_dir = Path(out_dir)
        claim_folder(self.out_dir, overwrite, "--cutout" if content == "cutout" else "--alpha")
        self.needs_frame = content == "cutout"
        self.video, self.timeline, self.content = video, timeline, content
        self.names = dict(names or {})
        self.mattes, self.compress_level = mattes or Mattes(), compress_level
        self.combined = combined
        self.sequences: dict[int | None, NumberedFiles] = {}  #: object id (None = all objects) -> its files
        self.frames = 0
        self._size: tuple[int, int] | None = None
        self._pending = sorted({int(i) for i in object_ids})

    def _start(self, object_id: int | None) -> None:
        folder = "all" if object_id is None else f"object_{object_id}"
        files = NumberedFiles(self.out_dir / folder, f"{self.video}_{folder}", ".png")
        files.start()
        self.sequences[object_id] = files
        if self.frames:
            empty = np.zeros(self._size + ((4,) if self.needs_frame else ()), np.uint8)
            for index in range(self.frames):
                save_png(files.path(self.timeline.number(index)), empty, self.compress_level)

    def write(self, index: int, name: str, labels: np.ndarray, frame: np.ndarray | None) -> None:
        if index != self.frames:
            raise RuntimeError(f"{self.out_dir}: sequences need frames in index order, got frame {index} after "
                               f"{self.frames} frames")
        self._size = labels.shape
        wanted = [None] if self.combined else []
        for object_id in wanted + sorted(set(self._pending) | set(self.mattes.ids(index, labels))):
            if object_id not in self.sequences:
                self._start(object_id)
        self._pending = []
        number = self.timeline.number(index)
        for object_id, files in self.sequences.items():
            alpha = self.mattes.alpha(index, labels, object_id)
            save_png(files.path(number), cutout(frame, alpha) if self.needs_frame else alpha, self.compress_level)
        self.frames += 1

    def close(self, complete: bool = True) -> None:
        if not complete or not self.frames:
            return
        height, width = self._size
        for object_id, files in self.sequences.items():
            ids = [i for i in self.sequences if i is not None] if object_id is None else [object_id]
            files.write_sidecar({
                "content": self.content, "alpha": "straight" if self.needs_frame else "luminance (255 = object)",
                **self.timeline.describe(), "frame_count": self.frames, "width": width, "height": height,
                "video": self.video, "objects": objects_entry(ids, self.names), "feather": self.mattes.cleanup.feather})
