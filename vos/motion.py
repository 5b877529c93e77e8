"""Motion from optical flow: where each pixel of a frame was in the frame before, and label maps carried along.

SegGPT paints what looks like its prompts; it has no notion of where an object moved. Dense optical flow (OpenCV's
DIS, medium preset) gives that notion cheaply on a CPU. Flow is *backward*: for every pixel of frame t, the offset to
where it was in frame t-1, so a label map of frame t-1 is carried to frame t by sampling it there (nearest, nothing
outside the frame). That alone is the classic tracking baseline (``flow_track``, 43.0 J&F on davis-mini); the
windows mode uses it as a prior beside the model (``MotionPrior``, ``PropagationConfig.motion``, :mod:`vos.modes`).

    flow = BackwardFlow()
    warped = warp_labels(previous_labels, flow(previous_rgb, rgb))   # (H, W) uint8 labels moved to frame t
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import cv2
import numpy as np

from .config import MotionConfig
from .readers import Frame
from .threads import prefetch


class BackwardFlow:
    """Dense backward flow with OpenCV's DIS (``DISOPTICAL_FLOW_PRESET_MEDIUM``) on grey frames.

    One instance per thread (an OpenCV DIS object is not shareable between threads). ``scale`` < 1 computes the flow
    on frames resized by that factor and scales it back up (cheaper, coarser).
    """

    def __init__(self, scale: float = 1.0) -> None:
        if not 0 < scale <= 1:
            raise ValueError(f"flow scale must be in (0, 1], got {scale}")
        self.scale = scale
        self._dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)

    def __call__(self, previous: np.ndarray, current: np.ndarray) -> np.ndarray:
        """(H, W, 3) uint8 RGB frames t-1 and t -> (H, W, 2) float32 (dx, dy): pixel (x, y) of frame t was at
        (x + dx, y + dy) in frame t-1."""
        h, w = current.shape[:2]
        grey = [self._grey(f) for f in (current, previous)]
        flow = self._dis.calc(grey[0], grey[1], None)
        if self.scale == 1:
            return flow
        return cv2.resize(flow, (w, h), interpolation=cv2.INTER_LINEAR) / self.scale

    def _grey(self, rgb: np.ndarray) -> np.ndarray:
        grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
        if self.scale == 1:
            return grey
        h, w = grey.shape
        return cv2.resize(grey, (max(8, round(w * self.scale)), max(8, round(h * self.scale))),
                          interpolation=cv2.INTER_AREA)


def warp_labels(labels: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """(H, W) uint8 labels of frame t-1 carried to frame t along (H, W, 2) backward ``flow``: nearest sampling,
    background (0) where the flow points outside the frame."""
    h, w = labels.shape
    grid_x, grid_y = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    return cv2.remap(labels, grid_x + flow[..., 0], grid_y + flow[..., 1], cv2.INTER_NEAREST,
                     borderMode=cv2.BORDER_CONSTANT, borderValue=0)


#: An object score of +-1 is a query pixel painted pure white / pure black (score = 2 x.white - |white|^2).
SCORE_RANGE = 3 * 255.0 ** 2


class MotionPrior:
    """One pass's flow state: the backward flow of every frame to the frame before it *in the pass* (forwards or
    backwards through the video), computed once, on a background thread, as the pass reads its frames. Flows are kept
    by frame index until asked for, because the consumer (the session's own prefetch) may read several frames ahead.

        prior = MotionPrior(scale=1.0)
        for frame in prior.track(frames, first_rgb):           # frames pass through unchanged; flow is computed ahead
            warped = prior.warped(previous_slots, frame.index)  # (H, W) uint8, the previous slots moved to ``frame``
    """

    def __init__(self, scale: float = 1.0, depth: int = 4) -> None:
        self.scale, self.depth = scale, depth
        self._flows: dict[int, np.ndarray | None] = {}

    def track(self, frames: Iterable[Frame], first: np.ndarray | None) -> Iterator[Frame]:
        """Pass ``frames`` through; ``first``: the (H, W, 3) RGB frame the pass starts from (its keyframe), None when
        unknown. Each frame's flow to the one before is computed up to ``depth`` frames ahead."""
        for frame, flow in prefetch(self._compute(frames, first), self.depth, name="flow"):
            self._flows[frame.index] = flow
            yield frame

    def _compute(self, frames: Iterable[Frame], previous: np.ndarray | None
                 ) -> Iterator[tuple[Frame, np.ndarray | None]]:
        compute = BackwardFlow(self.scale)
        for frame in frames:
            same = previous is not None and previous.shape == frame.rgb.shape
            yield frame, compute(previous, frame.rgb) if same else None
            previous = frame.rgb

    def warped(self, previous: np.ndarray | None, index: int) -> np.ndarray | None:
        """The (H, W) uint8 slots of the frame before frame ``index`` (in the pass), carried to frame ``index`` (as
        they are when there is no flow: the pass's first frame without its keyframe's image, or a change of frame
        size). Frame ``index``'s flow is forgotten once asked for."""
        flow = self._flows.pop(index, None)
        if previous is None or flow is None:
            return previous
        return warp_labels(previous, flow)


class Fusion:
    """What the windows mode does with a query's warped previous mask, by ``MotionConfig`` (``vos.config``); each step
    leaves the model's result alone where its option is off or the query has no warped mask (``warped`` None).

        fusion = Fusion(config.flow)
        placed = fusion.placed(previous, warped)            # where each object's window goes
        prompts += fusion.prompts(rgb, warped, slot, box, windows)  # the query itself as a prompt, or nothing
        fusion.blend(scores[slot], box, warped, slot)       # inside one object's window
        labels = fusion.recover(labels, warped)             # after the argmax over objects
    """

    def __init__(self, config: MotionConfig) -> None:
        self.config = config

    def placed(self, previous: np.ndarray | None, warped: np.ndarray | None) -> np.ndarray | None:
        """The (H, W) slots the query windows are placed around: ``warped`` when placing by flow, else ``previous``."""
        return warped if warped is not None and self.config.place else previous

    def prompts(self, rgb: np.ndarray, warped: np.ndarray | None, slot: int, box, windows) -> list:
        """[(image, target)]: the (H, W, 3) query ``rgb`` with the object's warped mask, cut to ``box`` by
        ``windows`` (``vos.windows.ObjectWindows``), when prompting with the flow and the object is in ``warped``."""
        if not self.config.prompt or warped is None or not (shown := warped == slot).any():
            return []
        return [windows.cut_prompt(rgb, shown, box)]

    def blend(self, scores, box, warped: np.ndarray | None, slot: int) -> None:
        """One object's (H, W) torch scores blended, in place and inside ``box`` (top, left, h, w), with its mask in
        the (H, W) ``warped`` slots (``fuse_scores``)."""
        if warped is None or not self.config.blend:
            return
        top, left, h, w = box
        inside = (slice(top, top + h), slice(left, left + w))
        scores[inside] = fuse_scores(scores[inside], warped[inside] == slot, self.config.blend)

    def recover(self, labels, warped: np.ndarray | None):
        """(H, W) uint8 torch slots where every object that left its (H, W) ``warped`` previous mask (painted mask and
        warped mask overlapping by IoU under ``recover``: the object vanished, collapsed, spilled or jumped away while
        the flow still carries it in the frame) is replaced by its warped mask; ``labels`` itself is changed."""
        if warped is None or not self.config.recover:
            return labels
        import torch

        for slot in np.flatnonzero(np.bincount(warped.ravel(), minlength=256)[1:]) + 1:
            carried = torch.from_numpy(warped == slot).to(labels.device)
            painted = labels == int(slot)
            overlap = int((painted & carried).sum())
            if overlap < self.config.recover * int((painted | carried).sum()):
                labels[painted] = 0
                labels[carried] = int(slot)
        return labels


def fuse_scores(scores, prior: np.ndarray, blend: float):
    """Blend (h, w) object scores (torch, painted-score units: > 0 object) with the (h, w) bool warped mask of the
    object: ``(1 - blend) * scores / SCORE_RANGE + blend * (+1 inside, -1 outside)``; ``scores`` when ``blend`` = 0."""
    import torch

    if blend == 0:
        return scores
    inside = torch.as_tensor(prior, device=scores.device).float() * 2 - 1
    return (1 - blend) * scores / SCORE_RANGE + blend * inside


def flow_track(frames: Iterable[np.ndarray], first: np.ndarray) -> Iterator[np.ndarray]:
    """The classic baseline: ``first``, the (H, W) uint8 labels of the first of ``frames`` ((H, W, 3) uint8 RGB),
    carried to every later frame by warping the previous frame's labels along the backward flow. Yields one label map
    per frame, ``first`` included."""
    compute = BackwardFlow()
    labels, previous = first, None
    for rgb in frames:
        if previous is not None:
            labels = warp_labels(labels, compute(previous, rgb))
        previous = rgb
        yield labels
