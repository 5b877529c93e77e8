"""Speed of one query frame: our fastest SegGPT path vs transformers' eager fp32 forward, same weights and inputs.

For P = 1 and P = 8 prompts (8 = the paper's best video setting) it times, in one process and interleaved:
  * reference: ``SegGptForImageSegmentation`` fp32, eager attention, ``feature_ensemble`` for P > 1 (its default
    path; P canvases, every one decoded);
  * ours: deduplicated ``paint`` with the rel-pos bias folded into SDPA, in the predictor's compute dtype (what the
    predictor runs);
and reports the speed-up (median of per-round ratios), the output difference of our bf16 path against the fp32
reference (mean |diff| / std of the reference output), and the TFLOP/s our path achieves on the FLOPs it actually
performs (counted with ``torch.utils.flop_counter``) against the bf16 matmul peak measured here.

    python scripts/bench_model.py [--rounds 3] [--prompts 1 8] [--device cuda --dtype fp16 --compile]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from seggpt_core.checkpoint import to_official_keys  # noqa: E402
from seggpt_core.model import SegGPT, SegGPTConfig  # noqa: E402
from seggpt_core.predictor import default_dtype  # noqa: E402

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def timed(fn, device) -> float:
    sync(device)
    t = time.perf_counter()
    fn()
    sync(device)
    return time.perf_counter() - t


def matmul_peak(dtype: torch.dtype, device: torch.device, reps: int = 20) -> float:
    """Best TFLOP/s of SegGPT-shaped GEMMs (one sequence's fc1 and qkv) in ``dtype``."""
    best = 0.0
    for m, k, n in ((1568, 1024, 4096), (3136, 1024, 4096), (1568, 1024, 3072)):
        a = torch.randn(m, k, device=device, dtype=dtype)
        b = torch.randn(k, n, device=device, dtype=dtype)
        a @ b
        t = min(timed(lambda: a @ b, device) for _ in range(reps))
        best = max(best, 2 * m * k * n / t / 1e12)
    return best


def counted_flops(fn) -> float:
    with FlopCounterMode(display=False) as counter:
        fn()
    return counter.get_total_flops()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--prompts", type=int, nargs="+", default=[1, 8])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--dtype", choices=("fp32", "bf16", "fp16"), default=None,
                    help="our compute dtype (default: what the predictor picks for the device: bf16 on GPUs and on "
                         "CPUs with AMX/AVX-512 bf16, fp32 on CPUs that would emulate bf16)")
    ap.add_argument("--compile", action="store_true", help="also time our path under torch.compile")
    ap.add_argument("--no-reference", action="store_true", help="skip transformers (GPU frames/s table only)")
    args = ap.parse_args()
    device = torch.device(args.device)
    args.dtype = args.dtype or default_dtype(device)
    torch.manual_seed(0)

    import transformers
    from tests.hf_reference import hf_config

    cfg = SegGPTConfig()
    hf = transformers.SegGptForImageSegmentation(hf_config(cfg)).eval().to(device)
    with torch.no_grad():  # random weights everywhere (HF zero-initialises the tokens)
        for p in hf.parameters():
            p.normal_(0, 0.02 if p.ndim > 1 else 0.2)
    ours = SegGPT(cfg).eval()
    ours.load_state_dict(to_official_keys(hf.state_dict()))
    ours = ours.to(device).set_compute_dtype(DTYPES[args.dtype])
    paint = torch.compile(ours.paint, dynamic=False) if args.compile else ours.paint
    if args.no_reference:
        del hf

    peak = matmul_peak(DTYPES[args.dtype], device)
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), "?") if device.type == "cpu" else torch.cuda.get_device_name()
    print(f"device {device} [{cpu}] ({torch.get_num_threads()} threads), torch {torch.__version__}, "
          f"{args.dtype} matmul peak {peak:.3f} TFLOP/s", flush=True)
    rows = []
    for n_prompts in args.prompts:
        g = torch.Generator().manual_seed(n_prompts)
        h, w = cfg.half_size
        prompt_images, prompt_masks = (torch.randn(n_prompts, 3, h, w, generator=g).to(device) for _ in range(2))
        query = torch.randn(1, 3, h, w, generator=g).to(device)

        def run_ref():
            return hf(pixel_values=query.expand(n_prompts, -1, -1, -1), prompt_pixel_values=prompt_images,
                      prompt_masks=prompt_masks, feature_ensemble=n_prompts > 1).pred_masks

        def run_ours():
            return paint(prompt_images, prompt_masks, query)

        with torch.inference_mode():
            out = run_ours()  # warm-up (and compilation)
            flops = counted_flops(lambda: ours.paint(prompt_images, prompt_masks, query))
            ref_times, our_times = [], []
            ref = None
            for _ in range(args.rounds):
                our_times.append(timed(run_ours, device))
                if not args.no_reference:
                    ref_t = time.perf_counter()
                    ref = run_ref()
                    sync(device)
                    ref_times.append(time.perf_counter() - ref_t)
            row = {"P": n_prompts, "ours_s": statistics.median(our_times), "tflops": flops / 1e12,
                   "achieved": flops / 1e12 / min(our_times)}
            if ref is not None:
                ref_q = ref[:1, :, h:].float()
                row.update(ref_s=statistics.median(ref_times),
                           speedup=statistics.median(r / o for r, o in zip(ref_times, our_times)),
                           mean_diff_over_std=float((out.float() - ref_q).abs().mean() / ref_q.std()),
                           max_diff=float((out.float() - ref_q).abs().max()))
        rows.append(row)
        print(row, flush=True)

    print()
    if args.no_reference:
        print(f"| P | ours s/frame | frames/s | TFLOP/frame | achieved TFLOP/s ({args.dtype}{', compiled' if args.compile else ''}) |")
        print("|---|---|---|---|---|")
        for r in rows:
            print(f"| {r['P']} | {r['ours_s']:.4f} | {1 / r['ours_s']:.2f} | {r['tflops']:.2f} | {r['achieved']:.1f} |")
        return
    print(f"| P | transformers fp32 eager s/frame | ours ({args.dtype}, dedup, SDPA{', compiled' if args.compile else ''}) s/frame | speed-up | "
          f"mean abs diff / std | max abs diff | TFLOP/frame (ours) | achieved TFLOP/s | of {args.dtype} peak |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['P']} | {r['ref_s']:.2f} | {r['ours_s']:.2f} | {r['speedup']:.1f}x | "
              f"{r['mean_diff_over_std']:.4f} | {r['max_diff']:.3f} | {r['tflops']:.2f} | {r['achieved']:.2f} | "
              f"{r['achieved'] / peak:.0%} |")


if __name__ == "__main__":
    main()
