"""The image API (``SegGPTPredictor.segment``) against transformers' processor + model + post-processing."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from seggpt_core.errors import InputError
from seggpt_core.model import PRESETS
from seggpt_core.predictor import Prompt, SegGPTPredictor
from tests.hf_reference import random_pair, transformers

TINY = PRESETS["test-tiny"]


def random_image(rng, h, w):
    return rng.integers(0, 256, (h, w, 3), dtype=np.uint8)


def blob_labels(rng, h, w, k):
    labels = np.zeros((h, w), np.uint8)
    for i in range(1, k + 1):
        y, x = rng.integers(0, h - h // 3), rng.integers(0, w - w // 3)
        labels[y:y + h // 3, x:x + w // 3] = i
    return labels


@pytest.fixture(scope="module")
def models():
    hf, ours = random_pair(TINY, seed=11)
    with torch.no_grad():  # a stronger head so random weights paint several palette colours, not one grey
        for head in (hf.decoder.decoder_pred.head, ours.decoder_pred[3]):
            head.weight.mul_(40)
    return hf, SegGPTPredictor(ours, device="cpu", dtype="fp32")


def hf_segment(hf, prompts, query, k):
    proc = transformers.SegGptImageProcessor(size={"height": TINY.half_size[0], "width": TINY.half_size[1]})
    inputs = proc(images=[query] * len(prompts), prompt_images=[p.image for p in prompts],
                  prompt_masks=[p.labels for p in prompts], num_labels=k, return_tensors="pt")
    with torch.no_grad():
        out = hf(**inputs, feature_ensemble=len(prompts) > 1)
    return proc.post_process_semantic_segmentation(out, target_sizes=[query.shape[:2]], num_labels=k)[0].numpy()


def test_one_prompt_matches_transformers_pipeline(models):
    hf, predictor = models
    rng = np.random.default_rng(0)
    prompt = Prompt(random_image(rng, 50, 70), blob_labels(rng, 50, 70, 3))
    queries = [random_image(rng, 41, 33), random_image(rng, 90, 120)]
    ours = predictor.segment([prompt], queries)
    for q, labels in zip(queries, ours):
        ref = hf_segment(hf, [prompt], q, 3)
        assert labels.shape == q.shape[:2] and labels.dtype == np.uint8
        assert len(np.unique(ref)) > 1  # the oracle paints more than one label
        assert (labels == ref).mean() > 0.999


def test_errors_are_input_errors(models):
    _, predictor = models
    rng = np.random.default_rng(1)
    image = random_image(rng, 20, 20)
    with pytest.raises(InputError, match="mask size"):
        predictor.segment([Prompt(image, np.zeros((10, 10), np.uint8))], [image])
    with pytest.raises(InputError, match="empty"):
        predictor.segment([Prompt(image, np.zeros((20, 20), np.uint8))], [image])
    with pytest.raises(InputError, match="at least one prompt"):
        predictor.segment([], [image])
    # Paths are refused in one line that says how to read them, for prompts and queries alike.
    for make in (lambda: Prompt("a.jpg", np.zeros((20, 20), np.uint8)), lambda: Prompt(image, "a.png"),
                 lambda: predictor.segment([Prompt(image, np.ones((20, 20), np.uint8))], ["b.jpg"])):
        with pytest.raises(InputError, match=r"the path '.\.(jpg|png)'.*read_image.*load_mask") as info:
            make()
        assert "\n" not in str(info.value)


def test_spatial_ensemble_runs_one_grid_prompt(models):
    _, predictor = models
    rng = np.random.default_rng(2)
    prompts = [Prompt(random_image(rng, 30, 30), blob_labels(rng, 30, 30, 2)) for _ in range(3)]
    images, targets = predictor._spatial_prompt(prompts, np.array([[0, 0, 0], [255, 255, 255], [255, 255, 127]],
                                                                   np.uint8))
    assert images.shape == (1, 3, *TINY.half_size) and targets.shape == images.shape
    out = predictor.segment(prompts, [random_image(rng, 25, 35)], ensemble="spatial")
    assert out[0].shape == (25, 35) and out[0].max() <= 2


@pytest.mark.parametrize("size_in,size_out", [((8, 8), (480, 854)), ((28, 28), (37, 1001)), ((64, 64), (63, 17)),
                                              ((7, 13), (7, 13)), ((56, 56), (1080, 1920))])
def test_upsample_nearest_equals_torch_legacy_nearest(size_in, size_out):
    from seggpt_core.transforms import upsample_nearest

    labels = torch.randint(0, 250, (2, *size_in))
    ref = torch.nn.functional.interpolate(labels[:, None].float(), size=size_out, mode="nearest")[:, 0].long()
    assert torch.equal(upsample_nearest(labels, size_out), ref)
    assert torch.equal(upsample_nearest(labels.to(torch.uint8), size_out), ref.to(torch.uint8))


@pytest.mark.slow
def test_compiled_paint_equals_eager():
    """``compile=True`` (torch.compile of the deduplicated path) paints what the eager path paints. Slow: the
    compiler's first call takes minutes on a CPU; cached position/rel-pos tables once broke tracing."""
    import copy

    from seggpt_core.model import SegGPT

    torch.manual_seed(0)
    model = SegGPT(TINY)
    eager = SegGPTPredictor(model, device="cpu", dtype="fp32")
    compiled = SegGPTPredictor(copy.deepcopy(model), device="cpu", dtype="fp32", compile=True)
    h, w = TINY.half_size
    prompts, targets, queries = torch.randn(3, 3, h, w), torch.randn(3, 3, h, w), torch.randn(2, 3, h, w)
    torch.testing.assert_close(compiled.paint(prompts, targets, queries), eager.paint(prompts, targets, queries),
                               rtol=1e-5, atol=1e-5)


def test_mirror_averages_the_scores_of_the_mirrored_task_as_transformers_paints_it(models):
    from seggpt_core.colours import label_colours
    from seggpt_core.transforms import painted_scores
    from tests.hf_reference import random_inputs

    hf, predictor = models
    h = TINY.half_size[0]
    colours = label_colours(3)
    prompt_image, prompt_mask, query = random_inputs(TINY, 1, seed=5)

    def hf_scores(*inputs):
        with torch.no_grad():
            canvas = hf(pixel_values=inputs[2], prompt_pixel_values=inputs[0], prompt_masks=inputs[1]).pred_masks
        return painted_scores(canvas[:, :, h:], colours)

    plain = hf_scores(prompt_image, prompt_mask, query)
    mirrored = hf_scores(prompt_image.flip(-1), prompt_mask.flip(-1), query.flip(-1)).flip(-1)
    got = predictor.paint_scores(prompt_image, prompt_mask, query, colours, mirror=True)
    tolerance = dict(atol=1.0, rtol=0)  # scores are in squared grey levels (up to about 2e5): float rounding
    torch.testing.assert_close(got, (plain + mirrored) / 2, **tolerance)
    torch.testing.assert_close(predictor.paint_scores(prompt_image, prompt_mask, query, colours), plain, **tolerance)
    assert (plain.argmax(1) != mirrored.argmax(1)).float().mean() > 0.05  # random weights: the mirror paints otherwise
