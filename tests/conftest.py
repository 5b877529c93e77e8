"""Shared fixtures: the shared test data, small DAVIS-layout copies of it, and a tiny random checkpoint."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

from seggpt_core.model import PRESETS, SegGPT

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared test data not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory) -> Path:
    """A randomly initialised test-tiny model saved as model.safetensors + config.json."""
    torch.manual_seed(0)
    return SegGPT(PRESETS["test-tiny"]).save_pretrained(tmp_path_factory.mktemp("tiny-model"))


def copy_davis_subset(src: Path, dst: Path, sequences: dict[str, int]) -> Path:
    """A DAVIS-layout copy of the first ``n`` frames of each sequence (``sequences``: name -> n), val split."""
    for seq, n in sequences.items():
        for kind, ext in (("JPEGImages", "jpg"), ("Annotations", "png")):
            out = dst / kind / "480p" / seq
            out.mkdir(parents=True)
            for i in range(n):
                shutil.copy(src / kind / "480p" / seq / f"{i:05d}.{ext}", out)
    (dst / "ImageSets" / "2017").mkdir(parents=True)
    (dst / "ImageSets" / "2017" / "val.txt").write_text("".join(f"{s}\n" for s in sequences))
    return dst
