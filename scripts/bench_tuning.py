"""In-context tuning on videos: J&F on a video's other frames with and without a prompt tuned on a few of its frames.

For each video of two sets, held-out generated videos (seeds >= 1_000_000, never used in training) and
``shared/data/davis-mini`` (real DAVIS 2017 val sequences):

1. tune a prompt (model frozen) on ``--tune-frames`` annotated frames spread evenly over the video, frame 0 first;
2. propagate from the first-frame mask, as the DAVIS semi-supervised protocol does, without and with the tuned prompt
   as an extra permanent example: at context 0 (the examples only) and at context 7 (+ the FIFO of predictions, the
   paper's best setting); and with the tuned prompt alone (no mask, context 0);
3. score with ``eval/`` (DAVIS protocol): J&F over the protocol's frames, and J&F over the *other* frames, i.e.
   without the frames the prompt was tuned on (the number that matters; frame 0 is never scored).

Prints one table per set and per video, and writes everything to ``<out>/results.json``.

    python scripts/bench_tuning.py [--model seggpt-vos-small] [--videos 3] [--steps 60] [--out runs/bench-tuning]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from eval.davis import evaluate_davis  # noqa: E402
from eval.report import Report  # noqa: E402
from seggpt_core.atomic import atomic_write  # noqa: E402
from seggpt_core.checkpoint import DEFAULT_MODEL  # noqa: E402
from seggpt_core.predictor import SegGPTPredictor  # noqa: E402
from seggpt_core.tuned_prompt import TunedPrompt  # noqa: E402
from seggpt_core.tuning import TuningConfig, tune_prompt  # noqa: E402
from vos.datasets import DavisLayout, list_davis  # noqa: E402
from vos.pipeline import OutputSpec, run_video  # noqa: E402
from vos.runner import prompt_masks  # noqa: E402
from vos.session import PropagationConfig  # noqa: E402
from vos.training.synthetic import SyntheticVideoConfig, write_davis_dataset  # noqa: E402
from vos.training.samplers import TRAIN_SEED_LIMIT  # noqa: E402
from vos.cli.tune import load_examples, sequence_examples  # noqa: E402

DAVIS_MINI = REPO.parent / "shared" / "data" / "davis-mini"
#: Held-out generated videos: training uses seeds below TRAIN_SEED_LIMIT (1_000_000); the demo uses 1_000_007.
FIRST_SEED = 1_000_100
VIDEO = SyntheticVideoConfig(num_frames=40)


@dataclass(frozen=True)
class Method:
    name: str
    context: int
    mask: bool  #: the first-frame mask is given (DAVIS protocol)
    tuned: bool  #: the tuned prompt is a permanent example


METHODS = (
    Method("first frame", 0, True, False),
    Method("tuned + first frame", 0, True, True),
    Method("tuned only", 0, False, True),
    Method("first frame + FIFO 7", 7, True, False),
    Method("tuned + first frame + FIFO 7", 7, True, True),
)


def tune_frames(num_frames: int, count: int) -> list[int]:
    """``count`` frame indices spread evenly over the video, starting at 0."""
    return sorted({int(i) for i in np.linspace(0, num_frames, count, endpoint=False)})


def jf(report: Report, skip: dict[str, set[str]], sequence: str | None = None) -> float:
    """J&F-Mean (object average of J and F means) over each object's scored frames not in ``skip[sequence]``."""
    j, f = [], []
    for o in report.objects:
        if sequence is not None and o.sequence != sequence:
            continue
        keep = [i for i, name in enumerate(o.frames) if name not in skip.get(o.sequence, set())]
        j.append(float(np.mean(o.j[keep])))
        f.append(float(np.mean(o.f[keep])))
    return (float(np.mean(j)) + float(np.mean(f))) / 2


def run_set(predictor: SegGPTPredictor, name: str, root: Path, out: Path, args: argparse.Namespace) -> dict:
    """Tune, propagate and score every sequence of a DAVIS-layout ``root``; returns the numbers."""
    tasks = list_davis(root)
    config = TuningConfig(steps=args.steps, lr=args.lr, batch_size=args.batch_size, seed=args.seed)
    prompts: dict[str, TunedPrompt] = {}
    skip: dict[str, set[str]] = {}
    tuning_seconds = 0.0
    for task in tasks:
        frames = tune_frames(len(task.frame_names), args.tune_frames)
        skip[task.name] = {task.frame_names[i] for i in frames}
        pairs = sequence_examples(task.frames_dir, DavisLayout(root).annotations(task.name), frames)
        examples, objects = load_examples(pairs)
        start = time.perf_counter()
        prompts[task.name] = tune_prompt(predictor, examples, config, label_ids=objects.ids, progress=False)
        tuning_seconds += time.perf_counter() - start
        info = prompts[task.name].info
        print(f"  {task.name}: tuned on frames {frames}, loss {info['first_loss']:.4f} -> {info['final_loss']:.4f}")
    results = {"tune_frames": {t: sorted(s) for t, s in skip.items()},
               "tuning_seconds_per_video": tuning_seconds / len(tasks), "methods": {}}
    for method in METHODS:
        masks_dir = out / name / method.name.replace(" ", "_").replace("+", "plus")
        shutil.rmtree(masks_dir, ignore_errors=True)
        seconds, frames_done = 0.0, 0
        for task in tasks:
            masks, palette = prompt_masks(task) if method.mask else ({}, None)
            config = PropagationConfig(context=method.context, mode="joint")  # tuned prompts are whole frames
            stats = run_video(predictor, task.frames_dir, masks, OutputSpec(masks=masks_dir), config, name=task.name,
                              palette=palette, progress=False, tuned=prompts[task.name] if method.tuned else None)
            seconds += stats.seconds
            frames_done += stats.frames
        report = evaluate_davis(root, masks_dir, "val", workers=1)
        results["methods"][method.name] = {
            "jf_protocol": report.overall.jf_mean, "jf_other_frames": jf(report, skip),
            "per_video_other_frames": {t.name: jf(report, skip, t.name) for t in tasks},
            "frames_per_second": frames_done / seconds}
        print(f"  {method.name:30s} J&F {100 * report.overall.jf_mean:5.1f}   other frames "
              f"{100 * results['methods'][method.name]['jf_other_frames']:5.1f}")
    return results


