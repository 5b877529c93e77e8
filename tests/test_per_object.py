"""Per-object mode against known answers: one white-on-black pass per object, merged without overlap.

The painter repaints its newest prompt's target, so the answer is known exactly: every object's own white-on-black
mask comes back, and the merged prediction must equal the newest annotation after the model-resolution round trip,
computed independently with PIL and numpy indexing (``tests.painters``).
"""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image

from seggpt_core.model import IMAGENET_MEAN, IMAGENET_STD, PRESETS
from seggpt_core.predictor import SegGPTPredictor
from tests.painters import RecordingRepainter, RepaintNewestPrompt, round_trip
from vos.masks import read_label_png
from vos.session import PropagationConfig, VideoSession

TINY = PRESETS["test-tiny"]
#: Black and white as the model sees them (ImageNet-normalised), per channel.
BLACK = torch.tensor([-m / s for m, s in zip(IMAGENET_MEAN, IMAGENET_STD)])
WHITE = torch.tensor([(1 - m) / s for m, s in zip(IMAGENET_MEAN, IMAGENET_STD)])


def test_per_object_mode_equals_the_repainted_annotations(shared_data):
    """Late object, user ids with gaps, 60 real frames: each prediction is the newest annotation, round-tripped."""
    root = shared_data / "davis-edge-lateobj"
    mask0, _ = read_label_png(root / "Annotations/480p/dog-lateobj/00000.png")
    mask20, _ = read_label_png(root / "Annotations/480p/dog-lateobj/00020.png")
    lut = np.zeros(256, np.uint8)
    lut[1], lut[2] = 7, 42
    predictor = SegGPTPredictor(RepaintNewestPrompt(TINY), device="cpu", dtype="fp32")
    session = VideoSession(predictor, root / "JPEGImages/480p/dog-lateobj",
                           PropagationConfig(context=0, mode="per-object"))
    session.add_mask(0, lut[mask0])
    session.add_mask(20, lut[mask20])
    assert session.mode == "per-object"
    preds = list(session.propagate("forward"))  # the frames after each keyframe come from it
    assert [p.index for p in preds] == list(range(60))
    np.testing.assert_array_equal(preds[0].labels, lut[mask0])
    np.testing.assert_array_equal(preds[20].labels, lut[mask20])
    for i in (1, 10, 19):
        np.testing.assert_array_equal(preds[i].labels, round_trip(lut[mask0], TINY.half_size))
    for i in (21, 40, 59):
        np.testing.assert_array_equal(preds[i].labels, round_trip(lut[mask20], TINY.half_size))
    assert session.objects == (7, 42)


def test_each_object_gets_its_own_white_on_black_pass():
    """Two objects (ids 3 and 5): every frame after the annotation makes one pass per object, whose prompt shows that
    object alone in white on black, at model resolution."""
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 256, (120, 200, 3), dtype=np.uint8) for _ in range(3)]
    mask = np.zeros((120, 200), np.uint8)
    mask[20:60, 30:90] = 3
    mask[70:110, 120:190] = 5
    painter = RecordingRepainter(TINY)
    session = VideoSession(SegGPTPredictor(painter, device="cpu", dtype="fp32"), iter(frames),
                           PropagationConfig(context=0, mode="per-object"))
    session.add_mask(0, mask)
    preds = [p.labels for p in session.propagate()]
    assert len(painter.targets) == 2 * 2  # frames 1 and 2, one pass per object (frame 0 is the annotation)
    h, w = TINY.half_size
    small = np.array(Image.fromarray(mask).resize((w, h), Image.NEAREST))  # the prompt's mask at model resolution
    for call, object_id in zip(painter.targets, (3, 5, 3, 5)):
        (target,) = call  # context 0: the annotated frame is the only prompt
        white = torch.isclose(target, WHITE.view(3, 1, 1), atol=1e-5).all(0)
        black = torch.isclose(target, BLACK.view(3, 1, 1), atol=1e-5).all(0)
        assert bool((white | black).all())
        np.testing.assert_array_equal(white.numpy(), small == object_id)
    for labels in preds[1:]:
        np.testing.assert_array_equal(labels, round_trip(mask, TINY.half_size))
