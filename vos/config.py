"""Typed, frozen settings of video propagation. No torch import: the CLI, the app and the exports read these without
loading the model stack. Every config validates itself when constructed (``InputError`` naming the bad field)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal, get_args

from seggpt_core.adaptation import AdaptConfig
from seggpt_core.errors import InputError

Mode = Literal["auto", "joint", "per-object", "windows"]
"""How a frame is painted: "joint" (the paper: whole frames, all objects as colours in one pass), "per-object" (whole
frames, one white-on-black pass per object), "windows" (one pass per object in a window around it), "auto"."""

ResolvedMode = Literal["joint", "per-object", "windows"]

Direction = Literal["forward", "backward", "both"]
"""Which way propagation runs from the keyframes: "forward" (after the first keyframe only; from frame 0 it is the
DAVIS protocol), "backward" (before the last keyframe only), "both" (every frame)."""

Upsample = Literal["nearest", "bilinear"]

Motion = Literal["auto", "none", "flow"]
"""Optical-flow prior of the windows mode (``vos.motion``): "flow" warps each object's previous mask to the query
frame with dense optical flow and uses it as ``MotionConfig`` says; "none" uses the previous mask as is; "auto": flow
in windows mode. Whole-frame modes never use motion (the paper's protocol)."""

Between = Literal["nearest", "two-prompts", "forward"]
"""How direction "both" fills the frames between two keyframes: "nearest" (forwards from the earlier keyframe up to
the midpoint, backwards from the later one after it), "two-prompts" (forwards from the earlier one with the later one
as a second permanent prompt), "forward" (forwards from the earlier one only). Chosen by measurement: README."""

#: The windows mode's default one-shot adaptation (``PropagationConfig.adapt`` None): chosen on generated validation
#: videos by a rule fixed before scoring (README, "Real footage"; 50 steps until session 9, then 100: its round 4);
#: whole-frame modes adapt only when asked.
WINDOWS_ADAPT = AdaptConfig(steps=100, lr=1e-4, batch_size=8)

#: The previous predictions used as prompts besides the annotated frames (``PropagationConfig.context`` None): the
#: paper's best DAVIS setting ("8 frames" in all, Table 4b) in the whole-frame modes, and fewer in windows mode, chosen
#: on generated validation videos (README, "Real footage"), where the annotated frame then weighs more in the ensemble.
PAPER_CONTEXT = 7
WINDOWS_CONTEXT = 3

#: ``mode="auto"`` uses object windows for models whose input half is smaller than this on either side.
WINDOWS_BELOW = 256


@dataclass(frozen=True)
class WindowConfig:
    """Window geometry: side = ``margin`` x the object's longer box side, at least ``min_side`` x the frame's short
    side, moved (or cut) to fit the frame. The defaults were chosen on generated videos with seeds never used for
    training or for the reported scores (``scripts/bench_small_model.py --tune-windows``)."""

    margin: float = 1.5
    min_side: float = 0.1

    def __post_init__(self) -> None:
        if not (math.isfinite(self.margin) and self.margin > 0):
            raise InputError(f"window margin must be a finite number > 0, got {self.margin}")
        if not 0 < self.min_side <= 1:
            raise InputError(f"window min_side must be within (0, 1], got {self.min_side}")


@dataclass(frozen=True)
class MotionConfig:
    """How the windows mode uses the flow-warped previous mask (``vos.motion.MotionPrior``); chosen on generated
    validation videos (``scripts/bench_small_model.py --tune-motion``), never on davis-mini.

    ``place``: cut each object's query window around its warped previous mask (instead of the previous mask).
    ``blend``: weight of the warped mask (+1 inside, -1 outside) against the model's object score (scaled to [-1, 1])
    inside the window: 0 keeps the model's painting; 0.5 lets the flow decide wherever the model is not certain.
    ``recover``: lost-object recovery: an object whose painted mask overlaps its warped previous mask by an IoU under
    ``recover`` (it vanished, collapsed, spilled or jumped away while the flow still carries it in the frame) takes
    the warped mask instead; 0 never.
    ``prompt``: the query frame itself with the object's warped previous mask is one more in-context prompt (cut to the
    object's window like the others): SegGPT sees where the flow says the object is, and paints from that too.
    ``scale``: the flow is computed on frames resized by this factor (1: full size).
    """

    place: bool = True
    blend: float = 0.0
    recover: float = 0.0
    prompt: bool = False
    scale: float = 1.0

    def __post_init__(self) -> None:
        if not 0 <= self.blend <= 1:
            raise InputError(f"motion blend must be within [0, 1], got {self.blend}")
        if not 0 <= self.recover <= 1:
            raise InputError(f"motion recover must be within [0, 1], got {self.recover}")
        if not 0 < self.scale <= 1:
            raise InputError(f"motion flow scale must be within (0, 1], got {self.scale}")


@dataclass(frozen=True)
class EdgeConfig:
    """Edge refinement of the windows mode (``vos.edges``): each object's painted scores are resized bilinearly into
    its window and filtered by a guided filter (He et al., "Guided Image Filtering", 2010; OpenCV's
    ``ximgproc.guidedFilter``) with the frame's window as the guide, so the outline follows the frame's edges instead
    of the model's pixel grid. Chosen on generated validation videos (``scripts/bench_small_model.py --tune-edges``),
    never on davis-mini.

    ``radius``: the filter's radius in model pixels (times the window's frame pixels per model pixel); 0: off, the
    scores are resized by ``PropagationConfig.upsample`` as in the other modes.
    ``contrast``: in grey levels (0-255): the frame's edges weaker than about this are smoothed over, stronger ones
    pull the outline (the filter's eps is its square).
    """

    radius: float = 2.0
    contrast: float = 10.0

    def __post_init__(self) -> None:
        if not (math.isfinite(self.radius) and 0 <= self.radius <= 64):
            raise InputError(f"edge radius must be within [0, 64] model pixels, got {self.radius}")
        if not (math.isfinite(self.contrast) and 0 < self.contrast <= 255):
            raise InputError(f"edge contrast must be within (0, 255] grey levels, got {self.contrast}")

    @property
    def enabled(self) -> bool:
        return self.radius > 0


@dataclass(frozen=True)
class PropagationConfig:
    """How a video is propagated.

    ``context``: how many recent predictions are prompts besides the annotated frames; None = auto:
    ``WINDOWS_CONTEXT`` in windows mode, ``PAPER_CONTEXT`` (7 + the first frame, the paper's best DAVIS setting, Table
    4b: 75.6 J&F vs 70.0 with the first frame alone) in the whole-frame modes.

    ``mode``: see ``Mode``; "auto" = windows for low-resolution models (input half under ``WINDOWS_BELOW`` px, such
    as the shipped 64x64 one), joint otherwise and with a tuned prompt.

    ``between``: how direction "both" fills the frames between two keyframes (see ``Between``).

    ``store_budget_mb``: results (full-resolution uint8 label maps) are kept in RAM up to this size and spilled to a
    temporary folder beyond it.
    """

    context: int | None = None
    mode: Mode = "auto"
    upsample: Upsample = "nearest"
    """"nearest" is the official behaviour; "bilinear" smooths the painted colours (windows mode with ``edges`` on:
    always bilinear, the input the edge filter needs)."""
    windows: WindowConfig = field(default_factory=WindowConfig)  #: window geometry (windows mode)
    motion: Motion = "auto"  #: optical-flow prior: on in windows mode (measured to help there: README), off otherwise
    flow: MotionConfig = field(default_factory=MotionConfig)  #: how the prior is used (windows mode)
    edges: EdgeConfig = field(default_factory=EdgeConfig)  #: edge refinement (windows mode; the paper's modes: none)
    store_budget_mb: float = 512.0
    between: Between = "nearest"  #: how "both" fills the frames between two keyframes (``Between``)
    adapt: AdaptConfig | None = None
    """One-shot adaptation (``vos.adaptation``): each pass fine-tunes a copy of the model on its keyframes before it
    propagates; ``adapt.steps`` 0 = off; None = auto: ``WINDOWS_ADAPT`` in windows mode (measured to help there:
    README), off otherwise."""
    mirror: bool | None = None
    """Test-time mirroring (``SegGPTPredictor.paint_scores``): every painting is averaged with the painting of the
    task flipped left to right, at twice the model's cost; None = auto: on in windows mode (measured to help there:
    README), off in the whole-frame modes (the paper's protocol)."""

    def __post_init__(self) -> None:
        if self.context is not None and (not isinstance(self.context, int) or self.context < 0):
            raise InputError(f"context must be an integer >= 0 (or None: auto), got {self.context!r}")
        if self.mirror not in (None, True, False):
            raise InputError(f"mirror must be True, False or None (auto), got {self.mirror!r}")
        if self.mode not in get_args(Mode):
            raise InputError(f"unknown mode {self.mode!r}; use one of {', '.join(get_args(Mode))}")
        if self.upsample not in get_args(Upsample):
            raise InputError(f"unknown upsample {self.upsample!r}; use one of {', '.join(get_args(Upsample))}")
        if not isinstance(self.windows, WindowConfig):
            raise InputError(f"windows must be a WindowConfig, got {type(self.windows).__name__}")
        if self.motion not in get_args(Motion):
            raise InputError(f"unknown motion {self.motion!r}; use one of {', '.join(get_args(Motion))}")
        if self.motion == "flow" and self.mode not in ("auto", "windows"):
            raise InputError(f"motion 'flow' is a prior of the windows mode; use --mode windows (or auto), or drop "
                             f"--motion with --mode {self.mode}")
        if self.adapt is not None and not isinstance(self.adapt, AdaptConfig):
            raise InputError(f"adapt must be an AdaptConfig or None (auto), got {type(self.adapt).__name__}")
        if not isinstance(self.flow, MotionConfig):
            raise InputError(f"flow must be a MotionConfig, got {type(self.flow).__name__}")
        if not isinstance(self.edges, EdgeConfig):
            raise InputError(f"edges must be an EdgeConfig, got {type(self.edges).__name__}")
        if self.between not in get_args(Between):
            raise InputError(f"unknown between-keyframes rule {self.between!r}; use one of {', '.join(get_args(Between))}")
        if not (math.isfinite(self.store_budget_mb) and self.store_budget_mb >= 0):
            raise InputError(f"store_budget_mb must be a finite number >= 0, got {self.store_budget_mb}")

    def resolved_mode(self, half_size: tuple[int, int], tuned: bool = False) -> ResolvedMode:
        """The mode used with a model of input half ``half_size`` (and a tuned prompt or not)."""
        if self.mode != "auto":
            return self.mode
        return "windows" if min(half_size) < WINDOWS_BELOW and not tuned else "joint"

    def adaptation(self, mode: ResolvedMode) -> AdaptConfig:
        """The one-shot adaptation of a pass in ``mode`` (the resolved mode): ``adapt``, or with None its default."""
        if self.adapt is not None:
            return self.adapt
        return WINDOWS_ADAPT if mode == "windows" else AdaptConfig()

    def context_size(self, mode: ResolvedMode) -> int:
        """The previous predictions a pass in ``mode`` (the resolved mode) keeps as prompts: ``context``, or with None
        its default."""
        if self.context is not None:
            return self.context
        return WINDOWS_CONTEXT if mode == "windows" else PAPER_CONTEXT

    def uses_mirror(self, mode: ResolvedMode) -> bool:
        """Whether a pass in ``mode`` (the resolved mode) paints with test-time mirroring."""
        return self.mirror if self.mirror is not None else mode == "windows"

    def uses_flow(self, mode: ResolvedMode) -> bool:
        """Whether a pass in ``mode`` (the resolved mode) uses the optical-flow prior."""
        return mode == "windows" and self.motion != "none"


def check_direction(direction: str) -> Direction:
    if direction not in get_args(Direction):
        raise InputError(f"unknown direction {direction!r}; use one of {', '.join(get_args(Direction))}")
    return direction
