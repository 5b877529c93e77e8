"""One-shot adaptation (``seggpt_core.adaptation``, ``vos.adaptation``): a copy of the model fine-tuned on pairs made
from the keyframes alone.

Oracles: the weights themselves (a copy changes, the original does not, the same seed gives the same weights), the
training loss on fresh pairs from the same keyframe (it must fall), the keyframe's own mask for what a pair may
contain (an augmented half is the mask moved with its image), and the command line's parsed config.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from seggpt_core.adaptation import AdaptConfig, adapt
from seggpt_core.errors import InputError
from seggpt_core.losses import masked_loss
from seggpt_core.model import PRESETS, SegGPT
from seggpt_core.predictor import SegGPTPredictor
from seggpt_core.training import TrainConfig, make_canvas
from vos.adaptation import KeyframePairs
from vos.config import WINDOWS_ADAPT, PropagationConfig, WindowConfig
from vos.session import VideoSession

TINY = PRESETS["test-tiny"]


def keyframe(h: int = 60, w: int = 90, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A textured (h, w) frame with two objects: a bright disc (1) and a dark box (2), placed relative to its size."""
    rng = np.random.default_rng(seed)
    rgb = rng.integers(60, 200, (h, w, 3), dtype=np.uint8)
    yy, xx = np.mgrid[:h, :w] / (h / 60)
    slots = np.zeros((h, w), np.uint8)
    disc = (yy - 25) ** 2 + (xx - 30) ** 2 < 12 ** 2
    slots[disc] = 1
    rgb[disc] = (250, 240, 60)
    box = (yy >= 35) & (yy < 52) & (xx >= 60) & (xx < 80)
    slots[box] = 2
    rgb[box] = (20, 30, 120)
    return rgb, slots


def tiny_model(seed: int = 0) -> SegGPT:
    torch.manual_seed(seed)
    return SegGPT(TINY).eval()


def pairs(mode: str = "windows") -> KeyframePairs:
    return KeyframePairs([keyframe()], mode, WindowConfig(), TINY.half_size)


def weights(model: SegGPT) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def test_same_seed_same_weights_and_the_original_is_untouched():
    model = tiny_model()
    before = weights(model)
    config = AdaptConfig(steps=3, lr=1e-3, batch_size=2, seed=5)
    first, second = adapt(model, pairs(), config), adapt(model, pairs(), config)
    other_seed = adapt(model, pairs(), AdaptConfig(steps=3, lr=1e-3, batch_size=2, seed=6))
    for name, value in model.state_dict().items():
        assert torch.equal(value, before[name]), name  # the original is not touched
        assert torch.equal(first.state_dict()[name], second.state_dict()[name]), name
    changed = [k for k, v in first.state_dict().items() if not torch.equal(v, before[k])]
    assert len(changed) > len(before) // 2  # the copy is trained (AdamW moves every parameter with a gradient)
    assert any(not torch.equal(first.state_dict()[k], other_seed.state_dict()[k]) for k in changed)
    assert not first.training and not any(p.requires_grad for p in first.parameters())


def test_adaptation_lowers_the_training_loss_on_fresh_pairs_of_its_keyframe():
    model = SegGPT.from_pretrained("seggpt-vos-small")
    config = model.config
    canvas = TrainConfig(half_mask_prob=1.0, label_colours_prob=1.0, black_background_prob=1.0)
    sampler = KeyframePairs([keyframe(240, 360)], "windows", WindowConfig(), config.half_size)
    # pairs the adaptation never drew (it draws from default_rng([seed, step, i]))
    held_out = [make_canvas(np.random.default_rng([99, 99, i]), sampler, config, canvas) for i in range(16)]
    images, shown, targets, mask, valid, seg_type = (torch.stack(t) for t in zip(*held_out))

    def loss(m: SegGPT) -> float:
        with torch.no_grad():
            return float(masked_loss(m(images, shown, mask, seg_type=seg_type), targets, mask, config.patch_size,
                                     valid))

    adapted = adapt(model, sampler, AdaptConfig(steps=15, lr=3e-4, batch_size=4))
    assert loss(adapted) < 0.8 * loss(model)


def test_adapting_a_bf16_predictor_trains_in_fp32_and_returns_bf16():
    predictor = SegGPTPredictor(tiny_model(), device="cpu", dtype="bf16")
    seen = []

    def on_step(step: int, value: float) -> None:
        seen.append((step, value))

    adapted = adapt(predictor.model, pairs(), AdaptConfig(steps=2, lr=1e-3, batch_size=2), on_step=on_step)
    assert adapted.compute_dtype == torch.bfloat16 == predictor.model.compute_dtype
    assert [s for s, _ in seen] == [1, 2] and all(np.isfinite(v) for _, v in seen)


