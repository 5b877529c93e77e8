"""Outputs for editors, each read back by an independent decoder and compared with the label maps: PIL for the PNG
sequences, OpenEXR for the EXR channels, the ffmpeg binary (alpha plane via ``alphaextract``) for the alpha videos;
frame counts, numbering and exact frame rates; the CLI's one-line errors."""

from __future__ import annotations

import json
import re
import subprocess
from fractions import Fraction
from pathlib import Path

import imageio_ffmpeg
import numpy as np
import pytest
from PIL import Image

from seggpt_core.errors import InputError
from vos.cli import main
from vos.exr import read_exr_channels
from vos.mattes import MatteCleanup, object_matte
from vos.pipeline import OutputSpec
from vos.readers import VideoFileSource, exact_fps

FFMPEG = imageio_ffmpeg.get_ffmpeg_exe()
NTSC = Fraction(30000, 1001)


def label_frames(n: int = 5, height: int = 24, width: int = 32) -> list[np.ndarray]:
    """Objects 2 and 9 moving; object 40 only from frame 3; frame 1 empty (every frame must still be written)."""
    frames = []
    for t in range(n):
        labels = np.zeros((height, width), np.uint8)
        if t != 1:
            labels[2:10, t:t + 8] = 2
            labels[12:20, 20 - t:28 - t] = 9
        if t >= 3:
            labels[15:22, 2:6] = 40
        frames.append(labels)
    return frames


def rgb_frames(n: int = 5, height: int = 24, width: int = 32) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [rng.integers(0, 256, (height, width, 3), dtype=np.uint8) for _ in range(n)]


def write_all(spec: OutputSpec, fps: Fraction | None, frames=None, rgbs=None, video: str = "clip") -> None:
    frames = label_frames() if frames is None else frames
    rgbs = rgb_frames(len(frames), *frames[0].shape) if rgbs is None else rgbs
    with spec.open(video, None, fps) as writer:
        for i, (labels, rgb) in enumerate(zip(frames, rgbs)):
            writer.put(i, f"{i:05d}", labels, rgb)


def ffmpeg_decode(path: Path, pix_fmt: str, alpha: bool) -> np.ndarray:
    """(T, H, W[, C]) frames decoded by the ffmpeg binary; ``alpha``: the alpha plane (libvpx-vp9 decodes WebM's)."""
    decoder = ["-c:v", "libvpx-vp9"] if path.suffix == ".webm" else []
    vf = ["-vf", "alphaextract"] if alpha else []
    out = subprocess.run([FFMPEG, "-v", "error", *decoder, "-i", str(path), *vf, "-f", "rawvideo",
                          "-pix_fmt", pix_fmt, "-"], capture_output=True, check=True).stdout
    return np.frombuffer(out, np.uint8)


def ffmpeg_rate(path: Path) -> tuple[int, Fraction]:
    """(frame count, frame rate) from ffmpeg's framecrc: its time base and each frame's duration in it."""
    text = subprocess.run([FFMPEG, "-v", "error", "-i", str(path), "-map", "0:v:0", "-f", "framecrc", "-"],
                          capture_output=True, text=True, check=True).stdout
    num, den = map(int, re.search(r"#tb 0: (\d+)/(\d+)", text).groups())
    rows = [line.split(",") for line in text.splitlines() if line and not line.startswith("#")]
    durations = {int(row[3]) for row in rows}
    assert len(durations) == 1, durations
    return len(rows), 1 / (Fraction(num, den) * durations.pop())


def png(path: Path) -> tuple[str, np.ndarray]:
    with Image.open(path) as im:
        return im.mode, np.array(im)


# --- matte and cut-out sequences --------------------------------------------------------------------------------------


