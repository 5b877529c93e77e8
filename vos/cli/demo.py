"""``seggpt-vos demo``: the whole product on a short generated video, in well under a minute on a CPU.

It generates a video with exact ground truth (procedural textures, a seed never used in training), propagates the
first-frame masks with the shipped model, writes palette PNGs and an overlay mp4, scores J&F against the ground
truth with ``eval/`` next to the trivial baseline (the first-frame mask repeated on every frame) and prints where
everything went.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from seggpt_core.predictor import SegGPTPredictor

from ..datasets import DavisLayout
from ..pipeline import OutputSpec, VideoStats, run_video
from ..session import PropagationConfig
from ..training.synthetic import SyntheticVideoConfig, write_davis_dataset

#: Held out from training (training seeds are below 1_000_000; see the model card).
DEMO_SEED = 1_000_007
DEMO_VIDEO = SyntheticVideoConfig(size=(480, 854), num_frames=40, num_objects=(3, 3), texture_source="procedural")


@dataclass(frozen=True)
class DemoResult:
    data: Path  #: the generated video and ground truth (DAVIS layout)
    masks: Path  #: predicted palette PNGs
    overlay: Path  #: H.264 overlay video
    stats: VideoStats
    jf: float  #: J&F-Mean (DAVIS protocol) of the prediction, in [0, 1]
    j: float
    f: float
    baseline_jf: float  #: J&F-Mean of repeating the first-frame mask on every frame, in [0, 1]


def run_demo(predictor: SegGPTPredictor, out: Path, *, seed: int | None = None,
             video: SyntheticVideoConfig = DEMO_VIDEO, config: PropagationConfig = PropagationConfig(),
             progress: bool = True) -> DemoResult:
    from eval.davis import evaluate_davis

    seed = DEMO_SEED if seed is None else seed
    data = out / "data"
    name = "demo"
    write_davis_dataset(data, {name: seed}, video, progress=progress)
    layout = DavisLayout(data)
    frames, first_mask = layout.frames(name), layout.annotations(name) / "00000.png"
    outputs = OutputSpec(masks=out / "masks", overlay=out / "overlay.mp4")
    stats = run_video(predictor, frames, {0: first_mask}, outputs, config, name=name, progress=progress)
    report = evaluate_davis(data, out / "masks", "val", workers=1)
    baseline = evaluate_davis(data, _repeat_first_mask(first_mask, out / "repeat-first-mask" / name).parent, "val",
                              workers=1)
    return DemoResult(data, out / "masks" / name, out / "overlay.mp4", stats, report.overall.jf_mean,
                      report.overall.j.mean, report.overall.f.mean, baseline.overall.jf_mean)


def _repeat_first_mask(first_mask: Path, out: Path) -> Path:
    """The trivial baseline's results: ``first_mask`` copied under every ground-truth frame's name into ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    for path in sorted(first_mask.parent.glob("*.png")):
        shutil.copyfile(first_mask, out / path.name)
    return out
