"""Our SegGPT against transformers' SegGptForImageSegmentation with the same random weights."""

from __future__ import annotations

import pytest
import torch

from seggpt_core.model import PRESETS, SegGPTConfig
from tests.hf_reference import random_inputs, random_pair

TINY = PRESETS["test-tiny"]


def canvases(prompt_images, prompt_masks, query):
    p = prompt_images.shape[0]
    return torch.cat([prompt_images, query.expand(p, -1, -1, -1)], 2), torch.cat([prompt_masks, prompt_masks], 2)


def hf_forward(hf, prompt_images, prompt_masks, query, **kw):
    p = prompt_images.shape[0]
    return hf(pixel_values=query.expand(p, -1, -1, -1), prompt_pixel_values=prompt_images,
              prompt_masks=prompt_masks, **kw).pred_masks


@pytest.mark.parametrize("impl", ["eager", "sdpa"])
@pytest.mark.parametrize("seg_type", ["instance", "semantic"])
def test_one_prompt_equals_transformers(impl, seg_type):
    hf, ours = random_pair(TINY)
    ours.attn_impl = impl
    inputs = random_inputs(TINY, 1)
    with torch.no_grad():
        ref = hf_forward(hf, *inputs, embedding_type=seg_type)
        out = ours(*canvases(*inputs), seg_type=seg_type)
    assert ref.abs().mean() > 0.1  # a real signal, not all zeros
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=0)


class OfficialRuleHF:
    """transformers with its merge-block ensemble condition changed to the official one (per stream while
    block <= merge_index), done by wrapping each layer's ``ensemble_cond`` argument."""

    def __init__(self, hf):
        self.hf = hf
        self.layers = hf.model.encoder.layers
        self.merge = hf.config.merge_index

    def __enter__(self):
        for i, layer in enumerate(self.layers):
            orig = layer.forward
            merge = self.merge

            def patched(hidden, ensemble_cond, *a, _i=i, _orig=orig, **k):
                return _orig(hidden, 2 if _i <= merge else 1, *a, **k)

            layer.forward = patched
        return self.hf

    def __exit__(self, *exc):
        for layer in self.layers:
            del layer.forward


@pytest.mark.parametrize("prompts", [2, 3])
def test_several_prompts_equal_transformers_with_official_rule(prompts):
    hf, ours = random_pair(TINY)
    inputs = random_inputs(TINY, prompts)
    with torch.no_grad(), OfficialRuleHF(hf) as patched:
        ref = hf_forward(patched, *inputs, feature_ensemble=True)
        out = ours(*canvases(*inputs), ensemble="official")
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=0)
    # ... and the unpatched HF rule differs measurably at the merge block, which our "hf" mode reproduces.
    with torch.no_grad():
        hf_rule = hf_forward(hf, *inputs, feature_ensemble=True)
        ours_hf = ours(*canvases(*inputs), ensemble="hf")
    torch.testing.assert_close(ours_hf, hf_rule, atol=1e-5, rtol=0)
    assert (hf_rule - ref).abs().max() > 100 * (out - ref).abs().max()


@pytest.mark.parametrize("prompts", [1, 2, 4])
@pytest.mark.parametrize("impl", ["eager", "sdpa"])
def test_deduplicated_path_equals_reference(prompts, impl):
    _, ours = random_pair(TINY, seed=3)
    ours.attn_impl = impl
    prompt_images, prompt_masks, query = random_inputs(TINY, prompts, seed=4)
    h = TINY.half_size[0]
    with torch.no_grad():
        ref = ours(*canvases(prompt_images, prompt_masks, query), ensemble="official")[:1, :, h:]
        out = ours.paint(prompt_images, prompt_masks, query)
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=0)


def test_deduplicated_path_paints_each_query_independently():
    _, ours = random_pair(TINY, seed=5)
    prompt_images, prompt_masks, _ = random_inputs(TINY, 3, seed=6)
    queries = torch.randn(3, 3, *TINY.half_size, generator=torch.Generator().manual_seed(7))
    with torch.no_grad():
        batched = ours.paint(prompt_images, prompt_masks, queries)
        single = torch.cat([ours.paint(prompt_images, prompt_masks, q[None]) for q in queries])
    torch.testing.assert_close(batched, single, atol=1e-5, rtol=0)


@pytest.mark.parametrize("dtype", [torch.bfloat16])
def test_low_precision_path_stays_close(dtype):
    _, ours = random_pair(TINY, seed=8)
    inputs = random_inputs(TINY, 3, seed=9)
    with torch.no_grad():
        ref = ours.paint(*inputs)
        ours.set_compute_dtype(dtype)
        low = ours.paint(*inputs)
    assert low.dtype == torch.float32
    assert (low - ref).abs().mean() < 0.01 * ref.std()


@pytest.mark.slow
def test_full_size_vit_large_equals_transformers():
    cfg = SegGPTConfig()
    hf, ours = random_pair(cfg)
    inputs = random_inputs(cfg, 1)
    with torch.no_grad():
        ref = hf_forward(hf, *inputs)
        out = ours.paint(*inputs)
    assert sum(p.numel() for p in ours.parameters()) == 370_723_203
    torch.testing.assert_close(out, ref[:, :, cfg.half_size[0]:], atol=1e-5, rtol=0)


def test_inference_tables_follow_weight_updates():
    """Position and rel-pos tables are cached for inference; an in-place weight update must invalidate them."""
    _, ours = random_pair(TINY, seed=12)
    inputs = random_inputs(TINY, 2, seed=13)
    with torch.no_grad():
        before = ours.paint(*inputs)
        ours.pos_embed.mul_(2)
        ours.blocks[0].attn.rel_pos_h.add_(0.5)
        after = ours.paint(*inputs)
    with torch.enable_grad():  # the uncached (training) computation is the reference
        ref = ours.paint(*inputs).detach()
    assert (after - before).abs().max() > 1e-3
    torch.testing.assert_close(after, ref, atol=1e-6, rtol=0)
