"""The C allocator's settings for a process that streams video: each frame brings arrays of 0.4 to 20 MB (decoded
frames, mattes, encoder buffers, the model's activations) that live for a frame or two.

glibc hands out a block above its mmap threshold as fresh pages mapped from the kernel and unmaps it when freed, and
returns free memory at the top of a heap to the kernel once there is more than its trim threshold; a page it gets
back costs a page fault (and zeroing) at the next first write, about 0.3 ms per MB here. Both thresholds start low
(128 KiB) and rise only when an mmapped block is freed, to that block's size, so what a run pays depended on which
big blocks happened to be freed first: the model's ``paint`` alone cost 21 ms of CPU a frame in a process that had
not freed a 20 MB decoded chunk before, and 16.6 ms with the thresholds fixed (``scripts/bench_pipeline.py --stages``,
README *Pipeline*).

:func:`keep_freed_blocks` fixes both: blocks under 32 MiB come from the heaps and are reused, and up to 64 MiB free at
a heap's top stays in the process. The price is that much more resident memory per heap at most. It is a setting of
the whole process, so the library never makes it behind a caller's back: the ``seggpt-vos`` command line (the app
included) sets it at start-up, and a program that streams video through the library calls it itself.
"""

from __future__ import annotations

import ctypes
import sys

#: Blocks below this come from the heaps (glibc's largest allowed value on 64-bit: half its 64 MiB heap size).
MMAP_THRESHOLD = 32 * 2**20
#: Free memory at the top of a heap kept for reuse rather than returned to the kernel.
TRIM_THRESHOLD = 64 * 2**20

_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # mallopt parameters, <malloc.h>


def keep_freed_blocks() -> bool:
    """Set glibc's mmap and trim thresholds for this whole process (see the module docstring); True when they are
    set, False where the C library is not glibc (nothing is done). Safe to call any number of times."""
    if not sys.platform.startswith("linux"):
        return False
    libc = ctypes.CDLL(None)
    if not hasattr(libc, "gnu_get_libc_version"):  # musl and others: their mallopt does not take these
        return False
    return bool(libc.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(
        libc.mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD))
