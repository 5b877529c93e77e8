"""Frame sources: video files (decord, random access; OpenCV for what decord cannot open), frame folders, frames in
memory and live iterators.

Every source is an iterable of ``Frame(index, name, rgb)`` with ``rgb`` a (H, W, 3) uint8 RGB array that the consumer
owns (never a view into a shared buffer, so holding a few frames never pins a whole decoded chunk). Seekable sources
(files, folders, lists) also give ``frame(i)`` and ``read(indices)`` in any order, e.g. backwards; a live stream is
read once, in order. Decoding runs on a background thread a bounded number of items ahead, so it overlaps the model
and the frames in flight stay bounded: never more than ``prefetch + 2`` chunks (video files) or ``prefetch + 2``
frames (folders, iterators). Stopping early (``break``, an exception, ``close()`` on the iterator) stops and joins
that thread.

Bad input raises ``InputError`` with one line naming the file and the fix: at construction when it can be seen up
front (missing path, unreadable video, no frames, mixed frame sizes), and while iterating otherwise (a video that is
truncated part way, a live frame of the wrong shape).
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterable, Iterator, Sequence
from fractions import Fraction
from pathlib import Path
from typing import NamedTuple

import numpy as np
from PIL import Image

from seggpt_core.errors import InputError

from .frame_folders import IMAGE_SUFFIXES, list_frames
from .threads import prefetch

#: Extensions read as video files (anything else that FFmpeg opens works too).
VIDEO_SUFFIXES = (".mp4", ".mkv", ".avi", ".webm", ".mov")

#: Seconds the decoding thread may wait in all for a slower consumer before it parks decord
#: (``VideoFileSource._park``), then again: the bound on how far decord decodes ahead on its own, which it does at
#: its full speed, without limit (about 0.6 GB/s of 480p frames here, so about 0.1 GB at most). A park costs the next
#: chunk a decode from the keyframe before it; a consumer that keeps up never pays it.
PARK_AFTER = 0.5


class Frame(NamedTuple):
    """One decoded frame: position in the stream, output name (file stem or ``%05d``), (H, W, 3) uint8 RGB."""

    index: int
    name: str
    rgb: np.ndarray


def exact_fps(rate: Fraction | float | None) -> Fraction | None:
    """The exact frame rate behind a container's rate read as a float (OpenCV, decord): None when unknown (<= 0).

    Rates are fractions with small denominators (25, 24000/1001, 25/2): the closest fraction with a denominator up
    to 1001 recovers them from the float. Matroska/WebM store durations in milliseconds, so their 60000/1001 reads
    as 59.940063; rates within 10 ppm of an NTSC rate (k * 1000/1001) or an integer rate are snapped to it (so a
    rate stored as 2997/100 also becomes 30000/1001, the rate editors mean by 29.97).
    """
    if rate is None or not rate > 0:
        return None
    if isinstance(rate, Fraction):
        return rate
    fps = Fraction(rate).limit_denominator(1001)
    if fps.denominator not in (1, 1001):
        for standard in (Fraction(round(rate)), Fraction(round(rate * 1.001) * 1000, 1001)):
            if standard > 0 and abs(rate / standard - 1) < 1e-5:
                return standard
    return fps


def chunk_sizes(chunk_size: int) -> Iterator[int]:
    """The sizes of a forward read's chunks: 1, 2, 4, ... up to ``chunk_size``, then ``chunk_size`` for good. The first
    frame reaches the consumer after one frame's decode rather than a whole chunk's (16 frames of 480p H.264 are about
    50 ms, the start of every run), and the chunks are full size from the fifth on."""
    size = 1
    while True:
        yield min(size, chunk_size)
        size *= 2


def frame_name(index: int) -> str:
    """Output name of frame ``index`` when the input has no names of its own (video files, live streams)."""
    return f"{index:05d}"


class FrameSource:
    """Base of all frame sources: an iterable of ``Frame`` plus what is known about the stream.

    Attributes: ``name`` (the video's name, used for output folders), ``size`` ((H, W), None for a live stream until
    its first frame), ``num_frames`` (None for a live stream or a video whose header has no count), ``fps`` (the exact
    rate as a ``Fraction``, e.g. ``Fraction(30000, 1001)`` for NTSC 29.97, see ``exact_fps``; None when unknown).
    ``len(source)`` works when ``num_frames`` is known and raises TypeError otherwise, like any iterator.

    Random access (``seekable``: files and folders): ``frame(i)`` and ``read(indices)`` in any order, e.g. backwards.
    """

    name: str
    size: tuple[int, int] | None = None
    num_frames: int | None = None
    fps: Fraction | None = None
    seekable: bool = False

    def __iter__(self) -> Iterator[Frame]:
        return self.read(range(len(self)))

    def __len__(self) -> int:
        if self.num_frames is None:
            raise TypeError(f"source {self.name!r} has no known length (a live stream)")
        return self.num_frames

    def frame_name(self, index: int) -> str:
        """Output name of frame ``index``."""
        return frame_name(index)

    def frame(self, index: int) -> np.ndarray:
        """Frame ``index`` as (H, W, 3) uint8 RGB."""
        raise InputError(f"{self.name}: frames of a live stream cannot be read out of order; give a video file or a "
                         "frame folder")

    def read(self, indices: Iterable[int]) -> Iterator[Frame]:
        """The frames ``indices`` in that order (any order), decoded ahead on a background thread."""
        raise NotImplementedError

    def _check_index(self, index: int) -> None:
        if not 0 <= index < len(self):
            raise InputError(f"{self.name}: frame {index} does not exist; the video has frames 0..{len(self) - 1}")


class _VideoFile(FrameSource):
    """A video file read in chunks of up to ``chunk_size`` frames (growing to it at the start of a forward read,
    ``chunk_sizes``), ``prefetch`` chunks ahead: the start both decoders share (the path checked, the name); then
    ``_probe`` reads what the file says about itself."""

    def __init__(self, path: str | Path, *, chunk_size: int = 16, prefetch: int = 2, name: str | None = None):
        self.path = Path(path)
        if not self.path.is_file():
            raise InputError(f"{self.path}: video file does not exist; check the path")
        self.chunk_size = chunk_size
        self.prefetch = prefetch
        self.name = name or self.path.stem
        self._probe()

    def _probe(self) -> None:
        """Set ``num_frames``, ``size`` and ``fps`` from the file; an ``InputError`` when it cannot be decoded."""
        raise NotImplementedError


class VideoFileSource(_VideoFile):
    """A video file decoded with decord, random access: ``read`` takes runs of up to ``chunk_size`` indices at a time
    with one ``get_batch`` call (consecutive runs decode without seeking, and a forward read starts with runs of 1, 2,
    4, ... frames; a backward run seeks once per chunk),
    ``prefetch`` chunks ahead on a background thread. Frame names are ``%05d`` of the index.

    Memory: decord decodes ahead on its own thread after every read, without bound while the caller does something
    else; the reader is therefore parked (``_park``) each time the decoding thread has waited :data:`PARK_AFTER`
    seconds in all for a slower consumer, and after every random access. Figures (``scripts/bench_readers.py``) are in the README.
    A file decord cannot open (or ``backend="opencv"``) falls back to ``OpenCVFileSource`` (sequential only).
    """

    seekable = True

    def _probe(self) -> None:
        self._lock = threading.Lock()
        self._reader = self._open()
        self.num_frames = len(self._reader)
        if not self.num_frames:
            raise InputError(f"{self.path}: cannot open as a video (no frames); re-encode it (e.g. ffmpeg -i IN -c:v "
                             "libx264 OUT.mp4) or give a frame folder")
        self._first = None
        self._first = self._decode([0])[0]
        self._park()
        self.size = self._first.shape[:2]
        self.fps = exact_fps(self._reader.get_avg_fps())

    def _open(self):
        import decord

        try:
            return decord.VideoReader(str(self.path), ctx=decord.cpu(0), num_threads=1)
        except (RuntimeError, decord.DECORDError) as error:
            raise InputError(f"{self.path}: cannot open as a video (unreadable, truncated, or no frames: "
                             f"{_one_line(error, 80)}); re-encode it (e.g. ffmpeg -i IN -c:v libx264 OUT.mp4) or give "
                             "a frame folder") from None

    def _decode(self, indices: list[int]) -> list[np.ndarray]:
        """(H, W, 3) uint8 RGB copies of ``indices`` (one ``get_batch``); a failure is a truncated file. Frame 0 alone
        (a keyframe at the start, every run's first read) is the copy ``_probe`` kept: decoding it again would cost a
        seek and a restart of the decoder, about 20 ms on 480p H.264."""
        import decord

        if indices == [0] and self._first is not None:
            return [self._first.copy()]
        order = sorted(set(indices))
        try:
            with self._lock:
                batch = self._reader.get_batch(order).asnumpy()
        except (RuntimeError, decord.DECORDError) as error:
            raise InputError(f"{self.path}: decoding stopped near frame {order[0]} of the {self.num_frames} in its "
                             f"header ({_one_line(error, 80)}); the video is truncated or corrupt: re-encode or "
                             "re-download it") from None
        by_index = {i: np.array(f) for i, f in zip(order, batch)}
        return [by_index[i] for i in indices]

    def _park(self) -> None:
        """Stop decord decoding ahead: after a read it keeps decoding on its own thread while the caller is busy
        elsewhere, growing without bound (22 MB/s on 480p, ``scripts/bench_readers.py``); a seek to frame 0 stops it.
        """
        with self._lock:
            self._reader.seek(0)

    def frame(self, index: int) -> np.ndarray:
        self._check_index(index)
        rgb = self._decode([index])[0]
        self._park()
        return rgb

    def _chunks(self, indices: list[int]) -> Iterator[list[tuple[int, np.ndarray]]]:
        """Runs of ``indices`` decoded one ``get_batch`` each: growing (``chunk_sizes``) when the read goes forward, a
        constant ``chunk_size`` otherwise (each backward chunk seeks, so small ones would cost a seek each)."""
        forward = all(b > a for a, b in zip(indices, indices[1:]))
        sizes = chunk_sizes(self.chunk_size) if forward else itertools.repeat(self.chunk_size)
        start = 0
        for size in sizes:
            if start >= len(indices):
                return
            part = indices[start:start + size]
            yield list(zip(part, self._decode(part)))
            start += size

    def read(self, indices: Iterable[int]) -> Iterator[Frame]:
        indices = list(indices)
        for index in indices:
            self._check_index(index)
        try:
            for chunk in prefetch(self._chunks(indices), self.prefetch, name=f"decode:{self.name}",
                                  on_wait=self._park, on_wait_after=PARK_AFTER):
                for index, rgb in chunk:
                    yield Frame(index, frame_name(index), rgb)
        finally:
            self._park()


class OpenCVFileSource(_VideoFile):
    """A video file decoded in order with OpenCV's FFmpeg backend, in chunks of ``chunk_size`` frames, ``prefetch``
    chunks ahead: the fallback for files decord cannot open. Sequential only (``read`` takes increasing indices);
    ``frame(i)`` decodes from the start."""

    def _probe(self) -> None:
        import cv2

        capture = self._open()
        try:
            count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
            fps = float(capture.get(cv2.CAP_PROP_FPS))
            ok, first = capture.read()
        finally:
            capture.release()
        if not ok:
            raise InputError(f"{self.path}: no frame could be decoded (the video is empty, truncated or corrupt); "
                             "re-encode it (e.g. ffmpeg -i IN -c:v libx264 OUT.mp4) or give a frame folder")
        self.num_frames = count if count > 0 else None
        self.size = first.shape[:2]
        self.fps = exact_fps(fps)

    def _open(self):
        import cv2

        capture = cv2.VideoCapture(str(self.path), cv2.CAP_FFMPEG)
        if not capture.isOpened():
            raise InputError(f"{self.path}: cannot open as a video (unreadable, truncated, or no frames); re-encode "
                             "it (e.g. ffmpeg -i IN -c:v libx264 OUT.mp4) or give a frame folder")
        return capture

    def _chunks(self) -> Iterator[list[np.ndarray]]:
        """Lists of up to ``chunk_size`` (H, W, 3) RGB frames, in order; a short read is a truncated video."""
        capture = self._open()
        decoded, chunk, sizes = 0, [], chunk_sizes(self.chunk_size)
        size = next(sizes)
        try:
            for rgb in _capture_frames(capture):
                if rgb.shape[:2] != self.size:
                    raise InputError(f"{self.path}: frame {decoded + len(chunk)} is {rgb.shape[1]}x{rgb.shape[0]} but "
                                     f"the video started at {self.size[1]}x{self.size[0]}; re-encode it at one size")
                chunk.append(rgb)
                if len(chunk) == size:
                    yield chunk
                    decoded, chunk, size = decoded + len(chunk), [], next(sizes)
            if chunk:
                yield chunk
                decoded += len(chunk)
        finally:
            capture.release()
        if self.num_frames is not None and decoded < self.num_frames:
            raise InputError(f"{self.path}: decoding stopped at frame {decoded} of the {self.num_frames} in its "
                             "header; the video is truncated or corrupt: re-encode or re-download it")

    def __iter__(self) -> Iterator[Frame]:
        index = 0
        for chunk in prefetch(self._chunks(), self.prefetch, name=f"decode:{self.name}"):
            for rgb in chunk:
                yield Frame(index, frame_name(index), rgb)
                index += 1

    def read(self, indices: Iterable[int]) -> Iterator[Frame]:
        wanted = list(indices)
        if any(b <= a for a, b in zip(wanted, wanted[1:])):
            raise InputError(f"{self.path}: this video can only be read from start to end (decord cannot open it); "
                             "re-encode it (e.g. ffmpeg -i IN -c:v libx264 OUT.mp4) to track backwards")
        if not wanted:
            return
        position = 0
        for frame in self:
            if frame.index == wanted[position]:
                yield frame
                position += 1
                if position == len(wanted):
                    return

    def frame(self, index: int) -> np.ndarray:
        return next(iter(self.read([index]))).rgb


class FrameFolderSource(FrameSource):
    """A folder of images (jpg, jpeg, png, bmp), in natural order of file names; frame names are the file stems.

    All image headers are checked up front, so a folder with mixed sizes fails before any work is done.
    """

    def __init__(self, path: str | Path, *, prefetch: int = 4, name: str | None = None):
        self.path = Path(path)
        if not self.path.is_dir():
            raise InputError(f"{self.path}: frame folder does not exist; check the path")
        self.prefetch = prefetch
        self.name = name or self.path.name
        self.files = list_frames(self.path)
        if not self.files:
            raise InputError(f"{self.path}: no frames (no {'/'.join(s[1:] for s in IMAGE_SUFFIXES)} files); give a "
                             "folder of frame images or a video file")
        self.names = [p.stem for p in self.files]
        if len(set(self.names)) != len(self.names):
            dup = next(n for n in self.names if self.names.count(n) > 1)
            raise InputError(f"{self.path}: two frames named {dup!r} with different extensions; keep one of them")
        self.num_frames = len(self.files)
        self.size = self._check_sizes()

    def _check_sizes(self) -> tuple[int, int]:
        size = None
        for p in self.files:
            try:
                with Image.open(p) as im:
                    hw = (im.height, im.width)
            except (OSError, Image.DecompressionBombError) as error:  # unreadable, or beyond PIL's pixel limit
                raise InputError(f"{p}: cannot read image ({_one_line(error)}); replace or remove it") from None
            if size is None:
                size = hw
            elif hw != size:
                raise InputError(f"{p}: frame is {hw[1]}x{hw[0]} but {self.files[0].name} is {size[1]}x{size[0]}; "
                                 "all frames of a video must have one size")
        return size

    seekable = True

    def frame_name(self, index: int) -> str:
        return self.names[index]

    def frame(self, index: int) -> np.ndarray:
        self._check_index(index)
        return read_image(self.files[index])

    def read(self, indices: Iterable[int]) -> Iterator[Frame]:
        indices = list(indices)
        for index in indices:
            self._check_index(index)
        frames = prefetch((read_image(self.files[i]) for i in indices), self.prefetch, name=f"read:{self.name}")
        for index, rgb in zip(indices, frames):
            yield Frame(index, self.names[index], rgb)


def read_image(path: str | Path) -> np.ndarray:
    """One image file as (H, W, 3) uint8 RGB; a missing or unreadable file is an ``InputError`` naming it."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: image does not exist; check the path")
    try:
        with Image.open(path) as im:
            return np.asarray(im.convert("RGB"))
    except (OSError, Image.DecompressionBombError) as error:  # unreadable, or beyond PIL's pixel limit
        raise InputError(f"{path}: cannot read image ({_one_line(error)}); replace or remove it") from None


