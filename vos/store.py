"""The session's results: one full-resolution uint8 label map per computed frame, bounded in memory.

Maps stay in RAM up to a byte budget; beyond it the oldest entries are spilled to ``.npy`` files in a temporary folder
(created on first spill, removed by ``close``), so a 3,000-frame video does not grow the process. All-background maps
take no space. Each entry carries the *key* of the computation that produced it (which keyframes, which pass), so the
session can tell a reusable result from a stale one.
"""

from __future__ import annotations

import shutil
import tempfile
from collections import OrderedDict
from collections.abc import Hashable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass
class _Entry:
    key: Hashable
    full: np.ndarray | None  #: (H, W) uint8, None when spilled or empty
    small: np.ndarray | None  #: (h, w) uint8 at model resolution, None when spilled or empty
    empty: bool = False
    spilled: bool = False


class ResultStore:
    """Frame index -> (key, (H, W) uint8 labels, (h, w) uint8 labels at model resolution).

    Args:
        budget_bytes: RAM kept for label maps before the oldest are spilled to disk.
        folder: where spills go (default: a fresh temporary folder, created when first needed).
    """

    def __init__(self, budget_bytes: int, folder: str | Path | None = None) -> None:
        self.budget_bytes = int(budget_bytes)
        self._folder = Path(folder) if folder is not None else None
        self._own_folder = folder is None
        self._entries: OrderedDict[int, _Entry] = OrderedDict()
        self._ram_bytes = 0

    def __contains__(self, index: int) -> bool:
        return index in self._entries

    def __len__(self) -> int:
        return len(self._entries)

    def indices(self) -> Iterator[int]:
        return iter(sorted(self._entries))

    @property
    def ram_bytes(self) -> int:
        return self._ram_bytes

    def key(self, index: int) -> Hashable | None:
        entry = self._entries.get(index)
        return None if entry is None else entry.key

    def put(self, index: int, key: Hashable, full: np.ndarray, small: np.ndarray) -> None:
        """Keep (copies of) ``full`` (H, W) and ``small`` (h, w) uint8 labels for frame ``index``."""
        self.drop(index)
        empty = not full.any() and not small.any()
        entry = _Entry(key, None if empty else np.array(full, np.uint8), None if empty else np.array(small, np.uint8),
                       empty=empty)
        self._shape = (full.shape, small.shape)
        self._entries[index] = entry
        self._ram_bytes += self._size(entry)
        self._spill()

    def get(self, index: int) -> tuple[np.ndarray, np.ndarray] | None:
        """(full, small) labels of frame ``index``, or None when not computed."""
        entry = self._entries.get(index)
        if entry is None:
            return None
        if entry.empty:
            (h, w), small = self._shape
            return np.zeros((h, w), np.uint8), np.zeros(small, np.uint8)
        if entry.spilled:
            with np.load(self._path(index)) as data:
                return data["full"], data["small"]
        return entry.full.copy(), entry.small.copy()

    def drop(self, index: int) -> None:
        entry = self._entries.pop(index, None)
        if entry is None:
            return
        self._ram_bytes -= self._size(entry)
        if entry.spilled:
            self._path(index).unlink(missing_ok=True)

    def clear(self) -> None:
        for index in list(self._entries):
            self.drop(index)

    def close(self) -> None:
        """Forget everything and remove the spill folder (when the store made it)."""
        self.clear()
        if self._own_folder and self._folder is not None:
            shutil.rmtree(self._folder, ignore_errors=True)
            self._folder = None

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # noqa: BLE001 - interpreter shutdown
            pass

    @staticmethod
    def _size(entry: _Entry) -> int:
        if entry.empty or entry.spilled:
            return 0
        return entry.full.nbytes + entry.small.nbytes

    def _path(self, index: int) -> Path:
        return self._folder / f"{index:07d}.npz"

    def _spill(self) -> None:
        """Move the oldest in-RAM entries to disk until RAM use is within the budget."""
        for index, entry in self._entries.items():
            if self._ram_bytes <= self.budget_bytes:
                return
            if entry.empty or entry.spilled:
                continue
            if self._folder is None:
                self._folder = Path(tempfile.mkdtemp(prefix="seggpt-vos-results-"))
            self._folder.mkdir(parents=True, exist_ok=True)
            np.savez(self._path(index), full=entry.full, small=entry.small)
            self._ram_bytes -= self._size(entry)
            entry.full = entry.small = None
            entry.spilled = True
