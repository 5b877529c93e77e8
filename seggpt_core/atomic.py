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
    """A hidden, unique temp name next to ``path`` that keeps its suffix (``.NAME.tmp-PID-XXXX.SUFFIX``); the pid
    tells a later run whether the file's writer is still alive (:func:`remove_stale_temps`)."""
    return path.with_name(f".{path.stem}{_TEMP_TAG}{os.getpid()}-{uuid.uuid4().hex[:8]}{path.suffix}")


def _writer_alive(temp: Path) -> bool:
    """Whether the process that named ``temp`` (its pid is in the name) still runs on this machine."""
    pid = temp.name.partition(_TEMP_TAG)[2].partition("-")[0]
    if not pid.isdigit():
        return False  # an older name without a pid: its writer is gone
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


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
    except BaseException as err:
        tmp.unlink(missing_ok=True)
        if isinstance(err, OSError) and err.filename is None:  # a failed write (disk full) names its output
            raise OSError(err.errno, err.strerror or str(err), str(path)) from err
        raise


def atomic_write(path: str | os.PathLike, write: Callable[[BinaryIO], object]) -> None:
    """Run ``write(file)`` on a binary temp file beside ``path``, then move it onto ``path`` (:func:`atomic_path`)."""
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        write(f)


def remove_stale_temps(folder: Path, suffix: str, stem: str | None = None) -> None:
    """Delete temp files that a killed run left in ``folder`` for ``<stem><suffix>`` (any stem when None).

    Only names this module creates are touched, only of one suffix, as a whole-video output of another suffix may be
    writing its temp file in the same folder, and only those of processes that are gone: another live run's files in
    flight are left alone.
    """
    pattern = f".{'*' if stem is None else glob.escape(stem)}{_TEMP_TAG}*{suffix}"
    for p in folder.glob(pattern):
        if not _writer_alive(p):
            p.unlink(missing_ok=True)
