"""OpenEXR mattes: one file per frame, one named half-float channel per object (``object_<id>``, 0..1), and ``A``.

Compositors read the channels by name, like Cryptomatte layers (Nuke's Read node, Resolve's Fusion Loader, Blender's
Image node). Written with the OpenEXR project's own Python bindings (pip ``OpenEXR``), ZIP compression, the frame
rate in the standard ``framesPerSecond`` attribute, and a sidecar JSON as for every sequence.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np

from seggpt_core.atomic import atomic_path

from .mattes import Mattes
from .sequences import NumberedFiles, Timeline, claim_folder, objects_entry


#: The channel with all objects together.
ALL_OBJECTS = "A"


def channel_name(object_id: int) -> str:
    return f"object_{object_id}"


def write_exr(path: Path, channels: Mapping[str, np.ndarray], timeline: Timeline) -> None:
    """Atomically write (H, W) float16 ``channels`` to one scanline EXR with ZIP compression."""
    import OpenEXR

    header = {"compression": OpenEXR.ZIP_COMPRESSION, "type": OpenEXR.scanlineimage,
              "framesPerSecond": timeline.fps}

    with atomic_path(path) as tmp, OpenEXR.File(header, dict(channels), num_threads=1) as f:
        f.write(str(tmp))


def read_exr_channels(path: Path) -> dict[str, np.ndarray]:
    """Channel name -> (H, W) pixels of an EXR file."""
    import OpenEXR

    with OpenEXR.File(str(path), separate_channels=True, num_threads=1) as f:
        return {name: channel.pixels for name, channel in f.channels().items()}


class ExrWriter:
    """``out_dir/<video>.%04d.exr``: each frame's objects as half-float channels ``object_<id>`` (1 = object), and
    all objects together as ``A`` (the alpha that viewers and RGBA-only importers show).

    Mattes are drawn by ``mattes`` (shared with the other alpha outputs; they carry its clean-up's feather). Every
    file has the same channels: ids known up front (``object_ids``) from the first frame; an id first seen later is
    added, as an empty channel, to the files already written.
    """

    needs_frame = False

    def __init__(self, out_dir: str | Path, *, video: str, timeline: Timeline = Timeline(),
                 object_ids: Iterable[int] = (), names: Mapping[int, str] | None = None,
                 mattes: Mattes | None = None, overwrite: bool = False):
        self.out_dir = Path(out_dir)
        claim_folder(self.out_dir, overwrite, "--exr")
        self.files = NumberedFiles(self.out_dir, video, ".exr")
        self.files.start()
        self.video, self.timeline, self.mattes = video, timeline, mattes or Mattes()
        self.names = dict(names or {})
        self.object_ids: list[int] = sorted({int(i) for i in object_ids})
        self.frames = 0
        self._size: tuple[int, int] | None = None

    def _add_to_written(self, object_id: int) -> None:
        """Give the files written so far an empty channel for ``object_id``."""
        empty = np.zeros(self._size, np.float16)
        for index in range(self.frames):
            path = self.files.path(self.timeline.number(index))
            write_exr(path, {**read_exr_channels(path), channel_name(object_id): empty}, self.timeline)

    def write(self, index: int, name: str, labels: np.ndarray, frame: np.ndarray | None) -> None:
        if index != self.frames:
            raise RuntimeError(f"{self.out_dir}: EXR sequences need frames in index order, got frame {index} after "
                               f"{self.frames} frames")
        self._size = labels.shape
        for object_id in self.mattes.ids(index, labels):
            if object_id not in self.object_ids:
                self._add_to_written(object_id)
                self.object_ids = sorted(self.object_ids + [object_id])
        channels = {channel_name(i): self.mattes.half(index, labels, i) for i in self.object_ids}
        channels[ALL_OBJECTS] = self.mattes.half(index, labels, None)
        write_exr(self.files.path(self.timeline.number(index)), channels, self.timeline)
        self.frames += 1

    def close(self, complete: bool = True) -> None:
        if not complete or not self.frames:
            return
        height, width = self._size
        self.files.write_sidecar({
            "content": "matte channels (half float, 1 = object; A = all objects)", **self.timeline.describe(),
            "frame_count": self.frames, "width": width, "height": height, "video": self.video,
            "objects": objects_entry(self.object_ids, self.names), "feather": self.mattes.cleanup.feather})
