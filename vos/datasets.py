"""Dataset listing (DAVIS, YouTube-VOS) as one small task per video, and sharding across processes.

A ``VideoTask`` says where a video's frames are, which annotation PNGs are prompts and which of their objects each
one introduces, and which frames must be written. Layouts (metrics.md §9):

- DAVIS: ``ImageSets/<year>/<split>.txt``, ``JPEGImages/<res>/<seq>/*.jpg``, ``Annotations/<res>/<seq>/*.png``. The
  semi-supervised protocol prompts with the first frame's mask only; ``late_objects=True`` also prompts each object
  that is absent from frame 0 at the first frame where it appears (YouTube-VOS style, for dense late-object sets).
- YouTube-VOS: ``<split>/JPEGImages/<vid>``, ``<split>/Annotations/<vid>/*.png`` (a PNG only where an object first
  appears), ``<split>/meta.json`` (the frames to write). A later PNG introduces new objects, which are merged into the
  running prediction; any object it repeats is ignored, as in XMem/Cutie's YouTube-VOS loaders.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from seggpt_core.errors import InputError

from .frame_folders import list_frames, natural_key
from .masks import load_mask, object_ids_in


@dataclass(frozen=True)
class DavisLayout:
    """Where things are in a DAVIS root: ``ImageSets/<year>/<split>.txt``, ``JPEGImages/<resolution>/<seq>/``,
    ``Annotations/<resolution>/<seq>/``. The one place in ``vos`` that spells this layout (``eval`` has its own)."""

    root: Path
    resolution: str = "480p"
    year: str = "2017"

    def frames(self, sequence: str = "") -> Path:
        """A sequence's frame folder (the folder of all sequences when ``sequence`` is empty)."""
        return self.root / "JPEGImages" / self.resolution / sequence

    def annotations(self, sequence: str = "") -> Path:
        """A sequence's annotation folder (the folder of all sequences when ``sequence`` is empty)."""
        return self.root / "Annotations" / self.resolution / sequence

    def split_file(self, split: str) -> Path:
        return self.root / "ImageSets" / self.year / f"{split}.txt"


@dataclass(frozen=True)
class VideoTask:
    """One video to segment.

    ``frame_names``: the frames in order (file stems, natural sort); ``masks``: frame name -> annotation PNG used as a
    prompt; ``new_objects``: frame name -> ids that this PNG introduces (any other id in it must not be taken from
    it); ``output_frames``: frame names to write (None = every frame).
    """

    name: str
    frames_dir: Path
    frame_names: tuple[str, ...] = field(repr=False)
    masks: dict[str, Path]
    new_objects: dict[str, tuple[int, ...]]
    output_frames: frozenset[str] | None = None

    @property
    def first_frame(self) -> str:
        """The first prompted frame (where tracking starts)."""
        return min(self.masks, key=self.frame_names.index)


def _frame_names(folder: Path) -> tuple[str, ...]:
    if not folder.is_dir():
        raise InputError(f"{folder}: frame folder does not exist; check the dataset root")
    names = [p.stem for p in list_frames(folder)]
    if not names:
        raise InputError(f"{folder}: no frames; check the dataset root")
    return tuple(names)


def _pngs(folder: Path) -> list[Path]:
    if not folder.is_dir():
        raise InputError(f"{folder}: annotation folder does not exist; check the dataset root")
    return sorted(folder.glob("*.png"), key=lambda p: natural_key(p.name))


def _first_appearances(pngs: Sequence[Path], *, first_only: bool) -> tuple[dict[str, Path], dict[str, tuple]]:
    """Prompt PNGs and the ids each introduces, walking ``pngs`` in frame order (255 = void is never an object)."""
    masks: dict[str, Path] = {}
    new_objects: dict[str, tuple[int, ...]] = {}
    seen: set[int] = set()
    for png in pngs[:1] if first_only else pngs:
        labels, _ = load_mask(png)
        new = [i for i in object_ids_in(labels) if i not in seen]
        if new:
            masks[png.stem] = png
            new_objects[png.stem] = tuple(new)
            seen.update(new)
    if not masks:
        where = pngs[0] if pngs else "annotation folder"
        raise InputError(f"{where}: the first annotation has no object; give a mask with at least one object id > 0")
    return masks, new_objects


def _check_mask_frames(name: str, pngs: Sequence[Path], frame_names: Sequence[str]) -> None:
    known = set(frame_names)
    for png in pngs:
        if png.stem not in known:
            raise InputError(f"{png}: annotation for frame {png.stem!r} but video {name} has no such frame (frames "
                             f"{frame_names[0]}..{frame_names[-1]}); remove the PNG or add the frame")


