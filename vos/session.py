"""Mask propagation through one video from keyframes at any frames: the session object users drive.

Data flows one way: frame source -> prompt bank -> SegGPT -> label decoder -> result store (and the caller). A
*keyframe* is a mask given at any frame k (``add_mask``); the video is cut at the keyframes into *passes*, each tracked
from its keyframe(s) with its own prompt bank (the keyframe(s) kept for good plus the last ``context`` predictions,
feature-ensembled, paper §4.4) and its own object map:

- frames before the first keyframe: backwards from it (``direction`` "backward" or "both");
- frames after the last keyframe: forwards from it ("forward" or "both");
- frames between two keyframes: "forward" tracks them forwards from the earlier one, "backward" backwards from the
  later one, "both" uses both keyframes by ``config.between`` (chosen by measurement, see the README);
- frames no direction reaches are background (e.g. before the first keyframe in "forward": the DAVIS protocol).

A keyframe sets the objects it contains. Objects it leaves out (a mask introducing a new object, YouTube-VOS style)
keep the prediction of the pass that arrives there (forwards; backwards in "backward"), so such a keyframe is reached
by one direction only. Because a pass depends only on its keyframes, adding a keyframe recomputes only the passes
next to it (``plan`` lists them), and the result equals a fresh session with the same keyframes, pixel for pixel.

    session = VideoSession(predictor, "video.mp4")
    session.add_mask(40, mask)                  # (H, W) uint8 object ids, any ids 1..255, at any frame
    for pred in session.propagate():            # one frame at a time, in computed order; results are stored
        show(pred.index, pred.labels)
    session.add_mask(75, corrected, replace=False)
    list(session.propagate())                   # recomputes only frames between the neighbours of frame 75
    session.result(10)                          # (H, W) uint8 ids at full resolution
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Hashable, Iterable, Iterator, Mapping
from contextlib import closing
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, NamedTuple

import numpy as np
import torch

from seggpt_core.colours import label_colours
from seggpt_core.errors import InputError
from seggpt_core.predictor import SegGPTPredictor
from seggpt_core.transforms import resize_labels

from .adaptation import adapted_predictor
from .config import Direction, PropagationConfig, ResolvedMode, check_direction
from .masks import ObjectIds, check_mask, check_mask_frame, load_mask, object_ids_in
from .modes import PaintMode, Query, Slots, make_mode
from .motion import MotionPrior
from .prompts import PromptBank, PromptFrame
from .readers import Frame, FrameSource, open_source
from .threads import prefetch, prefetched
from .store import ResultStore

if TYPE_CHECKING:
    from seggpt_core.tuned_prompt import TunedPrompt

#: Adapted predictors a session keeps (``_pass_predictor``): a few, so the passes from one keyframe share one.
ADAPTED_KEPT = 4


class Prediction(NamedTuple):
    index: int  #: frame index in the video
    name: str  #: output name of the frame (file stem or %05d)
    labels: np.ndarray  #: (H, W) uint8 user object ids at the frame's own resolution
    frame: np.ndarray  #: (H, W, 3) uint8 RGB input frame (for overlays)


@dataclass(frozen=True)
class Keyframe:
    index: int
    labels: np.ndarray  #: (H, W) uint8 user ids (read-only)
    source: str  #: file or description, for error messages
    digest: str  #: content hash: part of the key of every pass that depends on this keyframe

    @property
    def ids(self) -> frozenset[int]:
        return frozenset(object_ids_in(self.labels))


@dataclass(frozen=True)
class Pass:
    """Frames tracked in one direction from a keyframe (``seed``; None: from a tuned prompt alone), in order.

    ``second``: a keyframe used as a further permanent prompt. ``frames`` may be endless (a live stream of unknown
    length).
    """

    seed: int | None
    frames: range | itertools.count
    key: Hashable  #: what the frames depend on (seed, prompts, direction), not where the pass stops: a longer pass
    #: from the same keyframe computes the same frames, so its results are reused
    objects: tuple[int, ...]  #: user ids this pass tracks, in slot order
    second: int | None = None
    merge_key: Hashable | None = None  #: set when the last frame is a keyframe pasted over the prediction there
    seed_is_mask: bool = True  #: the seed keyframe's labels are its mask (False: the result stored there)

    def frame_key(self, index: int) -> Hashable:
        return self.merge_key if self.merge_key is not None and index == self.frames[-1] else self.key


@dataclass(frozen=True)
class Fill:
    """Frames whose result is known without the model: a keyframe's own mask, or background."""

    frames: range
    key: Hashable
    keyframe: int | None = None  #: None: background

    def frame_key(self, index: int) -> Hashable:
        return self.key


