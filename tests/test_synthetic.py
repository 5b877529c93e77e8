"""The synthetic video generator: determinism, ground truth that matches the pixels, object life cycle, DAVIS layout."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from seggpt_core.errors import InputError
from vos.masks import davis_palette
from vos.training.synthetic import (
    SyntheticVideo,
    SyntheticVideoConfig,
    video_name,
    write_davis_dataset,
)

REPO = Path(__file__).resolve().parents[1]
SMALL = SyntheticVideoConfig(size=(96, 160), num_frames=12, texture_source="procedural")


def frames_of(seed: int, config: SyntheticVideoConfig) -> list[tuple[np.ndarray, np.ndarray]]:
    return list(SyntheticVideo(seed, config))


@pytest.mark.parametrize("source", ["procedural", "mixed"])
def test_same_seed_same_video_and_other_seeds_differ(source):
    if source == "mixed":
        pytest.importorskip("skimage")
    config = SyntheticVideoConfig(size=(96, 160), num_frames=8, texture_source=source)
    first, again, other = frames_of(3, config), frames_of(3, config), frames_of(4, config)
    assert len(first) == 8
    for (image, labels), (image2, labels2) in zip(first, again):
        assert image.shape == (96, 160, 3) and image.dtype == np.uint8
        assert labels.shape == (96, 160) and labels.dtype == np.uint8
        np.testing.assert_array_equal(image, image2)
        np.testing.assert_array_equal(labels, labels2)
    assert not np.array_equal(first[0][0], other[0][0])


def test_iteration_streams_and_matches_random_access():
    stream = iter(SyntheticVideo(5, SMALL))
    assert iter(stream) is stream and not isinstance(stream, (list, tuple))
    video = SyntheticVideo(5, SMALL)
    for t in (0, 1):
        image, labels = next(stream)
        np.testing.assert_array_equal(image, video.frame(t)[0])
        np.testing.assert_array_equal(labels, video.frame(t)[1])
    assert sum(1 for _ in stream) == SMALL.num_frames - 2


def test_labels_mark_exactly_the_pixels_objects_cover():
    """Oracle: the same frame rendered without objects. Outside the (slightly grown) labels no pixel may change;
    inside the (slightly shrunk) labels nearly every pixel must."""
    config = SyntheticVideoConfig(size=(120, 200), num_frames=10, num_objects=(3, 4), texture_source="procedural",
                                  camouflage_prob=0.0)
    kernel = np.ones((5, 5), np.uint8)
    for seed in range(3):
        video = SyntheticVideo(seed, config)
        for t in range(0, len(video), 3):
            image, labels = video.frame(t)
            changed = np.abs(image.astype(int) - video.background(t).astype(int)).max(axis=2) > 0
            covered = labels > 0
            assert not (changed & ~cv2.dilate(covered.astype(np.uint8), kernel).astype(bool)).any()
            inner = cv2.erode(covered.astype(np.uint8), kernel).astype(bool)
            assert changed[inner].mean() > 0.9


def test_ids_range_and_every_object_visible_in_frame_zero_by_default():
    for seed in range(6):
        video = SyntheticVideo(seed, SMALL)
        assert SMALL.num_objects[0] <= video.num_objects <= SMALL.num_objects[1]
        assert video.first_frames == (0,) * video.num_objects
        ids_seen = set()
        for t, (_, labels) in enumerate(video):
            ids = set(np.unique(labels).tolist()) - {0}
            assert ids <= set(range(1, video.num_objects + 1))
            if t == 0:
                assert ids == set(range(1, video.num_objects + 1))
            ids_seen |= ids


def test_late_objects_are_absent_before_their_first_frame_and_visible_on_it():
    config = SyntheticVideoConfig(size=(96, 160), num_frames=30, num_objects=(3, 4), late_entry_prob=1.0,
                                  texture_source="procedural")
    late_seen = 0
    for seed in range(3):
        video = SyntheticVideo(seed, config)
        assert video.first_frames[0] == 0  # id 1 always starts the video
        for k, first in enumerate(video.first_frames, start=1):
            for t in range(first + 1):
                present = (video.frame(t)[1] == k).any()
                assert present == (t == first), (seed, k, t, first)
            late_seen += first > 0
    assert late_seen >= 6


def test_roaming_objects_leave_the_frame_and_come_back():
    config = SyntheticVideoConfig(size=(64, 96), num_frames=150, num_objects=(2, 2), speed=(0.02, 0.03),
                                  leave_prob=1.0, texture_source="procedural")
    returns = 0
    for seed in range(3):
        video = SyntheticVideo(seed, config)
        presence = np.array([[(labels == k).any() for k in (1, 2)] for _, labels in video])
        for track in presence.T:
            gone = np.flatnonzero(~track)
            returns += bool(len(gone) and track[gone[0]:].any())
    assert returns >= 2


def test_davis_dataset_layout_contents_and_resume(tmp_path):
    config = SyntheticVideoConfig(size=(64, 96), num_frames=4, texture_source="procedural")
    names = write_davis_dataset(tmp_path, [7, 8], config, split="train")
    assert names == [video_name(7), video_name(8)]
    assert (tmp_path / "ImageSets" / "2017" / "train.txt").read_text().split() == names
    videos = [SyntheticVideo(7, config), SyntheticVideo(8, config)]
    for name, video, other in zip(names, videos, videos[::-1]):
        for t in range(4):
            mask = Image.open(tmp_path / "Annotations" / "480p" / name / f"{t:05d}.png")
            assert mask.mode == "P"
            np.testing.assert_array_equal(np.array(mask.getpalette()).reshape(-1, 3), davis_palette())
            image, labels = video.frame(t)
            np.testing.assert_array_equal(np.array(mask), labels)
            jpeg = np.array(Image.open(tmp_path / "JPEGImages" / "480p" / name / f"{t:05d}.jpg").convert("RGB"))
            assert jpeg.shape == image.shape
            # lossy, so: much closer to its own frame than to another video's
            error = np.abs(jpeg.astype(int) - image).mean()
            assert error < 0.5 * np.abs(jpeg.astype(int) - other.frame(t)[0]).mean()
    assert not list(tmp_path.rglob(".*"))  # no temp files left behind

    missing = tmp_path / "Annotations" / "480p" / names[1] / "00002.png"
    kept = tmp_path / "Annotations" / "480p" / names[0] / "00000.png"
    missing.unlink()
    kept_time = kept.stat().st_mtime_ns
    write_davis_dataset(tmp_path, {names[0]: 7, names[1]: 8}, config, split="train")
    np.testing.assert_array_equal(np.array(Image.open(missing)), SyntheticVideo(8, config).frame(2)[1])
    assert kept.stat().st_mtime_ns == kept_time  # resumed, not rewritten

    with pytest.raises(InputError, match="another seed or config"):
        write_davis_dataset(tmp_path, {names[0]: 9}, config)


@pytest.mark.parametrize("bad", [dict(size=(8, 8)), dict(num_objects=(3, 2)), dict(late_entry_prob=1.5),
                                 dict(texture_source="photos"), dict(object_radius=(0.2, 0.1))])
def test_bad_config_is_an_input_error(bad):
    with pytest.raises(InputError):
        SyntheticVideoConfig(**bad)


def test_procedural_textures_need_no_scikit_image():
    code = (
        "import sys; sys.modules['skimage'] = None\n"
        "from seggpt_core.errors import InputError\n"
        "from vos.training.synthetic import SyntheticVideo, SyntheticVideoConfig\n"
        "SyntheticVideo(0, SyntheticVideoConfig(size=(64, 96), num_frames=2, texture_source='procedural')).frame(1)\n"
        "try:\n"
        "    [SyntheticVideo(s, SyntheticVideoConfig(size=(64, 96), num_frames=2)) for s in range(20)]\n"
        "except InputError as err:\n"
        "    assert 'scikit-image' in str(err)\n"
        "else:\n"
        "    raise SystemExit('mixed textures without scikit-image did not fail')\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
