"""Optical-flow motion (``vos.motion``) and its use as a prior by the windows mode.

Oracles: a frame moved by a known translation (the flow must recover it and the warp must move a mask with it), plain
array shifts for the warp, and a painter with a known answer (it repaints its newest prompt) for where the windows
mode places its query window.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from seggpt_core.errors import InputError
from seggpt_core.model import PRESETS, SegGPT
from seggpt_core.predictor import SegGPTPredictor
from vos.config import MotionConfig, PropagationConfig
from vos.modes import Query, Slots, WindowsMode
from vos.motion import BackwardFlow, Fusion, MotionPrior, flow_track, fuse_scores, warp_labels, SCORE_RANGE
from vos.prompts import PromptBank, PromptFrame
from vos.readers import Frame

DX, DY = 6, -4  #: the scene moves 6 px right and 4 px up between consecutive frames


def textured(h: int = 120, w: int = 160, seed: int = 0) -> np.ndarray:
    """A smooth random texture, (h, w, 3) uint8, wide enough to be cut into shifted frames."""
    import cv2

    rng = np.random.default_rng(seed)
    noise = cv2.resize(rng.random((h // 8, w // 8, 3)).astype(np.float32), (w, h), interpolation=cv2.INTER_CUBIC)
    return np.clip(noise * 255, 0, 255).astype(np.uint8)


def moving_frames(n: int, h: int = 80, w: int = 100) -> list[np.ndarray]:
    """``n`` views of one texture, each moved by (DX, DY) from the last: frame t pixel (y, x) = scene (y - t DY, x - t
    DX) offset into the middle of the scene."""
    scene = textured()
    oy, ox = 20, 20
    return [np.ascontiguousarray(scene[oy - t * DY:oy - t * DY + h, ox - t * DX:ox - t * DX + w]) for t in range(n)]


def test_warp_with_a_constant_flow_is_a_shift_with_background_coming_in():
    labels = np.zeros((30, 40), np.uint8)
    labels[5:15, 10:20] = 3
    labels[20:25, 30:40] = 7  # touches the right border
    flow = np.zeros((30, 40, 2), np.float32)
    flow[..., 0], flow[..., 1] = -5, 2  # each pixel was 5 px to the left and 2 px lower in the frame before
    expected = np.zeros_like(labels)
    expected[:28, 5:] = labels[2:, :35]
    np.testing.assert_array_equal(warp_labels(labels, flow), expected)


def test_flow_recovers_a_translation_and_moves_a_mask_with_it():
    a, b = moving_frames(2)
    flow = BackwardFlow()(a, b)
    inner = flow[10:-10, 10:-10]  # away from the borders where content enters
    assert np.allclose(np.median(inner.reshape(-1, 2), axis=0), (-DX, -DY), atol=0.5)
    mask = np.zeros(a.shape[:2], np.uint8)
    mask[30:50, 30:60] = 1
    moved = np.zeros_like(mask)
    moved[30 + DY:50 + DY, 30 + DX:60 + DX] = 1
    warped = warp_labels(mask, flow)
    iou = (warped & moved).sum() / (warped | moved).sum()
    assert iou > 0.9, iou


def test_flow_track_carries_the_first_mask_through_the_frames():
    frames = moving_frames(4)
    first = np.zeros(frames[0].shape[:2], np.uint8)
    first[30:50, 20:45] = 2
    tracked = list(flow_track(iter(frames), first))
    assert len(tracked) == 4 and tracked[0] is first
    truth = np.zeros_like(first)
    truth[30 + 3 * DY:50 + 3 * DY, 20 + 3 * DX:45 + 3 * DX] = 2
    iou = ((tracked[3] == 2) & (truth == 2)).sum() / ((tracked[3] == 2) | (truth == 2)).sum()
    assert iou > 0.85, iou


def test_motion_prior_passes_frames_through_and_warps_with_each_frames_flow():
    frames = moving_frames(3)
    stream = [Frame(i, f"{i:05d}", rgb) for i, rgb in enumerate(frames[1:], start=1)]
    previous = np.zeros(frames[0].shape[:2], np.uint8)
    previous[30:50, 20:45] = 1
    prior = MotionPrior()
    seen = list(prior.track(iter(stream), frames[0]))  # the pass starts from frame 0 (its keyframe); read ahead
    assert seen == stream
    for frame in reversed(seen):  # each frame keeps its own flow however far ahead the reader went
        expected = warp_labels(previous, BackwardFlow()(frames[frame.index - 1], frame.rgb))
        np.testing.assert_array_equal(prior.warped(previous, frame.index), expected)
    assert prior.warped(None, 1) is None
    without_first = MotionPrior()
    for frame in without_first.track(iter(stream[:1]), None):  # no image of the frame before: nothing to warp with
        assert without_first.warped(previous, frame.index) is previous


def test_fuse_scores_lets_the_flow_decide_where_the_model_is_unsure():
    scores = torch.tensor([[0.9, 0.1, -0.1, -0.9]]) * SCORE_RANGE
    warped = np.array([[False, False, True, True]])
    assert fuse_scores(scores, warped, 0.0) is scores
    fused = fuse_scores(scores, warped, 0.3)
    assert (fused > 0).tolist() == [[True, False, True, False]]  # sure pixels keep the model's answer


def test_fusion_blends_one_object_inside_its_window_only():
    scores = torch.full((20, 30), -0.1 * SCORE_RANGE)
    warped = np.zeros((20, 30), np.uint8)
    warped[:, :] = 2  # the flow says object 2 is everywhere
    before = scores.clone()
    Fusion(MotionConfig()).blend(scores, (5, 10, 8, 12), warped, 2)
    assert torch.equal(scores, before)  # blend 0: the model's scores
    Fusion(MotionConfig(blend=0.3)).blend(scores, (5, 10, 8, 12), warped, 2)
    assert (scores[5:13, 10:22] > 0).all()  # unsure pixels inside the window follow the flow
    outside = torch.ones_like(scores, dtype=torch.bool)
    outside[5:13, 10:22] = False
    assert torch.equal(scores[outside], before[outside])
    Fusion(MotionConfig(blend=0.3)).blend(scores, (0, 0, 20, 30), None, 2)  # no prior: nothing to do


def test_motion_is_a_windows_mode_prior_only():
    assert PropagationConfig().uses_flow("windows")  # on by default in windows mode: it helped on validation
    assert not PropagationConfig(motion="none").uses_flow("windows")
    assert not PropagationConfig(motion="auto").uses_flow("joint")  # the published ViT-L keeps the paper's protocol
    with pytest.raises(InputError, match="windows mode"):
        PropagationConfig(mode="joint", motion="flow")
    with pytest.raises(InputError, match="blend"):
        MotionConfig(blend=1.5)
    with pytest.raises(InputError, match="recover"):
        MotionConfig(recover=-0.1)


def test_recover_replaces_only_objects_that_left_their_warped_mask():
    warped = np.zeros((40, 60), np.uint8)
    warped[5:15, 5:15] = 1  # 100 px each
    warped[20:30, 30:40] = 2
    warped[30:35, 50:55] = 3
    labels = torch.zeros(40, 60, dtype=torch.uint8)
    labels[5:7, 5:10] = 1  # collapsed: IoU 0.1
    labels[20:28, 30:40] = 2  # IoU 0.8: kept
    labels[0:5, 0:5] = 3  # jumped away: IoU 0
    labels[35:40, 0:60] = 4  # not in the warped mask: left alone
    recovered = Fusion(MotionConfig(recover=0.5)).recover(labels.clone(), warped)
    expected = labels.clone()
    expected[(expected == 1) | (expected == 3)] = 0
    expected[torch.from_numpy(warped == 1)] = 1
    expected[torch.from_numpy(warped == 3)] = 3
    assert torch.equal(recovered, expected)
    spilled = labels.clone()
    spilled[0:40, 0:30] = 1  # covers the warped object 1, IoU 100 / 1200
    assert torch.equal(Fusion(MotionConfig(recover=0.5)).recover(spilled, warped)[:, :30] == 1,
                       torch.from_numpy(warped[:, :30] == 1))
    assert torch.equal(Fusion(MotionConfig(recover=0.9)).recover(labels.clone(), warped)[20:30, 30:40],
                       torch.full((10, 10), 2, dtype=torch.uint8))  # 0.8 < 0.9: recovered too
    assert torch.equal(Fusion(MotionConfig()).recover(labels.clone(), warped), labels)  # off by default
    assert torch.equal(Fusion(MotionConfig(recover=0.5)).recover(labels.clone(), None), labels)  # no prior


class RepaintNewestPrompt(SegGPT):
    """Every query gets the target of the last prompt in the batch."""

    def paint(self, prompt_images, prompt_targets, query_images, seg_type="instance"):
        return prompt_targets[-1:].expand(query_images.shape[0], -1, -1, -1).clone()


def windows_step(model: SegGPT, flow: MotionConfig, previous: np.ndarray, warped: np.ndarray
                 ) -> tuple[WindowsMode, np.ndarray]:
    """One windows-mode step with the flow prior on a textured frame of ``previous``'s size: frame 0 (a blank
    permanent prompt) observed with the mask ``previous``, frame 1 (the same image) painted with ``warped`` as its
    flow-warped previous mask -> (the mode, frame 1's full-resolution labels)."""
    predictor = SegGPTPredictor(model, device="cpu", dtype="fp32")
    mode = WindowsMode(predictor, PropagationConfig(mode="windows", context=0, motion="flow", flow=flow))
    rgb = textured(*previous.shape)
    bank = PromptBank(0)
    bank.add_permanent(PromptFrame(0, predictor.prepare_image(rgb), torch.zeros(predictor.half_size).long()))
    before = Slots.at_full_size(previous, predictor.half_size)
    mode.observe(0, rgb, before)
    slots = mode.predict(bank, Query(1, predictor.prepare_image(rgb), rgb, before, warped),
                         np.array([[0, 0, 0], [255, 0, 0]], np.uint8))
    return mode, slots.full


@pytest.mark.parametrize("place", [True, False])
def test_windows_mode_places_the_query_window_around_the_warped_mask(place):
    """The object is painted back into the window around its warped mask (``place``) or its previous mask."""
    previous = np.zeros((120, 200), np.uint8)
    previous[20:40, 30:50] = 1
    warped = np.roll(previous, (50, 100), axis=(0, 1))
    mode, full = windows_step(RepaintNewestPrompt(PRESETS["test-tiny"]), MotionConfig(place=place), previous, warped)
    painted = full == 1
    where = warped if place else previous
    box = mode.windows.box(where == 1)
    top, left, h, w = box
    assert painted.any() and painted[top:top + h, left:left + w].sum() == painted.sum()


class PaintBlack(SegGPT):
    """Every query painted black: every object is lost."""

    def paint(self, prompt_images, prompt_targets, query_images, seg_type="instance"):
        return torch.full_like(query_images, -3.0)


@pytest.mark.parametrize("recover", [0.0, 0.5])
def test_windows_mode_recovers_a_lost_object_from_its_warped_mask(recover):
    previous = np.zeros((120, 200), np.uint8)
    previous[20:40, 30:50] = 1
    warped = np.roll(previous, (10, 20), axis=(0, 1))
    _, full = windows_step(PaintBlack(PRESETS["test-tiny"]), MotionConfig(recover=recover), previous, warped)
    np.testing.assert_array_equal(full, warped if recover else np.zeros_like(warped))


@pytest.mark.parametrize("prompt", [True, False])
def test_windows_mode_can_show_the_query_with_its_warped_mask_as_a_prompt(prompt):
    """A painter that repaints its newest prompt paints the warped mask back when the query is that prompt."""
    previous = np.zeros((120, 200), np.uint8)
    previous[20:60, 30:70] = 1
    warped = np.zeros_like(previous)
    warped[30:50, 40:70] = 1  # inside the window around the previous mask (not placed by flow), another shape
    _, full = windows_step(RepaintNewestPrompt(PRESETS["test-tiny"]), MotionConfig(place=False, prompt=prompt),
                           previous, warped)
    painted, truth = full == 1, (warped if prompt else previous) == 1
    iou = (painted & truth).sum() / (painted | truth).sum()
    assert iou > 0.8, iou
