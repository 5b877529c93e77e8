"""Our SegGPT against transformers' SegGptForImageSegmentation with the same random weights."""

from __future__ import annotations

import pytest
import torch

from seggpt_core import attention
from seggpt_core.cpu_kernels import kernel_available
from seggpt_core.model import PRESETS, SegGPTConfig
from tests.hf_reference import random_inputs, random_pair

TINY = PRESETS["test-tiny"]
IMPLS = ["auto", *(v for v in attention.VARIANTS if v != "fused")]  # fp32 models; fused is bf16-only
needs_kernel = pytest.mark.skipif(not kernel_available(),
                                  reason="the fused attention kernel needs an AVX-512 CPU and a C++ compiler")


def canvases(prompt_images, prompt_masks, query):
    p = prompt_images.shape[0]
    return torch.cat([prompt_images, query.expand(p, -1, -1, -1)], 2), torch.cat([prompt_masks, prompt_masks], 2)


def hf_forward(hf, prompt_images, prompt_masks, query, **kw):
    p = prompt_images.shape[0]
    return hf(pixel_values=query.expand(p, -1, -1, -1), prompt_pixel_values=prompt_images,
              prompt_masks=prompt_masks, **kw).pred_masks


@pytest.mark.parametrize("impl", IMPLS)
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
@pytest.mark.parametrize("impl", IMPLS)
def test_deduplicated_path_equals_reference(prompts, impl):
    _, ours = random_pair(TINY, seed=3)
    ours.attn_impl = impl
    prompt_images, prompt_masks, query = random_inputs(TINY, prompts, seed=4)
    h = TINY.half_size[0]
    with torch.no_grad():
        ref = ours(*canvases(prompt_images, prompt_masks, query), ensemble="official")[:1, :, h:]
        out = ours.paint(prompt_images, prompt_masks, query)
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=0)


@needs_kernel
def test_fused_model_paints_like_blocked_in_bf16():
    """The whole deduplicated forward in bf16 with the fused kernel against the same model with torch's softmax
    (``blocked``): the same bf16 GEMMs, so only the kernel's exponentials and its late normalisation differ."""
    _, ours = random_pair(TINY, seed=8)
    ours.set_compute_dtype(torch.bfloat16)
    inputs = random_inputs(TINY, 3, seed=9)
    with torch.inference_mode():
        ours.attn_impl = "blocked"
        ref = ours.paint(*inputs)
        ours.attn_impl = "fused"
        out = ours.paint(*inputs)
    assert ref.abs().mean() > 0.1
    assert float((out - ref).abs().mean() / ref.std()) < 1e-2


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


VARIANT_DTYPES = [pytest.param(v, dt, marks=needs_kernel if v == "fused" else ())
                  for v in attention.VARIANTS if v != "eager" for dt in (torch.float32, torch.bfloat16)
                  if not (v == "fused" and dt == torch.float32)]


@pytest.mark.parametrize(("variant", "dtype"), VARIANT_DTYPES)
def test_attention_variants_equal_eager(variant, dtype, monkeypatch):
    """Each variant against the eager reference on one rectangular grid, with a bias large enough to matter; the
    ``bias`` variant in several query chunks (its bounded-memory path), ``blocked`` and ``fused`` in blocks that split
    both the heads and the queries unevenly (6 heads in groups of 4, 30 queries in blocks of 7)."""
    g = torch.Generator().manual_seed(14)
    b, h, gh, gw, d = 2, 3, 6, 5, 16
    q, k, v = (torch.randn(b, h, gh * gw, d, generator=g) for _ in range(3))
    rel_h, rel_w = 2 * torch.randn(b, h, gh, gw, gh, generator=g), 2 * torch.randn(b, h, gh, gw, gw, generator=g)
    ref = attention.eager(q, k, v, rel_h, rel_w, 0.25)
    assert (ref - attention.eager(q, k, v, 0 * rel_h, 0 * rel_w, 0.25)).abs().max() > 0.1  # the bias matters
    monkeypatch.setattr(attention, "BIAS_CHUNK_ELEMENTS", b * h * gh * gw * 7)  # chunks of 7 query rows
    monkeypatch.setattr(attention, "BLOCK_QUERIES", 7)
    monkeypatch.setattr(attention, "BLOCK_ELEMENTS", 4 * 7 * gh * gw)
    out = attention.VARIANTS[variant](*(t.to(dtype) for t in (q, k, v, rel_h, rel_w)), 0.25)
    assert out.dtype == dtype
    tol = 1e-5 if dtype == torch.float32 else 3e-2
    torch.testing.assert_close(out.float(), ref, atol=tol, rtol=0)