Step = Pass | Fill


class _Link(NamedTuple):
    """What a keyframe's resolved labels depend on (``dep``), the objects passes from it track (``active``), and
    whether its mask has every object the pass arriving there tracks (``complete``: its labels are its mask)."""

    dep: tuple
    active: frozenset[int]
    complete: bool


class VideoSession:
    """State of one video: its frame source, its keyframes, the object ids and the stored results.

    Args:
        predictor: the SegGPT predictor (model, device, dtype) shared by all sessions.
        video: a video file, a frame folder, a ``cv2.VideoCapture`` or any iterable of (H, W, 3) uint8 RGB frames
            (a live stream: forward only, one ``propagate``).
        config: propagation settings.
        name: the video's name for outputs (default: from the path).
    """

    def __init__(self, predictor: SegGPTPredictor, video: str | Path | Iterable | FrameSource,
                 config: PropagationConfig = PropagationConfig(), *, name: str | None = None) -> None:
        self.predictor = predictor
        self.config = config
        self.source = open_source(video, name=name)
        self.palette: np.ndarray | None = None  #: colours of the first mask PNG that had a palette (for outputs)
        self._keyframes: dict[int, Keyframe] = {}
        self._tuned: tuple[TunedPrompt, str] | None = None
        self._store = ResultStore(int(config.store_budget_mb * 2**20))
        self._adapted: dict[tuple, SegGPTPredictor] = {}  #: (mode, settings, keyframes) -> adapted predictor

    # ------------------------------------------------------------------------------------------------ video
    @property
    def name(self) -> str:
        return self.source.name

    @property
    def num_frames(self) -> int | None:
        return self.source.num_frames

    @property
    def frame_size(self) -> tuple[int, int] | None:
        return self.source.size

    @property
    def fps(self) -> Fraction | None:
        """The container's exact frame rate (None for folders and unknown rates)."""
        return self.source.fps

    def frame(self, index: int) -> np.ndarray:
        """Frame ``index`` as (H, W, 3) uint8 RGB (random access; not for live streams)."""
        return self.source.frame(index)

    @property
    def mode(self) -> ResolvedMode:
        """The propagation mode in effect (``config.mode`` with "auto" resolved for this model)."""
        return self.config.resolved_mode(self.predictor.half_size, tuned=self._tuned is not None)

    # ------------------------------------------------------------------------------------------------ inputs
    @property
    def keyframes(self) -> Mapping[int, np.ndarray]:
        """Frame index -> (H, W) uint8 ids given there (read-only)."""
        return MappingProxyType({k: kf.labels for k, kf in sorted(self._keyframes.items())})

    @property
    def objects(self) -> tuple[int, ...]:
        """User object ids known from the keyframes (and a tuned prompt), in order of first appearance."""
        seen: dict[int, None] = {}
        if self._tuned is not None:
            seen.update(dict.fromkeys(self._tuned[0].label_ids))
        for k in sorted(self._keyframes):
            seen.update(dict.fromkeys(sorted(self._keyframes[k].ids)))
        return tuple(seen)

    def add_mask(self, frame_index: int, mask: str | Path | np.ndarray, *, replace: bool = False) -> None:
        """A keyframe at ``frame_index``: a palette/label PNG path or an (H, W) array of object ids (0 = background).

        A second mask for the same frame needs ``replace=True``. After ``propagate``, the frames this keyframe can
        change become stale (``plan``); the others keep their results.
        """
        source = str(mask) if isinstance(mask, (str, Path)) else f"mask for frame {frame_index}"
        check_mask_frame(frame_index, self.source.num_frames, source=source)
        if frame_index in self._keyframes and not replace:
            raise InputError(f"{source}: frame {frame_index} already has a mask ({self._keyframes[frame_index].source})"
                             "; give one mask per frame, or replace it (replace=True)")
        labels, palette = load_mask(mask)
        if not labels.any():
            raise InputError(f"{source}: the mask for frame {frame_index} has no object (all background); give a "
                             "mask with at least one object id > 0")
        if self.source.size is not None:
            check_mask(labels, frame_size=self.source.size, source=f"{source} (frame {frame_index})")
        self._check_tuned_ids(labels, source)
        if self.palette is None:
            self.palette = palette
        self._set_keyframe(frame_index, labels, source)

    def _set_keyframe(self, index: int, labels: np.ndarray, source: str) -> None:
        labels = np.array(labels, np.uint8)
        labels.setflags(write=False)
        digest = hashlib.blake2b(labels.tobytes() + repr(labels.shape).encode(), digest_size=16).hexdigest()
        self._keyframes[index] = Keyframe(index, labels, source, digest)

    def remove_object(self, obj_id: int) -> None:
        """Drop object ``obj_id`` everywhere: from the keyframes (a keyframe left empty is removed) and the results."""
        if obj_id not in self.objects or (self._tuned is not None and obj_id in self._tuned[0].label_ids):
            raise InputError(f"{self.name}: object id {obj_id} is not in any keyframe (objects: "
                             f"{list(self.objects)}); give an id that a mask uses")
        for index, kf in list(self._keyframes.items()):
            if obj_id in kf.ids:
                kept = np.where(kf.labels == obj_id, 0, kf.labels).astype(np.uint8)
                if kept.any():
                    self._set_keyframe(index, kept, kf.source)
                else:
                    del self._keyframes[index]
        for index in list(self._store.indices()):
            key = self._store.key(index)
            full, small = self._store.get(index)
            if (full == obj_id).any() or (small == obj_id).any():
                self._store.put(index, key, np.where(full == obj_id, 0, full), np.where(small == obj_id, 0, small))

    def remove_keyframe(self, index: int) -> None:
        """Take back the keyframe at frame ``index``. The frames whose result depended on it become stale (``plan``);
        the others keep their results. Without keyframes (and a tuned prompt) ``propagate`` refuses to run."""
        if index not in self._keyframes:
            raise InputError(f"{self.name}: frame {index} has no keyframe to remove (keyframes: "
                             f"{sorted(self._keyframes)}); give one of those frames")
        del self._keyframes[index]

    def reset(self) -> None:
        """Forget every result; keyframes (and a tuned prompt) stay."""
        self._store.clear()

    def add_prompt(self, prompt: TunedPrompt, *, source: str = "tuned prompt") -> None:
        """Use a tuned prompt as a permanent example in every pass (first in the prompt batch).

        Its objects (``prompt.label_ids``) are tracked from the start, so masks become optional; masks given too may
        only use those ids, because the prompt's colours are fixed to its label set.
        """
        prompt.check_model(self.predictor.model, source=source)
        if self.config.mode == "per-object" and prompt.num_labels > 1:
            raise InputError(f"{source} paints {prompt.num_labels} objects in colours at once; use --mode joint")
        if self.config.mode == "windows":
            raise InputError(f"{source} was tuned on whole frames and cannot be cut into object windows; use --mode "
                             "joint (or auto)")
        self._tuned = (prompt, source)
        for kf in self._keyframes.values():
            self._check_tuned_ids(kf.labels, kf.source)

    def _check_tuned_ids(self, labels: np.ndarray, source: str) -> None:
        if self._tuned is None:
            return
        prompt, prompt_source = self._tuned
        extra = sorted(set(object_ids_in(labels)) - set(prompt.label_ids))
        if extra:
            raise InputError(f"{source}: object id(s) {extra} are not in {prompt_source} (tuned for ids "
                             f"{list(prompt.label_ids)}); tune a prompt on masks with these objects or drop --prompt")

    # ------------------------------------------------------------------------------------------------ results
    def result(self, index: int) -> np.ndarray | None:
        """(H, W) uint8 user ids of frame ``index`` at full resolution, None when not computed."""
        stored = self._store.get(index)
        return None if stored is None else stored[0]

    def plan(self, direction: Direction = "both") -> list[int]:
        """The frames ``propagate(direction)`` will compute, in that order (the stale ones only)."""
        if self.source.num_frames is None:
            raise InputError(f"{self.name}: a live stream has no known length to plan; propagate it forward")
        return [i for step in self._steps(direction) for i in self._todo(step)]

    @torch.inference_mode()
    def propagate(self, direction: Direction = "both") -> Iterator[Prediction]:
        """Compute the stale frames (``plan``) and yield one ``Prediction`` per frame, in computed order.

        Every result is stored before it is yielded, so stopping early (``break``, ``close()``) keeps everything
        computed so far and the next call continues from there. Frames no direction reaches are background.
        """
        last = -1
        keyframe_rgb: dict[int, np.ndarray] = {}  # frames of the keyframes read in this call (a stream reads once)
        for step in self._steps(direction):
            todo = self._todo(step)
            if isinstance(todo, (range, list)) and not len(todo):
                continue
            run = (self._run_pass(step, todo, keyframe_rgb) if isinstance(step, Pass)
                   else self._run_fill(step, todo, keyframe_rgb))
            with closing(run):
                for pred in run:
                    last = max(last, pred.index)
                    yield pred
        if self.source.num_frames is None:
            pending = [k for k in self._keyframes if k > last]
            if pending:
                kf = self._keyframes[min(pending)]
                raise InputError(f"{kf.source}: mask is given for frame {kf.index} but the video ended at frame "
                                 f"{last}; fix the frame index")

    # ------------------------------------------------------------------------------------------------ the plan
    def _steps(self, direction: Direction) -> list[Step]:
        """The whole video as passes and fills, in computing order (stale or not)."""
        direction = check_direction(direction)
        keys = sorted(self._keyframes)
        if not keys and self._tuned is None:
            raise InputError(f"{self.name}: no mask given; add a keyframe mask (add_mask / --masks / --mask-at) or a "
                             "tuned prompt (add_prompt / --prompt)")
        if not self.source.seekable and direction == "both" and keys in ([], [0]):
            direction = "forward"  # nothing lies before the keyframe: "both" reads the stream once, forwards
        if not self.source.seekable and direction != "forward":
            raise InputError(f"{self.name}: a live stream can only be tracked forward (--direction forward); give a "
                             "video file or a frame folder to track backwards")
        if direction == "backward" and (not keys or keys[-1] == 0):
            where = "none is given" if not keys else f"the only one is frame 0 ({self._keyframes[0].source})"
            raise InputError(f"{self.name}: --direction backward needs a keyframe after frame 0, but {where}; add "
                             "one (--mask-at K PNG) or use --direction forward or both")
        n = self.source.num_frames
        version = (self._tuned is not None, self.mode)
        if not keys:  # a tuned prompt alone: forward from frame 0
            frames = range(n) if n is not None else itertools.count()
            return [Pass(None, frames, ("pass", None, version), self._in_order(frozenset()))]
        steps: list[Step] = []
        first, last = keys[0], keys[-1]
        tail = range(last + 1, n) if n is not None else itertools.count(last + 1)
        chain = self._chain(keys[::-1] if direction == "backward" else keys)

        def fill(k: int) -> None:
            steps.append(Fill(range(k, k + 1), ("keyframe", chain[k].dep), keyframe=k))

        def track(seed: int, frames, *, second: int | None = None, merge: bool = False) -> None:
            tracked = chain[seed].active | (chain[second].active if second is not None else frozenset())
            step = frames.step if isinstance(frames, range) else 1
            key = ("pass", chain[seed].dep, None if second is None else chain[second].dep, step, version)
            merge_key = key + ("merge", chain[frames[-1]].dep) if merge else None
            steps.append(Pass(seed, frames, key, self._in_order(tracked), second=second, merge_key=merge_key,
                              seed_is_mask=chain[seed].complete))

        if direction == "backward":
            fill(last)
            for b, a in zip(keys[::-1], keys[-2::-1]):
                complete = chain[a].complete
                track(b, range(b - 1, a - 1 if not complete else a, -1), merge=not complete)
                if complete:
                    fill(a)
            track(first, range(first - 1, -1, -1))
            steps.append(Fill(tail, ("background",)))
            return steps
        if direction == "both":
            fill(first)
            track(first, range(first - 1, -1, -1))
        elif self._tuned is not None:  # forward: a tuned prompt tracks the frames before the first keyframe
            steps.append(Pass(None, range(first), ("pass", None, version), self._in_order(frozenset())))
            fill(first)
        else:
            steps.append(Fill(range(first), ("background",)))
            fill(first)
        for a, b in zip(keys, keys[1:]):
            complete = chain[b].complete
            if direction == "forward" or not complete or self.config.between == "forward":
                track(a, range(a + 1, b if complete else b + 1), merge=not complete)
            elif self.config.between == "two-prompts":
                track(a, range(a + 1, b), second=b)
            else:  # nearest keyframe
                middle = (a + b) // 2
                track(a, range(a + 1, middle + 1))
                track(b, range(b - 1, middle, -1))
            if complete:
                fill(b)
        track(last, tail)
        return steps

    def _chain(self, arrival: list[int]) -> dict[int, _Link]:
        """Keyframe -> its ``_Link``, along the order in which passes arrive at the keyframes."""
        links: dict[int, _Link] = {}
        active = frozenset(self._tuned[0].label_ids) if self._tuned is not None else frozenset()
        previous: _Link | None = None
        for k in arrival:
            kf = self._keyframes[k]
            complete = previous is None or previous.active <= kf.ids
            dep = (k, kf.digest) if complete else (k, kf.digest, previous.dep)
            previous = links[k] = _Link(dep, active | kf.ids if previous is None else previous.active | kf.ids,
                                        complete)
        return links

    def _in_order(self, ids: frozenset[int]) -> tuple[int, ...]:
        """``ids`` (plus a tuned prompt's) in slot order: the order of first appearance over the keyframes."""
        if self._tuned is not None:
            ids = ids | frozenset(self._tuned[0].label_ids)
        return tuple(i for i in self.objects if i in ids)

    def _todo(self, step: Step):
        """The frames of ``step`` still to compute: a pass from the first frame whose stored key differs (later
        frames depend on it), a fill every frame whose stored key differs."""
        if isinstance(step.frames, itertools.count):
            return step.frames
        stale = [i for i in step.frames if self._store.key(i) != step.frame_key(i)]
        if isinstance(step, Fill) or not stale:
            return stale
        return step.frames[step.frames.index(stale[0]):]

    # ------------------------------------------------------------------------------------------------ running
    def _run_fill(self, step: Fill, frames, keyframe_rgb: dict[int, np.ndarray]) -> Iterator[Prediction]:
        labels = self._keyframes[step.keyframe].labels if step.keyframe is not None else None
        half = self.predictor.half_size
        for frame in self.source.read(frames):
            if labels is None:
                full = np.zeros(frame.rgb.shape[:2], np.uint8)
                small = np.zeros(half, np.uint8)
            else:
                full, small = labels, resize_labels(labels, half)
                keyframe_rgb[frame.index] = frame.rgb
            self._store.put(frame.index, step.key, full, small)
            yield Prediction(frame.index, frame.name, np.array(full), frame.rgb)

    def _run_pass(self, step: Pass, frames, keyframe_rgb: dict[int, np.ndarray]) -> Iterator[Prediction]:
        """Track ``frames`` (the stale tail of ``step.frames``) with a prompt bank rebuilt from the stored results.

        The model paints on its own thread (``_paint``), up to two frames ahead; this generator, on the caller's
        thread, decodes each painting to full-resolution ids, stores and yields them, so that work (and whatever the
        caller does with a prediction) overlaps the model instead of waiting between its frames.
        """
        objects = ObjectIds()
        for object_id in step.objects:
            objects.add([object_id])
        colours = label_colours(len(objects)) if len(objects) else None
        keyframes = {}  # keyframe index -> (RGB, slots) the pass starts from
        for k in (step.seed, step.second):
            if k is not None:
                full = self._resolved(k, step.seed_is_mask or k == step.second)
                slots = objects.to_slots(full, source=self._keyframes[k].source)
                keyframes[k] = (keyframe_rgb[k] if k in keyframe_rgb else self.source.frame(k), slots)
        mode = make_mode(self.mode, self._pass_predictor(keyframes), self.config)
        motion = MotionPrior(self.config.flow.scale) if self.config.uses_flow(self.mode) else None
        context = self.config.context_size(self.mode)
        bank = PromptBank(context)
        half = self.predictor.half_size
        if self._tuned is not None:
            prompt, _ = self._tuned
            device = self.predictor.device
            bank.add_permanent(PromptFrame(None, prompt.image.to(device), None, prompt.target.to(device)))
        previous = previous_rgb = None
        for k, (rgb, full) in keyframes.items():
            slots = Slots.at_full_size(full, half)
            self._add_prompt(bank, mode, k, rgb, slots, permanent=True)
            if k == step.seed:
                previous, previous_rgb = slots, rgb
        done = step.frames[:len(step.frames) - len(frames)] if isinstance(frames, range) else range(0)
        last_rgb = last_full = None  # frame done[-1], the last of the prompts below when there are any
        for index in done[-context:] if context else []:
            full, small = self._store.get(index)
            last_rgb, last_full = self.source.frame(index), objects.to_slots(full)
            self._add_prompt(bank, mode, index, last_rgb, Slots(objects.to_slots(small), last_full))
        if done:
            if last_full is None:  # no context: frame done[-1] was not read above
                last_full = objects.to_slots(self._store.get(done[-1])[0])
                last_rgb = self.source.frame(done[-1]) if motion is not None else None
            previous = Slots.at_full_size(last_full, half)
            previous_rgb = last_rgb if motion is not None else None
        merge_at = step.frames[-1] if step.merge_key is not None else None
        stream = self.source.read(frames) if motion is None else motion.track(self.source.read(frames), previous_rgb)
        painted = self._paint(stream, bank, mode, motion, colours, previous, merge_at)
        for frame, slots in prefetch(painted, 2, name="model", nice=0):
            ids = objects.to_ids(slots.full)
            if frame.index == merge_at:
                ids = self._merge(self._keyframes[frame.index].labels, ids)
                small_ids = resize_labels(ids, half)
                keyframe_rgb[frame.index] = frame.rgb
            else:
                small_ids = objects.to_ids(slots.small)
            self._store.put(frame.index, step.frame_key(frame.index), ids, small_ids)
            yield Prediction(frame.index, frame.name, ids, frame.rgb)

    def _paint(self, stream: Iterable[Frame], bank: PromptBank, mode: PaintMode, motion: MotionPrior | None,
               colours: np.ndarray | None, previous: Slots | None, merge_at: int | None
               ) -> Iterator[tuple[Frame, Slots]]:
        """The model's loop of one pass (run on its own thread, which owns ``bank`` and ``mode`` from then on):
        each frame of ``stream`` painted from ``bank`` and, except ``merge_at`` (a keyframe pasted over its
        prediction), pushed into it; yields (frame, slots). Without prompts or objects the slots are background."""
        prepare = self.predictor.prepare_image
        with torch.inference_mode():
            for frame, image in prefetched(stream, lambda f: (f, prepare(f.rgb)), depth=4):
                if len(bank) and colours is not None:
                    warped = None if motion is None else motion.warped(
                        None if previous is None else previous.full, frame.index)
                    slots = mode.predict(bank, Query(frame.index, image, frame.rgb, previous, warped), colours)
                    if frame.index != merge_at:
                        self._add_prompt(bank, mode, frame.index, frame.rgb, slots, image=image)
                else:
                    slots = Slots(np.zeros(self.predictor.half_size, np.uint8), np.zeros(frame.rgb.shape[:2], np.uint8))
                previous = slots
                yield frame, slots

    def _pass_predictor(self, keyframes: dict[int, tuple[np.ndarray, np.ndarray]]) -> SegGPTPredictor:
        """The predictor a pass starting from ``keyframes`` (index -> RGB, slots) paints with: the session's, or with
        adaptation on (``config.adaptation``), a copy adapted to those keyframes (``vos.adaptation``; kept for the
        passes that share them, e.g. both directions from one keyframe)."""
        adapt = self.config.adaptation(self.mode)
        if not adapt.enabled or not any(slots.any() for _, slots in keyframes.values()):
            return self.predictor
        key = (self.mode, adapt) + tuple((k, hashlib.blake2b(slots.tobytes(), digest_size=16).hexdigest())
                                         for k, (_, slots) in keyframes.items())
        if key not in self._adapted:
            while len(self._adapted) >= ADAPTED_KEPT:
                del self._adapted[next(iter(self._adapted))]
            self._adapted[key] = adapted_predictor(self.predictor, list(keyframes.values()), self.mode,
                                                   self.config.windows, adapt)
        return self._adapted[key]

    def _add_prompt(self, bank: PromptBank, mode: PaintMode, index: int, rgb: np.ndarray, slots: Slots, *,
                    image: torch.Tensor | None = None, permanent: bool = False) -> None:
        """Frame ``index`` (``image``: already prepared for the model) with its slots becomes a prompt."""
        image = self.predictor.prepare_image(rgb) if image is None else image
        prompt = PromptFrame(index, image, torch.as_tensor(slots.small).to(image.device).long())
        (bank.add_permanent if permanent else bank.push)(prompt)
        mode.observe(index, rgb, slots)

    def _resolved(self, k: int, complete: bool) -> np.ndarray:
        """The labels at keyframe ``k`` that passes start from: its mask, or (when it leaves objects out) the stored
        result of the pass that arrived there (computed earlier in every plan)."""
        if complete:
            return self._keyframes[k].labels
        stored = self._store.get(k)
        if stored is None:
            raise RuntimeError(f"keyframe {k} was used before the pass arriving there computed it")
        return stored[0]

    @staticmethod
    def _merge(given: np.ndarray, predicted: np.ndarray) -> np.ndarray:
        """The keyframe's objects pasted over the prediction, with those objects removed from the prediction."""
        redrawn = np.isin(predicted, object_ids_in(given))
        return np.where(given > 0, given, np.where(redrawn, 0, predicted)).astype(np.uint8)
