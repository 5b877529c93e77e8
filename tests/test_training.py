"""Training objective and loop: loss, masks, colour mapping, pair sampling, optimisation, exact resumption."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from seggpt_core.colours import label_colours
from seggpt_core.errors import InputError
from seggpt_core.losses import masked_loss
from seggpt_core.model import PRESETS, SegGPT
from seggpt_core.training import (IGNORE_LABEL, INSTANCE, SEMANTIC, ContextCanvases, Pair, Trainer, TrainConfig,
                                  block_mask, make_canvas, perturb_labels, random_colours, training_mask, warmup_cosine)
from vos.training.synthetic import SyntheticVideoConfig
from vos.training.samplers import (TRAIN_SEED_LIMIT, Augment, SyntheticPairs, VideoFolderPairs, frame_pair,
                               list_annotated_videos)

TINY = PRESETS["test-tiny"]  # 64x32 canvas, patch 8: 8x4 tokens
VIDEO = SyntheticVideoConfig(size=(48, 64), num_frames=8, texture_source="procedural")


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny models gain nothing from a second thread, and on a busy 2-core machine OpenMP barriers make them crawl."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def tiny_sampler() -> SyntheticPairs:
    return SyntheticPairs(Augment(TINY.half_size), VIDEO, max_gap=4)


def two_object_pair(scene: np.random.Generator, rng: np.random.Generator) -> Pair:
    """Left half object 1, right half object 2, random texture; same layout in both frames."""
    labels = np.zeros((32, 32), np.uint8)
    labels[4:28, 2:14], labels[4:28, 18:30] = 1, 2
    image = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
    return Pair(image, labels, image, labels)


# ----------------------------------------------------------------------------------------------------------- loss

def test_loss_is_zero_for_a_perfect_prediction_and_ignores_unmasked_and_void_pixels():
    g = torch.Generator().manual_seed(0)
    target = torch.randn(2, 3, 64, 32, generator=g)
    mask = torch.zeros(2, 32, dtype=torch.bool)
    mask[:, 16:] = True  # the query half
    assert masked_loss(target, target, mask, 8) == 0
    wrong_prompt = target.clone()
    wrong_prompt[:, :, :32] += 5  # unmasked patches do not count
    assert masked_loss(wrong_prompt, target, mask, 8) == 0
    wrong_query = target.clone()
    wrong_query[:, :, 32:] += 1.0
    # smooth-L1 with beta 0.01 of an error of 1 is 1 - 0.005 on every masked element
    assert masked_loss(wrong_query, target, mask, 8).item() == pytest.approx(0.995, abs=1e-6)
    valid = torch.ones(2, 64, 32)
    valid[:, 48:] = 0  # void pixels in the lower query half
    half_wrong = target.clone()
    half_wrong[:, :, 48:] += 1.0
    assert masked_loss(half_wrong, target, mask, 8, valid) == 0
    assert masked_loss(half_wrong, target, mask, 8) > 0.4


def test_loss_normalises_by_the_masked_element_count():
    target = torch.zeros(1, 3, 64, 32)
    pred = target + 2.0
    for hidden in (4, 16, 30):
        mask = torch.zeros(1, 32, dtype=torch.bool)
        mask[0, :hidden] = True
        assert masked_loss(pred, target, mask, 8).item() == pytest.approx(2 - 0.005, abs=1e-6)


# ----------------------------------------------------------------------------------------------------------- masks

@pytest.mark.parametrize("grid,count", [((8, 4), 16), ((16, 8), 64), ((56, 28), 784), ((16, 8), 3)])
def test_block_mask_hides_exactly_the_requested_number_of_patches(grid, count):
    rng = np.random.default_rng(0)
    masks = [block_mask(rng, grid, count) for _ in range(20)]
    assert all(m.shape == (grid[0] * grid[1],) and m.sum() == count for m in masks)
    assert len({m.tobytes() for m in masks}) > 1  # random, not a fixed pattern


def test_block_mask_is_blocky():
    """Block-wise masking keeps hidden patches together: far more hidden neighbours than a uniform random mask."""
    rng = np.random.default_rng(1)

    def neighbour_rate(m):
        m = m.reshape(16, 8)
        return (m[:, 1:] & m[:, :-1]).sum() / max(1, m[:, :-1].sum())

    blocky = np.mean([neighbour_rate(block_mask(rng, (16, 8), 64)) for _ in range(50)])
    uniform = np.mean([neighbour_rate(np.isin(np.arange(128), rng.choice(128, 64, replace=False)))
                       for _ in range(50)])
    assert blocky > uniform + 0.15


def test_training_mask_mixes_query_half_and_blocks():
    rng = np.random.default_rng(2)
    cfg = TrainConfig(half_mask_prob=0.5, mask_ratio=0.5)
    query_half = np.zeros(32, bool)
    query_half[16:] = True
    masks = [training_mask(rng, (8, 4), cfg) for _ in range(200)]
    halves = sum(np.array_equal(m, query_half) for m in masks)
    assert 70 < halves < 130
    assert all(m.sum() == 16 for m in masks)
    always = TrainConfig(half_mask_prob=1.0)
    assert all(np.array_equal(training_mask(rng, (8, 4), always), query_half) for _ in range(10))


# ----------------------------------------------------------------------------------------------------------- colours

def test_colour_mapping_is_consistent_within_a_sample_and_differs_across_samples():
    cfg = TrainConfig(label_colours_prob=0.0)  # label colour draws repeat by design (few orders of few colours)
    model_cfg = TINY
    samples = [make_canvas(np.random.default_rng([0, i]), two_object_pair, model_cfg, cfg) for i in range(12)]
    h = model_cfg.half_size[0]
    colour_sets = []
    for s in samples:
        targets = s.targets
        prompt, query = targets[:, :h], targets[:, h:]
        assert torch.equal(prompt, query)  # same labels in both frames -> same colours in both halves
        obj1, obj2, bg = targets[:, 10, 4], targets[:, 10, 28], targets[:, 0, 0]
        assert not torch.allclose(obj1, obj2) and not torch.allclose(obj1, bg)
        colour_sets.append(tuple(torch.cat([obj1, obj2]).round(decimals=3).tolist()))
    assert len(set(colour_sets)) == len(samples)  # every sample has its own mapping


def test_random_colours_are_distinct_and_sometimes_the_inference_label_colours():
    cfg = TrainConfig(label_colours_prob=0.5, black_background_prob=0.7, min_colour_distance=60)
    rng = np.random.default_rng(3)
    label_rows = {tuple(c) for c in label_colours(3)[1:]}
    from_label_colours, black = 0, 0
    for _ in range(200):
        colours = random_colours(rng, 3, cfg).astype(float)
        assert colours.shape == (4, 3)
        d = np.linalg.norm(colours[:, None] - colours[None], axis=-1) + np.eye(4) * 1e9
        assert d.min() >= 60
        from_label_colours += {tuple(c) for c in colours[1:].astype(np.uint8)} == label_rows
        black += not colours[0].any()
    assert 60 < from_label_colours < 140 and 110 < black < 170


def test_void_pixels_are_drawn_as_background_and_excluded():
    def pair_with_void(scene, rng):
        labels = np.zeros((32, 32), np.uint8)
        labels[8:24, 8:24] = 3
        labels[:2] = IGNORE_LABEL
        image = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
        return Pair(image, labels, image, labels, seg_type=SEMANTIC)

    s = make_canvas(np.random.default_rng(0), pair_with_void, TINY, TrainConfig())
    assert s.valid[:2].sum() == 0 and s.valid[2:32].all() and s.seg_type == SEMANTIC
    assert torch.equal(s.targets[:, 0, 0], s.targets[:, 31, 0])  # void row drawn like the background


def test_mixed_context_stitches_two_pairs_with_distinct_colours():
    cfg = TrainConfig(mix_context_prob=1.0)
    s = make_canvas(np.random.default_rng(5), two_object_pair, TINY, cfg)
    h, w = TINY.half_size
    left = s.targets[:, 10, 4]  # object 1 of the left pair (columns 2..13 squeezed to half width)
    right = s.targets[:, 10, w // 2 + 4]  # object 1 of the right pair
    assert not torch.allclose(left, right)  # the right pair's ids were shifted to new colours
    assert torch.equal(s.targets[:, :h], s.targets[:, h:])


def test_prompt_noise_changes_what_the_model_sees_but_not_the_target():
    cfg = TrainConfig(half_mask_prob=1.0, prompt_noise_prob=1.0, prompt_noise_px=2)
    h = TINY.half_size[0]
    changed = 0
    for i in range(10):
        s = make_canvas(np.random.default_rng([1, i]), two_object_pair, TINY, cfg)
        assert torch.equal(s.shown[:, h:], s.targets[:, h:])  # hidden query half: the answer, never perturbed
        changed += not torch.equal(s.shown[:, :h], s.targets[:, :h])
        clean = make_canvas(np.random.default_rng([1, i]), two_object_pair, TINY, replace(cfg, prompt_noise_prob=0))
        assert torch.equal(clean.shown, clean.targets)
    assert changed >= 8
    blocks = make_canvas(np.random.default_rng(0), two_object_pair, TINY, replace(cfg, half_mask_prob=0.0))
    assert torch.equal(blocks.shown, blocks.targets)  # block masking may hide prompt patches: no noise there


def test_perturb_labels_moves_boundaries_by_at_most_max_px():
    labels = np.zeros((40, 40), np.uint8)
    labels[10:30, 10:30] = 4
    labels[0, :] = IGNORE_LABEL
    rng = np.random.default_rng(0)
    outs = [perturb_labels(rng, labels, 2) for _ in range(30)]
    for out in outs:
        assert set(np.unique(out)) <= {0, 4, IGNORE_LABEL}
        rows, cols = np.nonzero(out == 4)
        assert 6 <= rows.min() <= 14 and 25 <= rows.max() <= 33 and 6 <= cols.min() <= 14 and 25 <= cols.max() <= 33
    assert sum(not np.array_equal(o, labels) for o in outs) >= 25


def test_augment_crops_both_frames_alike():
    labels = np.zeros((120, 160), np.uint8)
    labels[20:100, 30:130] = 1
    image = np.repeat(labels[..., None] * 200, 3, axis=2).astype(np.uint8)
    aug = Augment((60, 80), crop_jitter=0.05, flip_prob=0, brightness=0, contrast=0, saturation=0, frame_jitter=0)
    for i in range(20):
        out = aug(np.random.default_rng(i), Pair(image, labels, image, labels))
        a, b = out.labels_a.astype(bool), out.labels_b.astype(bool)
        assert (a & b).sum() / (a | b).sum() > 0.6  # one shared crop, only jittered per frame


# ----------------------------------------------------------------------------------------------------------- data

def test_synthetic_pairs_are_deterministic_and_sized():
    sampler = tiny_sampler()
    a = sampler(np.random.default_rng(7), np.random.default_rng(7))
    b = sampler(np.random.default_rng(7), np.random.default_rng(7))
    c = sampler(np.random.default_rng(8), np.random.default_rng(8))
    for x, y in zip(a, b):
        assert np.array_equal(x, y)
    assert not np.array_equal(a.image_a, c.image_a)
    assert a.image_a.shape == (32, 32, 3) and a.labels_b.shape == (32, 32) and a.seg_type == INSTANCE
    assert a.labels_a.max() >= 1


def test_synthetic_training_seeds_stay_below_the_held_out_range(monkeypatch):
    import vos.training.samplers as td

    seen = []
    real = td.SyntheticVideo

    def spy(seed, config):
        seen.append(seed)
        return real(seed, config)

    monkeypatch.setattr(td, "SyntheticVideo", spy)
    td._planned_video.cache_clear()
    sampler = tiny_sampler()
    for i in range(20):
        sampler(np.random.default_rng(i), np.random.default_rng(i))
    assert len(seen) == 20 and all(0 <= s < TRAIN_SEED_LIMIT for s in seen)


def test_samples_of_one_scene_plan_their_video_once(monkeypatch):
    """pairs_per_scene = 4: samples 0-3 share a video (planned once), sample 4 starts the next; pairs differ."""
    import vos.training.samplers as td

    seen = []
    real = td.SyntheticVideo
    monkeypatch.setattr(td, "SyntheticVideo", lambda seed, config: seen.append(seed) or real(seed, config))
    td._planned_video.cache_clear()
    data = ContextCanvases(tiny_sampler(), TINY, TrainConfig(pairs_per_scene=4), 8)
    samples = [data[i] for i in range(5)]
    assert len(seen) == 2 and seen[0] != seen[1]
    assert not torch.equal(samples[0].images, samples[1].images)
    again = ContextCanvases(tiny_sampler(), TINY, TrainConfig(pairs_per_scene=4), 8)
    assert torch.equal(again[2].images, samples[2].images)


def test_frame_pair_respects_the_gap():
    rng = np.random.default_rng(0)
    pairs = [frame_pair(rng, 10, 3) for _ in range(300)]
    assert all(a != b and abs(a - b) <= 3 and 0 <= min(a, b) and max(a, b) < 10 for a, b in pairs)
    assert any(a > b for a, b in pairs) and any(a < b for a, b in pairs)


def test_augment_flips_image_and_labels_together():
    labels = np.zeros((40, 60), np.uint8)
    labels[:, :20] = 1
    image = np.zeros((40, 60, 3), np.uint8)
    image[:, :20] = 200
    aug = Augment((20, 30), crop_scale=(1, 1), crop_ratio=(1, 1), crop_jitter=0, flip_prob=1.0, brightness=0, contrast=0,
                  saturation=0, frame_jitter=0)
    out = aug(np.random.default_rng(0), Pair(image, labels, image, labels))
    assert out.labels_a[:, -5:].all() and not out.labels_a[:, :5].any()
    assert (out.image_a[:, -5:] == 200).all() and (out.image_a[:, :5] == 0).all()


def test_video_folder_pairs_read_davis_layout(tmp_path):
    from vos.training.synthetic import write_davis_dataset

    write_davis_dataset(tmp_path, [TRAIN_SEED_LIMIT - 1], VIDEO, split="train")
    videos = list_annotated_videos(tmp_path)
    assert len(videos) == 1 and len(videos[0].frames) == VIDEO.num_frames
    sampler = VideoFolderPairs(tmp_path, Augment((32, 32)), max_gap=2)
    pair = sampler(np.random.default_rng(0), np.random.default_rng(0))
    assert pair.image_a.shape == (32, 32, 3) and pair.labels_a.dtype == np.uint8
    same = sampler(np.random.default_rng(0), np.random.default_rng(0))
    assert all(np.array_equal(x, y) for x, y in zip(pair, same))


# ----------------------------------------------------------------------------------------------------------- loop

def test_warmup_cosine_schedule():
    f = warmup_cosine(TrainConfig(steps=100, warmup_steps=10, lr=1e-3, min_lr=1e-5))
    assert f(0) == pytest.approx(0.1) and f(9) == pytest.approx(1.0)
    assert f(10) == pytest.approx(1.0) and f(55) == pytest.approx(0.505, abs=1e-3)
    assert f(100) == pytest.approx(0.01)


def tiny_trainer(tmp_path, **overrides) -> Trainer:
    torch.manual_seed(0)
    cfg = TrainConfig(**{**dict(steps=6, batch_size=4, accumulate=2, warmup_steps=2, lr=1e-3, num_workers=0,
                                checkpoint_every=3, log_every=1), **overrides})
    return Trainer(SegGPT(TINY), tiny_sampler(), cfg, tmp_path)


def test_a_few_steps_decrease_the_loss_on_a_fixed_batch(tmp_path):
    trainer = tiny_trainer(tmp_path, steps=40, accumulate=1, warmup_steps=1, lr=2e-3)
    batch = [next(trainer.batches())]
    losses = [trainer.train_step(batch) for _ in range(15)]
    assert np.mean(losses[-3:]) < 0.9 * losses[0]


def test_resume_reproduces_the_uninterrupted_losses(tmp_path):
    whole = tiny_trainer(tmp_path / "whole").train(progress=False)
    interrupted = tiny_trainer(tmp_path / "parts")
    head = interrupted.train(until=3, progress=False)
    resumed = tiny_trainer(tmp_path / "parts")
    assert resumed.resume() and resumed.step == 3
    tail = resumed.train(progress=False)
    assert len(whole) == 6 and head + tail == whole  # bitwise equal
    log = [json.loads(line) for line in (tmp_path / "parts" / "loss.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == list(range(1, 7))


def test_resume_refuses_another_configuration(tmp_path):
    tiny_trainer(tmp_path).train(until=3, progress=False)
    with pytest.raises(ValueError, match="another configuration"):
        tiny_trainer(tmp_path, lr=5e-4).resume()


def test_resume_accepts_a_checkpoint_from_before_a_config_field_existed(tmp_path):
    """Fields added to TrainConfig later default to the old behaviour, so older runs still resume."""
    tiny_trainer(tmp_path).train(until=3, progress=False)
    state = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    del state["train_config"]["pairs_per_scene"]
    torch.save(state, tmp_path / "checkpoint.pt")
    resumed = tiny_trainer(tmp_path)
    assert resumed.resume() and resumed.step == 3


def test_resume_accepts_a_checkpoint_written_before_a_config_field_was_renamed(tmp_path):
    """``palette_prob`` is now ``label_colours_prob``: an old run's value carries over under the new name."""
    tiny_trainer(tmp_path, label_colours_prob=0.3).train(until=3, progress=False)
    state = torch.load(tmp_path / "checkpoint.pt", weights_only=False)
    state["train_config"]["palette_prob"] = state["train_config"].pop("label_colours_prob")
    torch.save(state, tmp_path / "checkpoint.pt")
    assert TrainConfig.from_dict(state["train_config"]).label_colours_prob == 0.3
    assert tiny_trainer(tmp_path, label_colours_prob=0.3).resume()
    with pytest.raises(ValueError, match="another configuration"):  # the old value is read, not the default
        tiny_trainer(tmp_path).resume()


