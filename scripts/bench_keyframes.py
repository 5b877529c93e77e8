"""Keyframes anywhere: accuracy of propagating from keyframes at any frames, and the time re-propagation saves.

1. ``--choose-rule``: how "both" fills the frames between two keyframes (``PropagationConfig.between``), measured on
   generated validation videos (seeds from 3,000,000: never trained on, never davis-mini) with keyframes at the first
   and last frame: "forward" (from the earlier keyframe only), "two-prompts" (both keyframes as permanent prompts of
   one forward pass), "nearest" (forwards to the midpoint, backwards after it).
2. davis-mini J&F (DAVIS protocol scoring, frames 1..n-2): first-frame mask forward (today's protocol), the middle
   frame's mask both ways, first + last frames' masks both ways.
3. Re-propagation: a session propagated from frame 0, corrected at 3/4 of the clip (ground truth mask), re-propagated,
   against a fresh session given both keyframes; interleaved, ``--repeats`` times; the results must be identical.

    python scripts/bench_keyframes.py --choose-rule --videos 5 --threads 1
    python scripts/bench_keyframes.py
    python scripts/bench_keyframes.py --repro-only --repro-frames 24 --repeats 1
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import get_args

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from eval.davis import evaluate_davis  # noqa: E402
from seggpt_core.checkpoint import DEFAULT_MODEL  # noqa: E402
from seggpt_core.predictor import SegGPTPredictor  # noqa: E402
from vos.config import Between, PropagationConfig  # noqa: E402
from vos.datasets import list_davis  # noqa: E402
from vos.masks import read_label_png  # noqa: E402
from vos.session import VideoSession  # noqa: E402
from vos.training.synthetic import SyntheticVideoConfig, write_davis_dataset  # noqa: E402
from vos.writers import PalettePngWriter  # noqa: E402

DAVIS_MINI = Path(__file__).resolve().parents[2] / "shared" / "data" / "davis-mini"
VALIDATION_SEED = 3_000_000
RULE_VIDEO = SyntheticVideoConfig(size=(240, 428), num_frames=24, num_objects=(2, 3), texture_source="procedural")


def propagate(predictor, root: Path, out: Path, config: PropagationConfig, keyframes: str, direction: str) -> float:
    """Run every sequence of a DAVIS-layout ``root`` from the chosen keyframes; returns the seconds spent."""
    seconds = 0.0
    for task in list_davis(root):
        gt = sorted((root / "Annotations" / "480p" / task.name).glob("*.png"))
        n = len(task.frame_names)
        index = {"first": [0], "middle": [n // 2], "first+last": [0, n - 1]}[keyframes]
        session = VideoSession(predictor, task.frames_dir, config, name=task.name)
        palette = None
        for k in index:
            labels, palette = read_label_png(gt[k])
            session.add_mask(k, labels)
        start = time.perf_counter()
        for _ in session.propagate(direction):
            pass
        seconds += time.perf_counter() - start
        writer = PalettePngWriter(out / task.name, palette=palette)
        for i in range(n):
            writer.write(i, task.frame_names[i], session.result(i), None)
        writer.close(True)
    return seconds


def score(predictor, root: Path, work: Path, config: PropagationConfig, keyframes: str, direction: str,
          label: str) -> dict:
    out = work / label
    seconds = propagate(predictor, root, out, config, keyframes, direction)
    report = evaluate_davis(root, out, "val", workers=1).overall
    print(f"{label:32s} J&F {100 * report.jf_mean:5.1f}  J {100 * report.j.mean:5.1f}  F {100 * report.f.mean:5.1f}"
          f"  ({seconds:.0f} s)", flush=True)
    return {"jf": report.jf_mean, "seconds": seconds}


def choose_rule(predictor, config: PropagationConfig, videos: int, work: Path) -> None:
    root = work / "validation"
    write_davis_dataset(root, range(VALIDATION_SEED, VALIDATION_SEED + videos), RULE_VIDEO)
    print(f"{videos} generated validation videos (seeds {VALIDATION_SEED}..), keyframes at the first and last frame")
    for rule in get_args(Between):
        score(predictor, root, work / "rules", replace(config, between=rule), "first+last", "both",
              f"between rule {rule}")


def davis_mini(predictor, config: PropagationConfig, work: Path) -> None:
    print(f"davis-mini ({DAVIS_MINI}), rule between keyframes: {config.between}")
    score(predictor, DAVIS_MINI, work, config, "first", "forward", "first frame, forward")
    score(predictor, DAVIS_MINI, work, config, "middle", "both", "middle frame, both ways")
    score(predictor, DAVIS_MINI, work, config, "first+last", "both", "first + last frames, both")


def repropagation(predictor, config: PropagationConfig, sequence: str, repeats: int, limit: int | None) -> None:
    from vos.readers import read_image

    frames = [read_image(f) for f in sorted((DAVIS_MINI / "JPEGImages" / "480p" / sequence).glob("*.jpg"))[:limit]]
    gt = sorted((DAVIS_MINI / "Annotations" / "480p" / sequence).glob("*.png"))[:limit]
    n = len(gt)
    k = 3 * n // 4
    first, corrected = read_label_png(gt[0])[0], read_label_png(gt[k])[0]
    again, fresh = [], []
    for _ in range(repeats):
        session = VideoSession(predictor, frames, config)
        session.add_mask(0, first)
        list(session.propagate())
        session.add_mask(k, corrected)
        recomputed = len(session.plan())
        start = time.perf_counter()
        list(session.propagate())
        again.append(time.perf_counter() - start)
        other = VideoSession(predictor, frames, config)
        other.add_mask(0, first)
        other.add_mask(k, corrected)
        start = time.perf_counter()
        list(other.propagate())
        fresh.append(time.perf_counter() - start)
        same = all(np.array_equal(session.result(i), other.result(i)) for i in range(n))
        if not same:
            raise SystemExit("re-propagation differs from a fresh session")
    a, f = float(np.median(again)), float(np.median(fresh))
    print(f"re-propagation after a correction at frame {k} of {sequence} ({n} frames): {recomputed} frames recomputed, "
          f"{a:.1f} s vs {f:.1f} s fresh (median of {repeats}, interleaved): {f - a:.1f} s saved, ratio {a / f:.2f}; "
          f"results identical")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--choose-rule", action="store_true", help="only the rule comparison on generated videos")
    ap.add_argument("--videos", type=int, default=6, help="generated validation videos for --choose-rule")
    ap.add_argument("--context", type=int, default=None, help="previous predictions as prompts (default: the mode's)")
    ap.add_argument("--sequence", default="dog", help="davis-mini sequence for the re-propagation timing")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--repro-only", action="store_true", help="only the re-propagation timing")
    ap.add_argument("--repro-frames", type=int, default=None, help="first N frames of the sequence (default all)")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    predictor = SegGPTPredictor.from_pretrained(DEFAULT_MODEL, device="cpu", dtype="fp32")
    config = replace(PropagationConfig(), context=args.context)
    mode = config.resolved_mode(predictor.half_size)
    print(f"model {DEFAULT_MODEL}, fp32, {args.threads} threads, {mode} mode, context {config.context_size(mode)}; "
          "the machine is shared, so times are compared only within this run")
    with tempfile.TemporaryDirectory() as tmp:
        if args.choose_rule:
            choose_rule(predictor, config, args.videos, Path(tmp))
            return
        if not args.repro_only:
            davis_mini(predictor, config, Path(tmp))
        repropagation(predictor, config, args.sequence, args.repeats, args.repro_frames)


if __name__ == "__main__":
    main()
