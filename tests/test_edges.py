"""Edge refinement of the windows mode (``vos.edges``): painted outlines moved onto the frame's edges."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from seggpt_core.errors import InputError
from vos.config import EdgeConfig, PropagationConfig
from vos.edges import refine_window


def first_object_column(rgb: np.ndarray, config: EdgeConfig) -> tuple[int, torch.Tensor, torch.Tensor]:
    """A coarse painting of an object from column 95 on, in the window x 50..149, y 10..109 of a (120, 200) frame,
    refined on ``rgb`` -> (the first column where every row of the window is object, scores before, after)."""
    h, w = rgb.shape[:2]
    scores = torch.full((h, w), -torch.inf)
    scores[10:110, 50:150] = torch.where(torch.arange(50, 150) >= 95, 1.0, -1.0).expand(100, 100)
    refined = scores.clone()
    refine_window(refined, rgb, (10, 50, 100, 100), (25, 25), config)  # 4 frame pixels per model pixel
    inside = refined[10:110, 50:150] > 0
    assert torch.equal(inside.any(0), inside.all(0))  # a straight outline stays straight
    return int(np.flatnonzero(inside.all(0).numpy())[0]) + 50, scores, refined


@pytest.mark.parametrize("edge", [92, 98])
def test_the_outline_moves_onto_a_frame_edge_within_the_radius(edge):
    """The painting's edge at column 95, the object's real edge (a step from grey 40 to 200) 3 px away: refined with a
    radius of 2 model pixels (8 frame pixels), the outline lands on the real edge; on a flat frame it stays; nothing
    outside the window changes."""
    rgb = np.full((120, 200, 3), 40, np.uint8)
    rgb[:, edge:] = 200
    column, scores, refined = first_object_column(rgb, EdgeConfig(radius=2, contrast=20))
    assert column == edge
    outside = torch.ones(120, 200, dtype=torch.bool)
    outside[10:110, 50:150] = False
    assert torch.equal(refined[outside], scores[outside])
    assert first_object_column(np.full_like(rgb, 40), EdgeConfig(radius=2, contrast=20))[0] == 95


def test_windows_mode_with_edges_follows_the_ground_truth_more_closely():
    """The shipped model on generated videos (adaptation off, so only the refinement differs): mean J against the
    ground truth is higher with the refinement than with the outline resized as painted."""
    from seggpt_core.adaptation import AdaptConfig
    from seggpt_core.predictor import SegGPTPredictor
    from vos.session import VideoSession
    from vos.training.synthetic import SyntheticVideo, SyntheticVideoConfig

    predictor = SegGPTPredictor.from_pretrained("seggpt-vos-small", device="cpu", dtype="fp32")
    j = {}
    for name, edges in (("off", EdgeConfig(radius=0)), ("on", EdgeConfig())):
        scores = []
        for seed in (3_000_020, 3_000_021):
            clip = SyntheticVideo(seed, SyntheticVideoConfig(num_frames=8))
            frames = [clip.frame(t) for t in range(len(clip))]
            session = VideoSession(predictor, [f[0] for f in frames],
                                   PropagationConfig(mode="windows", edges=edges, adapt=AdaptConfig(steps=0)))
            session.add_mask(0, frames[0][1])
            for prediction, (_, truth) in zip(list(session.propagate())[1:], frames[1:]):
                for obj in np.unique(truth[truth > 0]):
                    a, b = prediction.labels == obj, truth == obj
                    scores.append((a & b).sum() / (a | b).sum())
        j[name] = float(np.mean(scores))
    assert j["on"] > j["off"] + 0.01, j


def test_edge_settings_are_checked_and_reach_the_config_from_the_command_line():
    from vos.cli.commands import propagation_config
    from vos.cli.main import build_parser

    assert EdgeConfig().enabled and not EdgeConfig(radius=0).enabled
    for bad in ({"radius": -1}, {"radius": float("nan")}, {"contrast": 0}, {"contrast": 300}):
        with pytest.raises(InputError, match="edge"):
            EdgeConfig(**bad)
    with pytest.raises(InputError, match="EdgeConfig"):
        PropagationConfig(edges=2.0)
    args = build_parser().parse_args(["propagate", "v.mp4", "--masks", "m", "--edge-radius", "3",
                                      "--edge-contrast", "9"])
    assert propagation_config(args).edges == EdgeConfig(radius=3, contrast=9)
    args = build_parser().parse_args(["propagate", "v.mp4", "--masks", "m", "--edge-radius", "0"])
    assert not propagation_config(args).edges.enabled
