"""Subcommands over the Python API: ``segment`` (images), ``propagate`` (one video), ``run-davis`` / ``run-ytvos``
(datasets), ``demo``. Parsers only here; every ``run`` function imports what it needs when called."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import get_args

from seggpt_core.adaptation import AdaptConfig

from ..config import (PAPER_CONTEXT, WINDOWS_ADAPT, WINDOWS_CONTEXT, Direction, EdgeConfig, Mode, Motion,
                      MotionConfig, PropagationConfig, WindowConfig)

from . import arguments as types

#: Where ``propagate`` writes its masks when no output flag is given.
DEFAULT_PROPAGATE_OUT = Path("seggpt-vos-out")


def add_model_args(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("model")
    g.add_argument("--model", default=None,
                   help="weights: the shipped 'seggpt-vos-small' (default), a checkpoint file or folder "
                        "(official seggpt_vit_large.pth or HF model.safetensors), or a hub id (BAAI/seggpt-vit-large)")
    g.add_argument("--device", type=types.device, default=None,
                   help="cpu, cuda, cuda:1, ... (default: cuda when available)")
    g.add_argument("--dtype", choices=("fp32", "bf16", "fp16"), default=None,
                   help="matmul precision (default: bf16 on CUDA GPUs that support it, else fp16; bf16 on CPUs with "
                        "AVX-512-bf16 or AMX; else fp32)")
    g.add_argument("--compile", action="store_true", help="torch.compile the model (slow first frame)")
    g.add_argument("--seg-type", choices=("instance", "semantic"), default="instance", help="SegGPT type token")


def add_propagation_args(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("propagation")
    g.add_argument("--context", type=types.context_size, default=None,
                   help=f"previous predictions used as prompts besides the annotated frames (default: "
                        f"{WINDOWS_CONTEXT} in windows mode; {PAPER_CONTEXT} in the whole-frame modes, with the first "
                        f"frame the paper's best 8)")
    g.add_argument("--mirror", choices=("auto", "on", "off"), default="auto",
                   help="test-time mirroring: average each painting with the painting of the task flipped left to "
                        "right, at twice the model's cost (auto: on in windows mode, off in the whole-frame modes)")
    g.add_argument("--mode", choices=get_args(Mode), default="auto",
                   help="joint: whole frames, all objects as colours in one pass (the paper); per-object: whole "
                        "frames, one pass per object; windows: one pass per object in a window around where it was "
                        "last seen; auto (default): windows for low-resolution models such as the shipped one, "
                        "else joint")
    g.add_argument("--window-margin", type=types.positive_float, default=WindowConfig.margin,
                   help="windows mode: window side / the object's box side (default %(default)s)")
    g.add_argument("--window-min", type=types.fraction, default=WindowConfig.min_side,
                   help="windows mode: smallest window side / the frame's short side (default %(default)s)")
    g.add_argument("--motion", choices=get_args(Motion), default=PropagationConfig.motion,
                   help="windows mode: flow places each object's window around its previous mask moved by optical "
                        "flow (OpenCV DIS); none: around the previous mask; auto: flow in windows mode (default "
                        "%(default)s)")
    g.add_argument("--motion-blend", type=types.probability, default=MotionConfig.blend,
                   help="with --motion flow: weight of the flow-warped mask against the painted scores (0: none; "
                        "default %(default)s)")
    g.add_argument("--motion-recover", type=types.probability, default=MotionConfig.recover,
                   help="with --motion flow: an object whose painted mask overlaps its flow-warped previous mask by "
                        "an IoU under this takes the warped mask (lost-object recovery; 0: never; default %(default)s)")
    g.add_argument("--edge-radius", type=types.edge_radius, default=EdgeConfig.radius,
                   help="windows mode: guided-filter each object's painted outline onto the frame's edges with this "
                        "radius in model pixels (0: off; default %(default)s)")
    g.add_argument("--edge-contrast", type=types.edge_contrast, default=EdgeConfig.contrast,
                   help="windows mode: frame edges weaker than about this many grey levels are smoothed over, "
                        "stronger ones pull the outline (default %(default)s)")
    g.add_argument("--adapt-steps", type=types.adapt_steps, default=None,
                   help="one-shot adaptation: fine-tune a copy of the model for this many steps on each pass's "
                        "keyframes (augmented, cut as the mode paints) before propagating; 0: off (default: "
                        f"{WINDOWS_ADAPT.steps} in windows mode, off in the whole-frame modes)")
    g.add_argument("--adapt-lr", type=types.positive_float, default=AdaptConfig.lr,
                   help="with --adapt-steps: learning rate of the adaptation (default %(default)g)")
    g.add_argument("--upsample", choices=("nearest", "bilinear"), default="nearest",
                   help="how labels return to the frame size (nearest = official; windows mode with edge "
                        "refinement on resizes bilinearly, as the filter needs)")


def add_tuned_prompt_arg(parser: argparse.ArgumentParser, role: str) -> None:
    parser.add_argument("--tuned-prompt", type=Path, metavar="PT",
                        help=f"a tuned prompt ('seggpt-vos tune --out PT'), {role}")


def load_tuned_prompt(args: argparse.Namespace):
    """The ``--tuned-prompt`` file, or None."""
    if args.tuned_prompt is None:
        return None
    from seggpt_core.tuned_prompt import TunedPrompt

    return TunedPrompt.load(args.tuned_prompt)


def add_output_args(parser: argparse.ArgumentParser) -> None:
    """Outputs of ``propagate``: label maps, and mattes that editors import (see README "Into your editor")."""
    from ..sequences import MatteContent

    g = parser.add_argument_group("outputs")
    g.add_argument("--out", type=Path, metavar="DIR", help="palette PNGs in DIR/<video>/<frame>.png (the default "
                   f"output, in {DEFAULT_PROPAGATE_OUT}/, when no other output is asked for)")
    g.add_argument("--overlay", type=Path, metavar="MP4", help="H.264 video with the masks drawn in")
    g.add_argument("--overlay-style", choices=("fill", "outline"), default="fill",
                   help="fill: objects tinted with their colour (default); outline: only their edges drawn")
    g.add_argument("--alpha", type=Path, metavar="DIR",
                   help="8-bit mattes (white = object), one sequence per object: "
                        "DIR/<video>/object_<id>/<video>_object_<id>.%%04d.png")
    g.add_argument("--alpha-combined", action="store_true",
                   help="also one sequence of all objects together (DIR/<video>/all/) in --alpha and --cutout")
    g.add_argument("--cutout", type=Path, metavar="DIR",
                   help="RGBA cut-outs (the frame, the matte as straight alpha), laid out as --alpha")
    g.add_argument("--alpha-video", type=Path, metavar="FILE",
                   help="one video of all objects' matte, codec by extension: .mov ProRes 4444 with alpha, "
                        ".webm VP9 with alpha, .mkv FFV1 lossless")
    g.add_argument("--alpha-video-content", choices=get_args(MatteContent), default="matte",
                   help="matte: the matte itself; cutout: the frame with the matte as its alpha (default matte)")
    g.add_argument("--exr", type=Path, metavar="DIR",
                   help="DIR/<video>/<video>.%%04d.exr: one half-float channel object_<id> per object, A = all")
    g.add_argument("--rle", type=Path, metavar="JSON", help="COCO run-length-encoded masks of the whole video")
    g.add_argument("--numpy", type=Path, metavar="DIR", help="per-frame .npy label maps")
    g.add_argument("--start-number", type=types.non_negative_int, default=0, metavar="N",
                   help="number of the first frame in sequences (default 0; editors use 1 or 1001)")
    g.add_argument("--fps", type=types.frame_rate, default=None, metavar="RATE",
                   help="frame rate of the outputs when the input has none (frame folders), e.g. 25 or 30000/1001 "
                        "(default 24); video inputs keep their own exact rate")
    g.add_argument("--fill-holes", type=types.non_negative_int, default=0, metavar="N",
                   help="clean-up: fill holes smaller than N pixels inside an object")
    g.add_argument("--min-area", type=types.non_negative_int, default=0, metavar="N",
                   help="clean-up: drop pieces of an object smaller than N pixels")
    g.add_argument("--grow", type=types.grow_pixels, default=0, metavar="N", help="clean-up: grow objects by N pixels "
                                                                    "(negative shrinks)")
    g.add_argument("--feather", type=types.morphology_pixels, default=0, metavar="N",
                   help="soft edge N pixels wide on the alpha outputs (label outputs stay hard)")
    g.add_argument("--overwrite", action="store_true",
                   help="replace existing sequences and alpha video (else a non-empty output folder is an error)")


def output_spec(args: argparse.Namespace):
    """The ``OutputSpec`` of the output flags (bad values raise ``InputError``)."""
    from ..mattes import MatteCleanup
    from ..pipeline import OutputSpec

    cleanup = MatteCleanup(fill_holes=args.fill_holes, min_area=args.min_area, grow=args.grow, feather=args.feather)
    return OutputSpec(masks=args.out, overlay=args.overlay, overlay_style=args.overlay_style, alpha=args.alpha,
                      alpha_combined=args.alpha_combined, cutout=args.cutout, alpha_video=args.alpha_video,
                      alpha_video_content=args.alpha_video_content, exr=args.exr, rle=args.rle, numpy=args.numpy,
                      start_number=args.start_number, fps=args.fps, cleanup=cleanup, overwrite=args.overwrite)


def load_predictor(args: argparse.Namespace):
    from seggpt_core.checkpoint import DEFAULT_MODEL
    from seggpt_core.predictor import SegGPTPredictor

    return SegGPTPredictor.from_pretrained(args.model or DEFAULT_MODEL, device=args.device, dtype=args.dtype,
                                           compile=args.compile, seg_type=args.seg_type)


def propagation_config(args: argparse.Namespace):
    """The propagation settings of the command line (each config validates itself: a bad value is an InputError)."""
    return PropagationConfig(context=args.context, mode=args.mode, upsample=args.upsample,
                             mirror={"auto": None, "on": True, "off": False}[args.mirror],
                             windows=WindowConfig(args.window_margin, args.window_min), motion=args.motion,
                             flow=MotionConfig(blend=args.motion_blend, recover=args.motion_recover),
                             edges=EdgeConfig(args.edge_radius, args.edge_contrast),
                             adapt=None if args.adapt_steps is None else AdaptConfig(args.adapt_steps, args.adapt_lr))


# ------------------------------------------------------------------------------------------------------ segment
def run_segment(args: argparse.Namespace) -> int:
    from seggpt_core.errors import InputError
    from seggpt_core.predictor import Prompt
    from vos.masks import ObjectIds, load_mask
    from vos.readers import read_image
    from vos.writers import PalettePngWriter

    from ..outputs import Destination, prepare_outputs

    prepare_outputs([Destination(args.output, "folder", "--output")])
    check_segment_targets(args)
    images, masks = args.prompt_image or [], args.prompt_mask or []
    if len(images) != len(masks):
        raise InputError(f"{len(images)} --prompt-image but {len(masks)} --prompt-mask; give one mask per prompt "
                         "image")
    tuned = load_tuned_prompt(args)
    if not images and tuned is None:
        raise InputError("no example given; pass --prompt-image IMAGE --prompt-mask MASK, or --tuned-prompt PT")
    # With a tuned prompt, labels are its slots (its object ids in order); without, the mask ids themselves.
    ids = ObjectIds(tuned.label_ids) if tuned is not None else None
    prompts, palette = [], None
    for image_path, mask_path in zip(images, masks):
        labels, pal = load_mask(mask_path)
        palette = palette if palette is not None else pal
        prompts.append(Prompt(read_image(image_path), labels if ids is None else
                              ids.to_slots(labels, source=f"{mask_path} (ids of --tuned-prompt {args.tuned_prompt})")))
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


def check_segment_targets(args: argparse.Namespace) -> None:
    """Each input gets its own ``<output>/<stem>.png``, which overwrites no input: refuse clashing names."""
    from seggpt_core.errors import InputError

    from ..outputs import check_not_inputs

    by_target: dict[Path, str] = {}
    for path in args.input:
        target = (args.output / f"{Path(path).stem}.png").resolve()
        if target in by_target:
            raise InputError(f"{by_target[target]} and {path} would both be written to {target}; segment them into "
                             "different --output folders or rename one")
        by_target[target] = path
    check_not_inputs(by_target, [*args.input, *(args.prompt_image or []), *(args.prompt_mask or [])])


# ------------------------------------------------------------------------------------------------------ propagate
def keyframe_masks(args: argparse.Namespace) -> dict[int, str]:
    """Frame index -> mask file from ``--masks`` (frame 0) and ``--mask-at FRAME PNG``; one mask per frame."""
    from seggpt_core.errors import InputError

    masks = {0: args.masks} if args.masks is not None else {}
    for index, path in args.mask_at or []:
        if index in masks:
            raise InputError(f"{path}: frame {index} already has a mask ({masks[index]}); give one mask per frame")
        masks[index] = path
    return masks


def run_propagate(args: argparse.Namespace) -> int:
    from ..outputs import claim_video, prepare_outputs, spec_destinations
    from ..pipeline import run_video
    from ..readers import open_source

    if not any((args.out, args.overlay, args.alpha, args.cutout, args.alpha_video, args.exr, args.rle, args.numpy)):
        args.out = DEFAULT_PROPAGATE_OUT
        print(f"no output flag given: writing masks to {args.out}/<video name>/ (choose with --out DIR)")
    outputs = output_spec(args)
    destinations = spec_destinations(outputs)
    inputs = [p for p in (args.input, args.masks, args.tuned_prompt, *(p for _, p in args.mask_at or []))
              if p is not None]
    prepare_outputs(destinations, inputs=inputs)
    tuned = load_tuned_prompt(args)
    if args.masks is None and not args.mask_at and tuned is None:
        from seggpt_core.errors import InputError

        raise InputError("no example given; pass a mask (--masks PNG for frame 0, --mask-at FRAME PNG for any frame) "
                         "or a tuned prompt (--tuned-prompt PT)")
    masks = keyframe_masks(args)
    source = open_source(args.input, name=args.name)
    with claim_video(destinations, source.name, inputs=inputs):
        stats = run_video(load_predictor(args), source, masks, outputs, propagation_config(args), tuned=tuned,
                          tuned_source=str(args.tuned_prompt), direction=args.direction)
    print(f"{stats.name}: {stats.frames} frames in {stats.seconds:.1f} s ({stats.fps:.2f} frames/s) -> "
          f"{', '.join(outputs.destinations(stats.name))}")
    return 0


# ------------------------------------------------------------------------------------------------------ datasets
def run_dataset(args: argparse.Namespace) -> int:
    from ..datasets import list_davis, list_youtube_vos, parse_shard, shard
    from ..outputs import Destination, prepare_outputs
    from ..runner import Worker, run_tasks

    prepare_outputs([Destination(args.out, "folder", "--out")])
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
              overwrite=args.overwrite, tuned=load_tuned_prompt(args), tuned_source=str(args.tuned_prompt),
              settings=task_settings(args))
    return 0


def task_settings(args: argparse.Namespace) -> dict:
    """What else decides a dataset run's results besides the model and propagation settings (recorded with them)."""
    if args.command == "run-davis":
        return {"late_objects": args.late_objects}
    return {"frames_root": str(args.frames_root) if args.frames_root else None}