def test_data_loader_workers_give_the_same_batches(tmp_path):
    serial = tiny_trainer(tmp_path / "a").batches()
    parallel = tiny_trainer(tmp_path / "b", num_workers=1).batches()
    for _ in range(2):
        for x, y in zip(next(serial), next(parallel)):
            assert torch.equal(x, y)


def test_bf16_autocast_step_runs(tmp_path):
    trainer = tiny_trainer(tmp_path, precision="bf16", steps=2, accumulate=1)
    losses = trainer.train(progress=False)
    assert len(losses) == 2 and all(np.isfinite(losses)) and losses[0] > 0


def test_dataset_sample_depends_only_on_seed_and_index():
    cfg = TrainConfig(seed=3)
    a = ContextCanvases(tiny_sampler(), TINY, cfg, 10)
    b = ContextCanvases(tiny_sampler(), TINY, cfg, 10)
    assert torch.equal(a[4].images, b[4].images) and torch.equal(a[4].mask, b[4].mask)
    assert not torch.equal(a[4].images, a[5].images)


def test_init_for_training_lets_the_head_paint_target_sized_colours():
    """With std-0.02 weights the painted canvas starts ~100x smaller than the targets (about -2..2.6)."""
    from seggpt_core.training import init_for_training

    torch.manual_seed(0)
    s = make_canvas(np.random.default_rng(0), two_object_pair, TINY, TrainConfig())
    args = (s.images[None], s.targets[None], s.mask[None])
    with torch.no_grad():
        small = SegGPT(TINY).eval()(*args).std()
        xavier = init_for_training(SegGPT(TINY)).eval()(*args).std()
    assert small < 0.1 < xavier


