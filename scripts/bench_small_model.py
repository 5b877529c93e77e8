"""Scores of the shipped small model through the real pipeline (``vos.runner``) and ``eval/``.

    python scripts/bench_small_model.py [--model seggpt-vos-small] [--out runs/bench-small] [--videos 10]

0. With ``--tune-windows``: the window geometry (``vos.config.WindowConfig``) over a grid of margins and minimum
   sides, on validation videos with seeds from ``--tune-first-seed`` (default 3_000_000: neither trained on nor
   reported below), so the defaults are chosen without looking at the held-out scores. With ``--tune-motion``: the
   motion prior's settings (``MOTION_GRID``) and the flow warp alone on validation videos of the default look, a
   harder one (faster motion, more camouflage, faster camera) and the real-looking one (``REAL_LOOK``: camouflage,
   motion blur, occluders, lighting, camera shake, thin parts), chosen with ``--motion-looks`` (``MOTION_VALIDATION``);
   ``--tune-adapt``, ``--tune-edges`` and ``--tune-inference`` score given adaptation, edge-refinement and prompt /
   painting settings (context size, test-time mirroring) on those looks the same way; ``--sets ""`` skips the scored
   sets.
1. J&F on held-out generated videos: ``--videos`` synthetic DAVIS-style videos (480x854, default look) with seeds from
   ``--first-seed`` (default 2_000_000; training only ever uses seeds below ``vos.training.samplers.TRAIN_SEED_LIMIT``).
2. J&F on ``shared/data/davis-mini`` (real DAVIS 2017 val videos, never trained on).
   Both sets (``--sets``) with the pipeline's defaults (``--mode`` auto: object windows for this model, ``--motion``
   auto: placed by optical flow; ``--context`` auto: the mode's, see ``vos.config``), with ``--compare-mode`` /
   ``--compare-motion`` / ``--compare-context`` when given, and for two baselines scored by the same evaluator, per set
   and per sequence: repeating the first-frame mask on every frame, and warping the previous mask with optical flow
   (``vos.motion.flow_track``: OpenCV DIS medium, backward flow, nearest remap).
3. bf16 vs fp32: the same pipeline with the model's matmuls in bf16; the fraction of output pixels whose label
   equals the fp32 run's, (a) over every written frame of both sets, each precision propagating on its own (a
   pixel that flips feeds back through the prompts and, in windows mode, the window placement, so the runs can
   drift apart), and (b) per step: frame t segmented by both precisions from the same prompt (frame t-1 with the
   fp32 run's mask), which isolates the arithmetic from that feedback.
4. One step from the truth: on the held-out videos, frame t segmented with frame t-1 and its *true* mask as the only
   prompt, J at the model's resolution, against simply copying that true mask - how much the model adds (or loses)
   per step before any drift.

Everything is written under ``--out`` (generated data, predictions per precision, mode and context, e.g.
``davis-mini/fp32-windows-flow-context7/``, and ``bench_small_model.json``, updated by each run); reruns reuse
finished videos (the runner skips complete outputs).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import get_args

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from eval.davis import evaluate_davis  # noqa: E402
from eval.metrics import frame_scores  # noqa: E402
from seggpt_core.atomic import atomic_write  # noqa: E402
from seggpt_core.adaptation import AdaptConfig  # noqa: E402
from seggpt_core.checkpoint import DEFAULT_MODEL  # noqa: E402
from seggpt_core.predictor import Prompt, SegGPTPredictor  # noqa: E402
from seggpt_core.transforms import resize_labels  # noqa: E402
from vos.config import EdgeConfig, Mode, Motion, MotionConfig, PropagationConfig, WindowConfig  # noqa: E402
from vos.datasets import VideoTask, list_davis  # noqa: E402
from vos.masks import load_mask  # noqa: E402
from vos.motion import flow_track  # noqa: E402
from vos.readers import open_source  # noqa: E402
from vos.runner import run_tasks  # noqa: E402
from vos.session import VideoSession  # noqa: E402
from vos.training.synthetic import REAL_LOOK, SyntheticVideo, SyntheticVideoConfig, write_davis_dataset  # noqa: E402
from vos.training.samplers import TRAIN_SEED_LIMIT  # noqa: E402
from vos.writers import PalettePngWriter  # noqa: E402

DAVIS_MINI = Path(__file__).resolve().parents[2] / "shared" / "data" / "davis-mini"


def repeat_first_mask(tasks: list[VideoTask], out: Path) -> None:
    """The trivial baseline: each sequence's first annotation copied to every frame name."""
    for task in tasks:
        first = task.masks[task.first_frame].read_bytes()
        for name in task.frame_names:
            atomic_write(out / task.name / f"{name}.png", lambda f: f.write(first))


