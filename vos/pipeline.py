"""One video end to end: session -> writers, with progress and timing. Shared by the CLI, the dataset runners and
the demo, so all of them write the same outputs the same way."""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from tqdm.auto import tqdm

from seggpt_core.errors import InputError
from seggpt_core.predictor import SegGPTPredictor

from .alpha_video import AlphaVideoWriter, alpha_codec
from .config import Direction, PropagationConfig
from .exr import ExrWriter
from .mattes import MatteCleanup, Mattes
from .readers import FrameSource, exact_fps
from .sequences import DEFAULT_FPS, MatteContent, MatteSequenceWriter, Timeline
from .session import VideoSession
from .writers import (AsyncWriter, CocoRleWriter, FrameWriter, NumpyWriter, OverlayStyle, OverlayVideoWriter,
                      PalettePngWriter)

if TYPE_CHECKING:
    from seggpt_core.tuned_prompt import TunedPrompt


@dataclass(frozen=True)
class OutputSpec:
    """What to write for a video, and how. Folder outputs get a per-video sub-folder (DAVIS layout ``OUT/<video>/``).

    Label outputs (``masks``, ``rle``, ``numpy``) hold object ids; alpha outputs (``alpha``, ``cutout``,
    ``alpha_video``, ``exr``) hold mattes for editors. ``cleanup`` runs on the labels before every output (its
    ``feather`` only softens the alpha outputs). Sequences are numbered from ``start_number``; video outputs and
    sidecars carry the source's exact frame rate, or ``fps`` (default 24) when the source has none (frame folders,
    live streams). Bad options raise ``InputError`` here, before any work.
    """

    masks: Path | None = None  #: palette PNGs: ``masks/<video>/<frame>.png``
    overlay: Path | None = None  #: H.264 mp4 of the frames with the masks drawn in
    overlay_style: OverlayStyle = "fill"  #: how the overlay draws the masks: tinted ("fill") or edges ("outline")
    alpha: Path | None = None  #: 8-bit mattes: ``alpha/<video>/object_<id>/<video>_object_<id>.%04d.png``
    alpha_combined: bool = False  #: also ``all/<video>_all.%04d.png`` (all objects) in ``alpha`` and ``cutout``
    cutout: Path | None = None  #: RGBA cut-outs, straight alpha, laid out as ``alpha``
    alpha_video: Path | None = None  #: one video of all objects: .mov ProRes 4444, .webm VP9 alpha, .mkv FFV1
    alpha_video_content: MatteContent = "matte"  #: "matte" or "cutout" (the frame with the matte as alpha)
    exr: Path | None = None  #: ``exr/<video>/<video>.%04d.exr``, half-float channels ``object_<id>`` and ``A``
    rle: Path | None = None  #: COCO RLE JSON for the whole video
    numpy: Path | None = None  #: ``numpy/<video>/<frame>.npy`` label maps
    only_frames: frozenset[str] | None = None  #: label outputs: write only these frame names (YouTube-VOS)
    start_number: int = 0  #: file number of frame 0 in the sequences (editors use 0, 1 or 1001)
    fps: Fraction | None = None  #: rate when the source has none (default 24)
    cleanup: MatteCleanup = MatteCleanup()
    object_names: Mapping[int, str] = field(default_factory=dict)  #: object id -> name, for the sidecars
    overwrite: bool = False  #: replace existing sequence folders and alpha video

    def __post_init__(self) -> None:
        self.timeline(None)  # checks start_number and fps
        if self.alpha_video is not None:
            alpha_codec(self.alpha_video)
        if self.alpha_video_content not in ("matte", "cutout"):
            raise InputError(f"--alpha-video-content must be 'matte' or 'cutout', got {self.alpha_video_content!r}")
        if self.alpha_combined and self.alpha is None and self.cutout is None:
            raise InputError("--alpha-combined adds an all-objects sequence to --alpha or --cutout; give one of them")
        if self.cleanup.feather and not self.has_alpha_outputs:
            raise InputError(f"--feather {self.cleanup.feather} softens alpha outputs only and label outputs stay "
                             "hard; add --alpha, --cutout, --alpha-video or --exr, or drop --feather")

    @property
    def has_alpha_outputs(self) -> bool:
        return any(p is not None for p in (self.alpha, self.cutout, self.alpha_video, self.exr))

    def timeline(self, source_fps: Fraction | float | None) -> Timeline:
        """Numbering and exact rate of the outputs of a source whose rate is ``source_fps`` (None: unknown)."""
        if exact_fps(source_fps) is not None:
            return Timeline(exact_fps(source_fps), self.start_number, "source")
        if self.fps is not None:
            return Timeline(Fraction(self.fps), self.start_number, "--fps")
        return Timeline(DEFAULT_FPS, self.start_number, "default")

    def writers(self, video: str, palette: np.ndarray | None, fps: Fraction | None,
                object_ids: Iterable[int] = ()) -> list[FrameWriter]:
        """The output formats for ``video``; folders and files are checked (and claimed) here, before any work."""
        timeline = self.timeline(fps)
        object_ids = sorted(set(object_ids) | set(self.object_names))
        shared = Mattes(self.cleanup)  # each matte computed once a frame for all alpha outputs
        sequence = dict(video=video, timeline=timeline, object_ids=object_ids, names=self.object_names, mattes=shared,
                        overwrite=self.overwrite)
        out: list[FrameWriter] = []
        if self.masks is not None:
            out.append(PalettePngWriter(self.masks / video, palette=palette, only_frames=self.only_frames))
        if self.overlay is not None:
            out.append(OverlayVideoWriter(self.overlay, fps=timeline.fps, palette=palette, style=self.overlay_style))
        if self.alpha is not None:
            out.append(MatteSequenceWriter(self.alpha / video, content="matte", combined=self.alpha_combined,
                                           **sequence))
        if self.cutout is not None:
            out.append(MatteSequenceWriter(self.cutout / video, content="cutout", combined=self.alpha_combined,
                                           **sequence))
        if self.alpha_video is not None:
            out.append(AlphaVideoWriter(self.alpha_video, timeline=timeline, content=self.alpha_video_content,
                                        mattes=shared, overwrite=self.overwrite))
        if self.exr is not None:
            out.append(ExrWriter(self.exr / video, **sequence))
        if self.rle is not None:
            out.append(CocoRleWriter(self.rle, video=video))
        if self.numpy is not None:
            out.append(NumpyWriter(self.numpy / video))
        return out

    def open(self, video: str, palette: np.ndarray | None, fps: Fraction | None,
             object_ids: Iterable[int] = ()) -> AsyncWriter:
        """The background writer of ``video``'s outputs: ``put(index, name, labels, frame)`` in index order 0, 1, ..."""
        formats = self.writers(video, palette, fps, object_ids)
        return AsyncWriter(formats, cleanup=self.cleanup if self.cleanup.changes_labels else None)

    def destinations(self, video: str) -> list[str]:
        """Where the outputs of ``video`` go, for messages."""
        folders = (self.masks, self.alpha, self.cutout, self.exr, self.numpy)
        return ([str(p / video) for p in folders if p is not None]
                + [str(p) for p in (self.overlay, self.alpha_video, self.rle) if p is not None])


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
    with outputs.open(session.name, palette if palette is not None else session.palette, session.fps) as writer:
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
