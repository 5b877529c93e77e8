"""Output formats, atomic writes, the background writer's error handling, and COCO RLE against pycocotools."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import decord
import numpy as np
import pytest
from PIL import Image

from vos.masks import davis_palette, read_label_png
from vos.writers import (AsyncWriter, CocoRleWriter, NumpyWriter, OverlayVideoWriter,
                         PalettePngWriter, atomic_write, completed_frames, rle_decode, rle_encode, rle_from_string,
                         rle_to_string, temp_path)

REPO = Path(__file__).resolve().parents[1]


def label_frames(n: int = 6, height: int = 24, width: int = 32) -> list[np.ndarray]:
    """Three objects with gappy ids (2, 9, 40) moving; id 40 appears only from frame 3 on."""
    frames = []
    for t in range(n):
        labels = np.zeros((height, width), np.uint8)
        labels[2:10, t:t + 8] = 2
        labels[12:20, 20 - t:28 - t] = 9
        if t >= 3:
            labels[15:22, 2:6] = 40
        frames.append(labels)
    return frames


def rgb_frames(n: int = 6, height: int = 24, width: int = 32) -> list[np.ndarray]:
    return [np.full((height, width, 3), 40 + 10 * t, np.uint8) for t in range(n)]


def leftovers(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if ".tmp-" in p.name]


# --- atomic writes ----------------------------------------------------------------------------------------------------


def test_atomic_write_failure_keeps_the_old_file_and_no_temp(tmp_path):
    target = tmp_path / "00003.png"
    target.write_bytes(b"old complete file")

    def half_then_fail(f):
        f.write(b"half")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        atomic_write(target, half_then_fail)
    assert target.read_bytes() == b"old complete file"
    assert leftovers(tmp_path) == []


def test_killed_process_leaves_no_partial_file_and_temp_is_cleaned(tmp_path):
    """A process killed while writing leaves only a hidden temp, which the next writer on that folder removes."""
    target = tmp_path / "vid" / "00007.png"
    target.parent.mkdir()
    code = ("import os, sys; from pathlib import Path; from vos.writers import atomic_write\n"
            "def die(f):\n    f.write(b'partial'); f.flush(); os._exit(9)\n"
            f"atomic_write(Path({str(target)!r}), die)\n")
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO)
    assert result.returncode == 9
    assert not target.exists()
    assert len(leftovers(tmp_path)) == 1
    assert completed_frames(target.parent) == set()
    PalettePngWriter(target.parent)
    assert leftovers(tmp_path) == []


def dead_temp_path(path: Path) -> Path:
    """A temp name as a run that has since exited would have left it."""
    child = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    return Path(str(temp_path(path)).replace(f"-{os.getpid()}-", f"-{int(child.stdout)}-"))


def test_whole_video_writers_clean_only_their_own_stale_temps(tmp_path):
    stale = [dead_temp_path(tmp_path / "bear.mp4"), dead_temp_path(tmp_path / "bear.json")]
    others = [dead_temp_path(tmp_path / "cat.mp4"), dead_temp_path(tmp_path / "00001.png"),
              temp_path(tmp_path / "bear.mp4")]  # a live run's file in flight (this process's)
    for p in stale + others:
        p.write_bytes(b"partial")
    OverlayVideoWriter(tmp_path / "bear.mp4")
    CocoRleWriter(tmp_path / "bear.json").close(complete=False)
    assert sorted(leftovers(tmp_path)) == sorted(others)


# --- per-frame formats ------------------------------------------------------------------------------------------------


def test_palette_pngs_davis_layout_with_input_palette(tmp_path):
    custom = np.random.default_rng(3).integers(0, 256, (256, 3), dtype=np.uint8)
    frames = label_frames()
    with AsyncWriter([PalettePngWriter(tmp_path / "OUT" / "bear", palette=custom)]) as writer:
        for i, labels in enumerate(frames):
            writer.put(i, f"{i:05d}", labels)
    folder = tmp_path / "OUT" / "bear"
    assert sorted(p.name for p in folder.iterdir()) == [f"{i:05d}.png" for i in range(6)]
    for i, labels in enumerate(frames):
        with Image.open(folder / f"{i:05d}.png") as im:
            assert im.mode == "P"
        got, palette = read_label_png(folder / f"{i:05d}.png")
        np.testing.assert_array_equal(got, labels)
        np.testing.assert_array_equal(palette, custom)
    assert completed_frames(folder) == {f"{i:05d}" for i in range(6)}


def test_palette_pngs_default_to_davis_colours(tmp_path):
    writer = PalettePngWriter(tmp_path)
    writer.write(0, "a", label_frames()[0], None)
    _, palette = read_label_png(tmp_path / "a.png")
    np.testing.assert_array_equal(palette, davis_palette())


def test_youtube_vos_only_requested_frames(tmp_path):
    requested = {"00000", "00005", "00010"}
    with AsyncWriter([PalettePngWriter(tmp_path, only_frames=requested)]) as writer:
        for i in range(12):
            writer.put(i, f"{i:05d}", label_frames(12)[i])
    assert completed_frames(tmp_path) == requested


def test_numpy_writer_round_trip(tmp_path):
    frames = label_frames()
    with AsyncWriter([NumpyWriter(tmp_path / "npy")]) as writer:
        for i, labels in enumerate(frames):
            writer.put(i, f"f{i}", labels)
    for i, labels in enumerate(frames):
        got = np.load(tmp_path / "npy" / f"f{i}.npy")
        assert got.dtype == np.uint8
        np.testing.assert_array_equal(got, labels)
    assert completed_frames(tmp_path / "npy", ".npy") == {f"f{i}" for i in range(6)}


# --- whole-video formats ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [(24, 32), (25, 31)])
def test_overlay_video(tmp_path, size):
    height, width = size
    frames, rgbs = label_frames(8, height, width), rgb_frames(8, height, width)
    palette = davis_palette()
    path = tmp_path / "overlay" / "bear.mp4"
    with AsyncWriter([OverlayVideoWriter(path, fps=10, palette=palette, alpha=0.5)]) as writer:
        for i, (labels, rgb) in enumerate(zip(frames, rgbs)):
            writer.put(i, f"{i:05d}", labels, rgb)
    assert leftovers(tmp_path) == []
    reader = decord.VideoReader(str(path))
    assert len(reader) == 8 and reader.get_avg_fps() == pytest.approx(10)
    video = reader.get_batch(list(range(8))).asnumpy()
    assert video.shape == (8, height + height % 2, width + width % 2, 3)
    expected = OverlayVideoWriter(tmp_path / "x.mp4", palette=palette, alpha=0.5).blend(frames[5], rgbs[5])
    # Lossy, so compare inside the objects away from their edges: object 2 (red) and background.
    inside = np.zeros((height, width), bool)
    inside[4:8, 7:11] = True
    assert np.abs(video[5, :height, :width][inside].astype(int) - expected[inside]).mean() < 12
    assert np.abs(video[5, 22:24, 12:16].astype(int) - rgbs[5][22:24, 12:16]).mean() < 12


def test_blend_is_exact_alpha_mix():
    labels = np.array([[0, 1]], np.uint8)
    rgb = np.array([[[100, 100, 100], [100, 100, 100]]], np.uint8)
    palette = np.array([[0, 0, 0], [200, 0, 50]], np.uint8)
    out = OverlayVideoWriter("unused.mp4", palette=palette, alpha=0.25).blend(labels, rgb)
    np.testing.assert_array_equal(out, [[[100, 100, 100], [125, 75, 88]]])


def test_outline_draws_only_a_band_inside_each_edge_and_survives_encoding(tmp_path):
    """outline style: an object's band of ``outline_width`` pixels inside its edge (also where two objects touch) takes
    its colour; its inside and the background stay the frame. Checked on the decoded mp4 (decord)."""
    height, width = 64, 96
    labels = np.zeros((height, width), np.uint8)
    labels[8:40, 10:50] = 1
    labels[8:40, 50:80] = 2  # touches object 1
    rgb = np.full((height, width, 3), 128, np.uint8)
    palette = np.array([[0, 0, 0], [255, 0, 0], [0, 0, 255]], np.uint8)
    writer = OverlayVideoWriter(tmp_path / "x.mp4", palette=palette, style="outline", outline_width=2)
    drawn = writer.blend(labels, rgb)
    band = np.zeros((height, width), bool)
    band[8:40, 10:80] = True
    band[10:38, 12:78] = False  # the outer band of the union ...
    band[8:40, 48:52] = True  # ... and two pixels on each side of the shared edge
    np.testing.assert_array_equal(drawn[band], palette[labels[band]])
    np.testing.assert_array_equal(drawn[~band], rgb[~band])
    path = tmp_path / "outline.mp4"
    with AsyncWriter([OverlayVideoWriter(path, fps=10, palette=palette, style="outline")]) as out:
        for i in range(3):
            out.put(i, f"{i:05d}", labels, rgb)
    video = decord.VideoReader(str(path)).get_batch([1]).asnumpy()[0].astype(int)
    assert np.abs(video[14:34, 16:44] - 128).max() < 12  # object 1's inside is the frame, untinted
    assert np.abs(video[0:4] - 128).max() < 12  # background untouched
    assert video[20, 10:12, 0].min() > 180 and video[20, 10:12, 2].max() < 80  # object 1's left edge is red
    assert video[20, 78:80, 2].min() > 180 and video[20, 78:80, 0].max() < 80  # object 2's right edge is blue


def test_fill_is_the_default_and_lighter_than_half(tmp_path):
    writer = OverlayVideoWriter(tmp_path / "x.mp4")
    assert writer.style == "fill" and writer.alpha < 0.5


def test_interrupted_run_keeps_frames_and_drops_whole_video_outputs(tmp_path):
    frames, rgbs = label_frames(), rgb_frames()
    with pytest.raises(KeyboardInterrupt):
        with AsyncWriter([PalettePngWriter(tmp_path / "png"), OverlayVideoWriter(tmp_path / "v.mp4"),
                          CocoRleWriter(tmp_path / "v.json")]) as writer:
            for i in range(4):
                writer.put(i, f"{i:05d}", frames[i], rgbs[i])
            raise KeyboardInterrupt
    assert completed_frames(tmp_path / "png") == {f"{i:05d}" for i in range(4)}
    assert not (tmp_path / "v.mp4").exists() and not (tmp_path / "v.json").exists()
    assert leftovers(tmp_path) == []


# --- the background writer --------------------------------------------------------------------------------------------


class Failing:
    needs_frame = False

    def __init__(self, at: int):
        self.at, self.closed_with = at, None

    def write(self, index, name, labels, frame):
        if index == self.at:
            raise OSError(f"cannot write frame {index}")

    def close(self, complete=True):
        self.closed_with = complete


def test_worker_error_is_raised_at_a_later_put_or_close(tmp_path):
    failing = Failing(at=2)
    writer = AsyncWriter([PalettePngWriter(tmp_path), failing], queue_size=1)
    with pytest.raises(OSError, match="cannot write frame 2"):
        for i in range(200):
            writer.put(i, f"{i:05d}", label_frames(1)[0])
    with pytest.raises(OSError, match="cannot write frame 2"):
        writer.close()
    assert failing.closed_with is False  # whole-video outputs are not finalised after a failure
    assert {"00000", "00001"} <= completed_frames(tmp_path) and "00003" not in completed_frames(tmp_path)

    failing = Failing(at=0)
    writer = AsyncWriter([failing])
    writer.put(0, "00000", label_frames(1)[0])
    with pytest.raises(OSError, match="cannot write frame 0"):
        writer.close()


def test_close_flushes_everything_queued(tmp_path):
    writer = AsyncWriter([PalettePngWriter(tmp_path)], queue_size=64)
    for i in range(40):
        writer.put(i, f"{i:05d}", label_frames(1)[0])
    writer.close()
    assert len(completed_frames(tmp_path)) == 40
    with pytest.raises(RuntimeError, match="closed"):
        writer.put(41, "x", label_frames(1)[0])


class Priorities:
    """Records the nice value of the thread that writes, and of a process it starts (as the ffmpeg encoders are)."""

    needs_frame = False

    def write(self, index, name, labels, frame):
        self.thread = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
        child = subprocess.run([sys.executable, "-c", "import os; print(os.getpriority(os.PRIO_PROCESS, 0))"],
                               capture_output=True, text=True, check=True)
        self.child = int(child.stdout)

    def close(self, complete=True):
        pass


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-thread priorities are Linux's")
@pytest.mark.parametrize("nice", [0, 10])
def test_writer_thread_and_its_encoders_run_at_a_lower_priority(nice):
    caller = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    recorder = Priorities()
    with AsyncWriter([recorder], nice=nice) as writer:
        writer.put(0, "00000", label_frames(1)[0])
    expected = min(caller + nice, 19)
    assert (recorder.thread, recorder.child) == (expected, expected)
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == caller  # the caller's own is untouched
    with pytest.raises(ValueError, match="nice must be >= 0"):
        AsyncWriter([recorder], nice=-1)


def test_overlay_needs_the_frame(tmp_path):
    with AsyncWriter([OverlayVideoWriter(tmp_path / "v.mp4")]) as writer:
        with pytest.raises(ValueError, match="frame="):
            writer.put(0, "00000", label_frames(1)[0])


# --- COCO RLE ---------------------------------------------------------------------------------------------------------

# Compressed strings produced by pycocotools 2.0.11 (``mask.encode(np.asfortranarray(m.astype(np.uint8)))``) for the
# masks below; pycocotools is not a dependency, so its answers are stored here.
PYCOCOTOOLS_STRINGS = {"small": "21131M42", "full": "0e0", "empty": "<", "negative": "<75J4000T19"}
PYCOCOTOOLS_SHAPES_SHA256 = "3f13ee2f487063579ca30f110105f1c981fc201ddcbad2a44eecad4769f749dc"  # 9697 characters


def reference_masks() -> dict[str, np.ndarray]:
    negative = np.zeros((10, 10), bool)
    negative[2:9, 1] = negative[4, 2:5] = negative[:, 9] = True
    return {
        "small": np.array([[0, 1, 1, 0], [0, 1, 0, 0], [1, 1, 0, 1], [0, 0, 0, 1], [1, 0, 0, 1]], bool),
        "full": np.ones((3, 7), bool),
        "empty": np.zeros((6, 2), bool),
        "negative": negative,
    }


def shapes_mask() -> np.ndarray:
    yy, xx = np.mgrid[:480, :854]
    return ((yy - 200) ** 2 + (xx - 400) ** 2 < 150**2) | ((xx > 700) & (yy < 60)) | ((xx + yy) % 97 == 0)


def naive_rle(mask: np.ndarray) -> list[int]:
    """Column-major runs by walking the pixels one by one (the COCO definition, no numpy tricks)."""
    counts, current, run = [], False, 0
    for value in mask.T.ravel():
        if bool(value) != current:
            counts.append(run)
            current, run = bool(value), 0
        run += 1
    counts.append(run)
    return counts


@pytest.mark.parametrize("name", list(PYCOCOTOOLS_STRINGS))
def test_rle_string_matches_pycocotools(name):
    mask = reference_masks()[name]
    counts = rle_encode(mask)
    assert counts == naive_rle(mask)
    assert rle_to_string(counts) == PYCOCOTOOLS_STRINGS[name]
    assert rle_from_string(PYCOCOTOOLS_STRINGS[name]) == counts
    np.testing.assert_array_equal(rle_decode(counts, *mask.shape), mask)


def test_rle_large_mask_matches_pycocotools():
    mask = shapes_mask()
    text = rle_to_string(rle_encode(mask))
    assert len(text) == 9697 and hashlib.sha256(text.encode()).hexdigest() == PYCOCOTOOLS_SHAPES_SHA256
    np.testing.assert_array_equal(rle_decode(rle_from_string(text), 480, 854), mask)


def test_rle_round_trip_random():
    rng = np.random.default_rng(0)
    for _ in range(50):
        height, width = rng.integers(1, 30, 2)
        mask = rng.random((height, width)) < rng.random()
        counts = rle_encode(mask)
        assert counts == naive_rle(mask) and sum(counts) == mask.size
        assert rle_from_string(rle_to_string(counts)) == counts
        np.testing.assert_array_equal(rle_decode(counts, height, width), mask)


@pytest.mark.parametrize("compressed", [True, False])
def test_coco_json(tmp_path, compressed):
    frames = label_frames()
    path = tmp_path / "coco" / "bear.json"
    with AsyncWriter([CocoRleWriter(path, video="bear", compressed=compressed)]) as writer:
        for i, labels in enumerate(frames):
            writer.put(i, f"{i:05d}", labels)
    assert leftovers(tmp_path) == []
    doc = json.loads(path.read_text())
    assert doc["info"] == {"video": "bear"}
    assert [c["id"] for c in doc["categories"]] == [2, 9, 40]
    assert [(im["id"], im["file_name"], im["height"], im["width"]) for im in doc["images"]] == [
        (i, f"{i:05d}", 24, 32) for i in range(6)]
    assert len({a["id"] for a in doc["annotations"]}) == len(doc["annotations"]) == 6 * 2 + 3
    for ann in doc["annotations"]:
        mask = frames[ann["image_id"]] == ann["category_id"]
        seg = ann["segmentation"]
        assert seg["size"] == [24, 32]
        counts = rle_from_string(seg["counts"]) if compressed else seg["counts"]
        np.testing.assert_array_equal(rle_decode(counts, 24, 32), mask)
        assert ann["area"] == int(mask.sum())
        rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
        assert ann["bbox"] == [cols[0], rows[0], cols[-1] - cols[0] + 1, rows[-1] - rows[0] + 1]