def flow_warp(tasks: list[VideoTask], out: Path) -> None:
    """The optical-flow baseline (``vos.motion.flow_track``): each sequence's first annotation carried frame to frame
    along OpenCV DIS backward flow (medium preset), nearest remap; frames before the first annotation are empty."""
    for task in tasks:
        first = task.frame_names.index(task.first_frame)
        labels, palette = load_mask(task.masks[task.first_frame])
        writer = PalettePngWriter(out / task.name, palette=palette)
        frames = (frame.rgb for frame in open_source(task.frames_dir) if frame.index >= first)
        for name in task.frame_names[:first]:
            writer.write(0, name, np.zeros_like(labels), None)
        for name, warped in zip(task.frame_names[first:], flow_track(frames, labels)):
            writer.write(0, name, warped, None)


def pixel_agreement(a: Path, b: Path) -> tuple[int, int]:
    """(equal pixels, total pixels) over every PNG under ``a`` and its namesake under ``b``."""
    equal = total = 0
    for png in sorted(a.rglob("*.png")):
        x = np.array(Image.open(png))
        y = np.array(Image.open(b / png.relative_to(a)))
        equal += int((x == y).sum())
        total += x.size
    return equal, total


def folder_name(precision: str, config: PropagationConfig, half_size: tuple[int, int]) -> str:
    """e.g. ``fp32-windows-flow-context3-mirror``; tuned window geometries add ``-m1.5-s0.1``, a motion blend
    ``-blend0.3``, other edge settings ``-edges1-c20`` (``-no-edges``: off)."""
    mode = config.resolved_mode(half_size)
    name = (f"{precision}-{mode}" + ("-flow" if config.uses_flow(mode) else "") + f"-context{config.context_size(mode)}"
            + ("-mirror" if config.uses_mirror(mode) else ""))
    if mode == "windows" and config.windows != WindowConfig():
        name += f"-m{config.windows.margin:g}-s{config.windows.min_side:g}"
    if mode == "windows" and config.edges != EdgeConfig():
        name += f"-edges{config.edges.radius:g}-c{config.edges.contrast:g}" if config.edges.enabled else "-no-edges"
    if config.uses_flow(mode) and config.flow != MotionConfig():
        name += "".join(f"-{k}{v:g}" for k, v in asdict(config.flow).items() if v != getattr(MotionConfig, k))
    adapt = config.adaptation(mode)
    if adapt.enabled:
        name += f"-adapt{adapt.steps}-lr{adapt.lr:g}-b{adapt.batch_size}"
    return name


def scores_of(root: Path, out: Path) -> dict:
    """J&F, J, F of the PNGs in ``out`` against ``root`` (DAVIS protocol), and J&F per sequence (its objects' mean)."""
    report = evaluate_davis(root, out, "val", workers=1)
    sequences: dict[str, list[float]] = {}
    for o in report.objects:
        sequences.setdefault(o.sequence, []).append((o.j_stats.mean + o.f_stats.mean) / 2)
    return {"jf": report.overall.jf_mean, "j": report.overall.j.mean, "f": report.overall.f.mean,
            "objects": report.overall.num_objects, "sequences": {k: float(np.mean(v)) for k, v in sequences.items()}}