class IteratorSource(FrameSource):
    """Live frames from any iterable of (H, W, 3) uint8 RGB arrays (or PIL images), or from a ``cv2.VideoCapture``.

    A ``VideoCapture`` is read until ``read()`` fails and its BGR frames are turned into RGB. A stream is read once,
    in order; a sequence (a list of frames in memory) is random access. ``size`` is set by the first frame and every
    later frame must match it.
    """

    def __init__(self, frames: Iterable | object, *, name: str = "stream", fps: Fraction | float | None = None,
                 prefetch: int = 2):
        self.name = name
        self.prefetch = prefetch
        self._started = False
        self._stream: Iterator[Frame] | None = None
        self._position = 0
        if _is_capture(frames):
            self._frames: Iterable = _capture_frames(frames)
            if fps is None:
                import cv2

                fps = float(frames.get(cv2.CAP_PROP_FPS))
        else:
            self._frames = frames
            if hasattr(frames, "__len__"):
                self.num_frames = len(frames)
            self.seekable = isinstance(frames, Sequence)  # frames in memory (a list): random access
            if self.seekable and len(frames):
                self._checked(0, frames[0])  # sets ``size``
        self.fps = exact_fps(fps)

    def _checked(self, index: int, frame) -> np.ndarray:
        if isinstance(frame, Image.Image):
            frame = frame.convert("RGB")
        rgb = np.asarray(frame)
        if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
            raise InputError(f"{self.name}: frame {index} is a {rgb.dtype} array of shape {rgb.shape}; give "
                             "(H, W, 3) uint8 RGB frames")
        if self.size is None:
            self.size = rgb.shape[:2]
        elif rgb.shape[:2] != self.size:
            raise InputError(f"{self.name}: frame {index} is {rgb.shape[1]}x{rgb.shape[0]} but the stream started "
                             f"at {self.size[1]}x{self.size[0]}; all frames must have one size")
        return rgb

    def __iter__(self) -> Iterator[Frame]:
        if self._started:
            raise InputError(f"{self.name}: a live stream can be read only once; open the source again")
        self._started = True
        for index, frame in enumerate(prefetch(self._frames, self.prefetch, name=f"stream:{self.name}")):
            yield Frame(index, frame_name(index), self._checked(index, frame))

    def frame(self, index: int) -> np.ndarray:
        if not self.seekable:
            return super().frame(index)
        self._check_index(index)
        return self._checked(index, self._frames[index])

    def read(self, indices: Iterable[int]) -> Iterator[Frame]:
        """Frames ``indices`` of an in-memory sequence in any order; of a live stream, the next frames, read once in
        order: ``indices`` must continue where the last ``read`` stopped (0, 1, 2, ...; may be endless,
        ``itertools.count()``); ends with the stream."""
        if self.seekable:
            for index in indices:
                yield Frame(index, frame_name(index), self.frame(index))
            return
        yield from self._read_stream(indices)

    def _read_stream(self, indices: Iterable[int]) -> Iterator[Frame]:
        """The next frames of the stream, read once in order: ``indices`` must continue where the last ``read``
        stopped (0, 1, 2, ...; may be endless, ``itertools.count()``); ends with the stream."""
        if self._stream is None:
            self._stream = iter(self)
        for expected in indices:
            if expected != self._position:
                raise InputError(f"{self.name}: a live stream is read once in order; frame {expected} cannot be read "
                                 f"after frame {self._position - 1}")
            frame = next(self._stream, None)
            if frame is None:
                return
            self._position += 1
            yield frame


