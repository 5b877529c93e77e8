"""The propagation session and its prompt bank, checked against ground-truth masks.

The plumbing (id mapping, palette encoding as prompts, decoding, resizing, late objects, corrections) is checked
with a painter whose output is known exactly: it repaints its newest prompt's mask. Its predictions must then equal
that mask after the model-resolution round trip, computed here independently with PIL and numpy indexing.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch
from PIL import Image

from seggpt_core.errors import InputError
from seggpt_core.model import PRESETS, SegGPT
from seggpt_core.predictor import SegGPTPredictor
from seggpt_core.adaptation import AdaptConfig
from tests.painters import RecordingRepainter, RepaintNewestPrompt, round_trip
from vos.config import PAPER_CONTEXT, WINDOWS_CONTEXT, EdgeConfig, PropagationConfig
from vos.masks import read_label_png
from vos.prompts import PromptBank, PromptFrame
from vos.session import VideoSession
from vos.windows import object_window

TINY = PRESETS["test-tiny"]


@pytest.fixture()
def repaint_predictor():
    return SegGPTPredictor(RepaintNewestPrompt(TINY), device="cpu", dtype="fp32")


def test_late_object_and_user_ids_round_trip(shared_data, repaint_predictor):
    root = shared_data / "davis-edge-lateobj"
    frames = root / "JPEGImages/480p/dog-lateobj"
    mask0, palette = read_label_png(root / "Annotations/480p/dog-lateobj/00000.png")
    mask20, _ = read_label_png(root / "Annotations/480p/dog-lateobj/00020.png")
    # Arbitrary user ids with gaps: 1 -> 7, 2 -> 42.
    lut = np.zeros(256, np.uint8)
    lut[1], lut[2] = 7, 42
    session = VideoSession(repaint_predictor, frames, PropagationConfig(context=0, mode="joint"))
    session.add_mask(0, lut[mask0])
    session.add_mask(20, lut[mask20])
    preds = list(session.propagate("forward"))
    assert [p.index for p in preds] == list(range(60))
    assert preds[5].name == "00005" and preds[5].frame.shape == (480, 854, 3)
    np.testing.assert_array_equal(preds[0].labels, lut[mask0])
    np.testing.assert_array_equal(preds[20].labels, lut[mask20])
    for i in (1, 19):
        np.testing.assert_array_equal(preds[i].labels, round_trip(lut[mask0], TINY.half_size))
    for i in (21, 59):
        np.testing.assert_array_equal(preds[i].labels, round_trip(lut[mask20], TINY.half_size))
    assert session.objects == (7, 42)
    assert set(np.unique(preds[30].labels)) == {0, 7, 42}


def test_correction_replaces_only_the_given_objects(shared_data, repaint_predictor):
    root = shared_data / "davis-mini-multi"
    seq = root / "JPEGImages/480p/libby-x2"
    mask0, _ = read_label_png(root / "Annotations/480p/libby-x2/00000.png")
    session = VideoSession(repaint_predictor, seq, PropagationConfig(context=0, mode="joint"))
    session.add_mask(0, mask0)
    correction = np.zeros_like(mask0)
    correction[100:200, 100:300] = 2  # object 2 redrawn as a box; object 1 keeps its prediction
    session.add_mask(3, correction)
    preds = {p.index: p.labels for p in session.propagate("forward") if p.index <= 3}
    predicted = round_trip(mask0, TINY.half_size)
    expected = np.where(correction > 0, 2, np.where(predicted == 2, 0, predicted))
    np.testing.assert_array_equal(preds[3], expected)


def test_frames_before_the_first_mask_are_background(shared_data, repaint_predictor):
    root = shared_data / "davis-edge-lateobj"
    mask20, _ = read_label_png(root / "Annotations/480p/dog-lateobj/00020.png")
    session = VideoSession(repaint_predictor, root / "JPEGImages/480p/dog-lateobj",
                           PropagationConfig(context=2, mode="joint"))
    session.add_mask(20, mask20)
    preds = list(session.propagate("forward"))
    assert all(not p.labels.any() for p in preds[:20])
    np.testing.assert_array_equal(preds[20].labels, mask20)
    assert preds[40].labels.any()


def test_removing_a_keyframe_restales_only_the_frames_that_depended_on_it(shared_data, repaint_predictor):
    """Keyframe 20 only introduces object 2, so its labels (and the pass after it) come through keyframe 0; keyframe 40
    has every object. Removing keyframe 0 makes 0..19 background and 20 its own mask, so 0..39 are recomputed (the
    painter repaints keyframe 20's mask) and 40..59 keep their results."""
    root = shared_data / "davis-edge-lateobj"
    annotations = root / "Annotations/480p/dog-lateobj"
    mask0, mask20, mask40 = (read_label_png(annotations / f"{i:05d}.png")[0] for i in (0, 20, 40))
    only2 = np.where(mask20 == 2, 2, 0).astype(np.uint8)
    config = PropagationConfig(context=0, mode="joint")
    session = VideoSession(repaint_predictor, root / "JPEGImages/480p/dog-lateobj", config)
    for index, mask in ((0, mask0), (20, only2), (40, mask40)):
        session.add_mask(index, mask)
    before = {p.index: p.labels for p in session.propagate("forward")}
    assert 1 in before[10] and 1 in before[30]
    with pytest.raises(InputError, match=r"frame 7 has no keyframe to remove \(keyframes: \[0, 20, 40\]\)"):
        session.remove_keyframe(7)
    session.remove_keyframe(0)
    assert list(session.keyframes) == [20, 40] and session.objects == (2, 1)
    assert session.plan("forward") == list(range(40))
    after = {p.index: p.labels for p in session.propagate("forward")}
    assert sorted(after) == list(range(40))
    assert all(not after[i].any() for i in range(20))
    np.testing.assert_array_equal(after[20], only2)
    for i in (21, 39):
        np.testing.assert_array_equal(after[i], round_trip(only2, TINY.half_size))
    for i in range(40, 60):
        np.testing.assert_array_equal(session.result(i), before[i], err_msg=f"frame {i}")
    assert session.plan("forward") == []


def test_windows_mode_cuts_each_object_out_and_pastes_it_back(repaint_predictor):
    """Frame 1 is painted from frame 0's mask: each object's window (the same box in prompt and query) comes back
    through the model-resolution round trip inside that box only, and nothing outside the windows."""
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 256, (120, 200, 3), dtype=np.uint8) for _ in range(3)]
    mask = np.zeros((120, 200), np.uint8)
    mask[20:41, 30:52] = 3
    yy, xx = np.mgrid[:120, :200]
    mask[(yy - 80) ** 2 + ((xx - 150) / 1.5) ** 2 < 15 ** 2] = 5  # far enough from object 3 for disjoint windows
    config = PropagationConfig(context=0, mode="windows", upsample="nearest", motion="none",
                               edges=EdgeConfig(radius=0))  # the window plumbing
    session = VideoSession(repaint_predictor, iter(frames), config)
    session.add_mask(0, mask)
    preds = [p.labels for p in session.propagate()]
    expected = np.zeros_like(mask)
    for obj, box in ((3, (14, 24, 33, 33)), (5, (46, 116, 68, 68))):  # margin 1.5 x the longer box side
        assert object_window(mask == obj, config.windows.margin, config.windows.min_side) == box
        top, left, h, w = box
        window = (mask == obj).astype(np.uint8)[top:top + h, left:left + w] * obj
        expected[top:top + h, left:left + w] += round_trip(window, TINY.half_size)
    assert len(preds) == 3 and preds[2].any()
    np.testing.assert_array_equal(preds[1], expected)


