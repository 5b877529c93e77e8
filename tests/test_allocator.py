"""vos.allocator: freed frame-sized blocks are reused instead of being given back to the kernel and faulted in again."""

from __future__ import annotations

import ctypes
import json
import subprocess
import sys

import pytest

GLIBC = sys.platform.startswith("linux") and hasattr(ctypes.CDLL(None), "gnu_get_libc_version")

#: In a fresh interpreter: free one 1.2 MB block (a 480p frame; glibc's thresholds rise to its size), then 20 times
#: allocate, write and free four 1 MB arrays (frame-sized temporaries); prints the page faults of each round.
ROUNDS = """
import json, resource, sys
import numpy as np
from vos.allocator import keep_freed_blocks
if sys.argv[1] == "keep":
    assert keep_freed_blocks()
faults = lambda: resource.getrusage(resource.RUSAGE_SELF).ru_minflt
first = np.ones(1_200_000, np.uint8)
del first
counts = []
for _ in range(20):
    before = faults()
    blocks = [np.ones(1_000_000, np.uint8) for _ in range(4)]
    del blocks
    counts.append(faults() - before)
print(json.dumps(counts))
"""


def fault_counts(mode: str) -> list[int]:
    out = subprocess.run([sys.executable, "-c", ROUNDS, mode], capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


@pytest.mark.skipif(not GLIBC, reason="glibc's allocator only")
def test_freed_blocks_are_reused_without_page_faults():
    default, kept = fault_counts("default"), fault_counts("keep")
    # glibc's own thresholds give the 4 MB back at every free: each round faults its pages in again (4 MB = 1000
    # pages); kept, the rounds after the first reuse the same memory
    assert min(default[2:]) > 500, default
    assert max(kept[2:]) < 20, kept