def open_source(source: str | Path | Iterable, *, name: str | None = None) -> FrameSource:
    """The right ``FrameSource`` for a video file path, a frame folder path, a ``cv2.VideoCapture`` or an iterable."""
    if isinstance(source, FrameSource):
        return source
    if isinstance(source, (str, Path)):
        path = Path(source)
        if path.is_dir():
            return FrameFolderSource(path, name=name)
        if path.is_file():
            try:
                return VideoFileSource(path, name=name)
            except InputError:
                return OpenCVFileSource(path, name=name)  # what decord cannot open; fails the same way if broken
        raise InputError(f"{path}: does not exist; give a video file ({', '.join(s[1:] for s in VIDEO_SUFFIXES)}) "
                         "or a folder of frames")
    if _is_capture(source) or isinstance(source, Iterable):
        return IteratorSource(source, name=name or "stream")
    raise InputError(f"cannot read frames from a {type(source).__name__}; give a video path, a frame folder, a "
                     "cv2.VideoCapture or an iterable of (H, W, 3) uint8 RGB arrays")


def _is_capture(obj) -> bool:
    return hasattr(obj, "read") and hasattr(obj, "isOpened") and callable(obj.read)


def _capture_frames(capture) -> Iterator[np.ndarray]:
    import cv2

    while True:
        ok, bgr = capture.read()
        if not ok:
            return
        yield cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def _one_line(error: BaseException, limit: int = 160) -> str:
    """An exception's message squeezed onto one short line."""
    text = " ".join(str(error).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."
