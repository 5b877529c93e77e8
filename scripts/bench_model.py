"""Speed of one query frame per attention variant and compute dtype, in useful FLOP/s and as a fraction of the
machine's matmul peak, against transformers' fp32 eager forward (same random weights, same inputs, one process).

One run reports:
  * the matmul peak of each dtype here: the best TFLOP/s of plain GEMMs of the model's shapes (qkv, fc1, fc2);
  * the useful FLOPs of our deduplicated forward (``SegGPT.paint``: prompt halves once each, the shared query half
    once, P attentions, decoder on the query half), counted once by ``torch.utils.flop_counter`` on a meta-device
    model with the eager attention at head dim 64, so no padding or mask work is counted as useful;
  * per P (default 1 and 8), per dtype and attention variant of ``seggpt_core.attention`` (and a bias-free SDPA row,
    not exact, as the ceiling of any rel-pos form): seconds per frame, speed-up over transformers (median of
    per-round ratios), achieved useful TFLOP/s, its fraction of the fastest dtype's peak and of its own dtype's peak,
    the output difference and the label agreement with transformers fp32 (its output decoded like
    ``SegGPTPredictor``: nearest of ``--labels`` + 1 label colours).
Rounds interleave every row, so ratios are fair on a shared machine; ``flex`` rows get one untimed call first
(compilation). ``--blocks`` runs a reduced-depth model of ViT-L width (taps spread evenly); ``--preset`` another
configuration's shapes (``seggpt-vos-small``: the short-sequence column of ``attention.FASTEST``).

    python scripts/bench_model.py --blocks 8 --rounds 2            # CPU, reduced depth
    python scripts/bench_model.py --device cuda --rounds 5         # full ViT-L on a GPU, with frames/s at P = 8
    python scripts/bench_model.py --attention-only 2 --rounds 3    # one attention call per variant
    python scripts/bench_model.py --preset seggpt-vos-small --rounds 20 --threads 1   # the shipped model's shapes
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from seggpt_core import attention  # noqa: E402
from seggpt_core.checkpoint import to_official_keys  # noqa: E402
from seggpt_core.colours import label_colours  # noqa: E402
from seggpt_core.model import PRESETS, SegGPT, SegGPTConfig  # noqa: E402
from seggpt_core.transforms import painted_scores  # noqa: E402

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
NO_BIAS = "no-bias*"  # bench-only row: SDPA without the rel-pos bias (not exact), the ceiling of every exact variant


def no_bias(q, k, v, rel_h, rel_w, scale):
    return F.scaled_dot_product_attention(q, k, v, scale=scale)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def timed(fn, device: torch.device) -> tuple[float, torch.Tensor]:
    sync(device)
    t = time.perf_counter()
    out = fn()
    sync(device)
    return time.perf_counter() - t, out


GEMM_SHAPES = ((1568, 1024, 3072), (1568, 1024, 4096), (1568, 4096, 1024))  #: one canvas through qkv, fc1, fc2


def matmul_peak(dtype: torch.dtype, device: torch.device, shapes=GEMM_SHAPES, reps: int = 5) -> float:
    """Best TFLOP/s of plain GEMMs of ViT-L's shapes in ``dtype``."""
    best = 0.0
    for m, k, n in shapes:
        a = torch.randn(m, k, device=device).to(dtype)
        b = torch.randn(k, n, device=device).to(dtype)
        a @ b
        t = min(timed(lambda: a @ b, device)[0] for _ in range(reps))
        best = max(best, 2 * m * k * n / t / 1e12)
    return best


def bench_config(blocks: int) -> SegGPTConfig:
    """ViT-L with ``blocks`` blocks; taps at the ends of four equal stretches (24 -> 5, 11, 17, 23), none before the
    streams merge."""
    merge = min(2, blocks - 1)
    taps = tuple(sorted({max(merge, round((i + 1) * blocks / 4) - 1) for i in range(4)}))
    return replace(SegGPTConfig(), depth=blocks, tap_indices=taps, merge_index=merge)


