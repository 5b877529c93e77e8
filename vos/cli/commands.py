"""Subcommands over the Python API: ``segment`` (images), ``propagate`` (one video), ``run-davis`` / ``run-ytvos``
(datasets), ``demo``. Parsers only here; every ``run`` function imports what it needs when called."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_model_args(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("model")
    g.add_argument("--model", default=None,
                   help="weights: the shipped 'seggpt-vos-small' (default), a checkpoint file or folder "
                        "(official seggpt_vit_large.pth or HF model.safetensors), or a hub id (BAAI/seggpt-vit-large)")
    g.add_argument("--device", default=None, help="cpu, cuda, cuda:1, ... (default: cuda when available)")
    g.add_argument("--dtype", choices=("fp32", "bf16", "fp16"), default=None,
                   help="matmul precision (default: bf16 on GPUs and AMX CPUs, else fp32)")
    g.add_argument("--compile", action="store_true", help="torch.compile the model (slow first frame)")
    g.add_argument("--seg-type", choices=("instance", "semantic"), default="instance", help="SegGPT type token")


def add_propagation_args(parser: argparse.ArgumentParser) -> None:
    from typing import get_args

    from ..config import Mode, Motion, MotionConfig, WindowConfig

    g = parser.add_argument_group("propagation")
    g.add_argument("--context", type=int, default=7,
                   help="previous predictions used as prompts besides the annotated frames (default 7: with the "
                        "first frame, the paper's best 8)")
    g.add_argument("--mode", choices=get_args(Mode), default="auto",
                   help="joint: whole frames, all objects as colours in one pass (the paper); per-object: whole "
                        "frames, one pass per object; windows: one pass per object in a window around where it was "
                        "last seen; auto (default): windows for low-resolution models such as the shipped one, "
                        "else joint")
    g.add_argument("--window-margin", type=float, default=WindowConfig.margin,
                   help="windows mode: window side / the object's box side (default %(default)s)")
    g.add_argument("--window-min", type=float, default=WindowConfig.min_side,
                   help="windows mode: smallest window side / the frame's short side (default %(default)s)")
    g.add_argument("--motion", choices=get_args(Motion), default="none",
                   help="windows mode: flow places each object's window around its previous mask moved by optical "
                        "flow (OpenCV DIS); none (default): around the previous mask; auto: flow in windows mode")
    g.add_argument("--motion-blend", type=float, default=MotionConfig.blend,
                   help="with --motion flow: weight of the flow-warped mask against the painted scores (0: none; "
                        "default %(default)s)")
    g.add_argument("--upsample", choices=("nearest", "bilinear"), default="nearest",
                   help="how labels return to the frame size (nearest = official)")


def add_tuned_prompt_arg(parser: argparse.ArgumentParser, role: str) -> None:
    parser.add_argument("--prompt", type=Path, metavar="PT",
                        help=f"a tuned prompt ('seggpt-vos tune --out PT'), {role}")


def load_tuned_prompt(args: argparse.Namespace):
    """The ``--prompt`` file, or None."""
    if args.prompt is None:
        return None
    from seggpt_core.tuning import TunedPrompt

    return TunedPrompt.load(args.prompt)


def load_predictor(args: argparse.Namespace):
    from seggpt_core.checkpoint import DEFAULT_MODEL
    from seggpt_core.predictor import SegGPTPredictor

    return SegGPTPredictor.from_pretrained(args.model or DEFAULT_MODEL, device=args.device, dtype=args.dtype,
                                           compile=args.compile, seg_type=args.seg_type)


def propagation_config(args: argparse.Namespace):
    """The propagation settings of the command line (each config validates itself: a bad value is an InputError)."""
    from ..config import MotionConfig, PropagationConfig, WindowConfig

    return PropagationConfig(context=args.context, mode=args.mode, upsample=args.upsample,
                             windows=WindowConfig(args.window_margin, args.window_min), motion=args.motion,
                             flow=MotionConfig(blend=args.motion_blend))


# ------------------------------------------------------------------------------------------------------ segment
def run_segment(args: argparse.Namespace) -> int:
    from seggpt_core.errors import InputError
    from seggpt_core.predictor import Prompt
    from vos.masks import ObjectIds, load_mask
    from vos.readers import read_image
    from vos.writers import PalettePngWriter

    images, masks = args.prompt_image or [], args.prompt_mask or []
    if len(images) != len(masks):
        raise InputError(f"{len(images)} --prompt-image but {len(masks)} --prompt-mask; give one mask per prompt "
                         "image")
    tuned = load_tuned_prompt(args)
    if not images and tuned is None:
        raise InputError("no example given; pass --prompt-image IMAGE --prompt-mask MASK, or --prompt PT")
    # With a tuned prompt, labels are its slots (its object ids in order); without, the mask ids themselves.
    ids = ObjectIds(tuned.label_ids) if tuned is not None else None
    prompts, palette = [], None
    for image_path, mask_path in zip(images, masks):
        labels, pal = load_mask(mask_path)
        palette = palette if palette is not None else pal
        prompts.append(Prompt(read_image(image_path), labels if ids is None else
                              ids.to_slots(labels, source=f"{mask_path} (ids of --prompt {args.prompt})")))
    predictor = load_predictor(args)
    writer = PalettePngWriter(args.output, palette=palette)
    for path in args.input:
        image = read_image(path)
        labels = predictor.segment(prompts, [image], ensemble=args.ensemble, upsample=args.upsample,
                                   num_labels=len(ids) if ids is not None else None,
                                   tuned=[tuned] if tuned is not None else [])[0]
        writer.write(0, Path(path).stem, labels if ids is None else ids.to_ids(labels), image)
        print(f"{path} -> {args.output / (Path(path).stem + '.png')}")
    return 0


# ------------------------------------------------------------------------------------------------------ propagate
def keyframe_masks(args: argparse.Namespace) -> dict[int, str]:
    """Frame index -> mask file from ``--masks`` (frame 0) and ``--mask-at FRAME PNG``; one mask per frame."""
    from seggpt_core.errors import InputError

    masks = {0: args.masks} if args.masks is not None else {}
    for frame, path in args.mask_at or []:
        try:
            index = int(frame)
        except ValueError:
            raise InputError(f"{path}: --mask-at frame {frame!r} is not a frame index; give an integer, e.g. "
                             f"--mask-at 40 {path}") from None
        if index in masks:
            raise InputError(f"{path}: frame {index} already has a mask ({masks[index]}); give one mask per frame")
        masks[index] = path
    return masks


def run_propagate(args: argparse.Namespace) -> int:
    from ..pipeline import OutputSpec, run_video

    tuned = load_tuned_prompt(args)
    if args.masks is None and not args.mask_at and tuned is None:
        from seggpt_core.errors import InputError

        raise InputError("no example given; pass a mask (--masks PNG for frame 0, --mask-at FRAME PNG for any frame) "
                         "or a tuned prompt (--prompt PT)")
    masks = keyframe_masks(args)
    outputs = OutputSpec(masks=args.out, overlay=args.overlay, alpha=args.alpha, rle=args.rle, numpy=args.numpy)
    stats = run_video(load_predictor(args), args.input, masks, outputs, propagation_config(args), name=args.name,
                      tuned=tuned, tuned_source=str(args.prompt), direction=args.direction)
    where = [str(p) for p in (args.out and args.out / stats.name, args.overlay, args.alpha, args.rle, args.numpy) if p]
    print(f"{stats.name}: {stats.frames} frames in {stats.seconds:.1f} s ({stats.fps:.2f} frames/s) -> "
          f"{', '.join(where)}")
    return 0


# ------------------------------------------------------------------------------------------------------ datasets
def run_dataset(args: argparse.Namespace) -> int:
    from ..datasets import list_davis, list_youtube_vos, parse_shard, shard
    from ..runner import Worker, run_tasks

    if args.command == "run-davis":
        tasks = list_davis(args.root, split=args.split, late_objects=args.late_objects)
    else:
        tasks = list_youtube_vos(args.root, frames_root=args.frames_root)
    worker = Worker.from_env()
    if args.shard:
        index, count = parse_shard(args.shard)
        worker = Worker(index, count, worker.local_rank)
    mine = shard(tasks, worker.rank, worker.world_size)
    worker.share_cpu()
    if args.device is None:
        args.device = worker.device()
    print(f"rank {worker.rank}/{worker.world_size}: {len(mine)} of {len(tasks)} videos -> {args.out}")
    run_tasks(load_predictor(args), mine, args.out, propagation_config(args), worker=worker,
              overwrite=args.overwrite, tuned=load_tuned_prompt(args), tuned_source=str(args.prompt))
    return 0


# ------------------------------------------------------------------------------------------------------ demo
def run_demo_command(args: argparse.Namespace) -> int:
    from .demo import run_demo

    predictor = load_predictor(args)
    print(f"model {args.model or 'seggpt-vos-small (shipped)'} on {predictor.device}, {predictor.dtype}")
    config = propagation_config(args)
    mode = config.resolved_mode(predictor.half_size)
    print(f"prompts: the annotated frame + {config.context} previous predictions, {mode} mode")
    result = run_demo(predictor, args.out, seed=args.seed, config=config)
    print(f"video + ground truth : {result.data}")
    print(f"predicted masks      : {result.masks}")
    print(f"overlay video        : {result.overlay}")
    print(f"speed                : {result.stats.frames} frames in {result.stats.seconds:.1f} s "
          f"({result.stats.fps:.1f} frames/s)")
    print(f"J&F (DAVIS protocol) : {100 * result.jf:.1f}  (J {100 * result.j:.1f}, F {100 * result.f:.1f})")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("segment", help="segment images given in-context examples (image + mask pairs)",
                              description="Paint the labels of the prompt masks onto each input image.")
    p.add_argument("--prompt-image", action="append", metavar="IMAGE", help="an example image "
                   "(repeat for several examples)")
    p.add_argument("--prompt-mask", action="append", metavar="MASK",
                   help="its mask: palette or label PNG, 0 = background (repeat, one per --prompt-image)")
    add_tuned_prompt_arg(p, "used with the examples or instead of them")
    p.add_argument("--input", nargs="+", required=True, metavar="IMAGE", help="images to segment")
    p.add_argument("--output", type=Path, required=True, metavar="DIR", help="folder for <image name>.png masks")
    p.add_argument("--ensemble", choices=("feature", "spatial"), default="feature",
                   help="how several examples combine (default: feature ensemble, the paper's best)")
    p.add_argument("--upsample", choices=("nearest", "bilinear"), default="nearest")
    add_model_args(p)
    p.set_defaults(run=run_segment)

    p = subparsers.add_parser("propagate", help="track objects through one video from their first-frame masks",
                              description="Propagate masks through a video file, a frame folder or a camera stream.")
    p.add_argument("input", help="video file (mp4, mkv, avi, webm, mov) or folder of frames")
    p.add_argument("--masks", metavar="PNG", help="first-frame mask (palette or label PNG): --mask-at 0 PNG")
    p.add_argument("--mask-at", nargs=2, action="append", metavar=("FRAME", "PNG"),
                   help="a keyframe mask at any frame index (repeat for several): objects are tracked from there; "
                        "a mask that leaves tracked objects out keeps their prediction on that frame")
    p.add_argument("--direction", choices=("forward", "backward", "both"), default="both",
                   help="track after the keyframes (forward), before them (backward) or both (default); forward "
                        "from a frame-0 mask is the DAVIS protocol")
    p.add_argument("--out", type=Path, metavar="DIR", help="palette PNGs in DIR/<video>/<frame>.png")
    p.add_argument("--overlay", type=Path, metavar="MP4", help="H.264 video with the masks blended in")
    p.add_argument("--alpha", type=Path, metavar="DIR", help="per-object alpha mattes DIR/<video>/<id>/<frame>.png")
    p.add_argument("--rle", type=Path, metavar="JSON", help="COCO run-length-encoded masks of the whole video")
    p.add_argument("--numpy", type=Path, metavar="DIR", help="per-frame .npy label maps")
    p.add_argument("--name", help="video name for output folders (default: from the input path)")
    add_tuned_prompt_arg(p, "a permanent example from frame 0, with --masks or instead of them")
    add_model_args(p)
    add_propagation_args(p)
    p.set_defaults(run=run_propagate)

    p = subparsers.add_parser("demo", help="propagate, write and score a generated sample video (no data needed)",
                              description="Generate a short video with ground truth, track its objects with the "
                                          "shipped model, write masks and an overlay video, and report J&F.")
    p.add_argument("--out", type=Path, default=Path("seggpt-vos-demo"), metavar="DIR",
                   help="output folder (default ./seggpt-vos-demo)")
    p.add_argument("--seed", type=int, default=None, help="video seed (default: the held-out demo seed)")
    add_model_args(p)
    add_propagation_args(p)
    p.set_defaults(run=run_demo_command)

    for command, help_text in (("run-davis", "propagate every sequence of a DAVIS split (DAVIS result layout)"),
                               ("run-ytvos", "propagate every video of a YouTube-VOS split (submission layout)")):
        p = subparsers.add_parser(command, help=help_text, description=help_text + ". Finished videos are skipped "
                                  "(resume); under torchrun each rank takes its share of the videos.")
        if command == "run-davis":
            p.add_argument("--root", type=Path, required=True, help="DAVIS root (JPEGImages/, Annotations/, ImageSets/)")
            p.add_argument("--split", default="val", help="ImageSets/2017/<split>.txt (default val)")
            p.add_argument("--late-objects", action="store_true",
                           help="also prompt objects absent from frame 0 where they first appear")
        else:
            p.add_argument("--root", type=Path, required=True, help="split folder, e.g. YTVOS/valid")
            p.add_argument("--frames-root", type=Path, help="read frames from here instead (e.g. all_frames/...)")
        p.add_argument("--out", type=Path, required=True, metavar="DIR", help="results: DIR/<video>/<frame>.png")
        p.add_argument("--shard", metavar="i/n", help="process only shard i of n (without torchrun)")
        p.add_argument("--overwrite", action="store_true", help="redo videos that are already complete")
        add_tuned_prompt_arg(p, "a permanent example in every video, alongside its first-frame masks")
        add_model_args(p)
        add_propagation_args(p)
        p.set_defaults(run=run_dataset)
