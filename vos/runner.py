"""Dataset runs: many videos, resumable, split across processes, GPUs and machines.

A video whose output folder already holds every frame it must write is skipped, so an interrupted run picks up where
it stopped (a half-done video is redone from its first frame; propagation is deterministic, so its result is the
same as an uninterrupted run). Under torchrun each rank takes every WORLD_SIZE-th video and its own GPU; without
torchrun ``--shard i/n`` does the same by hand. Each process appends one JSON line per finished video to
``timing-<rank>.jsonl`` in the output folder.

Runs on one output folder cooperate: each video is claimed with a lock (:mod:`vos.locks`) before it is computed, so
a second run (another shell, another machine on a shared disk) skips the videos another live run is writing and takes
the next, and a killed run's claims lapse with it. The settings that change results (model, precision, propagation
config, tuned prompt) are recorded in ``run-settings.json``; a run with other settings on that folder is refused
rather than mixing two configurations, unless it is told to ``overwrite`` (then every video is redone).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from seggpt_core.atomic import atomic_write
from seggpt_core.errors import InputError
from seggpt_core.predictor import SegGPTPredictor

from .config import PropagationConfig
from .datasets import VideoTask
from .locks import OutputLock
from .masks import load_mask
from .outputs import check_not_inputs, check_video_name
from .pipeline import OutputSpec, VideoStats, run_video
from .writers import completed_frames

if TYPE_CHECKING:
    from seggpt_core.tuned_prompt import TunedPrompt


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


#: The record of the settings a results folder was computed with.
SETTINGS_FILE = "run-settings.json"


def run_settings(predictor: SegGPTPredictor, config: PropagationConfig, tuned: TunedPrompt | None,
                 extra: Mapping[str, object] = {}) -> dict:
    """What decides a run's results, as JSON values: the model (configuration and weights), precision, SegGPT type,
    propagation settings, the tuned prompt's content, and ``extra`` (settings of the task listing)."""
    from seggpt_core.tuned_prompt import weights_fingerprint

    prompt = None
    if tuned is not None:
        digest = hashlib.sha256(json.dumps(list(tuned.label_ids)).encode())
        for t in (tuned.image, tuned.target):
            digest.update(t.detach().float().cpu().contiguous().numpy().tobytes())
        prompt = digest.hexdigest()[:16]
    settings = {"model": predictor.model.config.to_dict(), "weights": weights_fingerprint(predictor.model),
                "dtype": predictor.dtype, "seg_type": predictor.seg_type, "propagation": asdict(config),
                "tuned_prompt": prompt, **extra}
    return json.loads(json.dumps(settings))  # tuples as lists, as read back


def record_settings(out: Path, settings: dict, overwrite: bool) -> None:
    """Write ``out/run-settings.json``, or check that the results already there were made with ``settings``."""
    path = out / SETTINGS_FILE
    if path.is_file() and not overwrite:
        try:
            recorded = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as err:
            raise InputError(f"{path}: unreadable ({err}); delete it if the results beside it are yours, or use "
                             "another --out") from None
        if recorded != settings:
            diff = ", ".join(sorted(k for k in {*recorded, *settings} if recorded.get(k) != settings.get(k)))
            raise InputError(f"{out}: holds results made with other settings ({diff} differ, see {path}); use "
                             "another --out, or --overwrite to redo every video with these settings")
        return
    text = json.dumps(settings, indent=1, sort_keys=True) + "\n"
    atomic_write(path, lambda f: f.write(text.encode()))


def run_tasks(predictor: SegGPTPredictor, tasks: Sequence[VideoTask], out: Path, config: PropagationConfig, *,
              worker: Worker = Worker(), overwrite: bool = False, progress: bool = True,
              tuned: TunedPrompt | None = None, tuned_source: str = "tuned prompt",
              settings: Mapping[str, object] = {}) -> list[VideoStats]:
    """Propagate every task (this worker's share must already be selected) into ``out`` in DAVIS layout, forward
    from the first annotation (the benchmarks' protocol); ``tuned`` is a tuned prompt used in every video alongside
    its masks; ``settings``: what else decided the tasks' prompts (recorded with the results). Videos another live
    run is writing are skipped."""
    out.mkdir(parents=True, exist_ok=True)
    for task in tasks:  # every video's folder stays inside ``out`` and is none of its inputs (--out DAVIS/Annotations)
        check_video_name(task.name)
        check_not_inputs([out / task.name], [task.frames_dir, *{p.parent for p in task.masks.values()}])
    record_settings(out, run_settings(predictor, config, tuned, settings), overwrite)
    log = out / f"timing-{worker.rank}.jsonl"
    done, busy = [], []
    for task in tasks:
        if not overwrite and is_complete(task, out):
            print(f"{task.name}: complete, skipped")
            continue
        lock = OutputLock(out / task.name)
        if not lock.acquire():
            print(f"{task.name}: being written by another run ({lock.holder()}), skipped")
            busy.append(task.name)
            continue
        try:
            if not overwrite and is_complete(task, out):  # finished by another run since we looked
                print(f"{task.name}: complete, skipped")
                continue
            masks, palette = prompt_masks(task)
            outputs = OutputSpec(masks=out, only_frames=task.output_frames)
            stats = run_video(predictor, task.frames_dir, masks, outputs, config, name=task.name, progress=progress,
                              palette=palette, tuned=tuned, tuned_source=tuned_source, direction="forward")
        finally:
            lock.release()
        with open(log, "a", encoding="utf-8") as f:
            f.write(json.dumps({"video": stats.name, "frames": stats.frames, "seconds": round(stats.seconds, 3),
                                "fps": round(stats.fps, 3), "rank": worker.rank}) + "\n")
        print(f"{stats.name}: {stats.frames} frames, {stats.fps:.2f} frames/s")
        done.append(stats)
    if busy:
        print(f"{len(busy)} video(s) were being written by another run ({', '.join(busy)}); rerun once it has "
              "finished to check they are complete")
    return done
