"""The synthetic video generator: determinism, ground truth that matches the pixels, object life cycle, DAVIS layout."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from seggpt_core.errors import InputError
from vos.masks import davis_palette
from vos.training.synthetic import (
    REAL_LOOK,
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


# ------------------------------------------------------------------------------------------- the real-looking options

#: sha256 of frames 0, 5 and 11 (image and labels) of two default-look videos, rendered before the real-looking options
#: existed: the default look (the shipped model's training recipe and its held-out set) must not change.
DEFAULT_LOOK_DIGESTS = {
    (2_000_000, SyntheticVideoConfig(num_frames=12)):
        "5df913894fef0b8eacee331c443cf137a78f3ffa38591b04f99a4eb902938260",
    (7, SyntheticVideoConfig(size=(96, 160), num_frames=12, late_entry_prob=0.5, num_objects=(3, 3))):
        "39dad4451f0ed4b3abba27e7bffd94755f1ac237e3a1e95f1958cda1d1f7b49a",
}
REAL_SMALL = SyntheticVideoConfig(size=(120, 200), num_frames=12, num_objects=(2, 2), texture_source="procedural")


def test_the_default_look_is_unchanged_by_the_real_looking_options():
    import hashlib

    pytest.importorskip("skimage")
    for (seed, config), digest in DEFAULT_LOOK_DIGESTS.items():
        video, sha = SyntheticVideo(seed, config), hashlib.sha256()
        for t in (0, 5, 11):
            image, labels = video.frame(t)
            sha.update(image.tobytes())
            sha.update(labels.tobytes())
        assert sha.hexdigest() == digest


def test_occluders_hide_objects_without_a_label_of_their_own():
    """Oracle: the same video without occluders (the options draw from their own generator, so the objects are the
    same): with occluders every labelled pixel keeps its label, and some object pixels become background."""
    config = replace(REAL_SMALL, object_radius=(0.15, 0.25))
    hidden = 0
    for seed in range(4):
        plain, occluded = SyntheticVideo(seed, config), SyntheticVideo(seed, replace(config, occluders=(2, 2)))
        assert occluded.num_objects == plain.num_objects
        for t in range(0, config.num_frames, 2):
            labels, covered = plain.frame(t)[1], occluded.frame(t)[1]
            assert set(np.unique(covered)) <= set(np.unique(labels))
            np.testing.assert_array_equal(covered[covered > 0], labels[covered > 0])
            hidden += int(((labels > 0) & (covered == 0)).sum())
    assert hidden > 100


def test_motion_blur_smears_the_image_not_the_labels():
    fast = replace(REAL_SMALL, speed=(0.04, 0.05), num_objects=(1, 1), camouflage_prob=0.0)
    for seed in range(3):
        sharp, blurred = SyntheticVideo(seed, fast), SyntheticVideo(seed, replace(fast, motion_blur=1.0))
        for t in (3, 7):
            (a, labels_a), (b, labels_b) = sharp.frame(t), blurred.frame(t)
            np.testing.assert_array_equal(labels_a, labels_b)
            near = cv2.dilate((labels_a > 0).astype(np.uint8), np.ones((31, 31), np.uint8)).astype(bool)
            np.testing.assert_array_equal(a[~near], b[~near])  # the background is untouched
            assert np.abs(a.astype(int) - b)[near].mean() > 1  # the object's edges smear
            edges = [np.abs(cv2.Laplacian(cv2.cvtColor(x, cv2.COLOR_RGB2GRAY), cv2.CV_32F))[labels_a > 0].mean()
                     for x in (a, b)]
            assert edges[1] < edges[0]  # less detail inside the object


def test_camera_shake_moves_objects_and_background_together():
    """Oracle: phase correlation of the shaken and the still background gives the view's shift; the objects'
    labels are the still ones moved by the same shift."""
    still = replace(REAL_SMALL, camera_speed=0.0, leave_prob=0.0)
    moved = 0
    for seed in range(3):
        a, b = SyntheticVideo(seed, still), SyntheticVideo(seed, replace(still, camera_shake=0.02))
        for t in range(1, still.num_frames, 3):
            grey = [cv2.cvtColor(v.background(t), cv2.COLOR_RGB2GRAY).astype(np.float32) for v in (a, b)]
            (dx, dy), _ = cv2.phaseCorrelate(*grey)
            dx, dy = round(dx), round(dy)
            moved += bool(dx or dy)
            labels_a, labels_b = a.frame(t)[1], b.frame(t)[1]
            for k in range(1, a.num_objects + 1):
                ya, xa = np.nonzero(labels_a == k)
                yb, xb = np.nonzero(labels_b == k)
                if len(ya) and len(yb) and not (labels_a == k)[[0, -1]].any() and not (labels_a == k)[:, [0, -1]].any():
                    assert abs(xb.mean() - xa.mean() - dx) < 1 and abs(yb.mean() - ya.mean() - dy) < 1, (seed, t, k)
    assert moved >= 3


def test_lighting_scales_the_image_and_keeps_the_labels():
    lit_config = replace(REAL_SMALL, lighting=0.3)
    plain, lit = SyntheticVideo(1, REAL_SMALL), SyntheticVideo(1, lit_config)
    ratios = []
    for t in range(REAL_SMALL.num_frames):
        (a, labels_a), (b, labels_b) = plain.frame(t), lit.frame(t)
        np.testing.assert_array_equal(labels_a, labels_b)
        ratios.append(b.astype(float).mean() / a.astype(float).mean())
    assert max(ratios) - min(ratios) > 0.1


def test_thin_parts_make_objects_thinner():
    """Thin limbs add outline much faster than area: the area / perimeter ratio of the same object drops."""
    config = replace(REAL_SMALL, size=(240, 400), num_objects=(1, 1), deformation=0.0, scale_amplitude=0.0)
    for seed in range(3):
        compactness = []
        for thin in (0.0, 1.0):
            labels = SyntheticVideo(seed, replace(config, thin_parts_prob=thin)).frame(0)[1]
            mask = (labels == 1).astype(np.uint8)
            contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
            compactness.append(mask.sum() / sum(cv2.arcLength(c, True) for c in contours))
        assert compactness[1] < 0.8 * compactness[0], (seed, compactness)


def test_real_look_is_deterministic_and_every_object_starts_visible():
    pytest.importorskip("skimage")
    config = replace(REAL_LOOK, size=(120, 200), num_frames=6)
    for seed in (3_000_300, 3_000_301):
        first, again = SyntheticVideo(seed, config), SyntheticVideo(seed, config)
        for t in (0, 5):
            for x, y in zip(first.frame(t), again.frame(t)):
                np.testing.assert_array_equal(x, y)
        assert set(np.unique(first.frame(0)[1])) - {0} == set(range(1, first.num_objects + 1))


@pytest.mark.parametrize("bad", [dict(occluders=(2, 1)), dict(motion_blur=2.0), dict(camera_shake=-0.1),
                                 dict(thin_parts_prob=1.5), dict(camouflage_change=(0.5, 0.2)), dict(lighting=-1)])
def test_bad_real_look_option_is_an_input_error(bad):
    with pytest.raises(InputError):
        SyntheticVideoConfig(**bad)
