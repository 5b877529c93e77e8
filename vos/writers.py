"""Result writers: per-frame label maps out to disk on a background thread, every file written atomically.

``AsyncWriter`` owns one thread and a bounded queue; output formats plug into it. Each format is a small class with
``write(index, name, labels, frame)`` and ``close(complete)``, where ``labels`` is the frame's (H, W) uint8 map of the
user's object ids and ``frame`` its (H, W, 3) uint8 RGB image (passed only to formats with ``needs_frame``).

Atomic: each file is written to a hidden temp file in its final folder and moved into place with ``os.replace``, so a
crash or kill never leaves a half-written output under its final name (this guards against the process dying, not
against power loss: nothing is fsynced). Per-frame files that were finished before an error or interruption stay;
whole-video files (overlay mp4, COCO JSON) appear only when the video completes. ``completed_frames`` lists what a
folder already holds so runners can resume.

The label formats live here; the formats editors import live in their own modules: numbered matte and cut-out PNG
sequences (``vos.sequences``), alpha video (``vos.alpha_video``), EXR channels (``vos.exr``), all drawing their mattes
through ``vos.mattes``.
"""

from __future__ import annotations

import io
import json
import os
import queue
import threading
from collections.abc import Callable, Iterable, Sequence
from fractions import Fraction
from pathlib import Path
from typing import Literal, Protocol

import numpy as np
from PIL import Image

from seggpt_core.atomic import atomic_write, remove_stale_temps, temp_path
from seggpt_core.errors import InputError

from .masks import davis_palette, object_ids_in
from .threads import BACKGROUND_NICE, lower_priority


def completed_frames(folder: str | Path, suffix: str = ".png") -> set[str]:
    """Names (stems) of the frames already written to ``folder``; every such file is complete, as writes are atomic."""
    folder = Path(folder)
    if not folder.is_dir():
        return set()
    return {p.stem for p in folder.iterdir() if p.suffix == suffix and not p.name.startswith(".")}


def _png_bytes_writer(image: Image.Image, compress_level: int) -> Callable[[io.BufferedWriter], None]:
    return lambda f: image.save(f, format="PNG", compress_level=compress_level)


def _full_palette(palette: np.ndarray | None) -> np.ndarray:
    """A (256, 3) uint8 palette: ``palette`` padded with the DAVIS colours (all DAVIS colours when None)."""
    full = davis_palette()
    if palette is not None:
        palette = np.asarray(palette, np.uint8).reshape(-1, 3)[:256]
        full[: len(palette)] = palette
    return full


# --- output formats ---------------------------------------------------------------------------------------------------


class FrameWriter(Protocol):
    """One output format. ``needs_frame``: whether ``write`` uses the RGB frame (else it gets None)."""

    needs_frame: bool

    def write(self, index: int, name: str, labels: np.ndarray, frame: np.ndarray | None) -> None: ...

    def close(self, complete: bool = True) -> None: ...


class PalettePngWriter:
    """``out_dir/<name>.png`` palette PNGs of the ids (DAVIS layout when ``out_dir`` is ``OUT/<video>``).

    ``palette``: the input mask's palette (DAVIS colours when None). ``only_frames``: write just these frame names
    (YouTube-VOS asks for the frames in its meta.json).
    """

    needs_frame = False

    def __init__(self, out_dir: str | Path, *, palette: np.ndarray | None = None,
                 only_frames: Iterable[str] | None = None, compress_level: int = 1):
        self.out_dir = Path(out_dir)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        remove_stale_temps(self.out_dir, ".png")
        self.palette = _full_palette(palette).ravel().tolist()
        self.only_frames = None if only_frames is None else set(only_frames)
        self.compress_level = compress_level

    def write(self, index: int, name: str, labels: np.ndarray, frame: np.ndarray | None) -> None:
        if self.only_frames is not None and name not in self.only_frames:
            return
        image = Image.fromarray(np.ascontiguousarray(labels, np.uint8))
        image.putpalette(self.palette)
        atomic_write(self.out_dir / f"{name}.png", _png_bytes_writer(image, self.compress_level))

    def close(self, complete: bool = True) -> None:
        pass