def score(predictor: SegGPTPredictor, root: Path, out: Path, config: PropagationConfig) -> dict:
    run_tasks(predictor, list_davis(root), out, config, progress=False)
    return scores_of(root, out)


def step_agreement(fp32: SegGPTPredictor, bf16: SegGPTPredictor, root: Path, fp32_results: Path,
                   config: PropagationConfig) -> tuple[int, int]:
    """(equal pixels, total pixels): frame t segmented in fp32 and bf16 from the same one-frame prompt, frame t-1
    with the fp32 run's mask, for every frame t >= 1 of every video whose frame t-1 shows an object."""
    one_step = replace(config, context=0)
    equal = total = 0
    for task in list_davis(root):
        frames = sorted(task.frames_dir.glob("*.jpg"))
        for before, frame in zip(frames, frames[1:]):
            mask = np.array(Image.open(fp32_results / task.name / f"{before.stem}.png"))
            if not mask.any():
                continue
            images = [np.array(Image.open(f).convert("RGB")) for f in (before, frame)]
            labels = []
            for predictor in (fp32, bf16):
                session = VideoSession(predictor, images, one_step)
                session.add_mask(0, mask)
                labels.append(list(session.propagate())[1].labels)
            equal += int((labels[0] == labels[1]).sum())
            total += labels[0].size
    return equal, total


def one_step_j(predictor: SegGPTPredictor, seeds: range, video: SyntheticVideoConfig, step: int = 5) -> dict:
    """Mean object J at model resolution of (model, copy the previous true mask) over frames t = 1, 1 + step, ..."""
    size = predictor.half_size
    model, copy = [], []
    for seed in seeds:
        clip = SyntheticVideo(seed, video)
        for t in range(1, len(clip), step):
            (image_a, labels_a), (image_b, labels_b) = clip.frame(t - 1), clip.frame(t)
            if not labels_a.any():
                continue
            k = int(max(labels_a.max(), labels_b.max()))
            painted = predictor.segment([Prompt(image_a, labels_a)], [image_b], num_labels=k)[0]
            a, b, out = (resize_labels(x, size) for x in (labels_a, labels_b, painted))
            present = [obj for obj in range(1, k + 1) if (b == obj).any()]
            model += list(frame_scores(b, out, present)[0])
            copy += list(frame_scores(b, a, present)[0])
    return {"model": float(np.mean(model)), "copy_previous": float(np.mean(copy)), "objects_frames": len(model)}


#: Validation videos for the motion prior (look: seed offset from --tune-first-seed, count, config): the default look
#: (30 frames), a harder one with one object that moves faster, is camouflaged more often and is filmed by a faster
#: panning camera (25 frames), the real-looking one (``REAL_LOOK``: camouflage, blur, occluders, lighting, shake, thin
#: parts; 48 videos of 25 frames: sessions 7 and 8 used the first 16) and the same look in 50-frame videos, where a
#: lost object has time to stay lost.
MOTION_VALIDATION = {"default": (0, 6, SyntheticVideoConfig(num_frames=30)),
                     "hard": (200, 6, SyntheticVideoConfig(num_frames=25, num_objects=(1, 1), speed=(0.01, 0.03),
                                                           camouflage_prob=0.6, camera_speed=0.008)),
                     "real": (300, 48, REAL_LOOK),
                     "real-long": (400, 16, replace(REAL_LOOK, num_frames=50))}
#: Motion settings compared on them (``--tune-motion``).
MOTION_GRID = (("none", MotionConfig()), ("flow", MotionConfig()), ("flow", MotionConfig(blend=0.3)),
               ("flow", MotionConfig(recover=0.3)), ("flow", MotionConfig(prompt=True)))