def test_matte_sequences_every_frame_numbered_with_sidecars(tmp_path):
    frames = label_frames()
    write_all(OutputSpec(alpha=tmp_path, alpha_combined=True, start_number=1001, object_names={2: "bear"}), NTSC)
    root = tmp_path / "clip"
    assert sorted(p.name for p in root.iterdir()) == ["all", "object_2", "object_40", "object_9"]
    for folder, select in (("object_2", lambda l: l == 2), ("object_9", lambda l: l == 9),
                           ("object_40", lambda l: l == 40), ("all", lambda l: l > 0)):
        files = sorted(p.name for p in (root / folder).glob("*.png"))
        assert files == [f"clip_{folder}.{1001 + i:04d}.png" for i in range(5)]
        for i, labels in enumerate(frames):
            mode, matte = png(root / folder / files[i])
            assert mode == "L"
            np.testing.assert_array_equal(matte, np.where(select(labels), 255, 0))
        sidecar = json.loads((root / folder / f"clip_{folder}.json").read_text())
        assert sidecar["pattern"] == f"clip_{folder}.%04d.png"
        assert (sidecar["fps"], sidecar["start_number"], sidecar["frame_count"]) == ("30000/1001", 1001, 5)
        assert (sidecar["width"], sidecar["height"]) == (32, 24)
    assert json.loads((root / "object_2/clip_object_2.json").read_text())["objects"] == [
        {"id": 2, "name": "bear", "channel": "object_2"}]
    assert [o["id"] for o in json.loads((root / "all/clip_all.json").read_text())["objects"]] == [2, 9, 40]


def test_cutouts_are_rgba_with_straight_alpha(tmp_path):
    frames, rgbs = label_frames(), rgb_frames()
    write_all(OutputSpec(cutout=tmp_path), None, frames, rgbs)
    for i in range(5):
        mode, rgba = png(tmp_path / "clip/object_9" / f"clip_object_9.{i:04d}.png")
        assert mode == "RGBA"
        np.testing.assert_array_equal(rgba[..., 3], np.where(frames[i] == 9, 255, 0))
        np.testing.assert_array_equal(rgba[..., :3], rgbs[i])  # straight alpha: the frame's colours everywhere
    late = png(tmp_path / "clip/object_40/clip_object_40.0000.png")[1]
    assert late.shape == (24, 32, 4) and not late[..., 3].any()  # back-filled transparent frame
    sidecar = json.loads((tmp_path / "clip/object_9/clip_object_9.json").read_text())
    assert (sidecar["fps"], sidecar["fps_from"], sidecar["alpha"]) == ("24/1", "default", "straight")


def test_feather_softens_alpha_outputs_only(tmp_path):
    frames = label_frames()
    write_all(OutputSpec(masks=tmp_path / "labels", alpha=tmp_path / "alpha", cleanup=MatteCleanup(feather=4)),
              None, frames)
    _, labels = png(tmp_path / "labels/clip/00003.png")
    np.testing.assert_array_equal(labels, frames[3])  # label outputs stay hard
    _, matte = png(tmp_path / "alpha/clip/object_2/clip_object_2.0003.png")
    assert ((matte > 0) & (matte < 255)).any()
    assert ((matte >= 128) == (frames[3] == 2)).mean() > 0.97


def test_cleanup_runs_before_every_output(tmp_path):
    frames = label_frames()
    for labels in frames:
        labels[0, 31] = 9  # a one-pixel speck
    write_all(OutputSpec(masks=tmp_path / "labels", alpha=tmp_path / "alpha", cleanup=MatteCleanup(min_area=2)),
              None, frames)
    assert png(tmp_path / "labels/clip/00000.png")[1][0, 31] == 0
    assert png(tmp_path / "alpha/clip/object_9/clip_object_9.0000.png")[1][0, 31] == 0


