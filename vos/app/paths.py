"""Paths given to the API: relative to ``--root``, resolved inside it (no ``..``, no absolute paths, no symlink that
leads out), and the videos found under it."""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath

from seggpt_core.errors import InputError

from ..frame_folders import IMAGE_SUFFIXES
from ..readers import VIDEO_SUFFIXES
from .errors import ApiError


def resolve_inside(root: Path, relative: str, *, must_exist: bool = True) -> Path:
    """``root / relative``, fully resolved, refused unless it stays inside ``root`` (itself resolved)."""
    text = (relative or "").strip().replace("\\", "/")
    if not text:
        raise InputError("empty path; give a path relative to the app's root folder")
    parts = PurePosixPath(text)
    if parts.is_absolute() or ".." in parts.parts or ":" in parts.parts[0]:
        raise InputError(f"{relative}: give a path relative to the app's root folder, without '..'")
    path = (root / parts).resolve()
    if not path.is_relative_to(root):
        raise InputError(f"{relative}: leads outside the app's root folder (through a link); use a path inside it")
    if must_exist and not path.exists():
        raise ApiError(404, f"{relative}: not found under the app's root folder")
    return path


def list_videos(root: Path, *, max_depth: int = 4, limit: int = 500) -> list[dict]:
    """Video files and frame folders under ``root`` (hidden entries and links skipped), as relative POSIX paths."""
    found: list[dict] = []
    for folder, dirs, files in os.walk(root):
        here = Path(folder)
        depth = len(here.relative_to(root).parts)
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and not (here / d).is_symlink())
        if depth >= max_depth:
            dirs[:] = []
        images = 0
        for name in sorted(files):
            path = here / name
            if name.startswith(".") or path.is_symlink():
                continue
            suffix = path.suffix.lower()
            if suffix in VIDEO_SUFFIXES:
                found.append({"path": path.relative_to(root).as_posix(), "kind": "video"})
            images += suffix in IMAGE_SUFFIXES
        if images > 1 and here != root:
            found.append({"path": here.relative_to(root).as_posix(), "kind": "frames", "frames": images})
        if len(found) >= limit:
            break
    return sorted(found, key=lambda v: v["path"])[:limit]