def validation_look(args: argparse.Namespace, look: str) -> tuple[Path, range]:
    """The validation videos of ``look`` (``MOTION_VALIDATION``), written once under ``--out``, and their seeds."""
    offset, count, look_video = MOTION_VALIDATION[look]
    validation = args.out / f"validation-motion-{look}"
    tune_seeds = range(args.tune_first_seed + offset, args.tune_first_seed + offset + count)
    write_davis_dataset(validation, tune_seeds, look_video, progress=True)
    return validation, tune_seeds


def score_grid(tuning: dict, configs: list[PropagationConfig], fields: list[dict], fp32: SegGPTPredictor,
               looks: list[str], args: argparse.Namespace) -> None:
    """Score each of ``configs`` on the validation videos of each of ``looks`` into ``tuning[look]["rows"]`` (one row
    per setting, replaced on a rerun, with ``fields`` and the seconds a video, scoring included)."""
    for look in looks:
        validation, tune_seeds = validation_look(args, look)
        rows = tuning.setdefault(look, {"seeds": [tune_seeds[0], tune_seeds[-1]], "rows": []})
        for tuned, extra in zip(configs, fields):
            setting = folder_name("fp32", tuned, fp32.half_size)
            start = time.perf_counter()
            r = score(fp32, validation, validation / setting, tuned)
            r.update(extra, seconds_per_video=(time.perf_counter() - start) / len(tune_seeds))
            rows["rows"] = [x for x in rows["rows"] if x["setting"] != setting[5:]]
            rows["rows"].append({"setting": setting[5:], **r})
            print(f"validation ({look}): {setting[5:]}: J&F {r['jf'] * 100:.1f}, {r['seconds_per_video']:.1f} s/video "
                  f"(incl. scoring)", flush=True)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default=DEFAULT_MODEL, help="shipped model name or checkpoint path")
    p.add_argument("--out", type=Path, default=Path("runs/bench-small"))
    p.add_argument("--videos", type=int, default=10, help="held-out generated videos")
    p.add_argument("--frames", type=int, default=50, help="frames per generated video")
    p.add_argument("--first-seed", type=int, default=2_000_000)
    p.add_argument("--davis", type=Path, default=DAVIS_MINI, help="DAVIS-layout real test set")
    p.add_argument("--sets", default="generated,davis-mini", help="comma-separated: generated, davis-mini")
    p.add_argument("--mode", default="auto", choices=get_args(Mode))
    p.add_argument("--motion", default=PropagationConfig.motion, choices=get_args(Motion))
    p.add_argument("--motion-blend", type=float, default=MotionConfig.blend)
    p.add_argument("--context", type=int, default=None,
                   help="previous predictions as prompts (default: the pipeline's for the mode)")
    p.add_argument("--mirror", choices=("auto", "on", "off"), default="auto", help="test-time mirroring")
    p.add_argument("--edge-radius", type=float, default=EdgeConfig.radius, help="windows mode edge refinement (0: off)")
    p.add_argument("--edge-contrast", type=float, default=EdgeConfig.contrast)
    p.add_argument("--adapt-steps", type=int, default=None,
                   help="one-shot adaptation steps on each video's first mask (0: off; default: the pipeline's)")
    p.add_argument("--adapt-lr", type=float, default=AdaptConfig.lr, help="with --adapt-steps")
    p.add_argument("--adapt-batch", type=int, default=AdaptConfig.batch_size, help="with --adapt-steps")
    p.add_argument("--compare-mode", default=None, choices=get_args(Mode)[1:],
                   help="also score with this mode")
    p.add_argument("--compare-motion", default=None, choices=get_args(Motion)[1:], help="also score with this motion")
    p.add_argument("--compare-context", type=int, default=None, help="also score with this many previous predictions")
    p.add_argument("--tune-windows", action="store_true", help="score a grid of window geometries on validation videos")
    p.add_argument("--tune-motion", action="store_true", help="score motion settings on validation videos")
    p.add_argument("--tune-adapt", default=None, metavar="STEPS:LR[:BATCH],...",
                   help="score these adaptation settings (with the other settings as given) on the --motion-looks "
                        "validation videos, e.g. 0:1e-4,50:1e-4")
    p.add_argument("--tune-edges", default=None, metavar="RADIUS:CONTRAST,...",
                   help="score these edge refinements (with the other settings as given; radius 0: off) on the "
                        "--motion-looks validation videos, e.g. 0:20,2:20")
    p.add_argument("--tune-inference", default=None, metavar="CONTEXT:MIRROR,...",
                   help="score these prompt and painting settings (context size, test-time mirroring on/off; the "
                        "other settings as given) on the --motion-looks validation videos, e.g. 7:off,3:on")
    p.add_argument("--motion-looks", default=",".join(MOTION_VALIDATION),
                   help=f"comma-separated validation looks for --tune-motion: {', '.join(MOTION_VALIDATION)}")
    p.add_argument("--tune-first-seed", type=int, default=3_000_000)
    p.add_argument("--threads", type=int, default=None, help="torch and OpenCV threads (default: theirs)")
    p.add_argument("--skip-bf16", action="store_true")
    p.add_argument("--skip-one-step", action="store_true")
    args = p.parse_args(argv)
    if min(args.first_seed, args.tune_first_seed) < TRAIN_SEED_LIMIT:
        p.error(f"--first-seed and --tune-first-seed must be >= {TRAIN_SEED_LIMIT}: lower seeds may be trained on")
    looks = args.motion_looks.split(",")
    if not set(looks) <= set(MOTION_VALIDATION):
        p.error(f"--motion-looks: unknown look in {args.motion_looks!r}; use {', '.join(MOTION_VALIDATION)}")
    validation_span = max(offset + count for offset, count, _ in MOTION_VALIDATION.values())
    if abs(args.first_seed - args.tune_first_seed) < max(args.videos, validation_span):
        p.error("--first-seed and --tune-first-seed must give disjoint seed ranges")

    if args.threads is not None:
        import cv2
        import torch

        torch.set_num_threads(args.threads)
        cv2.setNumThreads(args.threads)
    fp32 = SegGPTPredictor.from_pretrained(args.model, device="cpu", dtype="fp32")
    half = fp32.half_size
    config = PropagationConfig(mode=args.mode, context=args.context, motion=args.motion,
                               mirror={"auto": None, "on": True, "off": False}[args.mirror],
                               flow=MotionConfig(blend=args.motion_blend),
                               edges=EdgeConfig(args.edge_radius, args.edge_contrast),
                               adapt=None if args.adapt_steps is None else AdaptConfig(args.adapt_steps, args.adapt_lr,
                                                                                       args.adapt_batch))
    video = SyntheticVideoConfig(num_frames=args.frames)
    json_path = args.out / "bench_small_model.json"
    results: dict = json.loads(json_path.read_text()) if json_path.is_file() else {}
    results.update({"model": str(args.model), "mode": config.resolved_mode(half),
                    "context": config.context_size(config.resolved_mode(half)),
                    "mirror": config.uses_mirror(config.resolved_mode(half)),
                    "motion": config.motion if config.uses_flow(config.resolved_mode(half)) else "none",
                    "flow": asdict(config.flow), "windows": asdict(config.windows), "edges": asdict(config.edges),
                    "adapt": asdict(config.adaptation(config.resolved_mode(half))),
                    "video_config": json.loads(json.dumps(asdict(video)))})

    if args.tune_windows:
        validation = args.out / "validation"
        tune_seeds = range(args.tune_first_seed, args.tune_first_seed + args.videos)
        write_davis_dataset(validation, tune_seeds, video, progress=True)
        results["window_tuning"] = {"seeds": [tune_seeds[0], tune_seeds[-1]], "grid": []}
        for margin in (1.25, 1.5, 2.0):
            for min_side in (0.05, 0.1, 0.2):
                tuned = replace(config, mode="windows", windows=WindowConfig(margin, min_side))
                r = score(fp32, validation, validation / folder_name("fp32", tuned, half), tuned)
                results["window_tuning"]["grid"].append({"margin": margin, "min_side": min_side, **r})
                print(f"validation: windows margin {margin:g}, min side {min_side:g}: J&F {r['jf'] * 100:.1f}",
                      flush=True)

    if args.tune_motion:
        results["motion_tuning"] = {}
        for look in looks:
            validation, tune_seeds = validation_look(args, look)
            flow_warp(list_davis(validation), validation / "flow-warp")
            rows = [{"setting": "flow warp", **scores_of(validation, validation / "flow-warp")}]
            for motion, flow in MOTION_GRID:
                tuned = replace(config, mode="windows", motion=motion, flow=flow)
                r = score(fp32, validation, validation / folder_name("fp32", tuned, half), tuned)
                rows.append({"setting": folder_name("fp32", tuned, half)[5:], **r})
            results["motion_tuning"][look] = {"seeds": [tune_seeds[0], tune_seeds[-1]], "rows": rows}
            for r in rows:
                print(f"validation ({look}): {r['setting']}: J&F {r['jf'] * 100:.1f}", flush=True)

    if args.tune_adapt:
        grid = [AdaptConfig(int(f[0]), float(f[1]), *(int(x) for x in f[2:]))
                for f in (item.split(":") for item in args.tune_adapt.split(","))]
        score_grid(results.setdefault("adapt_tuning", {}), [replace(config, adapt=a) for a in grid],
                   [asdict(a) for a in grid], fp32, looks, args)
    if args.tune_edges:
        grid = [EdgeConfig(*(float(x) for x in item.split(":"))) for item in args.tune_edges.split(",")]
        score_grid(results.setdefault("edge_tuning", {}), [replace(config, edges=e) for e in grid],
                   [asdict(e) for e in grid], fp32, looks, args)
    if args.tune_inference:
        fields = [{"context": int(c), "mirror": m == "on"}
                  for c, m in (item.split(":") for item in args.tune_inference.split(","))]
        grid = [replace(config, context=f["context"], mirror=f["mirror"]) for f in fields]
        score_grid(results.setdefault("inference_tuning", {}), grid, fields, fp32, looks, args)

    roots = {"generated": args.out / "generated", "davis-mini": args.davis}
    sets = {name: roots[name] for name in args.sets.split(",") if name}
    if "generated" in sets:
        seeds = range(args.first_seed, args.first_seed + args.videos)
        write_davis_dataset(sets["generated"], seeds, video, progress=True)
        results["held_out_seeds"] = [seeds[0], seeds[-1]]

    compare = replace(config, mode=args.compare_mode or config.mode, motion=args.compare_motion or config.motion,
                      context=args.compare_context if args.compare_context is not None else config.context)
    for name, root in sets.items():
        results[name] = {"fp32": score(fp32, root, args.out / name / folder_name("fp32", config, half), config),
                         "setting": folder_name("fp32", config, half)[5:]}
        print(f"{name}: fp32 J&F {results[name]['fp32']['jf'] * 100:.1f} ({folder_name('fp32', config, half)})",
              flush=True)
        if compare != config:
            results[name]["fp32_compare"] = score(fp32, root, args.out / name / folder_name("fp32", compare, half),
                                                  compare)
            results[name]["compare_setting"] = folder_name("fp32", compare, half)[5:]

    for name, root in sets.items():
        baseline = args.out / name / "repeat-first-mask"
        repeat_first_mask(list_davis(root), baseline)
        results[name]["repeat_first_mask"] = scores_of(root, baseline)
        flow_warp(list_davis(root), args.out / name / "flow-warp")
        results[name]["flow_warp"] = scores_of(root, args.out / name / "flow-warp")

    if not args.skip_bf16:
        bf16 = SegGPTPredictor.from_pretrained(args.model, device="cpu", dtype="bf16")
        equal = total = step_equal = step_total = 0
        for name, root in sets.items():
            a, b = (args.out / name / folder_name(precision, config, half) for precision in ("fp32", "bf16"))
            results[name]["bf16"] = score(bf16, root, b, config)
            e, t = pixel_agreement(a, b)
            results[name]["bf16_pixel_agreement"] = e / t
            equal, total = equal + e, total + t
            e, t = step_agreement(fp32, bf16, root, a, config)
            results[name]["bf16_step_agreement"] = e / t
            step_equal, step_total = step_equal + e, step_total + t
        results["bf16_pixel_agreement"] = equal / total
        results["bf16_step_agreement"] = step_equal / step_total

    if not args.skip_one_step:
        results["one_step_j"] = one_step_j(fp32, range(args.first_seed, args.first_seed + args.videos), video)

    text = json.dumps(results, indent=1) + "\n"
    atomic_write(args.out / "bench_small_model.json", lambda f: f.write(text.encode()))

    def pct(x: float) -> str:
        return f"{x * 100:.1f}"

    if "window_tuning" in results and args.tune_windows:
        print("\n| Window margin | min side | validation J&F |\n|---|---|---|")
        for r in results["window_tuning"]["grid"]:
            print(f"| {r['margin']:g} | {r['min_side']:g} | {pct(r['jf'])} |")
    if args.tune_motion:
        looks = list(results["motion_tuning"])
        print("\n| Setting | " + " | ".join(f"validation {look} J&F" for look in looks) + " |\n|---" * (1 + len(looks))
              + "|")
        for i, row in enumerate(results["motion_tuning"][looks[0]]["rows"]):
            cells = [pct(results["motion_tuning"][look]["rows"][i]["jf"]) for look in looks]
            print(f"| {row['setting']} | " + " | ".join(cells) + " |")
    print("\n| Set | J&F | J | F |\n|---|---|---|---|")
    for name in sets:
        r = results[name]
        label = f"generated held-out ({args.videos} videos, seeds {args.first_seed}..)" if name == "generated" else name
        rows = [(f"fp32, {r['setting']}", r["fp32"])]
        if "fp32_compare" in r:
            rows.append((f"fp32, {r['compare_setting']}", r["fp32_compare"]))
        rows += [("flow warp", r["flow_warp"]), ("repeat first-frame mask", r["repeat_first_mask"])]
        for what, x in rows:
            print(f"| {label}, {what} | {pct(x['jf'])} | {pct(x['j'])} | {pct(x['f'])} |")
    for name in sets:
        r = results[name]
        columns = [r["setting"]] + ([r["compare_setting"]] if "fp32_compare" in r else []) + \
            ["flow warp", "repeat first mask"]
        runs = [r["fp32"]] + ([r["fp32_compare"]] if "fp32_compare" in r else []) + \
            [r["flow_warp"], r["repeat_first_mask"]]
        print(f"\n{name} per sequence (J&F)\n| Sequence | " + " | ".join(columns) + " |\n" + "|---" * (1 + len(columns))
              + "|")
        for seq in r["fp32"]["sequences"]:
            print(f"| {seq} | " + " | ".join(pct(x["sequences"][seq]) for x in runs) + " |")
    if "one_step_j" in results and not args.skip_one_step:
        one = results["one_step_j"]
        print(f"\none step from the previous frame's true mask (J at model resolution, {one['objects_frames']} "
              f"object-frames): model {pct(one['model'])}, copying the mask {pct(one['copy_previous'])}")
    if not args.skip_bf16:
        per_set = ", ".join(f"{name} {pct(results[name]['bf16_pixel_agreement'])}% whole runs, "
                            f"{pct(results[name]['bf16_step_agreement'])}% per step, bf16 J&F "
                            f"{pct(results[name]['bf16']['jf'])}" for name in sets)
        print(f"\nbf16 vs fp32 pixel agreement, whole runs: {results['bf16_pixel_agreement'] * 100:.3f}%, per step: "
              f"{results['bf16_step_agreement'] * 100:.3f}% ({per_set})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