def test_alpha_outputs_written_together_share_each_frames_mattes(tmp_path):
    """Matte PNGs, cut-outs, EXR channels and the alpha video draw one shared set of (feathered) mattes per frame;
    each output still holds its own objects' mattes, frame by frame."""
    cleanup = MatteCleanup(feather=3)
    frames, rgbs = label_frames(), rgb_frames()
    spec = OutputSpec(alpha=tmp_path / "alpha", alpha_combined=True, cutout=tmp_path / "cutout",
                      alpha_video=tmp_path / "clip.mkv", exr=tmp_path / "exr", cleanup=cleanup)
    shared = {id(w.mattes) for w in spec.writers("other", None, None)}
    assert len(shared) == 1
    write_all(spec, None, frames, rgbs)
    video = ffmpeg_decode(tmp_path / "clip.mkv", "gray", alpha=False).reshape(-1, 24, 32)
    for i, labels in enumerate(frames):
        channels = read_exr_channels(tmp_path / f"exr/clip/clip.{i:04d}.exr")
        for object_id, folder in ((2, "object_2"), (9, "object_9"), (40, "object_40"), (None, "all")):
            matte = object_matte(labels, object_id, cleanup)
            np.testing.assert_array_equal(png(tmp_path / f"alpha/clip/{folder}/clip_{folder}.{i:04d}.png")[1], matte)
            rgba = png(tmp_path / f"cutout/clip/{folder}/clip_{folder}.{i:04d}.png")[1]
            np.testing.assert_array_equal(rgba[..., 3], matte)
            np.testing.assert_array_equal(rgba[..., :3][matte > 0], rgbs[i][matte > 0])  # (late ids: back-filled)
            channel = channels["A" if object_id is None else f"object_{object_id}"]
            np.testing.assert_array_equal(channel, (matte / 255).astype(np.float16))
        np.testing.assert_array_equal(video[i], object_matte(labels, None, cleanup))


# --- EXR --------------------------------------------------------------------------------------------------------------


def test_exr_named_half_channels_per_object(tmp_path):
    import OpenEXR

    frames = label_frames()
    write_all(OutputSpec(exr=tmp_path, start_number=1), Fraction(25))
    files = sorted((tmp_path / "clip").glob("*.exr"))
    assert [p.name for p in files] == [f"clip.{i:04d}.exr" for i in range(1, 6)]
    for labels, path in zip(frames, files):
        with OpenEXR.File(str(path), header_only=True) as f:
            assert f.header()["compression"] == OpenEXR.ZIP_COMPRESSION
            assert f.header()["framesPerSecond"] == Fraction(25)
        channels = read_exr_channels(path)
        assert sorted(channels) == ["A", "object_2", "object_40", "object_9"]  # object 40 added to earlier files
        for object_id in (2, 9, 40):
            pixels = channels[f"object_{object_id}"]
            assert pixels.dtype == np.float16
            np.testing.assert_array_equal(pixels, (labels == object_id).astype(np.float16))
        np.testing.assert_array_equal(channels["A"], (labels > 0).astype(np.float16))
    sidecar = json.loads((tmp_path / "clip/clip.json").read_text())
    assert (sidecar["fps"], sidecar["start_number"], sidecar["frame_count"]) == ("25/1", 1, 5)


# --- alpha video ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".mov", ".webm", ".mkv"])
def test_alpha_video_matte_decoded_by_ffmpeg(tmp_path, suffix):
    frames = label_frames(6, 25, 31)  # odd sizes
    path = tmp_path / f"clip{suffix}"
    write_all(OutputSpec(alpha_video=path), NTSC, frames)
    got = ffmpeg_decode(path, "gray", alpha=suffix != ".mkv").reshape(-1, 25, 31)
    expected = np.stack([np.where(labels > 0, 255, 0) for labels in frames])
    assert got.shape == expected.shape
    if suffix == ".mov":  # ProRes 4444: alpha within its quantisation
        assert ((got >= 128) == (expected == 255)).mean() >= 0.999
    else:  # VP9 lossless, FFV1
        np.testing.assert_array_equal(got, expected)
    if suffix != ".mkv":  # the picture is the matte too, white = object
        luma = ffmpeg_decode(path, "gray", alpha=False).reshape(-1, 25, 31)
        assert ((luma >= 128) == (expected == 255)).mean() >= 0.999
    assert ffmpeg_rate(path) == (6, NTSC)
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temp left