# ------------------------------------------------------------------------------------------------------ demo
def run_demo_command(args: argparse.Namespace) -> int:
    from ..locks import OutputLock
    from ..outputs import Destination, prepare_outputs

    prepare_outputs([Destination(args.out, "folder", "--out")])
    with OutputLock(args.out):
        return _demo(args)


def _demo(args: argparse.Namespace) -> int:
    """The demo itself, once ``--out`` is checked and locked."""
    from .demo import run_demo

    predictor = load_predictor(args)
    print(f"model {args.model or 'seggpt-vos-small (shipped)'} on {predictor.device}, {predictor.dtype}")
    config = propagation_config(args)
    mode = config.resolved_mode(predictor.half_size)
    adapt = config.adaptation(mode)
    print(f"prompts: the annotated frame + {config.context_size(mode)} previous predictions, {mode} mode"
          + (", mirrored" if config.uses_mirror(mode) else "")
          + (f", model adapted to the annotated frame ({adapt.steps} steps)" if adapt.enabled else ""))
    result = run_demo(predictor, args.out, seed=args.seed, config=config)
    print(f"video + ground truth : {result.data}")
    print(f"predicted masks      : {result.masks}")
    print(f"overlay video        : {result.overlay}")
    print(f"speed                : {result.stats.frames} frames in {result.stats.seconds:.1f} s "
          f"({result.stats.fps:.1f} frames/s)")
    print(f"J&F (DAVIS protocol) : {100 * result.jf:.1f}  (J {100 * result.j:.1f}, F {100 * result.f:.1f}); "
          f"repeating the first mask: {100 * result.baseline_jf:.1f}")
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
    p.add_argument("--upsample", choices=("nearest", "bilinear"), default="nearest",
                   help="how labels return to the image size (nearest = official)")
    add_model_args(p)
    p.set_defaults(run=run_segment)

    p = subparsers.add_parser("propagate", help="track objects through one video from their first-frame masks",
                              description="Propagate masks through a video file, a frame folder or a camera stream.")
    p.add_argument("input", help="video file (mp4, mkv, avi, webm, mov) or folder of frames")
    p.add_argument("--masks", metavar="PNG", help="first-frame mask (palette or label PNG): --mask-at 0 PNG")
    p.add_argument("--mask-at", nargs=2, action=types.FrameAndPath, metavar=("FRAME", "PNG"),
                   help="a keyframe mask at any frame index (repeat for several): objects are tracked from there; "
                        "a mask that leaves tracked objects out keeps their prediction on that frame")
    p.add_argument("--direction", choices=get_args(Direction), default="both",
                   help="track after the keyframes (forward), before them (backward) or both (default); forward "
                        "from a frame-0 mask is the DAVIS protocol")
    add_output_args(p)
    p.add_argument("--name", type=types.file_name, help="video name for output folders (default: from the input path)")
    add_tuned_prompt_arg(p, "a permanent example from frame 0, with --masks or instead of them")
    add_model_args(p)
    add_propagation_args(p)
    p.set_defaults(run=run_propagate)

    p = subparsers.add_parser("demo", help="propagate, write and score a generated sample video (no data needed)",
                              description="Generate a short video with ground truth, track its objects with the "
                                          "shipped model, write masks and an overlay video, and report J&F.")
    p.add_argument("--out", type=Path, default=Path("seggpt-vos-demo"), metavar="DIR",
                   help="output folder (default ./seggpt-vos-demo)")
    p.add_argument("--seed", type=types.seed, default=None, help="video seed (default: the held-out demo seed)")
    add_model_args(p)
    add_propagation_args(p)
    p.set_defaults(run=run_demo_command)

    for command, help_text in (("run-davis", "propagate every sequence of a DAVIS split (DAVIS result layout)"),
                               ("run-ytvos", "propagate every video of a YouTube-VOS split (submission layout)")):
        p = subparsers.add_parser(command, help=help_text, description=help_text + ". Finished videos are skipped "
                                  "(resume); under torchrun each rank takes its share of the videos.")
        if command == "run-davis":
            p.add_argument("--root", type=Path, required=True, help="DAVIS root (JPEGImages/, Annotations/, ImageSets/)")
            p.add_argument("--split", type=types.file_name, default="val",
                           help="ImageSets/2017/<split>.txt (default val)")
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
