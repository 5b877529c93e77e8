"""Global attention with a decomposed relative-position bias: exact variants, and which one runs where.

Every variant computes, per head, ``softmax(scale * q k^T + bias) v`` with

    bias[q, (kh, kw)] = rel_h[q, kh] + rel_w[q, kw]      (rel_h = q . Rh[qh], rel_w = q . Rw[qw], unscaled q)

for keys in raster order over a (gh, gw) grid. They differ only in how the N x N bias reaches the softmax:

* ``eager`` - the reference (transformers' form): full logits, bias added by broadcasting, fp32 softmax. Memory grows
  with N^2 per head; kept as the oracle, never picked for speed.
* ``augmented`` - the bias folded into a fused SDPA call: q' = [q * scale, rel_h, rel_w], k' = [k, onehot(kh),
  onehot(kw)], padded to a multiple of 16; v is zero-padded to the same width (the fused CPU kernel wants equal
  head dims). Exact, but both attention matmuls run at width 64 + gh + gw + pad (160 for ViT-L) instead of 64.
* ``bias`` - SDPA with the bias as an additive float mask, built by broadcasting for a chunk of queries at a time so
  the mask never exceeds :data:`BIAS_CHUNK_ELEMENTS` elements. The matmuls stay at width 64.
* ``blocked`` - attention as two batched GEMMs per block of queries, with the bias added to the logits between them
  in fp32: for a group of heads and :data:`BLOCK_QUERIES` queries at a time, ``logits = q k^T`` (one GEMM at head
  dim 64, in q's dtype: bf16 logits are rounded to bf16 as in transformers' bf16 eager), ``+ rel_h + rel_w`` by
  broadcasting, fp32 softmax, ``@ v`` (a second GEMM); blocks of about :data:`BLOCK_ELEMENTS` logits. On a CPU
  without AMX this runs the matmuls at the bf16 GEMM rate, which torch's fused attention kernel does not reach there.
* ``fused`` - ``blocked`` with the bias, the exponentials and the bf16 store of each block in one C++ kernel
  (:mod:`seggpt_core.cpu_kernels`, AVX-512, bf16, built on first use); the rows are normalised after the second GEMM.
  Inference only.
* ``flex`` - FlexAttention (compiled) with a ``score_mod`` that gathers the two decomposed terms per score: no N x N
  tensor at all. Inference only on CPU (torch 2.13 has no FlexAttention backward there).

:func:`choose` maps (device, dtype, sequence length) to the variant measured fastest there (:data:`FASTEST`, one
table); the figures behind it are in the README (``scripts/bench_model.py``).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import Literal

import torch
import torch.nn.functional as F

from .cpu_kernels import bias_softmax, kernel_available

Variant = Literal["eager", "augmented", "bias", "blocked", "fused", "flex"]
AttentionImpl = Literal["auto", "eager", "augmented", "bias", "blocked", "fused", "flex"]

#: Largest additive mask the ``bias`` variant materialises at once (elements; 2**24 = 64 MiB in fp32).
BIAS_CHUNK_ELEMENTS = 1 << 24

#: Queries per block of the ``blocked`` variant, and the logits one block holds (heads are grouped to fill it).
#: Measured on ViT-L shapes (1568 tokens) on the 2-core AVX-512-BF16 CPU: 112 queries x 8 heads (1.4 M logits) ran
#: the attention call about 1.3x faster than blocks of 28-83 queries or of 4 M+ logits (README, "Model").
BLOCK_QUERIES = 112
BLOCK_ELEMENTS = 112 * 8 * 1568


def eager(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, rel_h: torch.Tensor, rel_w: torch.Tensor,
          scale: float) -> torch.Tensor:
    """The reference. q, k, v: (B, heads, N, d); rel_h (B, heads, gh, gw, gh); rel_w (B, heads, gh, gw, gw)
    -> (B, heads, N, d)."""
    b, h, n, _ = q.shape
    gh, gw = rel_h.shape[2:4]
    logits = (q * scale) @ k.transpose(-2, -1)
    logits = logits.view(b, h, gh, gw, gh, gw) + rel_h[..., :, None] + rel_w[..., None, :]
    weights = logits.view(b, h, n, n).softmax(-1, dtype=torch.float32).to(q.dtype)
    return weights @ v


def augmented(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, rel_h: torch.Tensor, rel_w: torch.Tensor,
              scale: float) -> torch.Tensor:
    """The bias folded into q/k as one-hot key columns; one fused SDPA call at head dim d + gh + gw (+ pad)."""
    b, h, n, d = q.shape
    gh, gw = rel_h.shape[2:4]
    pad = -(d + gh + gw) % 16  # a multiple of 16 keeps the fused CPU/GPU kernels on their fast paths
    rows = torch.arange(n, device=q.device)
    onehot = torch.cat([F.one_hot(rows // gw, gh), F.one_hot(rows % gw, gw)], 1).to(k.dtype)
    q2 = torch.cat([q * scale, rel_h.reshape(b, h, n, gh), rel_w.reshape(b, h, n, gw)], -1)
    k2 = torch.cat([k, onehot.expand(b, h, n, gh + gw)], -1)
    q2, k2 = F.pad(q2, (0, pad)), F.pad(k2, (0, pad))
    return F.scaled_dot_product_attention(q2, k2, F.pad(v, (0, gh + gw + pad)), scale=1.0)[..., :d]


def bias(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, rel_h: torch.Tensor, rel_w: torch.Tensor,
         scale: float) -> torch.Tensor:
    """SDPA with the bias as an additive mask, built for one chunk of queries at a time."""
    b, h, n, _ = q.shape
    rel_h, rel_w = rel_h.flatten(2, 3), rel_w.flatten(2, 3)  # (B, heads, N, gh), (B, heads, N, gw)
    chunk = max(1, BIAS_CHUNK_ELEMENTS // (b * h * n))
    if chunk >= n:
        mask = (rel_h[..., :, None] + rel_w[..., None, :]).flatten(-2)
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=scale)
    out = torch.empty_like(q)
    for start in range(0, n, chunk):
        rows = slice(start, start + chunk)
        mask = (rel_h[:, :, rows, :, None] + rel_w[:, :, rows, None, :]).flatten(-2)
        out[:, :, rows] = F.scaled_dot_product_attention(q[:, :, rows], k, v, attn_mask=mask, scale=scale)
    return out


WeightsFn = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor | None]]


def _in_blocks(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, rel_h: torch.Tensor, rel_w: torch.Tensor,
               scale: float, weights: WeightsFn) -> torch.Tensor:
    """The block loop shared by ``blocked`` and ``fused``: per block, ``logits = q k^T`` (a GEMM in q's dtype),
    ``weights(logits (m, r, n), rel_h (m, r, gh, 1) fp32, rel_w (m, r, 1, gw) fp32) -> (p (m, r, n) in q's dtype,
    row sums (m, r, 1) fp32 or None when p is normalised)``, then ``p v`` (a second GEMM) / row sums."""
    b, h, n, d = q.shape
    gh, gw = rel_h.shape[2:4]
    bh = b * h
    queries = (q * scale).reshape(bh, n, d)
    keys_t = k.reshape(bh, n, d).transpose(1, 2)  # (bh, d, n) view: the GEMM reads k transposed at full speed
    values = v.reshape(bh, n, d)
    rel_h = rel_h.reshape(bh, n, gh, 1).float()  # broadcast over the key columns kw
    rel_w = rel_w.reshape(bh, n, 1, gw).float()  # broadcast over the key rows kh
    rows = min(n, BLOCK_QUERIES)
    heads = max(1, BLOCK_ELEMENTS // (rows * n))
    out = []
    for g in range(0, bh, heads):
        group = slice(g, g + heads)
        parts = []
        for start in range(0, n, rows):
            block = (group, slice(start, start + rows))
            p, sums = weights(torch.bmm(queries[block], keys_t[group]), rel_h[block], rel_w[block])
            part = torch.bmm(p, values[group])
            parts.append(part if sums is None else (part.float() / sums).to(q.dtype))
        out.append(torch.cat(parts, 1))
    return torch.cat(out).view(b, h, n, d)


def _softmax_weights(logits: torch.Tensor, rel_h: torch.Tensor, rel_w: torch.Tensor) -> tuple[torch.Tensor, None]:
    m, r, n = logits.shape
    x = torch.add(logits.view(m, r, rel_h.shape[2], rel_w.shape[3]), rel_h)  # fp32 from here
    x += rel_w
    return x.view(m, r, n).softmax(-1).to(logits.dtype), None


def blocked(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, rel_h: torch.Tensor, rel_w: torch.Tensor,
            scale: float) -> torch.Tensor:
    """Two GEMMs per block of queries with the bias and an fp32 softmax (torch ops) between them."""
    return _in_blocks(q, k, v, rel_h, rel_w, scale, _softmax_weights)


def fused_runs(device: torch.device, dtype: torch.dtype) -> bool:
    """Whether ``fused`` runs ``dtype`` on ``device`` here: bf16 on a CPU whose kernel is built (AVX-512)."""
    return device.type == "cpu" and dtype == torch.bfloat16 and kernel_available()


def fused(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, rel_h: torch.Tensor, rel_w: torch.Tensor,
          scale: float) -> torch.Tensor:
    """``blocked`` with the bias, the softmax's exponentials and the bf16 store fused in one kernel per block
    (:mod:`seggpt_core.cpu_kernels`); the normalisation moves after the second GEMM. bf16 on AVX-512 CPUs only."""
    if not fused_runs(q.device, q.dtype):
        raise ValueError(f"the fused attention kernel runs bf16 on AVX-512 CPUs only (got {q.dtype} on {q.device}, "
                         f"kernel built here: {kernel_available()}); use 'blocked'")
    return _in_blocks(q, k, v, rel_h, rel_w, scale,
                      lambda logits, rh, rw: bias_softmax(logits, rh.squeeze(3), rw.squeeze(2)))


@cache
def _compiled_flex_attention() -> Callable:
    from torch.nn.attention.flex_attention import flex_attention

    return torch.compile(flex_attention, dynamic=False)


def flex(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, rel_h: torch.Tensor, rel_w: torch.Tensor,
         scale: float) -> torch.Tensor:
    """FlexAttention; the ``score_mod`` adds rel_h[q, kh] + rel_w[q, kw] to each scaled score."""
    gw = rel_w.shape[-1]
    rel_h, rel_w = rel_h.flatten(2, 3), rel_w.flatten(2, 3)

    def score_mod(score, b, h, q_idx, kv_idx):
        return score + rel_h[b, h, q_idx, kv_idx // gw] + rel_w[b, h, q_idx, kv_idx % gw]

    return _compiled_flex_attention()(q, k, v, score_mod=score_mod, scale=scale)


VARIANTS: dict[Variant, Callable[..., torch.Tensor]] = {"eager": eager, "augmented": augmented, "bias": bias,
                                                        "blocked": blocked, "fused": fused, "flex": flex}

#: The fastest exact variant per (device type, compute dtype), for sequences up to :data:`LONG_TOKENS` tokens and for
#: longer ones. CPU rows: measured with ``scripts/bench_model.py`` on ViT-L shapes (1568 tokens) and on the shipped
#: small model (128 tokens), README "Model": at 128 tokens the GEMMs are too small for the blocked forms to pay for
#: their extra calls in fp32. CUDA rows: not measured yet (no GPU was lent to this work); SDPA with a float mask runs
#: on the memory-efficient CUDA kernel at head dim 64 and needs no compiler, so it is the default until
#: ``scripts/bench_model.py --device cuda`` says otherwise.
FASTEST: dict[tuple[str, torch.dtype], tuple[Variant, Variant]] = {
    ("cpu", torch.float32): ("bias", "blocked"),
    ("cpu", torch.bfloat16): ("fused", "fused"),
    ("cuda", torch.float32): ("bias", "bias"),
    ("cuda", torch.bfloat16): ("bias", "bias"),
    ("cuda", torch.float16): ("bias", "bias"),
}
LONG_TOKENS = 512  #: between the two measured lengths (128, 1568); lengths in between are not measured

#: What runs instead of ``fused`` (short, long) where its kernel cannot run (not AVX-512, no compiler) and under
#: autograd (the kernel has no backward).
UNFUSED: tuple[Variant, Variant] = ("bias", "blocked")


def choose(device: torch.device, dtype: torch.dtype, tokens: int, *, grad: bool = False) -> Variant:
    """The variant to run for ``tokens``-long sequences in ``dtype`` on ``device``: :data:`FASTEST` (else
    ``augmented``, one fused call), with ``fused`` replaced by :data:`UNFUSED` when gradients are needed or its
    kernel is unavailable here."""
    column = 1 if tokens > LONG_TOKENS else 0  # a branch, not a bool index: under torch.compile tokens is symbolic
    variant = FASTEST.get((device.type, dtype), ("augmented", "augmented"))[column]
    if variant == "fused" and (grad or not fused_runs(device, dtype)):
        return UNFUSED[column]
    return variant


def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, rel_h: torch.Tensor, rel_w: torch.Tensor,
              scale: float, impl: AttentionImpl = "auto") -> torch.Tensor:
    """Run variant ``impl`` (``"auto"``: :func:`choose` for q's device and dtype). Shapes as in :func:`eager`."""
    if impl == "auto":
        impl = choose(q.device, q.dtype, q.shape[2], grad=torch.is_grad_enabled() and q.requires_grad)
    return VARIANTS[impl](q, k, v, rel_h, rel_w, scale)