def test_prores_4444_cutout_keeps_colours_and_alpha(tmp_path):
    frames, rgbs = label_frames(4, 24, 32), rgb_frames(4, 24, 32)
    path = tmp_path / "cut.mov"
    write_all(OutputSpec(alpha_video=path, alpha_video_content="cutout"), Fraction(24000, 1001), frames, rgbs)
    probe = subprocess.run([FFMPEG, "-hide_banner", "-i", str(path)], capture_output=True, text=True).stderr
    assert "prores (4444)" in probe and "yuva444p" in probe  # ffmpeg's decoder reports 4444 as 12-bit yuva444p12le
    alpha = ffmpeg_decode(path, "gray", alpha=True).reshape(4, 24, 32)
    assert ((alpha >= 128) == np.stack(frames).astype(bool)).mean() >= 0.999
    rgb = ffmpeg_decode(path, "rgb24", alpha=False).reshape(4, 24, 32, 3)
    assert np.abs(rgb.astype(int) - np.stack(rgbs)).mean() < 6  # ProRes is lossy on noise; straight colours
    assert ffmpeg_rate(path) == (4, Fraction(24000, 1001))


def test_temps_of_a_killed_run_are_removed(tmp_path):
    (tmp_path / "exr/clip").mkdir(parents=True)
    stale = [tmp_path / "exr/clip/.clip.0003.tmp-0123abcd.exr", tmp_path / "exr/clip/.clip.tmp-0123abcd.json"]
    for p in stale:
        p.write_bytes(b"partial")
    write_all(OutputSpec(exr=tmp_path / "exr"), None)  # hidden temps do not count as an earlier run's output
    assert not any(p.exists() for p in stale) and not list(tmp_path.rglob(".*"))


def test_interrupted_alpha_video_leaves_nothing(tmp_path):
    spec = OutputSpec(alpha_video=tmp_path / "v.mov", exr=tmp_path / "exr")
    with pytest.raises(KeyboardInterrupt):
        with spec.open("clip", None, NTSC) as writer:
            writer.put(0, "00000", label_frames()[0])
            raise KeyboardInterrupt
    assert not (tmp_path / "v.mov").exists() and not list(tmp_path.glob(".*"))
    assert [p.name for p in (tmp_path / "exr/clip").iterdir()] == ["clip.0000.exr"]  # finished frames stay


# --- frame rates ------------------------------------------------------------------------------------------------------


def make_video(path: Path, rate: str, frames: int = 3, size: str = "32x24") -> Path:
    subprocess.run([FFMPEG, "-v", "error", "-y", "-f", "lavfi", "-i", f"testsrc=size={size}:rate={rate}",
                    "-frames:v", str(frames), "-pix_fmt", "yuv420p", str(path)], check=True)
    return path


@pytest.mark.parametrize("rate", ["30000/1001", "24000/1001", "25", "60", "60000/1001"])
@pytest.mark.parametrize("suffix", [".mp4", ".mkv"])
def test_source_rate_is_exact(tmp_path, rate, suffix):
    source = VideoFileSource(make_video(tmp_path / f"v{suffix}", rate))
    assert isinstance(source.fps, Fraction) and source.fps == Fraction(rate)


def test_exact_fps_of_floats():
    assert exact_fps(30000 / 1001) == NTSC and exact_fps(12.5) == Fraction(25, 2)
    assert exact_fps(0.0) is None and exact_fps(None) is None


def test_frame_folder_rate_from_fps_option():
    assert OutputSpec().timeline(None).fps == 24
    assert OutputSpec(fps=Fraction(25)).timeline(None).fps == 25
    assert OutputSpec(fps=Fraction(25)).timeline(NTSC).fps == NTSC  # a video keeps its own rate


# --- options and the command line -------------------------------------------------------------------------------------


def test_bad_options_raise_input_errors(tmp_path):
    with pytest.raises(InputError, match="unknown alpha video extension"):
        OutputSpec(alpha_video=tmp_path / "v.mp4")
    with pytest.raises(InputError, match="--start-number"):
        OutputSpec(alpha=tmp_path, start_number=-1)
    with pytest.raises(InputError, match="--feather"):
        OutputSpec(masks=tmp_path, cleanup=MatteCleanup(feather=2))
    with pytest.raises(InputError, match="--alpha-combined"):
        OutputSpec(masks=tmp_path, alpha_combined=True)