def test_auto_mode_uses_windows_only_for_low_resolution_models(repaint_predictor):
    assert PropagationConfig().resolved_mode((64, 64)) == "windows"
    assert PropagationConfig().resolved_mode((448, 448)) == "joint"  # the published ViT-L: the paper's whole frames
    assert PropagationConfig().resolved_mode((64, 64), tuned=True) == "joint"
    assert PropagationConfig(mode="per-object").resolved_mode((64, 64)) == "per-object"
    assert VideoSession(repaint_predictor, [np.zeros((8, 8, 3), np.uint8)]).mode == "windows"


@pytest.mark.parametrize("mode, context, mirrored", [("windows", WINDOWS_CONTEXT, True),
                                                     ("joint", PAPER_CONTEXT, False),
                                                     ("per-object", PAPER_CONTEXT, False)])
def test_default_context_and_mirroring_follow_the_mode(mode, context, mirrored):
    """The windows mode keeps WINDOWS_CONTEXT previous predictions and paints every window twice, the second time
    the task mirrored left to right; the whole-frame modes keep the paper's 7 and paint once (its protocol)."""
    assert (WINDOWS_CONTEXT, PAPER_CONTEXT) == (3, 7)
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 256, (60, 100, 3), dtype=np.uint8) for _ in range(11)]
    mask = np.zeros((60, 100), np.uint8)
    mask[10:30, 20:50] = 1
    painter = RecordingRepainter(TINY)
    config = PropagationConfig(mode=mode, motion="none", edges=EdgeConfig(radius=0), adapt=AdaptConfig())
    session = VideoSession(SegGPTPredictor(painter, device="cpu", dtype="fp32"), iter(frames), config)
    session.add_mask(0, mask)
    assert len(list(session.propagate())) == 11
    calls = 2 if mirrored else 1
    assert len(painter.targets) == 10 * calls
    prompts = [len(t) for t in painter.targets[::calls]]  # the annotated frame + the previous predictions so far
    assert prompts == [1 + min(t, context) for t in range(10)]
    if mirrored:
        for plain, flipped in zip(painter.targets[::2], painter.targets[1::2]):
            torch.testing.assert_close(flipped, plain.flip(-1), atol=0, rtol=0)
    explicit = replace(config, context=5, mirror=not mirrored)
    assert explicit.context_size(mode) == 5 and explicit.uses_mirror(mode) is (not mirrored)
    with pytest.raises(InputError, match="mirror must be True, False or None"):
        PropagationConfig(mirror="yes")