@pytest.mark.parametrize("mode", ["windows", "per-object", "joint"])
def test_pairs_are_augmented_keyframes_painted_as_the_mode_paints(mode):
    rgb, slots = keyframe()
    sampler = pairs(mode)
    for i in range(20):
        rng = np.random.default_rng(i)
        pair = sampler(rng, rng)
        for image, labels in ((pair.image_a, pair.labels_a), (pair.image_b, pair.labels_b)):
            assert image.shape == (*TINY.half_size, 3) and labels.shape == TINY.half_size
            present = set(np.unique(labels)) - {0}
            if mode == "joint":
                assert present <= {1, 2}  # both objects keep their slots (one may leave the frame)
            else:
                assert present == {1}  # one object, white on black
        if mode == "windows":  # the object fills a similar part of both windows, unlike the whole frame
            whole = max((slots == k).mean() for k in (1, 2))
            assert (pair.labels_a > 0).mean() > 2 * whole and (pair.labels_b > 0).mean() > 2 * whole
    a = [sampler(np.random.default_rng(i), np.random.default_rng(i)) for i in (0, 0, 1)]
    assert np.array_equal(a[0].image_b, a[1].image_b) and not np.array_equal(a[0].image_b, a[2].image_b)


@pytest.mark.parametrize("field, value", [("steps", -1), ("steps", 1.5), ("lr", 0.0), ("lr", float("nan")),
                                          ("batch_size", 0), ("seed", -1)])
def test_bad_settings_are_one_line_input_errors(field, value):
    with pytest.raises(InputError, match=field.replace("_", "[ _]")) as raised:
        AdaptConfig(**{field: value})
    assert "\n" not in str(raised.value)
    with pytest.raises(InputError, match="AdaptConfig"):
        PropagationConfig(adapt=5)


def test_adaptation_is_on_by_default_in_windows_mode_only():
    """Auto (``adapt=None``): the measured setting in windows mode; the whole-frame modes, the paper's protocol with
    the published ViT-L, adapt only when asked."""
    auto = PropagationConfig()
    assert auto.adaptation("windows") == WINDOWS_ADAPT and WINDOWS_ADAPT.enabled
    assert not auto.adaptation("joint").enabled and not auto.adaptation("per-object").enabled
    asked = PropagationConfig(mode="joint", adapt=AdaptConfig(steps=5))
    assert asked.adaptation("joint") == AdaptConfig(steps=5)
    assert not PropagationConfig(adapt=AdaptConfig()).adaptation("windows").enabled


def test_the_command_line_flags_reach_the_config():
    from vos.cli.commands import propagation_config
    from vos.cli.main import build_parser

    args = build_parser().parse_args(["propagate", "video.mp4", "--masks", "m", "--adapt-steps", "7",
                                      "--adapt-lr", "3e-4"])
    assert propagation_config(args).adapt == AdaptConfig(steps=7, lr=3e-4)
    args = build_parser().parse_args(["propagate", "video.mp4", "--masks", "m"])
    assert propagation_config(args).adapt == PropagationConfig().adapt


def test_a_session_propagates_with_the_adapted_copy_deterministically():
    rgb, slots = keyframe(120, 180)
    frames = [rgb] + [np.roll(rgb, 3 * t, axis=1) for t in range(1, 4)]
    predictor = SegGPTPredictor.from_pretrained("seggpt-vos-small", device="cpu", dtype="fp32")
    before = weights(predictor.model)
    results = {}
    for name, steps in (("off", 0), ("on", 4), ("on again", 4)):
        session = VideoSession(predictor, frames, PropagationConfig(mode="windows", adapt=AdaptConfig(steps, 1e-3, 2)))
        session.add_mask(0, slots)
        results[name] = np.stack([p.labels for p in session.propagate()])
    assert np.array_equal(results["on"], results["on again"])
    assert not np.array_equal(results["on"], results["off"])
    assert all(torch.equal(v, before[k]) for k, v in predictor.model.state_dict().items())


def test_an_added_keyframe_recomputes_only_its_neighbours_and_equals_a_fresh_session():
    """Each pass adapts to its own keyframes, so the session's promise holds with adaptation on: after a keyframe is
    added, the frames it cannot change keep their results, and every frame equals a fresh session's."""
    rgb, slots = keyframe(120, 180)
    frames = [np.roll(rgb, 3 * t, axis=1) for t in range(8)]
    masks = [np.roll(slots, 3 * t, axis=1) for t in range(8)]
    predictor = SegGPTPredictor.from_pretrained("seggpt-vos-small", device="cpu", dtype="fp32")
    config = PropagationConfig(mode="windows", context=2, adapt=AdaptConfig(3, 1e-3, 2))
    session = VideoSession(predictor, frames, config)
    session.add_mask(0, masks[0])
    list(session.propagate())
    before = [session.result(i) for i in range(8)]
    session.add_mask(6, masks[6])
    assert session.plan() == [5, 4, 6, 7]  # "nearest": 5 and 4 backwards from 6, its mask, 7 forwards from it
    list(session.propagate())
    fresh = VideoSession(predictor, frames, config)
    fresh.add_mask(0, masks[0])
    fresh.add_mask(6, masks[6])
    list(fresh.propagate())
    for i in range(8):
        np.testing.assert_array_equal(session.result(i), fresh.result(i), err_msg=f"frame {i}")
    for i in range(4):
        np.testing.assert_array_equal(session.result(i), before[i], err_msg=f"frame {i}")
