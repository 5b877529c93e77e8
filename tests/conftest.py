"""Shared fixtures: the shared test data (the one place that skips when it is missing), small DAVIS- and
YouTube-VOS-layout sets made from it, and a tiny random checkpoint."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from seggpt_core.model import PRESETS, SegGPT
from vos.datasets import DavisLayout
from vos.masks import davis_palette, read_label_png

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


@pytest.fixture(scope="session")
def youtube_vos(shared_data) -> Callable[..., Path]:
    """``youtube_vos(root, with_meta=True)``: a YouTube-VOS ``valid`` split under ``root`` from dog-lateobj (frames
    0..29, every 5th in the split), PNGs only where an object first appears; returns ``root/valid``.

    The later PNG holds only the new object, as in YouTube-VOS; ``root/all_frames`` has every frame.
    """
    source = DavisLayout(shared_data / "davis-edge-lateobj")
    src_frames, src_masks = source.frames("dog-lateobj"), source.annotations("dog-lateobj")

    def make(root: Path, *, with_meta: bool = True) -> Path:
        split = root / "valid"
        (split / "JPEGImages" / "vid1").mkdir(parents=True)
        (split / "Annotations" / "vid1").mkdir(parents=True)
        (root / "all_frames" / "JPEGImages" / "vid1").mkdir(parents=True)
        for i in range(0, 30):
            shutil.copy(src_frames / f"{i:05d}.jpg", root / "all_frames" / "JPEGImages" / "vid1" / f"{i:05d}.jpg")
            if i % 5 == 0:
                shutil.copy(src_frames / f"{i:05d}.jpg", split / "JPEGImages" / "vid1" / f"{i:05d}.jpg")
        first, _ = read_label_png(src_masks / "00000.png")
        later, _ = read_label_png(src_masks / "00020.png")
        for name, labels in (("00000", np.where(first == 1, 1, 0)), ("00020", np.where(later == 2, 2, 0))):
            image = Image.fromarray(labels.astype(np.uint8))
            image.putpalette(davis_palette().ravel().tolist())
            image.save(split / "Annotations" / "vid1" / f"{name}.png")
        if with_meta:
            frames = [f"{i:05d}" for i in range(0, 30, 5)]
            meta = {"videos": {"vid1": {"objects": {"1": {"category": "dog", "frames": frames},
                                                    "2": {"category": "camel", "frames": frames[4:]}}}}}
            (split / "meta.json").write_text(json.dumps(meta))
        return split

    return make
