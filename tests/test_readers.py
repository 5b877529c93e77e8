"""Frame sources: exact frames, bounded streaming, clean thread shutdown and one-line errors on bad input."""

from __future__ import annotations

import gc
import itertools
import os
import sys
import threading
import time
from pathlib import Path

import cv2
import decord
import imageio_ffmpeg
import numpy as np
import pytest
from PIL import Image

from seggpt_core.errors import InputError
from vos.frame_folders import natural_key
from vos.readers import FrameFolderSource, IteratorSource, OpenCVFileSource, VideoFileSource, open_source
from vos.threads import BACKGROUND_NICE, prefetch, prefetched

NUM_FRAMES, HEIGHT, WIDTH = 45, 72, 96


def synthetic_frames(n: int = NUM_FRAMES, height: int = HEIGHT, width: int = WIDTH) -> list[np.ndarray]:
    """Moving colour gradients: every frame differs, so a dropped or repeated frame shows."""
    yy, xx = np.mgrid[:height, :width]
    return [np.stack([(xx * 2 + 5 * t) % 256, (yy * 3 + 7 * t) % 256, ((xx + yy) + 11 * t) % 256], -1).astype(np.uint8)
            for t in range(n)]


def write_video(path: Path, frames: list[np.ndarray], *, codec: str = "libx264", params: list[str] | None = None):
    height, width = frames[0].shape[:2]
    writer = imageio_ffmpeg.write_frames(str(path), (width, height), fps=25, codec=codec, macro_block_size=2,
                                         output_params=params or [], ffmpeg_log_level="error")
    writer.send(None)
    for frame in frames:
        writer.send(np.ascontiguousarray(frame))
    writer.close()
    return path


@pytest.fixture(scope="module")
def video(tmp_path_factory) -> Path:
    return write_video(tmp_path_factory.mktemp("video") / "clip.mp4", synthetic_frames())


@pytest.fixture(scope="module")
def faststart_video(tmp_path_factory) -> Path:
    """H.264 with the index (moov) before the data, so a truncated copy still opens and fails while decoding."""
    return write_video(tmp_path_factory.mktemp("video") / "fast.mp4", synthetic_frames(60, 96, 128),
                       params=["-movflags", "+faststart"])


def reader_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.split(":")[0] in ("decode", "read", "stream", "transform", "prefetch")]


def wait_for_no_reader_threads(timeout: float = 5.0) -> list[threading.Thread]:
    gc.collect()
    deadline = time.monotonic() + timeout
    while reader_threads() and time.monotonic() < deadline:
        time.sleep(0.01)
    return reader_threads()


# --- video files ------------------------------------------------------------------------------------------------------


def opencv_decode(path: Path) -> np.ndarray:
    """Every frame of ``path`` by an independent decoder (OpenCV's FFmpeg backend), (N, H, W, 3) RGB."""
    capture = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
    frames = []
    while True:
        ok, bgr = capture.read()
        if not ok:
            break
        frames.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    capture.release()
    return np.stack(frames)


@pytest.mark.parametrize("chunk_size", [1, 7, 16, 100])
def test_chunked_decode_equals_full_opencv_decode(video, chunk_size):
    """Streamed frames (decord) equal a whole-video decode by another decoder (OpenCV), pixel for pixel."""
    full = opencv_decode(video)
    source = VideoFileSource(video, chunk_size=chunk_size)
    assert (source.name, source.size, len(source), source.fps) == ("clip", (HEIGHT, WIDTH), NUM_FRAMES, 25)
    frames = list(source)
    assert [f.index for f in frames] == list(range(NUM_FRAMES))
    assert [f.name for f in frames] == [f"{i:05d}" for i in range(NUM_FRAMES)]
    for frame, expected in zip(frames, full):
        assert frame.rgb.dtype == np.uint8 and frame.rgb.shape == (HEIGHT, WIDTH, 3)
        np.testing.assert_array_equal(frame.rgb, expected)
    # Lossy, but the decoded video is the one that was written.
    assert np.abs(frames[30].rgb.astype(int) - synthetic_frames()[30]).mean() < 6


