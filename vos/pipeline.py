"""One video end to end: session -> writers, with progress and timing. Shared by the CLI, the dataset runners and
the demo, so all of them write the same outputs the same way."""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from tqdm.auto import tqdm

from seggpt_core.predictor import SegGPTPredictor

from .readers import FrameSource
from .config import Direction, PropagationConfig
from .session import VideoSession
from .writers import (AlphaMatteWriter, AsyncWriter, CocoRleWriter, FrameWriter, NumpyWriter, OverlayVideoWriter,
                      PalettePngWriter)

if TYPE_CHECKING:
    from seggpt_core.tuning import TunedPrompt


@dataclass(frozen=True)
class OutputSpec:
    """What to write for a video. Folder outputs get a per-video sub-folder (DAVIS layout ``OUT/<video>/``)."""

    masks: Path | None = None  #: palette PNGs: ``masks/<video>/<frame>.png``
    overlay: Path | None = None  #: H.264 mp4 of the frames with the masks blended in
    alpha: Path | None = None  #: per-object 0/255 mattes: ``alpha/<video>/<object id>/<frame>.png``
    rle: Path | None = None  #: COCO RLE JSON for the whole video
    numpy: Path | None = None  #: ``numpy/<video>/<frame>.npy`` label maps
    only_frames: frozenset[str] | None = None  #: write only these frame names (YouTube-VOS); None = all

    def writers(self, video: str, palette: np.ndarray | None, fps: float | None) -> list[FrameWriter]:
        out: list[FrameWriter] = []
        if self.masks is not None:
            out.append(PalettePngWriter(self.masks / video, palette=palette, only_frames=self.only_frames))
        if self.overlay is not None:
            out.append(OverlayVideoWriter(self.overlay, fps=fps or 24.0, palette=palette))
        if self.alpha is not None:
            out.append(AlphaMatteWriter(self.alpha / video))
        if self.rle is not None:
            out.append(CocoRleWriter(self.rle, video=video))
        if self.numpy is not None:
            out.append(NumpyWriter(self.numpy / video))
        return out


@dataclass(frozen=True)
class VideoStats:
    name: str
    frames: int
    seconds: float

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds else float("nan")


def run_video(predictor: SegGPTPredictor, video: str | Path | Iterable | FrameSource,
              masks: Mapping[int, str | Path | np.ndarray], outputs: OutputSpec,
              config: PropagationConfig = PropagationConfig(), *, name: str | None = None,
              palette: np.ndarray | None = None, progress: bool = True, tuned: TunedPrompt | None = None,
              tuned_source: str = "tuned prompt", direction: Direction = "both") -> VideoStats:
    """Propagate ``masks`` (keyframe index -> mask) through ``video`` in ``direction`` and write ``outputs``; returns
    timing.

    ``palette``: colours of the output PNGs (default: the first mask PNG's own palette, else DAVIS colours).
    ``tuned``: a tuned prompt used as a permanent example alongside the masks (or instead: ``masks`` may be empty).

    Outputs are written in frame order: while frames are computed when that is already the order (forward from frame
    0, and every live stream), else from the session's result store once propagation is done. Per-frame files appear
    atomically; whole-video files (mp4, JSON) only when the video completes.
    """
    session = VideoSession(predictor, video, config, name=name)
    if tuned is not None:
        session.add_prompt(tuned, source=tuned_source)
    for index, mask in sorted(masks.items()):
        session.add_mask(index, mask)
    plan = session.plan(direction) if session.source.num_frames is not None else None
    streaming = plan is None or plan == list(range(len(plan)))
    start = time.perf_counter()
    frames = 0
    bar = tqdm(total=None if plan is None else len(plan), desc=session.name, unit="frame", disable=not progress,
               leave=False)
    with AsyncWriter(outputs.writers(session.name, palette if palette is not None else session.palette,
                                     session.fps)) as writer:
        for pred in session.propagate(direction):
            if streaming:
                writer.put(pred.index, pred.name, pred.labels, pred.frame)
            frames += 1
            bar.update()
        if not streaming:
            for frame in session.source.read(range(session.source.num_frames)):
                writer.put(frame.index, frame.name, session.result(frame.index), frame.rgb)
    bar.close()
    return VideoStats(session.name, frames, time.perf_counter() - start)