class NumpyWriter:
    """``out_dir/<name>.npy``: each frame's (H, W) uint8 ids."""

    needs_frame = False

    def __init__(self, out_dir: str | Path):
        self.out_dir = Path(out_dir)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        remove_stale_temps(self.out_dir, ".npy")

    def write(self, index: int, name: str, labels: np.ndarray, frame: np.ndarray | None) -> None:
        atomic_write(self.out_dir / f"{name}.npy", lambda f: np.save(f, np.asarray(labels, np.uint8)))

    def close(self, complete: bool = True) -> None:
        pass


def finish_encoder(encoder, tmp: Path, path: Path, complete: bool) -> None:
    """Close an imageio-ffmpeg encoder that writes the temp file ``tmp`` and, when the stream is ``complete``, move the
    video onto ``path``; an interrupted stream leaves no file."""
    try:
        encoder.close()
        if complete:
            os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


OverlayStyle = Literal["fill", "outline"]


class OverlayVideoWriter:
    """An H.264 mp4 (libx264, yuv420p) of the frames with the objects drawn in their palette colours: ``fill`` mixes
    each object's pixels ``alpha`` towards its colour; ``outline`` paints only a band ``outline_width`` pixels wide
    inside each object's edge and leaves the rest of the frame as it is, so edges are easy to judge.

    ``fps``: a ``Fraction`` keeps rates such as 30000/1001 exact. ``quality`` is imageio-ffmpeg's 0..10 scale (7 =
    CRF 15); x264's ``preset`` trades file size for encoding time (veryfast costs about half of the default medium).

    Odd frame sizes are padded by one edge pixel (yuv420p needs even sizes). The video is encoded to a temp file and
    renamed when the stream completes; an interrupted run leaves no mp4.
    """

    needs_frame = True
    suffixes = (".mp4", ".mov", ".mkv")  #: containers FFmpeg muxes H.264 into

    def __init__(self, path: str | Path, *, fps: Fraction | float = 24, palette: np.ndarray | None = None,
                 alpha: float = 0.3, style: OverlayStyle = "fill", outline_width: int = 2, quality: float = 7.0,
                 preset: str = "veryfast"):
        self.path = Path(path)
        if self.path.suffix.lower() not in self.suffixes:
            raise InputError(f"{self.path}: an H.264 overlay is written as {', '.join(self.suffixes)} only; name it "
                             f"{self.path.with_suffix('.mp4').name}")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_temps(self.path.parent, self.path.suffix, self.path.stem)
        self.fps = fps
        self.colours = _full_palette(palette)
        self.alpha = alpha
        self.style = style
        self.outline_width = outline_width
        self.quality = quality
        self.preset = preset
        self._tmp: Path | None = None
        self._encoder = None

    def _start(self, height: int, width: int) -> None:
        import imageio_ffmpeg

        self._tmp = temp_path(self.path)
        self._encoder = imageio_ffmpeg.write_frames(
            str(self._tmp), (width + width % 2, height + height % 2), fps=self.fps, codec="libx264",
            pix_fmt_out="yuv420p", quality=self.quality, macro_block_size=2, ffmpeg_log_level="error",
            output_params=["-preset", self.preset])
        self._encoder.send(None)

    def blend(self, labels: np.ndarray, frame: np.ndarray) -> np.ndarray:
        """(H, W) ids, (H, W, 3) uint8 frame -> the frame with the objects drawn in (``style``)."""
        import cv2

        if self.style == "outline":
            kernel = np.ones((2 * self.outline_width + 1,) * 2, np.uint8)
            edge = (labels > 0) & ((cv2.erode(labels, kernel) != labels) | (cv2.dilate(labels, kernel) != labels))
            return np.where(edge[..., None], self.colours[labels], frame)
        mixed = cv2.addWeighted(frame, 1.0 - self.alpha, self.colours[labels], self.alpha, 0.0)
        return np.where((labels > 0)[..., None], mixed, frame)

    def write(self, index: int, name: str, labels: np.ndarray, frame: np.ndarray | None) -> None:
        height, width = labels.shape
        if self._encoder is None:
            self._start(height, width)
        out = self.blend(labels, frame)
        if height % 2 or width % 2:
            out = np.pad(out, ((0, height % 2), (0, width % 2), (0, 0)), mode="edge")
        self._encoder.send(np.ascontiguousarray(out))

    def close(self, complete: bool = True) -> None:
        if self._encoder is not None:
            encoder, self._encoder = self._encoder, None
            finish_encoder(encoder, self._tmp, self.path, complete)