@pytest.mark.parametrize("chunk_size", [1, 8])
def test_random_access_and_backward_reads_equal_opencv(video, chunk_size):
    full = opencv_decode(video)
    source = VideoFileSource(video, chunk_size=chunk_size)
    backward = list(range(NUM_FRAMES - 1, -1, -1))
    frames = list(source.read(backward))
    assert [f.index for f in frames] == backward
    for frame in frames:
        np.testing.assert_array_equal(frame.rgb, full[frame.index])
    for i in (37, 3, 44, 0, 21):
        np.testing.assert_array_equal(source.frame(i), full[i])
    with pytest.raises(InputError, match=f"clip: frame {NUM_FRAMES} does not exist"):
        source.frame(NUM_FRAMES)


def test_opencv_fallback_equals_decord(video):
    """The sequential OpenCV reader (for what decord cannot open) against decord's decode of the same file."""
    full = decord.VideoReader(str(video), ctx=decord.cpu(0)).get_batch(list(range(NUM_FRAMES))).asnumpy()
    source = OpenCVFileSource(video, chunk_size=7)
    np.testing.assert_array_equal(np.stack([f.rgb for f in source]), full)
    np.testing.assert_array_equal(np.stack([f.rgb for f in source.read([2, 9, 30])]), full[[2, 9, 30]])
    with pytest.raises(InputError, match="only be read from start to end"):
        list(source.read([9, 2]))


def test_video_frames_do_not_pin_their_chunk(video):
    frame = next(iter(VideoFileSource(video, chunk_size=16)))
    assert frame.rgb.base is None or frame.rgb.base.nbytes == frame.rgb.nbytes


def test_video_source_can_be_read_twice(video):
    source = VideoFileSource(video, chunk_size=8)
    first = [f.rgb for f in source]
    second = [f.rgb for f in source]
    assert len(first) == len(second) == NUM_FRAMES
    assert all(np.array_equal(a, b) for a, b in zip(first, second))


@pytest.mark.parametrize("stop", ["break", "exception", "close"])
def test_early_stop_leaves_no_thread(video, stop):
    source = VideoFileSource(video, chunk_size=4, prefetch=2)
    frames = iter(source)
    if stop == "break":
        for frame in frames:
            if frame.index == 5:
                break
        del frames
    elif stop == "exception":
        with pytest.raises(RuntimeError):
            for frame in frames:
                if frame.index == 5:
                    raise RuntimeError("consumer failed")
        del frames
    else:
        next(frames)
        assert reader_threads(), "the decoder thread should be running"
        frames.close()
    assert wait_for_no_reader_threads() == []


def test_truncated_video_raises_input_error(faststart_video, tmp_path):
    data = faststart_video.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) * 6 // 10])
    with pytest.raises(InputError, match="cut.mp4") as err:
        list(open_source(cut))
    assert "\n" not in str(err.value) and ("truncated" in str(err.value))
    assert wait_for_no_reader_threads() == []


def test_truncated_video_yields_every_good_frame_before_the_error(faststart_video, tmp_path):
    data = faststart_video.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) * 7 // 10])
    full = decord.VideoReader(str(faststart_video), ctx=decord.cpu(0)).get_batch(list(range(60))).asnumpy()
    source = open_source(cut)  # decord refuses the file, the OpenCV reader streams what is there
    assert type(source).__name__ == "OpenCVFileSource"
    assert len(source) == 60  # the header (written first) still lists every frame
    got = []
    with pytest.raises(InputError, match=r"cut.mp4: decoding stopped at frame \d+ of the 60 .*truncated or corrupt"):
        for frame in source:
            got.append(frame.rgb)
    assert 10 <= len(got) < 60
    np.testing.assert_array_equal(np.stack(got), full[: len(got)])
    assert wait_for_no_reader_threads() == []


