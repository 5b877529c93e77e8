"""Write a DAVIS-layout dataset of synthetic videos (see ``vos.training.synthetic``).

    python scripts/make_synthetic.py --out /tmp/synth --videos 20 --seed 0 --frames 50 --size 480x854 [--late-objects]

Video i gets seed ``S + i`` and is named ``synthetic-<seed>``. Rerunning with the same arguments resumes.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from seggpt_core.errors import InputError  # noqa: E402
from vos.cli import arguments as types  # noqa: E402
from vos.training.synthetic import SyntheticVideoConfig, write_davis_dataset  # noqa: E402


def parse_size(text: str) -> tuple[int, int]:
    try:
        height, width = (int(part) for part in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"size {text!r} is not HxW, e.g. 480x854") from None
    return height, width


def parse_range(text: str) -> tuple[int, int]:
    try:
        low, _, high = text.partition("-")
        return int(low), int(high or low)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not N or MIN-MAX, e.g. 1-4") from None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="dataset root (created)")
    parser.add_argument("--videos", type=types.positive_int, default=10, help="number of videos")
    parser.add_argument("--seed", type=types.seed, default=0, help="seed of the first video; the others count up")
    parser.add_argument("--frames", type=types.positive_int, default=50, help="frames per video")
    parser.add_argument("--size", type=parse_size, default=(480, 854), help="HxW (default 480x854)")
    parser.add_argument("--objects", type=parse_range, default=(1, 4), help="objects per video, N or MIN-MAX")
    parser.add_argument("--late-objects", action="store_true",
                        help="let objects other than id 1 first appear after frame 0 (YouTube-VOS style)")
    parser.add_argument("--procedural", action="store_true",
                        help="procedural textures only (no scikit-image photos)")
    parser.add_argument("--split", type=types.file_name, default="val",
                        help="ImageSets/2017/<split>.txt to write (default val)")
    args = parser.parse_args(argv)
    try:
        config = SyntheticVideoConfig(size=args.size, num_frames=args.frames, num_objects=args.objects,
                                      late_entry_prob=0.5 if args.late_objects else 0.0,
                                      texture_source="procedural" if args.procedural else "mixed")
        names = write_davis_dataset(args.out, range(args.seed, args.seed + args.videos), config, split=args.split,
                                    progress=True)
    except InputError as err:
        print(f"make_synthetic: error: {err}", file=sys.stderr)
        return 2
    print(f"wrote {len(names)} videos x {args.frames} frames to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