def list_davis(root: str | Path, *, split: str = "val", year: str = "2017", resolution: str = "480p",
               late_objects: bool = False) -> list[VideoTask]:
    """The sequences of ``ImageSets/<year>/<split>.txt`` under a DAVIS root, in the file's order."""
    layout = DavisLayout(Path(root), resolution, year)
    listing = layout.split_file(split)
    if not listing.is_file():
        raise InputError(f"{listing}: DAVIS split file not found; check --davis root and the split name")
    tasks = []
    for seq in (line.split()[0] for line in listing.read_text().splitlines() if line.strip()):
        frames_dir = layout.frames(seq)
        frame_names = _frame_names(frames_dir)
        pngs = _pngs(layout.annotations(seq))
        _check_mask_frames(seq, pngs, frame_names)
        if not pngs or pngs[0].stem != frame_names[0]:
            raise InputError(f"{layout.annotations(seq)}: no mask for the first frame "
                             f"{frame_names[0]}; DAVIS needs {frame_names[0]}.png")
        masks, new_objects = _first_appearances(pngs, first_only=not late_objects)
        tasks.append(VideoTask(seq, frames_dir, frame_names, masks, new_objects))
    return tasks


def list_youtube_vos(split_dir: str | Path, *, frames_root: str | Path | None = None) -> list[VideoTask]:
    """The videos of a YouTube-VOS split folder (``valid/``, ``test/``, or ``train/`` for local scoring).

    ``frames_root``: where the frames are read from, e.g. ``all_frames/valid_all_frames/JPEGImages`` to propagate
    through every 30 fps frame; outputs are still only the meta.json frames (all frames of ``JPEGImages`` when there
    is no meta.json).
    """
    split_dir = Path(split_dir)
    annotations = split_dir / "Annotations"
    if not annotations.is_dir():
        raise InputError(f"{annotations}: YouTube-VOS Annotations folder not found; give the split folder (e.g. "
                         "<root>/valid)")
    frames_root = Path(frames_root) if frames_root is not None else split_dir / "JPEGImages"
    required = _meta_frames(split_dir / "meta.json")
    tasks = []
    for video_dir in sorted(p for p in annotations.iterdir() if p.is_dir()):
        vid = video_dir.name
        frame_names = _frame_names(frames_root / vid)
        pngs = _pngs(video_dir)
        _check_mask_frames(vid, pngs, frame_names)
        masks, new_objects = _first_appearances(pngs, first_only=False)
        if required is not None:
            output = required.get(vid)
            if output is None:
                raise InputError(f"{split_dir / 'meta.json'}: no entry for video {vid}; use the meta.json of this "
                                 "split")
        else:
            output = frozenset(_frame_names(split_dir / "JPEGImages" / vid))
        if output - set(frame_names):
            missing = min(output - set(frame_names), key=natural_key)
            raise InputError(f"{frames_root / vid}: frame {missing} must be written but is not among the frames; "
                             "check --frames-root")
        tasks.append(VideoTask(vid, frames_root / vid, frame_names, masks, new_objects, output))
    return tasks


def _meta_frames(meta: Path) -> dict[str, frozenset[str]] | None:
    """Per video, the union of its objects' ``frames`` in a YouTube-VOS meta.json (None if there is no meta.json)."""
    if not meta.is_file():
        return None
    try:
        videos = json.loads(meta.read_text())["videos"]
        return {vid: frozenset(f for obj in info["objects"].values() for f in obj["frames"])
                for vid, info in videos.items()}
    except (ValueError, KeyError, TypeError, AttributeError) as error:
        raise InputError(f"{meta}: not a YouTube-VOS meta.json ({error!r}); use the file shipped with the "
                         "split") from None


def parse_shard(text: str) -> tuple[int, int]:
    """``"i/n"`` (0-based shard i of n) as (i, n)."""
    try:
        index, count = (int(x) for x in text.split("/"))
    except ValueError:
        raise InputError(f"--shard {text!r}: write it as i/n, e.g. 0/4") from None
    _check_shard(index, count)
    return index, count


def _check_shard(index: int, count: int) -> None:
    if count < 1 or not 0 <= index < count:
        raise InputError(f"shard {index}/{count}: need 0 <= i < n; e.g. --shard 0/4")


def shard(tasks: Sequence[VideoTask], index: int, count: int) -> list[VideoTask]:
    """Shard ``index`` of ``count`` of ``tasks``: every count-th task, starting at ``index`` (under torchrun, the
    rank and world size of ``vos.runner.Worker.from_env()``). Every shard is deterministic and together they cover
    each task exactly once.
    """
    _check_shard(index, count)
    return list(tasks[index::count])