# --- COCO run-length encoding -----------------------------------------------------------------------------------------


def rle_encode(mask: np.ndarray) -> list[int]:
    """COCO RLE counts of a (H, W) bool mask: run lengths in column-major order, starting with a run of zeros."""
    flat = np.asarray(mask, bool).ravel(order="F")
    if flat.size == 0:
        return []
    change = np.flatnonzero(flat[1:] != flat[:-1]) + 1
    bounds = np.concatenate([[0], change, [flat.size]])
    counts = np.diff(bounds).tolist()
    return [0] + counts if flat[0] else counts


def rle_decode(counts: Sequence[int], height: int, width: int) -> np.ndarray:
    """(H, W) bool mask from COCO RLE counts (inverse of ``rle_encode``)."""
    values = np.arange(len(counts)) % 2 == 1
    flat = np.repeat(values, counts)
    if flat.size != height * width:
        raise ValueError(f"RLE covers {flat.size} pixels, not {height}x{width}")
    return flat.reshape((height, width), order="F")


def rle_to_string(counts: Sequence[int]) -> str:
    """COCO's compressed RLE string (pycocotools ``rleToString``).

    Each count from the third on is stored as the difference to the count two places before it; every value is cut
    into 5-bit groups, least significant first, each written as chr(48 + group), with bit 0x20 set on all groups but
    the last. The last group's bit 0x10 is the sign, so a group ends once the rest is 0 (or -1 for negatives).
    """
    chars = []
    for i, count in enumerate(counts):
        x = int(count) - (int(counts[i - 2]) if i > 2 else 0)
        more = True
        while more:
            group = x & 0x1F
            x >>= 5
            more = x != -1 if group & 0x10 else x != 0
            chars.append(chr(48 + (group | 0x20 if more else group)))
    return "".join(chars)


def rle_from_string(text: str) -> list[int]:
    """COCO RLE counts from the compressed string (pycocotools ``rleFrString``)."""
    counts: list[int] = []
    pos = 0
    while pos < len(text):
        x = shift = 0
        while True:
            group = ord(text[pos]) - 48
            pos += 1
            x |= (group & 0x1F) << shift
            shift += 5
            if not group & 0x20:
                if group & 0x10:
                    x -= 1 << shift
                break
        if len(counts) > 2:
            x += counts[-2]
        counts.append(x)
    return counts


class CocoRleWriter:
    """One COCO instance-segmentation JSON for the video, masks as RLE; readable by pycocotools' ``COCO``.

    ``images`` = frames (``id`` = frame index, ``file_name`` = frame name), ``categories`` = objects (``id`` = user
    object id), ``annotations`` = one per object per frame where it is present, with ``segmentation`` =
    ``{"size": [H, W], "counts": ...}`` (compressed string, or the list of run lengths when ``compressed=False``),
    ``area`` and ``bbox`` [x, y, w, h]. Annotations stream to a temp file as frames arrive (memory stays flat); the
    JSON is renamed into place when the video completes.
    """

    needs_frame = False

    def __init__(self, path: str | Path, *, video: str = "", compressed: bool = True):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_temps(self.path.parent, self.path.suffix, self.path.stem)
        self.video = video
        self.compressed = compressed
        self._tmp = temp_path(self.path)
        self._file = open(self._tmp, "w", encoding="utf-8")
        self._file.write('{"annotations": [')
        self._images: list[dict] = []
        self._objects: set[int] = set()
        self._next_id = 1

    def write(self, index: int, name: str, labels: np.ndarray, frame: np.ndarray | None) -> None:
        height, width = labels.shape
        self._images.append({"id": index, "file_name": name, "height": height, "width": width})
        for object_id in object_ids_in(labels):
            mask = labels == object_id
            counts = rle_encode(mask)
            rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
            annotation = {
                "id": self._next_id, "image_id": index, "category_id": object_id, "iscrowd": 0,
                "area": int(mask.sum()),
                "bbox": [int(cols[0]), int(rows[0]), int(cols[-1] - cols[0] + 1), int(rows[-1] - rows[0] + 1)],
                "segmentation": {"size": [height, width],
                                 "counts": rle_to_string(counts) if self.compressed else counts},
            }
            self._file.write((", " if self._next_id > 1 else "") + json.dumps(annotation))
            self._next_id += 1
            self._objects.add(object_id)

    def close(self, complete: bool = True) -> None:
        if self._file.closed:
            return
        try:
            if complete:
                categories = [{"id": i, "name": f"object {i}"} for i in sorted(self._objects)]
                self._file.write('], "images": ' + json.dumps(self._images) + ', "categories": '
                                 + json.dumps(categories) + ', "info": ' + json.dumps({"video": self.video}) + "}")
            self._file.close()
            if complete:
                os.replace(self._tmp, self.path)
        finally:
            self._file.close()
            self._tmp.unlink(missing_ok=True)