def useful_flops(model: SegGPT, prompts: int) -> float:
    """FLOPs of one deduplicated query frame (``model.paint``) with the eager (head dim 64) attention, counted on
    meta tensors: shapes only, nothing runs."""
    model = model.to("meta")
    model.attn_impl = "eager"
    h, w = model.config.half_size
    with torch.device("meta"):
        inputs = torch.empty(prompts, 3, h, w), torch.empty(prompts, 3, h, w), torch.empty(1, 3, h, w)
    with FlopCounterMode(display=False) as counter:
        model.paint(*inputs)
    return counter.get_total_flops()


def runs(variant: str, dtype: str, device: torch.device) -> bool:
    """Whether ``variant`` runs ``dtype`` here (``fused``: bf16 on an AVX-512 CPU whose kernel built)."""
    return variant != "fused" or attention.fused_runs(device, DTYPES[dtype])


def labels(painted: torch.Tensor, n_labels: int) -> torch.Tensor:
    return painted_scores(painted.float().cpu(), label_colours(n_labels)).argmax(1)


def attention_table(cfg: SegGPTConfig, sequences: int, dtypes: list[str], variants: list[str], rounds: int,
                    device: torch.device) -> None:
    """One attention call of ViT-L shapes (``sequences`` canvases, all heads) per dtype and variant, interleaved;
    time against the bias-free SDPA of the same dtype and error against fp32 eager."""
    g = torch.Generator().manual_seed(0)
    (gh, gw), heads, d = cfg.grid, cfg.num_heads, cfg.embed_dim // cfg.num_heads
    b, n = sequences, gh * gw
    q, k, v = (torch.randn(b, heads, n, d, generator=g) for _ in range(3))
    rel_h, rel_w = torch.randn(b, heads, gh, gw, gh, generator=g), torch.randn(b, heads, gh, gw, gw, generator=g)
    ref = attention.eager(q, k, v, rel_h, rel_w, d**-0.5)
    rows = [(dt, var) for dt in dtypes for var in dict.fromkeys([*variants, NO_BIAS]) if runs(var, dt, device)]
    inputs = {dt: [t.to(device, DTYPES[dt]) for t in (q, k, v, rel_h, rel_w)] for dt in dtypes}
    times = {row: [] for row in rows}
    errors = {}
    with torch.inference_mode():
        for row in rows:
            errors[row] = float((attention.VARIANTS[row[1]](*inputs[row[0]], d**-0.5).float().cpu() - ref).abs().max())
        for _ in range(rounds):
            for row in rows:
                times[row].append(timed(lambda: attention.VARIANTS[row[1]](*inputs[row[0]], d**-0.5), device)[0])
    useful = 4 * b * heads * n * n * d
    print(f"\none attention call: {b} x {heads} heads x {n} tokens x head dim {d}; {rounds} rounds, medians\n")
    print(f"| dtype | attention | ms | useful TFLOP/s | time / {NO_BIAS} | max abs error vs fp32 eager |")
    print("|---|---|---|---|---|---|")
    for row in rows:
        s = statistics.median(times[row])
        ratio = statistics.median(a / z for a, z in zip(times[row], times[(row[0], NO_BIAS)]))
        print(f"| {row[0]} | {row[1]} | {s * 1e3:.1f} | {useful / s / 1e12:.3f} | {ratio:.2f} | {errors[row]:.1e} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--prompts", type=int, nargs="+", default=[1, 8])
    ap.add_argument("--blocks", type=int, default=24, help="encoder depth (ViT-L width); 24 = the published model")
    ap.add_argument("--preset", choices=sorted(PRESETS), help="benchmark this preset's shapes instead of ViT-L width "
                    "(e.g. seggpt-vos-small: 128 tokens per canvas); the peak stays the GEMM of ViT-L's shapes")
    ap.add_argument("--rounds", type=int, default=2, help="timed rounds (interleaved)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, help="torch CPU threads (default: torch's, one per core)")
    ap.add_argument("--dtypes", nargs="+", choices=tuple(DTYPES), default=None,
                    help="compute dtypes of ours (default: fp32 bf16, plus fp16 on CUDA)")
    ap.add_argument("--variants", nargs="+", choices=(*attention.VARIANTS, NO_BIAS),
                    default=["augmented", "bias", "blocked", "fused", "flex", NO_BIAS])
    ap.add_argument("--labels", type=int, default=3, help="label colours used to decode outputs for the agreement")
    ap.add_argument("--no-reference", action="store_true", help="skip transformers")
    ap.add_argument("--attention-only", type=int, metavar="SEQUENCES", default=0,
                    help="instead of the model, time one attention call over this many canvases per variant")
    args = ap.parse_args()
    device = torch.device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    if device.type == "cuda" and not torch.cuda.is_available():
        print("bench_model: --device cuda, but this torch build sees no CUDA device; run it where one is, or drop "
              "--device", file=sys.stderr)
        sys.exit(2)
    dtypes = args.dtypes or (["fp32", "bf16", "fp16"] if device.type == "cuda" else ["fp32", "bf16"])
    attention.VARIANTS[NO_BIAS] = no_bias
    torch.manual_seed(0)
    cfg = PRESETS[args.preset] if args.preset else bench_config(args.blocks)

    peaks = {name: matmul_peak(DTYPES[name], device) for name in dtypes}
    fast = max(peaks, key=peaks.get)
    where = (next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                   if line.startswith("model name")), "?") if device.type == "cpu" else torch.cuda.get_device_name())
    print(f"device {device} [{where}], {torch.get_num_threads()} threads, torch {torch.__version__}; "
          f"{f'preset {args.preset}' if args.preset else 'ViT-L width'}, {cfg.depth} blocks (taps {cfg.tap_indices}), "
          f"{cfg.grid[0] * cfg.grid[1]} tokens per canvas; matmul peak "
          + ", ".join(f"{n} {p:.3f} TFLOP/s" for n, p in peaks.items()), flush=True)
    if args.attention_only:
        return attention_table(cfg, args.attention_only, dtypes, args.variants, args.rounds, device)

    import transformers

    from tests.hf_reference import hf_config

    hf = transformers.SegGptForImageSegmentation(hf_config(cfg)).eval()
    with torch.no_grad():  # random weights everywhere (HF zero-initialises the tokens)
        for p in hf.parameters():
            p.normal_(0, 0.02 if p.ndim > 1 else 0.2)
    state = to_official_keys(hf.state_dict())
    hf = None if args.no_reference else hf.to(device)
    models = {}
    for name in dtypes:
        models[name] = SegGPT(cfg).eval()
        models[name].load_state_dict(state)
        models[name].to(device).set_compute_dtype(DTYPES[name])
    rows = [(d, v) for d in dtypes for v in args.variants if runs(v, d, device)]

    counting = SegGPT(cfg)
    results = []
    for n_prompts in args.prompts:
        flops = useful_flops(counting, n_prompts)
        g = torch.Generator().manual_seed(n_prompts)
        h, w = cfg.half_size
        prompt_images, prompt_masks = (torch.randn(n_prompts, 3, h, w, generator=g).to(device) for _ in range(2))
        query = torch.randn(1, 3, h, w, generator=g).to(device)

        def run(row):
            if row == "transformers":
                return hf(pixel_values=query.expand(n_prompts, -1, -1, -1), prompt_pixel_values=prompt_images,
                          prompt_masks=prompt_masks, feature_ensemble=n_prompts > 1).pred_masks[:1, :, h:]
            model = models[row[0]]
            model.attn_impl = row[1]
            return model.paint(prompt_images, prompt_masks, query)

        times = {r: [] for r in rows + ["transformers"]}
        fractions = {r: [] for r in rows + ["transformers"]}  # of the fastest dtype's peak sampled beside the row
        outs = {}
        with torch.inference_mode():
            for row in rows:
                if row[1] == "flex":
                    run(row)  # compilation; eager rows' first-call costs are milliseconds against seconds
            for _ in range(args.rounds):
                for row in rows + ([] if hf is None else ["transformers"]):
                    before = matmul_peak(DTYPES[fast], device, GEMM_SHAPES[1:2], reps=3)
                    t, outs[row] = timed(lambda: run(row), device)
                    beside = (before + matmul_peak(DTYPES[fast], device, GEMM_SHAPES[1:2], reps=3)) / 2
                    times[row].append(t)
                    fractions[row].append(flops / t / 1e12 / beside)
                    print(f"  P={n_prompts} {row}: {t:.2f} s, {fractions[row][-1]:.1%} of the {fast} GEMM rate "
                          f"sampled beside it ({beside:.3f} TFLOP/s)", flush=True)
        ref = outs.get("transformers")
        ref_labels = None if ref is None else labels(ref, args.labels)
        for row in ([] if ref is None else ["transformers"]) + rows:
            s = statistics.median(times[row])
            tflops = flops / 1e12 / s
            r = {"P": n_prompts, "row": row, "s": s, "tflops": tflops, "of_fast": tflops / peaks[fast],
                 "of_own": tflops / peaks.get("fp32" if row == "transformers" else row[0], float("inf")),
                 "of_beside": statistics.median(fractions[row])}
            if ref is not None:
                diff = (outs[row].float() - ref.float()).abs()
                r.update(speedup=statistics.median(a / b for a, b in zip(times["transformers"], times[row])),
                         diff=float(diff.mean() / ref.float().std()),
                         agree=float((labels(outs[row], args.labels) == ref_labels).float().mean()))
            results.append(r)
        print(f"P={n_prompts}: useful {flops / 1e12:.3f} TFLOP per frame", flush=True)

    print(f"\nuseful FLOPs: deduplicated forward; peak: plain GEMM at the start of the run; 'beside': the {fast} GEMM "
          f"rate sampled just before and after each timed call (same load); '{NO_BIAS}' = SDPA without the rel-pos "
          f"bias (not exact: the ceiling of any exact variant). {args.rounds} round(s), medians.\n")
    print(f"| P | dtype | attention | s/frame | frames/s | speed-up vs transformers fp32 eager | useful TFLOP/s | "
          f"of {fast} peak | of {fast} GEMM rate beside | of own dtype's peak | mean abs diff / std | "
          f"label agreement |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in results:
        dtype, variant = ("fp32", "transformers eager") if r["row"] == "transformers" else r["row"]
        own = f"{r['of_own']:.1%}" if r["of_own"] else "-"  # no peak measured for that dtype
        rates = f"{r['tflops']:.3f} | {r['of_fast']:.1%} | {r['of_beside']:.1%} | {own}"
        extra = (f"{r['speedup']:.2f}x | {rates} | {r['diff']:.1e} | {r['agree']:.4%} |" if "speedup" in r
                 else f"- | {rates} | - | - |")
        print(f"| {r['P']} | {dtype} | {variant} | {r['s']:.2f} | {1 / r['s']:.3f} | {extra}")
    if device.type == "cuda" and 8 in args.prompts:
        best = min((r for r in results if r["P"] == 8 and r["row"] != "transformers"
                    and r["row"][1] != NO_BIAS), key=lambda r: r["s"])
        print(f"\nframes/s, {cfg.depth}-block ViT-L, P = 8 (model forward per query frame; 480p frames are resized "
              f"to {cfg.half_size[0]}x{cfg.half_size[1]} before it): {1 / best['s']:.2f} with {best['row']}")


if __name__ == "__main__":
    main()
