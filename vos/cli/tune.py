"""``seggpt-vos tune``: in-context tuning of a prompt on a few annotated images or frames of a video.

The annotated frames come as explicit ``--images``/``--masks`` pairs or as frame indices of a DAVIS or YouTube-VOS
sequence. Object ids are those of the masks; the prompt file remembers them, so ``propagate``/``segment``/
``run-davis --tuned-prompt`` paint the same ids. The run is checkpointed next to the output (``<out>.resume``) and
continues from there with ``--resume``.
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

from . import arguments as types
from .commands import add_model_args


def checkpoint_path(out: Path) -> Path:
    """Where the resumable state of a run writing ``out`` lives."""
    return out.with_name(out.name + ".resume")


def sequence_examples(frames_dir: Path, masks_dir: Path, indices: list[int]) -> list[tuple[Path, Path]]:
    """(image, mask) paths of frames ``indices`` (positions in the sequence's naturally sorted frames)."""
    from seggpt_core.errors import InputError

    from ..frame_folders import list_frames

    if not frames_dir.is_dir():
        raise InputError(f"{frames_dir}: frame folder does not exist; check the dataset root and --sequence")
    frames = list_frames(frames_dir)
    pairs = []
    for i in indices:
        if not 0 <= i < len(frames):
            raise InputError(f"{frames_dir}: frame index {i} is outside the sequence's {len(frames)} frames; pick "
                             f"--frames within 0..{len(frames) - 1}")
        mask = masks_dir / f"{frames[i].stem}.png"
        if not mask.is_file():
            raise InputError(f"{mask}: frame {i} has no annotation; pick annotated --frames")
        pairs.append((frames[i], mask))
    return pairs


def annotated_pairs(args: argparse.Namespace) -> list[tuple[Path, Path]]:
    from seggpt_core.errors import InputError

    if args.images is not None:
        if args.masks is None or len(args.images) != len(args.masks):
            n_masks = len(args.masks or [])
            raise InputError(f"{len(args.images)} --images but {n_masks} --masks; give one mask per image")
        return list(zip(args.images, args.masks))
    if args.masks is not None:
        raise InputError("--masks needs --images (one image per mask)")
    if args.sequence is None or not args.frames:
        raise InputError("--davis-root/--ytvos-root need --sequence NAME and --frames I [I ...]")
    if args.davis_root is not None:
        from ..datasets import DavisLayout

        davis = DavisLayout(args.davis_root)
        return sequence_examples(davis.frames(args.sequence), davis.annotations(args.sequence), args.frames)
    root = args.ytvos_root
    return sequence_examples(root / "JPEGImages" / args.sequence, root / "Annotations" / args.sequence, args.frames)


def load_examples(pairs: list[tuple[Path, Path]]):
    """Read annotated (image, mask) files -> (list of ``Prompt`` whose labels are slots, ``ObjectIds``): the slots
    number the sorted union of the masks' object ids, which the tuned prompt stores as its ``label_ids``."""
    from seggpt_core.errors import InputError
    from seggpt_core.predictor import Prompt

    from ..masks import ObjectIds, load_mask, object_ids_in
    from ..readers import read_image

    loaded = []
    for image_path, mask_path in pairs:
        image, (labels, _) = read_image(image_path), load_mask(mask_path)
        if image.shape[:2] != labels.shape:
            raise InputError(f"{mask_path}: mask is {labels.shape[1]}x{labels.shape[0]} but {image_path} is "
                             f"{image.shape[1]}x{image.shape[0]}; give each image its own mask")
        loaded.append((image, labels, mask_path))
    objects = ObjectIds(sorted({i for _, labels, _ in loaded for i in object_ids_in(labels)}))
    if not len(objects):
        raise InputError(f"{pairs[0][1]}: every mask is background; give masks with at least one object id > 0")
    return [Prompt(image, objects.to_slots(labels, source=str(path))) for image, labels, path in loaded], objects


def run_tune(args: argparse.Namespace) -> int:
    from ..locks import OutputLock
    from ..outputs import Destination, prepare_outputs

    prepare_outputs([Destination(args.out, "file", "--out")], inputs=[*(args.images or []), *(args.masks or [])])
    with OutputLock(args.out):
        return _tune(args)


def _tune(args: argparse.Namespace) -> int:
    """The tuning run itself, once ``--out`` is checked and locked."""
    from seggpt_core.errors import InputError
    from seggpt_core.tuning import TuningConfig, tune_prompt

    from .commands import load_predictor

    config = TuningConfig(steps=args.steps, lr=args.lr, batch_size=args.batch_size, seed=args.seed,
                          tune_target=args.tune_mask, augment=not args.no_augment, save_every=args.save_every)
    pairs = annotated_pairs(args)
    examples, objects = load_examples(pairs)
    if not 0 <= args.init < len(examples):
        raise InputError(f"--init {args.init} is not one of the {len(examples)} annotated images "
                         f"(0..{len(examples) - 1})")
    if args.dtype is None:  # the predictor's default, except fp16 (GPUs without bf16), whose gradients underflow
        import torch

        from seggpt_core.predictor import default_device, default_dtype

        device = torch.device(args.device) if args.device else default_device()
        args.dtype = "fp32" if default_dtype(device) == "fp16" else None
    predictor = load_predictor(args)
    ckpt = checkpoint_path(args.out)
    if args.resume and ckpt.is_file():
        print(f"resuming from {ckpt}")
    prompt = tune_prompt(predictor, examples, config, init=examples[args.init], label_ids=objects.ids,
                         checkpoint=ckpt, resume=args.resume)
    prompt = replace(prompt, info={**prompt.info, "sources": [[str(i), str(m)] for i, m in pairs]})
    prompt.save(args.out)
    ckpt.unlink(missing_ok=True)
    print(f"tuned {config.steps} steps on {len(examples)} image(s), objects {list(objects.ids)}, "
          f"{predictor.device} {predictor.dtype}: loss {prompt.info['first_loss']:.4f} -> "
          f"{prompt.info['final_loss']:.4f}; prompt -> {args.out}")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "tune", help="in-context tuning: learn a prompt for one video, object or dataset (model frozen)",
        description="Optimise the prompt (image half, optionally mask half) on a few annotated images with SegGPT's "
                    "training loss, keeping the model frozen. Use the result with --tuned-prompt in propagate, segment "
                    "and run-davis.")
    src = p.add_argument_group("annotated images (pairs, or frames of a dataset sequence)")
    src.add_argument("--images", nargs="+", type=Path, metavar="IMAGE", help="annotated images")
    src.add_argument("--masks", nargs="+", type=Path, metavar="PNG", help="their masks (palette or label PNGs), "
                     "in the same order")
    roots = src.add_mutually_exclusive_group()
    roots.add_argument("--davis-root", type=Path, metavar="DIR", help="DAVIS root (JPEGImages/480p, Annotations/480p)")
    roots.add_argument("--ytvos-root", type=Path, metavar="DIR", help="YouTube-VOS split folder (JPEGImages, "
                       "Annotations)")
    src.add_argument("--sequence", type=types.file_name, help="sequence (video) name under the dataset root")
    src.add_argument("--frames", nargs="+", type=types.non_negative_int, metavar="I",
                     help="indices of the annotated frames to tune on")
    t = p.add_argument_group("tuning")
    t.add_argument("--steps", type=types.positive_int, default=100, help="optimisation steps (default 100)")
    t.add_argument("--lr", type=types.positive_float, default=0.05,
                   help="Adam learning rate, cosine-decayed (default 0.05)")
    t.add_argument("--batch-size", type=types.positive_int, default=4, help="annotated images per step (default 4)")
    t.add_argument("--seed", type=types.seed, default=0, help="seed of the batch sampling and augmentation (default 0)")
    t.add_argument("--init", type=types.non_negative_int, default=0, metavar="I",
                   help="which annotated image the prompt starts from (default 0, the first)")
    t.add_argument("--tune-mask", action="store_true", help="also learn the mask half of the prompt")
    t.add_argument("--no-augment", action="store_true", help="no random crops and flips of the annotated images")
    t.add_argument("--save-every", type=types.positive_int, default=10, help="checkpoint period in steps (default 10)")
    t.add_argument("--resume", action="store_true", help="continue an interrupted run from <out>.resume")
    p.add_argument("--out", type=Path, required=True, metavar="PT", help="the prompt file to write")
    add_model_args(p)
    p.set_defaults(run=run_tune)
