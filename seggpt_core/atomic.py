"""Atomic file writes: a file appears under its final name complete, or not at all.

Each file is written to a hidden temp file in its final folder and moved into place with ``os.replace``, so a crash or
kill never leaves a half-written file under its final name (this guards against the process dying, not against power
loss: nothing is fsynced). Imports nothing but the standard library, so every package of the project (and its CLI)
can use it. ``eval/`` keeps its own copy (``eval.report.atomic_path``) because it stands alone: it never imports
``seggpt_core`` or ``vos``.
"""

from __future__ import annotations

import glob
import os
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

_TEMP_TAG = ".tmp-"


def temp_path(path: Path) -> Path:
    """A hidden, unique temp name next to ``path`` that keeps its suffix (``.NAME.tmp-XXXX.SUFFIX``)."""
    return path.with_name(f".{path.stem}{_TEMP_TAG}{uuid.uuid4().hex[:8]}{path.suffix}")


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temp path beside ``path`` (its folder is created) for a writer that takes a file name, and move it
    onto ``path`` when the block succeeds; on failure the temp file is removed and ``path`` is left as it was."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_path(path)
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write(path: str | os.PathLike, write: Callable[[BinaryIO], object]) -> None:
    """Run ``write(file)`` on a binary temp file beside ``path``, then move it onto ``path`` (:func:`atomic_path`)."""
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        write(f)


def remove_stale_temps(folder: Path, suffix: str, stem: str | None = None) -> None:
    """Delete temp files that a killed run left in ``folder`` for ``<stem><suffix>`` (any stem when None).

    Only names this module creates are touched, and only of one suffix, as a whole-video output of another suffix may
    be writing its temp file in the same folder.
    """
    pattern = f".{'*' if stem is None else glob.escape(stem)}{_TEMP_TAG}*{suffix}"
    for p in folder.glob(pattern):
        p.unlink(missing_ok=True)
