"""Dataset runs: many videos, resumable, split across processes, GPUs and machines.

A video whose output folder already holds every frame it must write is skipped, so an interrupted run picks up where
it stopped (a half-done video is redone from its first frame; propagation is deterministic, so its result is the
same as an uninterrupted run). Under torchrun each rank takes every WORLD_SIZE-th video and its own GPU; without
torchrun ``--shard i/n`` does the same by hand. Each process appends one JSON line per finished video to
``timing-<rank>.jsonl`` in the output folder.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from seggpt_core.predictor import SegGPTPredictor

from .datasets import VideoTask
from .masks import load_mask
from .pipeline import OutputSpec, VideoStats, run_video
from .config import PropagationConfig
from .writers import completed_frames

if TYPE_CHECKING:
    from seggpt_core.tuning import TunedPrompt


@dataclass(frozen=True)
class Worker:
    """Where this process sits in a (possibly distributed) run."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @classmethod
    def from_env(cls) -> Worker:
        """torchrun's RANK / WORLD_SIZE / LOCAL_RANK (a single process when they are absent)."""
        env = os.environ
        return cls(int(env.get("RANK", 0)), int(env.get("WORLD_SIZE", 1)), int(env.get("LOCAL_RANK", 0)))

    def device(self) -> str | None:
        """This rank's GPU under torchrun; None (the default device) otherwise."""
        import torch

        if self.world_size > 1 and torch.cuda.is_available():
            return f"cuda:{self.local_rank % torch.cuda.device_count()}"
        return None

    def share_cpu(self) -> None:
        """Give each of the local processes its share of the CPU threads (CPU-only distributed runs)."""
        import torch

        local = int(os.environ.get("LOCAL_WORLD_SIZE", 1))
        if local > 1:
            torch.set_num_threads(max(1, (os.cpu_count() or 1) // local))


def is_complete(task: VideoTask, out: Path) -> bool:
    """Whether every frame ``task`` must write is already in ``out/<video>``."""
    wanted = task.output_frames if task.output_frames is not None else set(task.frame_names)
    return set(wanted) <= completed_frames(out / task.name)


def prompt_masks(task: VideoTask) -> tuple[dict[int, np.ndarray], np.ndarray | None]:
    """Frame index -> the objects that annotation introduces (ids it repeats are dropped: YouTube-VOS merge rule),
    and the first annotation's palette (for the outputs)."""
    masks, palette = {}, None
    for frame in sorted(task.masks, key=task.frame_names.index):
        labels, pal = load_mask(task.masks[frame])
        palette = pal if palette is None else palette
        keep = np.isin(labels, task.new_objects[frame])
        masks[task.frame_names.index(frame)] = np.where(keep, labels, 0).astype(np.uint8)
    return masks, palette


def run_tasks(predictor: SegGPTPredictor, tasks: Sequence[VideoTask], out: Path, config: PropagationConfig, *,
              worker: Worker = Worker(), overwrite: bool = False, progress: bool = True,
              tuned: TunedPrompt | None = None, tuned_source: str = "tuned prompt") -> list[VideoStats]:
    """Propagate every task (this worker's share must already be selected) into ``out`` in DAVIS layout, forward
    from the first annotation (the benchmarks' protocol); ``tuned`` is a tuned prompt used in every video alongside
    its masks."""
    out.mkdir(parents=True, exist_ok=True)
    log = out / f"timing-{worker.rank}.jsonl"
    done = []
    for task in tasks:
        if not overwrite and is_complete(task, out):
            print(f"{task.name}: complete, skipped")
            continue
        masks, palette = prompt_masks(task)
        outputs = OutputSpec(masks=out, only_frames=task.output_frames)
        stats = run_video(predictor, task.frames_dir, masks, outputs, config, name=task.name, progress=progress,
                          palette=palette, tuned=tuned, tuned_source=tuned_source, direction="forward")
        with open(log, "a", encoding="utf-8") as f:
            f.write(json.dumps({"video": stats.name, "frames": stats.frames, "seconds": round(stats.seconds, 3),
                                "fps": round(stats.fps, 3), "rank": worker.rank}) + "\n")
        print(f"{stats.name}: {stats.frames} frames, {stats.fps:.2f} frames/s")
        done.append(stats)
    return done