def print_tables(name: str, results: dict) -> None:
    methods = results["methods"]
    base_fps = methods["first frame"]["frames_per_second"]
    print(f"\n{name}: J&F x100 (DAVIS protocol frames / other frames = without the tuning frames)")
    print(f"  {'method':30s} {'protocol':>9s} {'other':>7s} {'speed vs first frame':>21s}")
    for method, r in methods.items():
        print(f"  {method:30s} {100 * r['jf_protocol']:9.1f} {100 * r['jf_other_frames']:7.1f} "
              f"{r['frames_per_second'] / base_fps:20.2f}x")
    print(f"  tuning: {results['tuning_seconds_per_video']:.1f} s per video")
    pairs = (("first frame", "tuned + first frame"), ("first frame + FIFO 7", "tuned + first frame + FIFO 7"))
    print(f"  per video, other frames: {'video':22s} " + "  ".join(f"{a} -> {b}" for a, b in pairs))
    for video in methods["first frame"]["per_video_other_frames"]:
        cells = []
        for a, b in pairs:
            x, y = (100 * methods[m]["per_video_other_frames"][video] for m in (a, b))
            cells.append(f"{x:5.1f} -> {y:5.1f} ({y - x:+5.1f})")
        print(f"  {'':24s} {video:22s} " + "    ".join(cells))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=DEFAULT_MODEL, help="weights (default: the shipped small model)")
    parser.add_argument("--dtype", choices=("fp32", "bf16", "fp16"), default=None)
    parser.add_argument("--device", default=None)
    parser.add_argument("--videos", type=int, default=3, help="generated held-out videos (default 3)")
    parser.add_argument("--first-seed", type=int, default=FIRST_SEED)
    parser.add_argument("--davis", type=Path, default=DAVIS_MINI, help="DAVIS-layout set (default davis-mini)")
    parser.add_argument("--tune-frames", type=int, default=3, help="annotated frames tuned on, frame 0 included")
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--lr", type=float, default=TuningConfig.lr)
    parser.add_argument("--batch-size", type=int, default=TuningConfig.batch_size)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("runs/bench-tuning"))
    args = parser.parse_args()
    if args.first_seed < TRAIN_SEED_LIMIT:
        parser.error(f"--first-seed must be >= {TRAIN_SEED_LIMIT} (seeds below are training videos)")

    predictor = SegGPTPredictor.from_pretrained(args.model, device=args.device, dtype=args.dtype)
    print(f"model {args.model} ({predictor.model.config.half_size[0]}x{predictor.model.config.half_size[1]} per "
          f"half) on {predictor.device}, {predictor.dtype}, {torch.get_num_threads()} threads; {args.steps} steps, "
          f"lr {args.lr}, {args.tune_frames} tuning frames")
    sets = []
    if args.videos > 0:
        seeds = range(args.first_seed, args.first_seed + args.videos)
        generated = args.out / "generated-data"
        write_davis_dataset(generated, list(seeds), VIDEO)
        sets.append((f"generated ({args.videos} held-out videos, seeds {seeds[0]}..{seeds[-1]})", "generated",
                     generated))
    if args.davis.is_dir():
        sets.append((f"{args.davis.name} (real DAVIS 2017 val)", args.davis.name, args.davis))
    else:
        print(f"{args.davis} not found: skipping the DAVIS set")
    results = {"model": str(args.model), "device": str(predictor.device), "dtype": predictor.dtype,
               "settings": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
               "tuning": asdict(TuningConfig(steps=args.steps, lr=args.lr, batch_size=args.batch_size,
                                             seed=args.seed)), "sets": {}}
    for title, key, root in sets:
        print(f"\n{title}")
        results["sets"][title] = run_set(predictor, key, root, args.out, args)
    for title in results["sets"]:
        print_tables(title, results["sets"][title])
    text = json.dumps(results, indent=1) + "\n"
    atomic_write(args.out / "results.json", lambda f: f.write(text.encode()))
    print(f"\nresults -> {args.out / 'results.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