def test_real_look_share_draws_real_looking_scenes(monkeypatch):
    """``real_look`` = 1: every scene is planned in ``REAL_LOOK`` at the sampler's render size, with the seed the
    default look would have used; 0 (the shipped recipe) draws nothing extra, so old runs see the same data."""
    import vos.training.samplers as td
    from vos.training.synthetic import REAL_LOOK

    planned = []
    real = td.SyntheticVideo
    monkeypatch.setattr(td, "SyntheticVideo", lambda seed, config: planned.append((seed, config)) or real(seed, config))
    td._planned_video.cache_clear()
    default, realistic = tiny_sampler(), replace(tiny_sampler(), real_look=1.0)
    scene = np.random.default_rng(3)
    default(scene, np.random.default_rng(3))
    after_default = scene.bit_generator.state
    realistic(np.random.default_rng(3), np.random.default_rng(3))
    (seed_a, look_a), (seed_b, look_b) = planned
    assert seed_a == seed_b and look_a == VIDEO
    assert look_b == replace(REAL_LOOK, size=VIDEO.size)
    reference = np.random.default_rng(3)
    reference.integers(TRAIN_SEED_LIMIT)
    assert after_default == reference.bit_generator.state  # the default look takes one draw, as before
    with pytest.raises(InputError, match="real-look share"):
        replace(tiny_sampler(), real_look=1.5)


def test_train_script_fine_tunes_from_given_weights(tmp_path, tiny_checkpoint):
    """``--init`` starts from the weights (a near-zero learning rate leaves them as they were) and takes the model's
    own configuration; without it the same run starts from a fresh initialisation."""
    from tests.test_reliability import load_train_script

    def run(name: str, *extra: str) -> dict:
        out = tmp_path / name
        rc = load_train_script().main(["--out", str(out), "--steps", "1", "--batch-size", "1", "--lr", "1e-12",
                                       "--min-lr", "0", "--warmup-steps", "0", "--threads", "1", "--workers", "0",
                                       "--no-progress", "--export", str(out / "export"), *extra])
        assert rc == 0
        return load_file(out / "export" / "model.safetensors")

    start = load_file(tiny_checkpoint / "model.safetensors")
    tuned = run("init", "--init", str(tiny_checkpoint), "--real-look", "0.5")
    fresh = run("fresh", "--preset", "test-tiny")
    assert tuned.keys() == start.keys()
    assert all(torch.allclose(tuned[k], start[k], atol=1e-6) for k in start)
    assert not all(torch.allclose(fresh[k], start[k], atol=1e-6) for k in start)