@needs_kernel
@pytest.mark.parametrize("gw", [16, 37])
def test_fused_kernel_on_full_and_partial_vectors(gw):
    """The kernel's vector paths: key rows of whole 16-lane vectors (gw = 16) and of vectors plus a masked tail
    (37 = 16 + 16 + 5), with 3 x 37 = 111 keys leaving a scalar tail after the 32-wide exponential loop. Checked
    against eager in fp64 and against ``blocked`` (same bf16 logits, torch's softmax)."""
    g = torch.Generator().manual_seed(16)
    b, h, gh, d = 1, 2, 3, 32
    q, k, v = (torch.randn(b, h, gh * gw, d, generator=g) for _ in range(3))
    rel_h, rel_w = 3 * torch.randn(b, h, gh, gw, gh, generator=g), 3 * torch.randn(b, h, gh, gw, gw, generator=g)
    ref = attention.eager(*(t.double() for t in (q, k, v, rel_h, rel_w)), 0.2).float()
    inputs = [t.bfloat16() for t in (q, k, v, rel_h, rel_w)]
    fused, blocked = attention.fused(*inputs, 0.2), attention.blocked(*inputs, 0.2)
    torch.testing.assert_close(fused.float(), ref, atol=3e-2, rtol=0)
    torch.testing.assert_close(fused.float(), blocked.float(), atol=1.6e-2, rtol=0)


@needs_kernel
def test_fused_refuses_what_its_kernel_does_not_run():
    q = torch.randn(1, 1, 6, 8)
    rel_h, rel_w = torch.randn(1, 1, 2, 3, 2), torch.randn(1, 1, 2, 3, 3)
    with pytest.raises(ValueError, match="bf16 on AVX-512 CPUs only"):
        attention.fused(q, q, q, rel_h, rel_w, 0.5)


def test_auto_falls_back_where_fused_cannot_run(monkeypatch):
    """``auto`` never picks ``fused`` under autograd (no backward) or where its kernel cannot be built; a bf16
    training step through ``auto`` then gets eager's gradients."""
    cpu = torch.device("cpu")
    for long, tokens in ((0, 128), (1, 1568)):
        assert attention.choose(cpu, torch.bfloat16, tokens, grad=True) == attention.UNFUSED[long]
    monkeypatch.setattr(attention, "kernel_available", lambda: False)
    assert attention.choose(cpu, torch.bfloat16, 1568) == attention.UNFUSED[1]
    monkeypatch.undo()
    g = torch.Generator().manual_seed(17)
    q, k, v = (torch.randn(1, 2, 12, 8, generator=g).bfloat16().requires_grad_(True) for _ in range(3))
    rel_h, rel_w = torch.randn(1, 2, 3, 4, 3, generator=g).bfloat16(), torch.randn(1, 2, 3, 4, 4, generator=g).bfloat16()
    attention.attention(q, k, v, rel_h, rel_w, 0.3).float().sum().backward()
    ref = q.detach().float().requires_grad_(True)
    attention.eager(ref, k.detach().float(), v.detach().float(), rel_h.float(), rel_w.float(), 0.3).sum().backward()
    torch.testing.assert_close(q.grad.float(), ref.grad, atol=5e-2, rtol=0)


def test_auto_picks_from_the_table():
    cpu = torch.device("cpu")
    for long, tokens in ((0, 128), (1, 1568)):
        assert attention.choose(cpu, torch.float32, tokens) == attention.FASTEST[("cpu", torch.float32)][long]
        assert attention.choose(torch.device("cuda"), torch.float16, tokens) == attention.FASTEST[
            ("cuda", torch.float16)][long]
    assert attention.choose(torch.device("meta"), torch.float32, 128) == "augmented"


@pytest.mark.parametrize("variant", ["bias", "augmented", "blocked"])
def test_attention_variants_train_like_eager(variant, monkeypatch):
    """Training runs the table's choice too: gradients of q, k, v and both bias terms equal eager's (flex has no CPU
    backward in torch 2.13, so it serves inference only)."""
    g = torch.Generator().manual_seed(15)
    b, h, gh, gw, d = 2, 3, 6, 5, 16
    inputs = [torch.randn(b, h, gh * gw, d, generator=g) for _ in range(3)]
    inputs += [torch.randn(b, h, gh, gw, gh, generator=g), torch.randn(b, h, gh, gw, gw, generator=g)]
    weights = torch.randn(b, h, gh * gw, d, generator=g)
    monkeypatch.setattr(attention, "BIAS_CHUNK_ELEMENTS", b * h * gh * gw * 7)
    monkeypatch.setattr(attention, "BLOCK_QUERIES", 7)
    monkeypatch.setattr(attention, "BLOCK_ELEMENTS", 4 * 7 * gh * gw)

    def grads(fn):
        xs = [t.clone().requires_grad_(True) for t in inputs]
        (fn(*xs, 0.25) * weights).sum().backward()
        return [x.grad for x in xs]

    for ours, ref in zip(grads(attention.VARIANTS[variant]), grads(attention.eager)):
        torch.testing.assert_close(ours, ref, atol=1e-5, rtol=0)