# --- the background thread --------------------------------------------------------------------------------------------


class AsyncWriter:
    """Feeds frames to output formats on one background thread through a queue of ``queue_size`` frames.

    ``cleanup`` (a ``vos.mattes.MatteCleanup``, or any (H, W) uint8 ids -> ids function) runs on the labels on this
    thread before every format sees them.

    ``nice``: how much lower the thread's scheduling priority is than the main thread's (``threads.lower_priority``;
    Linux, where priority is per thread; the encoder processes it starts, ffmpeg, inherit it). Writing is background
    work: when the model's thread and the writing want the same core, the model should get it, and the writing catches
    up while the model waits on its next frame; only a full queue makes the caller wait. 0 keeps the caller's
    priority.

    ``put`` blocks only when the queue is full. An error in a format stops all writing and is re-raised by the next
    ``put`` or by ``close``. ``close()`` writes everything queued and finishes the formats; used as a context manager,
    an exception in the body still writes the queued frames but discards whole-video outputs. The caller must not
    modify arrays after passing them to ``put``.
    """

    def __init__(self, formats: Sequence[FrameWriter], *, queue_size: int = 8,
                 cleanup: Callable[[np.ndarray], np.ndarray] | None = None, nice: int = BACKGROUND_NICE):
        if nice < 0:
            raise ValueError(f"nice must be >= 0 (a lower priority than the caller's), got {nice}")
        self.formats = list(formats)
        self.cleanup = cleanup
        self.nice = nice
        self._needs_frame = any(f.needs_frame for f in self.formats)
        self._queue: queue.Queue = queue.Queue(maxsize=queue_size)
        self._error: BaseException | None = None
        self._closed = False
        self._thread = threading.Thread(target=self._work, name="writer", daemon=True)
        self._thread.start()

    def _work(self) -> None:
        lower_priority(self.nice)
        while True:
            item = self._queue.get()
            if item is None:
                return
            if self._error is not None:
                continue  # keep draining so that put() never blocks on a dead writer
            index, name, labels, frame = item
            try:
                if self.cleanup is not None:
                    labels = self.cleanup(labels)
                for fmt in self.formats:
                    fmt.write(index, name, labels, frame if fmt.needs_frame else None)
            except BaseException as error:  # noqa: BLE001 - re-raised in the caller
                self._error = error

    def _raise_error(self) -> None:
        if self._error is not None:
            raise self._error

    def put(self, index: int, name: str, labels: np.ndarray, frame: np.ndarray | None = None) -> None:
        """Queue frame ``index`` (output ``name``): (H, W) uint8 user ids and, for overlay formats, its RGB frame."""
        if self._closed:
            raise RuntimeError("writer is closed")
        self._raise_error()
        if self._needs_frame and frame is None:
            raise ValueError("an overlay output needs the RGB frame: pass frame=")
        self._queue.put((index, name, labels, frame))

    def close(self, complete: bool = True) -> None:
        """Write what is queued, then finish every format (``complete=False``: discard whole-video outputs)."""
        if self._closed:
            return
        self._closed = True
        self._queue.put(None)
        self._thread.join()
        failed = self._error is not None
        errors = []
        for fmt in self.formats:
            try:
                fmt.close(complete and not failed)
            except BaseException as error:  # noqa: BLE001 - first one re-raised below
                errors.append(error)
        self._raise_error()
        if errors:
            raise errors[0]

    def __enter__(self) -> AsyncWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            try:
                self.close(complete=False)
            except BaseException:  # noqa: BLE001 - the body's exception is the one to report
                pass