def test_video_without_index_raises_at_open(video, tmp_path):
    cut = tmp_path / "noindex.mp4"  # default mp4: the index is written last, so a cut file has none
    cut.write_bytes(video.read_bytes()[: video.stat().st_size // 2])
    with pytest.raises(InputError, match="noindex.mp4: cannot open as a video .*truncated"):
        VideoFileSource(cut)


def test_zero_frame_video_raises(tmp_path):
    writer = imageio_ffmpeg.write_frames(str(tmp_path / "zero.mp4"), (64, 48), codec="libx264", macro_block_size=2,
                                         ffmpeg_log_level="quiet")
    writer.send(None)
    writer.close()  # ffmpeg still writes a (frameless) file
    with pytest.raises(InputError, match="zero.mp4: cannot open as a video .*no frames"):
        open_source(tmp_path / "zero.mp4")


@pytest.mark.parametrize("content", [b"", b"not a video at all" * 50])
def test_unreadable_video_raises_input_error(tmp_path, content):
    path = tmp_path / "bad.mp4"
    path.write_bytes(content)
    with pytest.raises(InputError, match="bad.mp4") as err:
        open_source(path)
    assert "\n" not in str(err.value)


def test_nonexistent_path_raises_input_error(tmp_path):
    with pytest.raises(InputError, match="missing.mp4.*does not exist"):
        open_source(tmp_path / "missing.mp4")
    with pytest.raises(InputError, match="does not exist"):
        VideoFileSource(tmp_path / "missing.mp4")
    with pytest.raises(InputError, match="does not exist"):
        FrameFolderSource(tmp_path / "nofolder")


# --- frame folders ----------------------------------------------------------------------------------------------------


def save_frames(folder: Path, names: list[str], frames: list[np.ndarray]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, frame in zip(names, frames):
        Image.fromarray(frame).save(folder / name)
    return folder


def test_folder_reads_davis_frames_exactly(shared_data):
    dog = shared_data / "davis-mini" / "JPEGImages" / "480p" / "dog"
    source = open_source(dog)
    assert isinstance(source, FrameFolderSource)
    assert (source.name, source.size, len(source)) == ("dog", (480, 854), 60)
    frames = list(source)
    assert [f.name for f in frames] == [f"{i:05d}" for i in range(60)]
    for i in (0, 33, 59):
        np.testing.assert_array_equal(frames[i].rgb, np.asarray(Image.open(dog / f"{i:05d}.jpg").convert("RGB")))


def test_natural_sort_any_names(tmp_path):
    names = ["frame10.png", "frame2.png", "frame1.png", "Frame3.png", "frame100.png", "frame20.jpg"]
    frames = synthetic_frames(len(names), 8, 8)
    folder = save_frames(tmp_path / "f", names, frames)
    (folder / "notes.txt").write_text("not a frame")
    source = FrameFolderSource(folder)
    assert source.names == ["frame1", "frame2", "Frame3", "frame10", "frame20", "frame100"]
    got = {f.name: f.index for f in source}
    assert got == {n: i for i, n in enumerate(source.names)}
    assert sorted(["9.jpg", "10.jpg", "1.jpg", "09b.jpg"], key=natural_key) == ["1.jpg", "9.jpg", "09b.jpg", "10.jpg"]


def test_folder_frames_match_pixels(tmp_path):
    frames = synthetic_frames(5, 10, 12)
    folder = save_frames(tmp_path / "f", [f"{i}.png" for i in range(5)], frames)
    for frame in FrameFolderSource(folder):
        np.testing.assert_array_equal(frame.rgb, frames[frame.index])


def test_zero_frame_folder_raises(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="empty.*no frames"):
        open_source(tmp_path / "empty")
    (tmp_path / "text").mkdir()
    (tmp_path / "text" / "readme.txt").write_text("x")
    with pytest.raises(InputError, match="no frames"):
        FrameFolderSource(tmp_path / "text")


def test_mixed_sizes_name_the_first_offending_file(tmp_path):
    frames = synthetic_frames(3, 10, 12) + synthetic_frames(1, 11, 12) + synthetic_frames(1, 10, 13)
    folder = save_frames(tmp_path / "f", ["a1.png", "a2.png", "a3.png", "a4.png", "a5.png"], frames)
    with pytest.raises(InputError, match=r"a4\.png: frame is 12x11 but a1\.png is 12x10"):
        FrameFolderSource(folder)


def test_duplicate_stems_raise(tmp_path):
    folder = save_frames(tmp_path / "f", ["x.png", "x.jpg"], synthetic_frames(2, 8, 8))
    with pytest.raises(InputError, match="'x'"):
        FrameFolderSource(folder)


def test_folder_early_stop_leaves_no_thread(tmp_path):
    folder = save_frames(tmp_path / "f", [f"{i}.png" for i in range(20)], synthetic_frames(20, 8, 8))
    for frame in FrameFolderSource(folder, prefetch=2):
        if frame.index == 3:
            break
    assert wait_for_no_reader_threads() == []


# --- live iterators ---------------------------------------------------------------------------------------------------


def test_iterator_source_from_generator():
    frames = synthetic_frames(6, 8, 10)
    source = open_source(iter(frames))
    assert isinstance(source, IteratorSource) and source.num_frames is None and source.size is None
    with pytest.raises(TypeError):
        len(source)
    got = list(source)
    assert [f.name for f in got] == [f"{i:05d}" for i in range(6)]
    assert all(np.array_equal(f.rgb, e) for f, e in zip(got, frames))
    assert source.size == (8, 10)
    with pytest.raises(InputError, match="only once"):
        list(source)


def test_iterator_source_accepts_pil_and_knows_list_length():
    frames = synthetic_frames(3, 8, 10)
    source = IteratorSource([Image.fromarray(f) for f in frames], name="cam")
    assert len(source) == 3 and source.name == "cam"
    assert all(np.array_equal(f.rgb, e) for f, e in zip(source, frames))


@pytest.mark.parametrize("bad", [np.zeros((8, 10), np.uint8), np.zeros((8, 10, 3), np.float32),
                                 np.zeros((9, 10, 3), np.uint8)])
def test_iterator_source_rejects_bad_frames(bad):
    frames = synthetic_frames(2, 8, 10) + [bad]
    got = []
    with pytest.raises(InputError, match="stream: frame 2"):
        for frame in IteratorSource(iter(frames)):
            got.append(frame.index)
    assert got == [0, 1]
    assert wait_for_no_reader_threads() == []


def test_video_capture_is_read_as_rgb(tmp_path):
    red = np.zeros((32, 48, 3), np.uint8)
    red[..., 0] = 220
    path = write_video(tmp_path / "red.mp4", [red] * 5, codec="mpeg4")
    capture = cv2.VideoCapture(str(path))
    source = open_source(capture)
    assert source.fps == pytest.approx(25.0)
    frames = list(source)
    assert len(frames) == 5
    mean = frames[2].rgb.reshape(-1, 3).mean(0)
    assert mean[0] > 180 and mean[2] < 40, f"expected red in RGB order, got channel means {mean}"


def test_open_source_rejects_non_frames():
    with pytest.raises(InputError, match="cannot read frames from a int"):
        open_source(5)


# --- prefetch ---------------------------------------------------------------------------------------------------------


def test_prefetch_keeps_order_and_reraises_in_place():
    def items():
        yield from range(5)
        raise ValueError("boom at 5")

    got = []
    with pytest.raises(ValueError, match="boom at 5"):
        for x in prefetch(items(), 2):
            got.append(x)
    assert got == [0, 1, 2, 3, 4]


def test_prefetch_of_a_non_iterable_raises_instead_of_hanging():
    with pytest.raises(TypeError):
        list(prefetch(42, 2))


def test_prefetch_runs_a_bounded_distance_ahead():
    produced = []

    def items():
        for i in range(100):
            produced.append(i)
            yield i

    stream = prefetch(items(), 3)
    assert next(stream) == 0
    time.sleep(0.3)  # give the producer every chance to run ahead
    # one item consumed, at most 3 queued, one more produced and waiting for space
    assert len(produced) <= 1 + 3 + 1
    stream.close()
    assert wait_for_no_reader_threads() == []


def test_prefetch_calls_on_wait_after_each_on_wait_after_seconds_of_waiting_in_all():
    """The decoder parks decord each time it has waited ``on_wait_after`` seconds in all for a slower consumer (decord
    decodes ahead without limit meanwhile, so short waits must add up, or a steady consumer slower than decoding lets
    it run through the whole video); a consumer that keeps up never triggers it (no re-decode from a keyframe)."""
    calls = []
    stream = prefetch(iter(range(1000)), 2, on_wait=lambda: calls.append(time.monotonic()), on_wait_after=5.0)
    assert sum(itertools.islice(stream, 200)) == sum(range(200))
    assert calls == []
    stream.close()
    calls.clear()
    stream = prefetch(iter(range(1000)), 2, on_wait=lambda: calls.append(time.monotonic()), on_wait_after=0.1)
    next(stream)
    time.sleep(0.65)  # one stall: the producer waits with a full queue for the whole of it
    assert 4 <= len(calls) <= 7
    stream.close()
    calls.clear()
    stream = prefetch(iter(range(1000)), 2, on_wait=lambda: calls.append(time.monotonic()), on_wait_after=0.2)
    for _ in range(50):  # a steady consumer slower than the producer: waits of about 20 ms, none long on its own
        next(stream)
        time.sleep(0.02)
    assert 2 <= len(calls) <= 6
    stream.close()
    assert wait_for_no_reader_threads() == []


def test_prefetch_closes_the_source_generator():
    closed = threading.Event()

    def items():
        try:
            yield from range(1000)
        finally:
            closed.set()

    for x in prefetch(items(), 2):
        if x == 3:
            break
    assert closed.wait(2.0)


def test_prefetched_applies_transform_in_order(video):
    means = [float(f.rgb.mean()) for f in VideoFileSource(video)]
    assert list(prefetched(VideoFileSource(video), lambda f: float(f.rgb.mean()))) == means
    assert wait_for_no_reader_threads() == []


def test_forward_reads_start_with_one_frame_and_grow_to_the_chunk_size(video, monkeypatch):
    """The first frame of a forward read is decoded alone (it reaches the model after one frame's decode); chunks
    then double up to ``chunk_size``; backward reads keep whole chunks (each seeks)."""
    source = VideoFileSource(video, chunk_size=8)
    calls = []
    decode = source._decode
    monkeypatch.setattr(source, "_decode", lambda indices: calls.append(list(indices)) or decode(indices))
    frames = [f.rgb for f in source.read(range(3, 40))]
    assert [len(c) for c in calls] == [1, 2, 4, 8, 8, 8, 6]
    assert [i for c in calls for i in c] == list(range(3, 40))
    reference = decord.VideoReader(str(video), ctx=decord.cpu(0)).get_batch(list(range(3, 40))).asnumpy()
    np.testing.assert_array_equal(np.stack(frames), reference)
    calls.clear()
    list(source.read(range(20, 2, -1)))
    assert [len(c) for c in calls] == [8, 8, 2]


def test_opencv_reader_chunks_grow_too(video):
    source = OpenCVFileSource(video, chunk_size=8)
    assert [len(chunk) for chunk in itertools.islice(source._chunks(), 6)] == [1, 2, 4, 8, 8, 8]


def test_frame_zero_is_decoded_once(video):
    """``_probe`` decodes frame 0; reading it again (every run starts there) returns a copy of that, not a decode."""
    source = VideoFileSource(video)
    reader = source._reader

    class Counting:
        calls = 0

        def get_batch(self, indices):
            Counting.calls += 1
            return reader.get_batch(indices)

        def __getattr__(self, name):
            return getattr(reader, name)

    source._reader = Counting()
    a, b = source.frame(0), next(iter(source.read([0]))).rgb
    assert Counting.calls == 0
    reference = decord.VideoReader(str(video), ctx=decord.cpu(0))[0].asnumpy()
    np.testing.assert_array_equal(a, reference)
    np.testing.assert_array_equal(b, reference)
    a[:] = 0  # the consumer owns what it gets
    np.testing.assert_array_equal(source.frame(0), reference)
    assert [f.index for f in source.read(range(3))] == [0, 1, 2]
    assert Counting.calls == 1  # frame 0 the kept copy (a chunk of its own), frames 1-2 one get_batch


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-thread priorities are Linux's")
def test_background_threads_run_at_a_lower_priority_and_the_model_thread_does_not():
    """Decoding ahead is background work (``BACKGROUND_NICE`` below the main thread, however deep the thread that
    starts it); a prefetch for the model's own thread asks nice=0."""
    caller = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())

    def priorities():
        while True:
            yield os.getpriority(os.PRIO_PROCESS, threading.get_native_id())

    background = min(caller + BACKGROUND_NICE, 19)
    assert next(iter(prefetch(priorities(), 1))) == background
    assert next(iter(prefetch(priorities(), 1, nice=0))) == caller
    nested = prefetch((p for inner in [prefetch(priorities(), 1)] for p in inner), 1)  # started by a background thread
    assert next(iter(nested)) == background  # the same level, not twice as low
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == caller
    with pytest.raises(ValueError, match="nice must be >= 0"):
        next(iter(prefetch(priorities(), 1, nice=-1)))
