"""Benchmark: ``eval/`` vs vos-benchmark (single process) on the davis-mini sets, same results, same machine, one run.

Two comparisons, interleaved round by round so that load changes hit all alike:

1. Whole commands on davis-mini + OSVOS: ``seggpt-vos eval`` (a fresh process: interpreter start, imports, scoring,
   CSVs; 1 worker and all cores) against vos-benchmark's ``VideoEvaluator`` over every video in one fresh process.
   This is what a user waits for; every J-Mean and F-Mean in our CSV must equal vos-benchmark's, rounded as the CSV
   rounds them (3 decimals).
2. The scorers inside one process (below), where the numbers must be identical floats.

For each set, both evaluators score identical result folders (copied to a temporary directory, since ``eval/`` writes
its CSVs beside the results); per-object J-Mean and F-Mean must be identical, then best-of-N times are compared.
vos-benchmark runs single-process (its ``VideoEvaluator`` over every video in this process, which is what its
``benchmark(num_processes=1)`` worker does, minus the pool); ``eval/`` runs with all cores (``--workers``) and, for
reference, with one worker. Wall time is the headline; CPU time of the single-process runs is printed too because it
is robust against other jobs on a shared machine. Sets: ``davis-mini`` with the official OSVOS results, and
``davis-mini-multi`` with deterministic perturbed results (eroded / shifted / one object dropped / noisy frames), since
it ships none.

    python scripts/bench_eval.py [--data ../shared/data] [--repeat 3] [--workers N] [--zlib]

``--zlib`` applies to the in-process comparison only.

``--zlib`` measures the fallback PNG inflater used where the system has no libdeflate.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from eval import inflate  # noqa: E402
from eval.davis import RESOLUTION, evaluate_davis  # noqa: E402
from eval.masks import encode_labels_png  # noqa: E402
from eval.report import write_csvs  # noqa: E402


def perturbed_results(gt_root: Path, out: Path) -> Path:
    """Deterministic imperfect predictions for every frame of every sequence of ``gt_root``."""
    rng = np.random.default_rng(0)
    for seq_dir in sorted((gt_root / "Annotations" / RESOLUTION).iterdir()):
        for t, path in enumerate(sorted(seq_dir.glob("*.png"))):
            labels = np.array(Image.open(path))
            kind = t % 4
            if kind == 0:
                pred = np.zeros_like(labels)
                for k in np.unique(labels)[1:]:
                    pred[cv2.erode((labels == k).astype(np.uint8), np.ones((9, 9), np.uint8)) > 0] = k
            elif kind == 1:
                pred = np.roll(labels, (6, -10), axis=(0, 1))
            elif kind == 2:
                pred = np.where(labels == labels.max(), 0, labels).astype(np.uint8)
            else:
                pred = labels.copy()
                flip = rng.random(labels.shape) < 0.01
                pred[flip] = rng.integers(0, int(labels.max()) + 1, size=int(flip.sum()))
            (out / seq_dir.name).mkdir(parents=True, exist_ok=True)
            (out / seq_dir.name / path.name).write_bytes(encode_labels_png(pred))
    return out


def time_ours(davis_root: Path, results: Path, workers: int | None):
    wall, cpu = time.perf_counter(), time.process_time()
    report = evaluate_davis(davis_root, results, workers=workers)
    write_csvs(report, results)
    return time.perf_counter() - wall, time.process_time() - cpu, report


def time_vos_benchmark(davis_root: Path, results: Path):
    from vos_benchmark.benchmark import VideoEvaluator

    wall, cpu = time.perf_counter(), time.process_time()
    gt_root = davis_root / "Annotations" / RESOLUTION
    evaluate = VideoEvaluator(str(gt_root), str(results))
    per_object = {name: (iou, bf) for name, iou, bf in map(evaluate, sorted(p.name for p in gt_root.iterdir()))}
    return time.perf_counter() - wall, time.process_time() - cpu, per_object


def check_identical(report, vos_objects) -> None:
    """Per-object J-Mean and F-Mean (vos-benchmark reports them x100) must be the same floats."""
    ours = {(o.sequence, o.object_id): (o.j_stats.mean * 100, o.f_stats.mean * 100) for o in report.objects}
    theirs = {(seq, k): (iou[k], bf[k]) for seq, (iou, bf) in vos_objects.items() for k in iou}
    if ours != theirs:
        diff = {key: (ours.get(key), theirs.get(key)) for key in ours.keys() | theirs.keys()
                if ours.get(key) != theirs.get(key)}
        raise SystemExit(f"numbers differ: {diff}")


#: vos-benchmark as one process: its per-video evaluator over every video (what ``benchmark(num_processes=1)`` runs in
#: its single worker, minus the pool), per-object J and F (x100) printed as JSON.
VOS_BENCHMARK_COMMAND = """
import json, os, sys
from vos_benchmark.benchmark import VideoEvaluator
gt_root, results = sys.argv[1], sys.argv[2]
videos = sorted(v for v in os.listdir(gt_root) if os.path.isdir(os.path.join(gt_root, v)))
print(json.dumps({name: [iou, bf] for name, iou, bf in map(VideoEvaluator(gt_root, results), videos)}))
"""


def run_command(argv: list[str]) -> tuple[float, str]:
    """Wall time of a whole command in a fresh process (this checkout first on the path), and its stdout."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    start = time.perf_counter()
    done = subprocess.run(argv, cwd=REPO, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if done.returncode:
        raise SystemExit(f"{' '.join(argv[:4])} ... failed:\n{done.stderr}")
    return wall, done.stdout


def time_eval_command(davis_root: Path, results: Path, workers: int) -> tuple[float, dict]:
    """``seggpt-vos eval`` as a user runs it; returns its wall time and its per-object CSV rows."""
    wall, _ = run_command([sys.executable, "-m", "vos.cli", "eval", "--davis-root", str(davis_root), "--results",
                           str(results), "--workers", str(workers)])
    with open(results / "per-sequence_results-val.csv", newline="") as f:
        rows = {row["Sequence"]: (row["J-Mean"], row["F-Mean"]) for row in csv.DictReader(f)}
    return wall, rows


def time_vos_benchmark_command(davis_root: Path, results: Path) -> tuple[float, dict]:
    wall, out = run_command([sys.executable, "-c", VOS_BENCHMARK_COMMAND, str(davis_root / "Annotations" / RESOLUTION),
                             str(results)])
    per_video = json.loads(out)
    rows = {f"{seq}_{k}": ("%.3f" % (iou[k] / 100), "%.3f" % (bf[k] / 100))
            for seq, (iou, bf) in per_video.items() for k in iou}
    return wall, rows


def bench_commands(davis_root: Path, source: Path, tmp: Path, repeat: int, workers: int) -> None:
    """Table 1: whole commands, best of ``repeat`` interleaved rounds, numbers checked every round."""
    results = tmp / "commands"
    shutil.copytree(source, results, ignore=shutil.ignore_patterns("*.json", "*.csv"))
    runs = ("vos-benchmark, 1 process", "seggpt-vos eval, 1 worker", f"seggpt-vos eval, {workers} workers")
    best = {run: float("inf") for run in runs}
    for _ in range(repeat):
        theirs = time_vos_benchmark_command(davis_root, results)
        ours = [time_eval_command(davis_root, results, 1), time_eval_command(davis_root, results, workers)]
        for run, (wall, rows) in zip(runs, [theirs, *ours]):
            if rows != theirs[1]:
                raise SystemExit(f"{run}: numbers differ from vos-benchmark: "
                                 f"{ {k: (rows.get(k), theirs[1].get(k)) for k in rows.keys() | theirs[1].keys()} }")
            best[run] = min(best[run], wall)
    print(f"\nwhole commands, davis-mini + OSVOS: {len(theirs[1])} objects, every J-Mean and F-Mean identical "
          f"(3 decimals, as the CSV writes them)")
    for run in runs:
        print(f"  {run:28s} wall {best[run]:7.3f} s ({best[runs[0]] / best[run]:5.2f}x)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    parser.add_argument("--repeat", type=int, default=3, help="runs per evaluator; the best time counts")
    parser.add_argument("--workers", type=int, default=None, help="eval/ processes (default: all cores)")
    parser.add_argument("--zlib", action="store_true", help="inflate PNGs with zlib even if libdeflate is present")
    args = parser.parse_args()
    if args.zlib:
        inflate.inflate = inflate.zlib_inflate
    workers = args.workers or os.cpu_count() or 1
    inflater = "zlib" if inflate.inflate is inflate.zlib_inflate else "libdeflate"
    print(f"cores: {os.cpu_count()}, eval/ workers: {workers}, best of {args.repeat}, load average at start: "
          f"{os.getloadavg()[0]:.2f}, PNG inflater: {inflater}")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        bench_commands(args.data / "davis-mini", args.data / "davis-mini-osvos", tmp, args.repeat, workers)
        print("\nscorers inside one process:")
        sets = {"davis-mini + OSVOS": (args.data / "davis-mini", args.data / "davis-mini-osvos"),
                "davis-mini-multi + perturbed": (args.data / "davis-mini-multi",
                                                 perturbed_results(args.data / "davis-mini-multi", tmp / "multi-src"))}
        runs = ("vos-benchmark", "eval, 1 worker", f"eval, {workers} workers")
        totals = {run: [0.0, 0.0] for run in runs}  # wall, cpu
        for name, (davis_root, source) in sets.items():
            results = tmp / "results" / name.split()[0]
            shutil.copytree(source, results, ignore=shutil.ignore_patterns("*.json", "*.csv"))
            best = {run: [float("inf"), float("inf")] for run in runs}
            for _ in range(args.repeat):  # interleaved, so load changes hit all alike
                timings = {runs[0]: time_vos_benchmark(davis_root, results),
                           runs[1]: time_ours(davis_root, results, 1),
                           runs[2]: time_ours(davis_root, results, workers)}
                for run, (wall, cpu, outcome) in timings.items():
                    best[run] = [min(best[run][0], wall), min(best[run][1], cpu)]
                check_identical(timings[runs[1]][2], timings[runs[0]][2])
                check_identical(timings[runs[2]][2], timings[runs[0]][2])
            report = timings[runs[1]][2]
            frames = sum(len(o.frames) for o in report.objects)
            print(f"\n{name}: {len(report.objects)} objects, {frames} object-frames, per-object numbers identical")
            _print_rows(best, runs, workers)
            for run in runs:
                totals[run] = [totals[run][0] + best[run][0], totals[run][1] + best[run][1]]
        print("\nall sets:")
        _print_rows(totals, runs, workers)


def _print_rows(times: dict[str, list[float]], runs: tuple[str, ...], workers: int) -> None:
    reference_wall, reference_cpu = times[runs[0]]
    for run in runs:
        wall, cpu = times[run]
        line = f"  {run:18s} wall {wall:7.3f} s ({reference_wall / wall:5.2f}x)"
        if run != runs[2] or workers == 1:  # a pool's CPU time is in its workers, not here
            line += f"   cpu {cpu:7.3f} s ({reference_cpu / cpu:5.2f}x)"
        print(line)


if __name__ == "__main__":
    main()
