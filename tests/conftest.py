"""Shared fixtures: the shared test data (the one place that skips when it is missing), small DAVIS-layout copies of
it, and a tiny random checkpoint."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from seggpt_core.model import PRESETS, SegGPT
from vos.datasets import DavisLayout

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


@pytest.fixture(scope="session")
def davis_subset(shared_data, tmp_path_factory) -> Callable[[str, dict[str, int]], Path]:
    """``davis_subset(set_name, {sequence: n})``: a fresh DAVIS-layout copy of the first ``n`` frames of each sequence
    of a shared set, val split."""

    def copy(set_name: str, sequences: dict[str, int]) -> Path:
        src, dst = DavisLayout(shared_data / set_name), DavisLayout(tmp_path_factory.mktemp(set_name))
        for seq, n in sequences.items():
            for folder, out, ext in ((src.frames(seq), dst.frames(seq), "jpg"),
                                     (src.annotations(seq), dst.annotations(seq), "png")):
                out.mkdir(parents=True)
                for i in range(n):
                    shutil.copy(folder / f"{i:05d}.{ext}", out)
        dst.split_file("val").parent.mkdir(parents=True)
        dst.split_file("val").write_text("".join(f"{s}\n" for s in sequences))
        return dst.root

    return copy
