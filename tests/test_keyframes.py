"""Keyframes at any frame, both directions, re-propagation and session state, with the shipped model on real DAVIS
frames against their ground truth (and, for the DAVIS runner, against the outputs of the implementation before
keyframes: commit a82446f).

The clip: every 4th frame of davis-mini ``dog`` (frames 0, 4, ..., 40), so the dog moves enough between frames that
repeating a mask is a poor answer; context 3 keeps it quick on a CPU.
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import replace

import numpy as np
import pytest
import torch
from PIL import Image

from eval.metrics import boundary_tolerance, object_scores
from seggpt_core.adaptation import AdaptConfig
from seggpt_core.checkpoint import DEFAULT_MODEL
from seggpt_core.errors import InputError
from seggpt_core.predictor import SegGPTPredictor
from vos.cli.main import main
from vos.config import EdgeConfig, PropagationConfig, WindowConfig
from vos.masks import read_label_png
from vos.session import VideoSession


STEP, FRAMES = 4, 11
#: Adaptation off (``adapt.steps`` 0): these tests are about keyframes and passes, and a default-on adaptation would
#: fine-tune for every new set of keyframes; ``tests/test_adaptation.py`` checks the same promises with it on.
CONFIG = PropagationConfig(context=3, adapt=AdaptConfig())


@pytest.fixture(scope="module")
def predictor() -> SegGPTPredictor:
    torch.set_num_threads(min(2, torch.get_num_threads()))
    return SegGPTPredictor.from_pretrained(DEFAULT_MODEL, device="cpu", dtype="fp32")


@pytest.fixture(scope="module")
def clip(shared_data) -> tuple[list[np.ndarray], list[np.ndarray]]:
    root = shared_data / "davis-mini"
    index = [i * STEP for i in range(FRAMES)]
    frames = [np.asarray(Image.open(root / f"JPEGImages/480p/dog/{i:05d}.jpg")) for i in index]
    truth = [read_label_png(root / f"Annotations/480p/dog/{i:05d}.png")[0] for i in index]
    return frames, truth


def session_with(predictor, frames, truth, keyframes, config=CONFIG) -> VideoSession:
    session = VideoSession(predictor, frames, config)
    for k in keyframes:
        session.add_mask(k, truth[k])
    return session


def jf(predicted: np.ndarray, truth: np.ndarray) -> float:
    j, f = object_scores(truth == 1, predicted == 1, boundary_tolerance(truth.shape))
    return (j + f) / 2


def mean_jf(results, truth, frames) -> float:
    return float(np.mean([jf(results[i], truth[i]) for i in frames]))


@pytest.fixture(scope="module")
def first_only(predictor, clip) -> VideoSession:
    session = session_with(predictor, *clip, [0])
    list(session.propagate())
    return session


def results(session: VideoSession) -> list[np.ndarray]:
    return [session.result(i) for i in range(session.num_frames)]


# --- accuracy against ground truth -------------------------------------------------------------------------------------


def test_middle_keyframe_tracks_both_ways_better_than_repeating_it(predictor, clip):
    frames, truth = clip
    middle = FRAMES // 2
    session = session_with(predictor, frames, truth, [middle])
    assert session.plan() == [middle, *range(middle - 1, -1, -1), *range(middle + 1, FRAMES)]
    order = [p.index for p in session.propagate("both")]
    assert order == [middle, *range(middle - 1, -1, -1), *range(middle + 1, FRAMES)]
    before, after = range(middle), range(middle + 1, FRAMES)
    ours = results(session)
    repeated = [truth[middle]] * FRAMES
    print(f"before the keyframe J&F {mean_jf(ours, truth, before):.3f} (repeat {mean_jf(repeated, truth, before):.3f}),"
          f" after {mean_jf(ours, truth, after):.3f} (repeat {mean_jf(repeated, truth, after):.3f})")
    assert all(ours[i].any() for i in before)
    assert mean_jf(ours, truth, before) > mean_jf(repeated, truth, before) + 0.1
    assert mean_jf(ours, truth, after) > mean_jf(repeated, truth, after) + 0.1


def test_first_and_last_keyframes_beat_the_first_alone(predictor, clip, first_only):
    frames, truth = clip
    both = session_with(predictor, frames, truth, [0, FRAMES - 1])
    list(both.propagate())
    between = range(1, FRAMES - 1)
    one, two = mean_jf(results(first_only), truth, between), mean_jf(results(both), truth, between)
    print(f"frames between: first keyframe only J&F {one:.3f}, first + last {two:.3f}")
    assert two > one + 0.02


# --- re-propagation and state ------------------------------------------------------------------------------------------


def test_repropagation_after_a_correction_equals_a_fresh_session(predictor, clip, first_only):
    frames, truth = clip
    k = 3 * FRAMES // 4  # 8
    session = session_with(predictor, frames, truth, [0])
    list(session.propagate())
    before = results(session)
    np.testing.assert_array_equal(np.stack(before), np.stack(results(first_only)))  # deterministic
    session.add_mask(k, truth[k])
    middle = k // 2
    # Frames 1..middle come from frame 0 forwards exactly as before; the rest lie next to the new keyframe.
    assert session.plan() == [*range(k - 1, middle, -1), k, *range(k + 1, FRAMES)]
    recomputed = [p.index for p in session.propagate()]
    assert recomputed == session_with(predictor, frames, truth, [0, k]).plan()[middle + 1:]
    fresh = session_with(predictor, frames, truth, [0, k])
    list(fresh.propagate())
    for i in range(FRAMES):
        np.testing.assert_array_equal(session.result(i), fresh.result(i), err_msg=f"frame {i}")
    for i in range(middle + 1):
        np.testing.assert_array_equal(session.result(i), before[i])
    assert session.plan() == []


def test_early_stop_keeps_results_and_resumes_to_the_same_answer(predictor, clip, first_only):
    frames, truth = clip
    session = session_with(predictor, frames, truth, [0])
    run = session.propagate()
    got = [next(run).index for _ in range(5)]
    run.close()  # the model's thread, painting ahead, and the reader threads are stopped and joined
    assert [t.name for t in threading.enumerate() if t.name.split(":")[0] in ("model", "transform", "decode")] == []
    assert got == [0, 1, 2, 3, 4]
    assert session.result(4) is not None and session.result(5) is None
    assert session.plan() == list(range(5, FRAMES))
    list(session.propagate())  # resumes at frame 5 with the prompt bank rebuilt from the stored frames
    np.testing.assert_array_equal(np.stack(results(session)), np.stack(results(first_only)))


def test_two_propagate_calls_give_identical_results_and_no_late_object_leaks(shared_data, predictor):
    """An object given only at frame 6 must not appear before it in forward, on the first run or the second."""
    root = shared_data / "davis-edge-lateobj"
    frames = [np.asarray(Image.open(root / f"JPEGImages/480p/dog-lateobj/{i:05d}.jpg")) for i in range(14, 26)]
    mask0, _ = read_label_png(root / "Annotations/480p/dog-lateobj/00014.png")
    mask6, _ = read_label_png(root / "Annotations/480p/dog-lateobj/00020.png")
    assert set(np.unique(mask0)) == {0, 1} and 2 in mask6
    session = VideoSession(predictor, frames, PropagationConfig(context=2, mode="joint"))
    session.add_mask(0, mask0)
    session.add_mask(6, np.where(mask6 == 2, 2, 0).astype(np.uint8))  # introduces object 2 only
    first = [p.labels for p in session.propagate("forward")]
    assert session.plan("forward") == []
    session.reset()
    assert session.result(3) is None and list(session.keyframes) == [0, 6]
    second = [p.labels for p in session.propagate("forward")]
    np.testing.assert_array_equal(np.stack(first), np.stack(second))
    assert all(2 not in labels for labels in first[:6])
    assert 2 in first[6] and 1 in first[6] and 2 in first[9]  # object 1 kept its prediction at the new keyframe


def test_remove_object_equals_a_session_that_never_had_it(shared_data, predictor):
    root = shared_data / "davis-mini-multi"
    frames = [np.asarray(Image.open(root / f"JPEGImages/480p/blackswan-x3/{i:05d}.jpg")) for i in range(6)]
    mask0, _ = read_label_png(root / "Annotations/480p/blackswan-x3/00000.png")
    mask5, _ = read_label_png(root / "Annotations/480p/blackswan-x3/00005.png")
    config = PropagationConfig(context=2, mode="joint")
    session = VideoSession(predictor, frames, config)
    session.add_mask(0, mask0)
    session.add_mask(5, mask5)
    list(session.propagate())
    session.remove_object(3)
    assert session.objects == (1, 2) and all(3 not in session.result(i) for i in range(6))
    list(session.propagate())
    fresh = VideoSession(predictor, frames, config)
    fresh.add_mask(0, np.where(mask0 == 3, 0, mask0).astype(np.uint8))
    fresh.add_mask(5, np.where(mask5 == 3, 0, mask5).astype(np.uint8))
    list(fresh.propagate())
    for i in range(6):
        np.testing.assert_array_equal(session.result(i), fresh.result(i))
    with pytest.raises(InputError, match="object id 3 is not in any keyframe"):
        session.remove_object(3)


def test_removing_a_keyframe_equals_a_session_that_never_had_it(predictor, clip):
    frames, truth = clip
    session = session_with(predictor, frames, truth, [0, 4, 8])
    list(session.propagate())
    before = results(session)
    session.remove_keyframe(4)
    # The nearest keyframe between 0 and 8 now changes at frame 4: 1, 2 (forwards from 0) and 7 (backwards from 8)
    # were computed by the same passes before; 3 and 4 now come from frame 0, 6 and 5 from frame 8.
    assert session.plan() == [3, 4, 6, 5]
    assert [p.index for p in session.propagate()] == [3, 4, 6, 5]
    fresh = session_with(predictor, frames, truth, [0, 8])
    list(fresh.propagate())
    for i in range(FRAMES):
        np.testing.assert_array_equal(session.result(i), fresh.result(i), err_msg=f"frame {i}")
    for i in (0, 1, 2, 7, 8, 9, 10):
        np.testing.assert_array_equal(session.result(i), before[i], err_msg=f"frame {i}")
    assert not np.array_equal(session.result(4), truth[4])  # a prediction now, no longer the removed mask
    session.remove_keyframe(0)
    session.remove_keyframe(8)
    assert list(session.keyframes) == []
    with pytest.raises(InputError, match="no mask given; add a keyframe mask"):
        session.plan()
    with pytest.raises(InputError, match="no mask given; add a keyframe mask"):
        next(session.propagate())


def test_results_spill_to_disk_beyond_the_budget_and_read_back_identically(predictor, clip, first_only):
    frames, truth = clip
    session = session_with(predictor, frames, truth, [0], replace(CONFIG, store_budget_mb=0.5))
    list(session.propagate())
    assert session._store.ram_bytes <= 0.5 * 2**20
    np.testing.assert_array_equal(np.stack(results(session)), np.stack(results(first_only)))


# --- the DAVIS runner is unchanged -------------------------------------------------------------------------------------

#: sha256 of the label maps written by ``run_tasks`` for the first 10 frames of davis-mini-multi/blackswan-x3 with
#: context 3 and the shipped model in fp32, computed with the implementation before keyframes (commit a82446f, its
#: worktree given the weights shipped since session 6).
BEFORE_KEYFRAMES = {
    "windows": "3ddea461df8be28882bdc294fce459bbd0f640ad23d0207f7c5799eaf0511c8a",
    "joint": "7ab68300ef5b768c8a73a2467ebaeb9b4271436c735bb1a9eba67136a2aa326e",
    "per-object": "e74c33528419f4f84802b7a4b216991c9ce07d819fe077fceb4e6f4c15258057",
}


@pytest.mark.parametrize("mode", sorted(BEFORE_KEYFRAMES))
def test_forward_from_frame_0_is_bit_identical_to_the_pipeline_before_keyframes(davis_subset, predictor, tmp_path,
                                                                                mode):
    from vos.datasets import list_davis
    from vos.runner import run_tasks

    root = davis_subset("davis-mini-multi", {"blackswan-x3": 10})
    # the pipeline before keyframes had neither the motion prior, adaptation, edge refinement nor mirroring
    config = PropagationConfig(context=3, mode=mode, motion="none", adapt=AdaptConfig(), edges=EdgeConfig(radius=0),
                               mirror=False)
    run_tasks(predictor, list_davis(root), tmp_path / mode, config, progress=False)
    digest = hashlib.sha256()
    for png in sorted((tmp_path / mode / "blackswan-x3").glob("*.png")):
        digest.update(np.array(Image.open(png)).tobytes())
    assert digest.hexdigest() == BEFORE_KEYFRAMES[mode]


# --- bad input -----------------------------------------------------------------------------------------------------------


def test_configs_validate_themselves():
    with pytest.raises(InputError, match=r"context must be an integer >= 0 \(or None: auto\), got -1"):
        PropagationConfig(context=-1)
    with pytest.raises(InputError, match="unknown mode"):
        PropagationConfig(mode="fast")
    with pytest.raises(InputError, match="window margin"):
        WindowConfig(margin=0)


@pytest.mark.parametrize("case", ["negative", "past_end", "size", "twice", "backward", "unknown_id", "direction"])
def test_bad_keyframes_are_one_line_input_errors(repaint_free_session, case):
    session, mask = repaint_free_session
    expected = {"negative": "frame -1", "past_end": "frame 11", "size": "mask is 854x100", "twice": "already has a mask",
                "backward": "needs a keyframe after frame 0", "unknown_id": "object id 9", "direction": "sideways"}
    with pytest.raises(InputError) as error:
        if case == "negative":
            session.add_mask(-1, mask)
        elif case == "past_end":
            session.add_mask(FRAMES, mask)
        elif case == "size":
            session.add_mask(3, mask[:100])
        elif case == "twice":
            session.add_mask(0, mask)
        elif case == "backward":
            session.plan("backward")
        elif case == "unknown_id":
            session.remove_object(9)
        else:
            session.plan("sideways")
    assert expected[case] in str(error.value) and "\n" not in str(error.value)


@pytest.fixture()
def repaint_free_session(predictor, clip):
    frames, truth = clip
    return session_with(predictor, frames, truth, [0]), truth[0]


def test_cli_keyframes_and_direction(davis_subset, tmp_path, capsys):
    root = davis_subset("davis-mini", {"dog": 8})
    frames, masks = root / "JPEGImages/480p/dog", root / "Annotations/480p/dog"
    base = ["propagate", str(frames), "--context", "1", "--mode", "joint", "--out", str(tmp_path / "out")]
    assert main([*base, "--mask-at", "4", str(masks / "00004.png")]) == 0
    written = sorted(p.stem for p in (tmp_path / "out" / "dog").glob("*.png"))
    assert written == [f"{i:05d}" for i in range(8)]
    assert np.array(Image.open(tmp_path / "out/dog/00001.png")).any()  # tracked backwards from frame 4
    capsys.readouterr()
    for bad, message in (([*base, "--masks", str(masks / "00000.png"), "--direction", "backward"],
                          "needs a keyframe after frame 0"),
                         ([*base, "--mask-at", "9", str(masks / "00004.png")], "00004.png: mask is given for frame 9"),
                         ([*base, "--masks", str(masks / "00000.png"), "--mask-at", "0", str(masks / "00001.png")],
                          "frame 0 already has a mask")):
        assert main(bad) == 2
        err = capsys.readouterr().err.strip()
        assert message in err and "\n" not in err and "Traceback" not in err
