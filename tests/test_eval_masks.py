"""Reading label PNGs: the fast path returns exactly what PIL returns (the toolkit's reader), on both inflaters."""

from __future__ import annotations

import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from eval import inflate
from eval.errors import EvalError
from eval.masks import read_labels
from tests.eval_helpers import read_png


def _sample_pngs(data: Path) -> list[Path]:
    paths = sorted(data.glob("*/Annotations/480p/*/*.png")) + sorted(data.glob("davis-mini-osvos/*/*.png"))
    return paths[::7]


@pytest.mark.parametrize("inflater", ["default", "zlib"])
def test_fast_path_equals_pil_on_the_shared_data(monkeypatch, inflater, shared_data):
    if inflater == "zlib":
        monkeypatch.setattr(inflate, "inflate", inflate.zlib_inflate)
    for path in _sample_pngs(shared_data):
        assert np.array_equal(read_labels(path), read_png(path)), path


def test_libdeflate_when_present_matches_zlib_and_rejects_bad_streams():
    if not isinstance(inflate.inflate, inflate.LibdeflateInflater):
        pytest.skip("libdeflate is not installed here; zlib is used")
    payload = np.random.default_rng(0).integers(0, 3, 50_000).astype(np.uint8).tobytes()
    stream = zlib.compress(payload)
    assert inflate.inflate(stream, len(payload)).tobytes() == payload
    assert inflate.inflate(stream, len(payload) - 1) is None  # more data than expected
    assert inflate.inflate(stream, len(payload) + 1) is None  # less
    assert inflate.inflate(stream[:-4] + b"\0\0\0\0", len(payload)) is None  # Adler-32 mismatch


def test_filtered_and_odd_pngs_go_through_pil(tmp_path):
    labels = (np.arange(40 * 60).reshape(40, 60) % 5).astype(np.uint8)
    filtered = tmp_path / "filtered.png"
    cv2.imwrite(str(filtered), labels)  # greyscale, written with PNG row filters
    assert np.array_equal(read_labels(filtered), labels)
    Image.fromarray(labels == 1).save(tmp_path / "binary.png")  # mode "1": a 1-bit single-object mask
    assert np.array_equal(read_labels(tmp_path / "binary.png"), (labels == 1).astype(np.uint8))
    Image.fromarray(labels.astype(np.uint16) * 300).save(tmp_path / "sixteen.png")
    with pytest.raises(EvalError, match="sixteen.png is a I;16 image"):
        read_labels(tmp_path / "sixteen.png")
    (tmp_path / "truncated.png").write_bytes(filtered.read_bytes()[:60])
    with pytest.raises(EvalError, match="truncated.png is not a readable PNG"):
        read_labels(tmp_path / "truncated.png")