def test_non_empty_folder_needs_overwrite(tmp_path):
    write_all(OutputSpec(alpha=tmp_path, exr=tmp_path / "exr"), None)
    for spec in (OutputSpec(alpha=tmp_path), OutputSpec(exr=tmp_path / "exr")):
        with pytest.raises(InputError, match="not empty; pass --overwrite"):
            spec.writers("clip", None, None)
    fresh = OutputSpec(alpha=tmp_path / "fresh", alpha_combined=True, exr=tmp_path / "exr")
    with pytest.raises(InputError, match="--exr output folder is not empty"):
        fresh.writers("clip", None, None)
    write_all(OutputSpec(alpha=tmp_path / "fresh", alpha_combined=True), None)  # the refused run left nothing behind
    shorter = label_frames(2)
    write_all(OutputSpec(alpha=tmp_path, overwrite=True), None, shorter)
    assert sorted(p.name for p in (tmp_path / "clip/object_2").iterdir()) == [
        "clip_object_2.0000.png", "clip_object_2.0001.png", "clip_object_2.json"]  # the old run's frames are gone


@pytest.fixture(scope="module")
def small_clip(tmp_path_factory) -> tuple[Path, Path]:
    """A 4-frame 30000/1001 mp4 and a first-frame mask with objects 1 and 3."""
    folder = tmp_path_factory.mktemp("clip")
    video = make_video(folder / "clip.mp4", "30000/1001", frames=4, size="64x48")
    mask = np.zeros((48, 64), np.uint8)
    mask[5:20, 5:25] = 1
    mask[25:45, 35:60] = 3
    Image.fromarray(mask).save(folder / "mask.png")
    return video, folder / "mask.png"


def test_cli_writes_editor_outputs_at_the_source_rate(small_clip, tiny_checkpoint, tmp_path, capsys):
    video, mask = small_clip
    out = tmp_path / "out"
    rc = main(["propagate", str(video), "--masks", str(mask), "--model", str(tiny_checkpoint), "--context", "1",
               "--out", str(out / "labels"), "--alpha", str(out / "alpha"), "--alpha-combined",
               "--exr", str(out / "exr"), "--alpha-video", str(out / "clip.mov"), "--start-number", "1001",
               "--min-area", "4", "--grow", "1", "--feather", "2"])
    assert rc == 0, capsys.readouterr().err
    assert ffmpeg_rate(out / "clip.mov") == (4, NTSC)
    for folder in ("object_1", "object_3", "all"):
        sidecar = json.loads((out / "alpha/clip" / folder / f"clip_{folder}.json").read_text())
        assert (sidecar["fps"], sidecar["fps_from"], sidecar["start_number"], sidecar["frame_count"]) == (
            "30000/1001", "source", 1001, 4)
    assert len(list((out / "exr/clip").glob("clip.10*.exr"))) == 4
    # frame 0 is the given mask: after clean-up (grow 1) its combined matte is the grown mask, feathered
    labels = png(out / "labels/clip/00000.png")[1]
    _, combined = png(out / "alpha/clip/all/clip_all.1001.png")
    assert ((combined >= 128) == (labels > 0)).mean() > 0.97
    assert (labels > 0).sum() > (np.array(Image.open(mask)) > 0).sum()  # grown


@pytest.mark.parametrize("flags, message", [
    (["--alpha-video", "x.avi"], "unknown alpha video extension"),
    (["--alpha", "A", "--min-area", "-3"], "--min-area"),
    (["--out", "L", "--feather", "3"], "--feather"),
    (["--alpha", "A", "--start-number", "-1"], "--start-number"),
    (["--alpha", "A"], "not empty"),
])
def test_cli_bad_output_options_exit_2_one_line(small_clip, tiny_checkpoint, tmp_path, capsys, flags, message):
    video, mask = small_clip
    (tmp_path / "A/clip").mkdir(parents=True)
    (tmp_path / "A/clip/old.png").write_bytes(b"an earlier run")
    flags = [str(tmp_path / f) if f in ("x.avi", "A", "L") else f for f in flags]
    assert main(["propagate", str(video), "--masks", str(mask), "--model", str(tiny_checkpoint), *flags]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "Traceback" not in err and message in err
