"""Frame folders: which files of a folder are a video's frames, and in which order.

One rule for every reader of frame folders (the frame reader, the dataset listings, tuning, the training samplers):
image files by extension, sorted by :func:`natural_key`, so that ``frame2`` comes before ``frame10`` everywhere and a
frame's position means the same to all of them.
"""

from __future__ import annotations

import re
from pathlib import Path

#: Extensions read as frames inside a frame folder.
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")


def natural_key(name: str) -> tuple:
    """Sort key that orders digit runs by value: ``frame2`` before ``frame10``, ``9.jpg`` before ``10.jpg``."""
    parts = re.split(r"(\d+)", name)
    return tuple((0, int(p)) if p.isdigit() else (1, p.lower()) for p in parts if p), name


def list_frames(folder: Path) -> list[Path]:
    """The image files of ``folder`` (:data:`IMAGE_SUFFIXES`, any case) in natural order of their names; the caller
    checks that ``folder`` exists."""
    return sorted((p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()),
                  key=lambda p: natural_key(p.name))
