"""Train SegGPT by in-context colouring on video frame pairs (see ``seggpt_core.training``).

    python scripts/train.py --out runs/small --preset seggpt-vos-small --steps 1200 --seed 0 \\
        --export seggpt_core/weights/seggpt-vos-small

Data: procedural videos (default; seeds below 1_000_000, the rest are held out for evaluation) or, with
``--data-root``, a DAVIS-layout or YouTube-VOS-layout training set. Rerunning the same command resumes from
``<out>/checkpoint.pt`` and continues with exactly the losses the uninterrupted run would have had. ``<out>/loss.jsonl``
logs the loss; ``--export`` writes the final model (safetensors + config) for ``SegGPT.from_pretrained``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing


def build_parser() -> argparse.ArgumentParser:
    from seggpt_core.training import TrainConfig
    from vos.cli import arguments as types
    from vos.training.samplers import SyntheticPairs

    d = TrainConfig()
    p = types.OneLineParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, required=True, help="run folder: checkpoint.pt, loss.jsonl, summary.json")
    p.add_argument("--preset", default="seggpt-vos-small", help="model configuration from seggpt_core.model.PRESETS")
    p.add_argument("--data-root", type=Path, default=None,
                   help="DAVIS/YouTube-VOS training set root (default: procedural synthetic videos)")
    p.add_argument("--split", type=types.file_name, default="train",
                   help="ImageSets/2017/<split>.txt for a DAVIS layout")
    p.add_argument("--max-gap", type=types.positive_int, default=8, help="largest frame distance within a pair")
    p.add_argument("--object-radius", type=types.fraction, nargs=2, default=SyntheticPairs.video.object_radius,
                   metavar=("MIN", "MAX"), help="generated objects' radius range, fraction of the short side")
    p.add_argument("--real-look", type=types.probability, default=0.0,
                   help="share of generated scenes drawn in the real-looking look (vos.training.synthetic.REAL_LOOK)")
    p.add_argument("--init", default=None, metavar="MODEL",
                   help="start from these weights (a shipped name or a folder) instead of a fresh initialisation: "
                        "fine-tuning with a fresh schedule; the model's own configuration replaces --preset")
    p.add_argument("--steps", type=types.positive_int, default=d.steps)
    p.add_argument("--batch-size", type=types.positive_int, default=d.batch_size)
    p.add_argument("--accumulate", type=types.positive_int, default=d.accumulate,
                   help="micro-batches per optimiser step")
    p.add_argument("--lr", type=types.positive_float, default=d.lr)
    p.add_argument("--min-lr", type=types.non_negative_float, default=d.min_lr)
    p.add_argument("--warmup-steps", type=types.non_negative_int, default=d.warmup_steps)
    p.add_argument("--weight-decay", type=types.non_negative_float, default=d.weight_decay)
    p.add_argument("--half-mask-prob", type=types.probability, default=d.half_mask_prob)
    p.add_argument("--mix-context-prob", type=types.probability, default=d.mix_context_prob)
    p.add_argument("--prompt-noise-prob", type=types.probability, default=d.prompt_noise_prob,
                   help="chance a query-half sample shows the model a perturbed prompt mask")
    p.add_argument("--prompt-noise-px", type=types.non_negative_int, default=d.prompt_noise_px)
    p.add_argument("--pairs-per-scene", type=types.positive_int, default=d.pairs_per_scene,
                   help="consecutive samples drawn from one video (shares the cost of generating it)")
    p.add_argument("--seed", type=types.seed, default=d.seed)
    p.add_argument("--precision", choices=("auto", "fp32", "bf16"), default="auto",
                   help="auto: bf16 autocast where the hardware runs bf16 fast (CUDA, AMX/AVX-512-bf16 CPUs), else fp32")
    p.add_argument("--workers", type=types.loader_workers, default=d.num_workers, help="data-loader processes")
    p.add_argument("--threads", type=types.positive_int, default=None, help="torch threads (default: torch's choice)")
    p.add_argument("--device", type=types.device, default=None, help="cpu or cuda (default: cuda when available)")
    p.add_argument("--checkpoint-every", type=types.positive_int, default=d.checkpoint_every)
    p.add_argument("--stop-at", type=types.positive_int, default=None,
                   help="stop (checkpointed) after this step; rerun to continue")
    p.add_argument("--export", type=Path, default=None, help="write the final model here (model.safetensors)")
    p.add_argument("--no-progress", action="store_true")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from seggpt_core.errors import InputError
    from vos.locks import OutputLock
    from vos.outputs import Destination, describe_os_error, prepare_outputs

    try:
        prepare_outputs([Destination(args.out, "folder", "--out")]
                        + ([Destination(args.export, "folder", "--export")] if args.export else []))
        with OutputLock(args.out):
            return train(args)
    except InputError as err:
        print(f"train: error: {err}", file=sys.stderr)
    except OSError as err:
        print(f"train: error: {describe_os_error(err)}", file=sys.stderr)
    return 2


def train(args: argparse.Namespace) -> int:
    """The run itself, once its folders are checked and ``--out`` is locked."""
    import torch

    from seggpt_core.atomic import atomic_write
    from seggpt_core.model import PRESETS, SegGPT
    from seggpt_core.predictor import default_dtype
    from seggpt_core.training import Trainer, TrainConfig, init_for_training
    from vos.training.samplers import Augment, SyntheticPairs, VideoFolderPairs

    if args.threads:
        torch.set_num_threads(args.threads)
    if args.preset not in PRESETS:
        print(f"train: error: unknown preset {args.preset!r}; choose one of {', '.join(PRESETS)}", file=sys.stderr)
        return 2
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    precision = args.precision if args.precision != "auto" else ("bf16" if default_dtype(device) == "bf16" else "fp32")
    cfg = TrainConfig(steps=args.steps, batch_size=args.batch_size, accumulate=args.accumulate, lr=args.lr,
                      min_lr=args.min_lr, warmup_steps=args.warmup_steps, weight_decay=args.weight_decay,
                      half_mask_prob=args.half_mask_prob, mix_context_prob=args.mix_context_prob,
                      prompt_noise_prob=args.prompt_noise_prob, prompt_noise_px=args.prompt_noise_px,
                      pairs_per_scene=args.pairs_per_scene, seed=args.seed,
                      precision=precision, num_workers=args.workers, checkpoint_every=args.checkpoint_every)
    start = SegGPT.from_pretrained(args.init) if args.init else None
    model_cfg = start.config if start else PRESETS[args.preset]
    augment = Augment(size=model_cfg.half_size)
    if args.data_root:
        sampler = VideoFolderPairs(args.data_root, augment, split=args.split, max_gap=args.max_gap)
    else:
        video = replace(SyntheticPairs.video, object_radius=tuple(args.object_radius))
        sampler = SyntheticPairs(augment, video, max_gap=args.max_gap, real_look=args.real_look)

    torch.manual_seed(args.seed)
    model = start if start else init_for_training(SegGPT(model_cfg))
    trainer = Trainer(model, sampler, cfg, args.out, device=device)
    resumed = trainer.resume()
    print(f"train: {'resumed at step ' + str(trainer.step) if resumed else 'fresh run'}; "
          f"{'from ' + args.init if args.init else args.preset} "
          f"({sum(p.numel() for p in model.parameters()) / 1e6:.2f} M parameters), {precision}, "
          f"{cfg.steps} steps x {cfg.batch_size} samples, {torch.get_num_threads()} threads", flush=True)
    wall = time.perf_counter()
    trainer.train(until=args.stop_at, progress=not args.no_progress)
    summary = {"step": trainer.step, "steps": cfg.steps, "train_seconds": round(trainer.elapsed, 1),
               "this_call_seconds": round(time.perf_counter() - wall, 1), "preset": args.preset,
               "train_config": {k: v for k, v in vars(cfg).items()}, "data": str(args.data_root or "synthetic"),
               "init": args.init, "real_look": args.real_look,
               "command": " ".join([Path(sys.argv[0]).as_posix()] + sys.argv[1:])}
    log = [json.loads(line) for line in trainer.log_path.read_text().splitlines()]
    if log:
        summary["final_logged_loss"] = log[-1]["loss"]
    text = json.dumps(summary, indent=1) + "\n"
    atomic_write(args.out / "summary.json", lambda f: f.write(text.encode()))
    if trainer.step >= cfg.steps and args.export:
        model.save_pretrained(args.export)
        print(f"train: exported {args.export}")
    print(f"train: step {trainer.step}/{cfg.steps}, {trainer.elapsed:.0f} s of training")
    return 0


if __name__ == "__main__":
    sys.exit(main())
