"""Output preparation: every destination is checked, and claimed, before any frame is decoded.

A run learns that its output cannot be written before it spends minutes computing it: :func:`prepare_outputs` checks
that each destination is the right kind (a folder where folders go, a file where files go, a container the encoder
writes), that its folder exists or can be created (its nearest existing parent is a folder), that a file can be
created there (a probe file: this catches
read-only mounts and permissions, whoever runs it) and that the disk has some room left. Every command calls it
first; failures are one :class:`InputError` line naming the flag and the path.

:func:`claim_video` then takes the per-video :class:`~vos.locks.OutputLock` of each output (``OUT/<video>`` for
folder outputs, the file itself for whole-video files), so two runs never write one video at once.

An OS error while writing (disk filled up meanwhile, folder removed) is turned into one line by the CLI through
:func:`describe_os_error`; frames already written stay, as every write is atomic.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from seggpt_core.errors import InputError

from .alpha_video import ALPHA_CODECS
from .locks import OutputLock
from .writers import OverlayVideoWriter

if TYPE_CHECKING:
    from .pipeline import OutputSpec

#: Refuse to start when a destination's disk has less free space than this (a full disk is known up front).
MIN_FREE_BYTES = 64 * 2**20


@dataclass(frozen=True)
class Destination:
    """One output of a command: ``path`` is a ``folder`` (created when missing) or a ``file`` (its folder created);
    ``flag`` names it in messages; ``suffixes``: the file names accepted (any when empty)."""

    path: Path
    kind: Literal["folder", "file"]
    flag: str
    suffixes: tuple[str, ...] = ()


def prepare_outputs(destinations: Iterable[Destination], *, inputs: Iterable[str | Path] = (),
                    min_free: int = MIN_FREE_BYTES) -> None:
    """Check every destination before any work (creating nothing); :class:`InputError` on the first
    problem. A file given to two outputs, or one of the ``inputs``, is refused too (folders may be shared: each
    output names its files)."""
    destinations = list(destinations)
    check_not_inputs([d.path for d in destinations if d.kind == "file"], inputs)
    seen: dict[Path, Destination] = {}
    for d in destinations:
        key = Path(os.path.abspath(d.path))
        if key in seen and "file" in (d.kind, seen[key].kind):
            raise InputError(f"{d.path}: given to both {seen[key].flag} and {d.flag}; give each output its own path")
        seen[key] = d
    for d in destinations:
        _prepare(d, min_free)


def _prepare(d: Destination, min_free: int) -> None:
    path = d.path
    where = f"{d.flag} {path}"
    if d.kind == "file":
        if d.suffixes and path.suffix.lower() not in d.suffixes:
            raise InputError(f"{where}: this output is written as {', '.join(d.suffixes)} only; name the file "
                             f"{path.with_suffix(d.suffixes[0]).name}")
        if path.is_dir():
            raise InputError(f"{where}: is a folder, but a file is expected here; give a file path such as "
                             f"{path / ('out' + (d.suffixes[0] if d.suffixes else ''))}")
        if path.exists() and not path.is_file():
            raise InputError(f"{where}: exists and is not a regular file (a device or pipe); give a file path")
        folder = path.parent
    else:
        if path.exists() and not path.is_dir():
            raise InputError(f"{where}: is a file, but a folder is expected here; give a folder path")
        folder = path
    # The nearest folder that exists is where the missing ones will be created: probe there (nothing is created).
    existing = next(p for p in (folder, *folder.parents) if p.exists() or p.is_symlink())
    if not existing.is_dir():
        raise InputError(f"{where}: cannot be created because {existing} is not a folder; give a path in a folder")
    try:
        probe = existing / f".seggpt-vos-probe-{uuid.uuid4().hex[:8]}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as err:
        raise InputError(f"{where}: cannot write there ({err.strerror or err}); give a writable location") from None
    free = shutil.disk_usage(existing).free
    if free < min_free:
        raise InputError(f"{where}: only {free / 2**20:.1f} MB free on that disk (at least {min_free / 2**20:.0f} MB "
                         "needed); free some space or write elsewhere")


def check_not_inputs(targets: Iterable[Path], inputs: Iterable[str | Path]) -> None:
    """Refuse an output that would replace one of the command's inputs (``propagate v.mp4 --overlay v.mp4``)."""
    given = {Path(p).resolve(): p for p in inputs}
    for target in targets:
        if target.resolve() in given:
            raise InputError(f"{target}: is also an input ({given[target.resolve()]}); writing there would destroy "
                             "it, give another output path")


def describe_os_error(err: OSError) -> str:
    """One line for an OS error met while reading or writing: the path, the reason (saying so when the disk is
    full), and that finished files stay."""
    reason = err.strerror or (str(err.args[0]) if err.args else type(err).__name__)
    path = ""
    if err.filename:
        path = f"{err.filename}: "
        try:
            if shutil.disk_usage(Path(err.filename).parent).free < 2**20:
                reason += ", the disk is full"
        except OSError:
            pass
    return f"{path}{reason}; files finished before this are kept (rerun to resume once the disk or folder is fixed)"


# --- a video's outputs ------------------------------------------------------------------------------------------------

#: ``OutputSpec`` field -> (flag, kind, accepted suffixes). Folder outputs hold one sub-folder per video.
SPEC_OUTPUTS: dict[str, tuple[str, Literal["folder", "file"], tuple[str, ...]]] = {
    "masks": ("--out", "folder", ()),
    "overlay": ("--overlay", "file", OverlayVideoWriter.suffixes),
    "alpha": ("--alpha", "folder", ()),
    "cutout": ("--cutout", "folder", ()),
    "alpha_video": ("--alpha-video", "file", tuple(ALPHA_CODECS)),
    "exr": ("--exr", "folder", ()),
    "rle": ("--rle", "file", ()),
    "numpy": ("--numpy", "folder", ()),
}


def spec_destinations(spec: OutputSpec) -> list[Destination]:
    """The destinations of an :class:`~vos.pipeline.OutputSpec` (every ``Path`` field that is set)."""
    out = []
    for f in fields(spec):
        value = getattr(spec, f.name)
        if isinstance(value, Path):
            flag, kind, suffixes = SPEC_OUTPUTS[f.name]
            out.append(Destination(value, kind, flag, suffixes))
    return out


def check_video_name(name: str) -> str:
    """A video name becomes a folder name under each output: refuse one that would leave the folder."""
    if not name or name in (".", "..") or any(c in name for c in "/\\\0"):
        raise InputError(f"video name {name!r} is not a plain name (it would write outside the output folder); name "
                         "the video without '/', '\\' or '..'")
    return name


def video_targets(destinations: Sequence[Destination], video: str) -> list[Path]:
    """What one video writes: ``<folder>/<video>`` of folder outputs, file outputs themselves."""
    check_video_name(video)
    return [d.path / video if d.kind == "folder" else d.path for d in destinations]


def claim_video(destinations: Sequence[Destination], video: str, *, inputs: Iterable[str | Path] = ()) -> ExitStack:
    """Lock every output of ``video`` (released when the returned stack closes); :class:`InputError` naming the
    holder when another live run has one of them, or when an output is one of the ``inputs`` (a frame folder
    ``X/dog`` and ``--out X``)."""
    targets = video_targets(destinations, video)
    check_not_inputs(targets, inputs)
    with ExitStack() as stack:
        for target in targets:
            stack.enter_context(OutputLock(target))
        return stack.pop_all()