def test_prompt_bank_keeps_annotations_and_a_fifo():
    bank = PromptBank(capacity=2)
    frame = lambda v: PromptFrame(v, torch.full((3, 2, 2), float(v)), torch.full((2, 2), v % 2, dtype=torch.long))
    bank.add_permanent(frame(0))
    for v in (1, 2, 3):
        bank.push(frame(v))
    assert [int(f.image[0, 0, 0]) for f in bank.frames()] == [0, 2, 3]
    images, targets = bank.batch(np.array([[0, 0, 0], [255, 255, 255]], np.uint8))
    assert images.shape == targets.shape == (3, 3, 2, 2)
    # slot 1 (frame 3) is drawn white: ImageNet-normalised 255 -> (1 - mean) / std
    assert torch.allclose(targets[2, :, 0, 0], (1 - torch.tensor([0.485, 0.456, 0.406])) / torch.tensor([0.229, 0.224, 0.225]))


def test_real_model_runs_joint_and_per_object_modes(shared_data):
    torch.manual_seed(0)
    predictor = SegGPTPredictor(SegGPT(TINY), device="cpu", dtype="fp32")
    root = shared_data / "davis-mini-multi"
    frames = [np.asarray(Image.open(root / f"JPEGImages/480p/blackswan-x3/{i:05d}.jpg")) for i in range(4)]
    mask0, _ = read_label_png(root / "Annotations/480p/blackswan-x3/00000.png")
    for mode in ("joint", "per-object"):
        session = VideoSession(predictor, iter(frames), PropagationConfig(context=2, mode=mode))
        session.add_mask(0, mask0)
        preds = list(session.propagate())
        assert len(preds) == 4 and all(p.labels.shape == mask0.shape for p in preds)
        assert set(np.unique(preds[3].labels)) <= {0, 1, 2, 3}


@pytest.mark.parametrize("case", ["past_end", "empty", "size", "none"])
def test_bad_masks_are_input_errors(shared_data, repaint_predictor, case):
    root = shared_data / "davis-mini"
    frames = root / "JPEGImages/480p/blackswan"
    mask0, _ = read_label_png(root / "Annotations/480p/blackswan/00000.png")
    session = VideoSession(repaint_predictor, frames)
    with pytest.raises(InputError):
        if case == "past_end":
            session.add_mask(50, mask0)
        elif case == "empty":
            session.add_mask(0, np.zeros_like(mask0))
        elif case == "size":
            session.add_mask(0, mask0[:100])
        else:
            next(session.propagate())

