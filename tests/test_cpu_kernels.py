"""The fused attention kernel's build: never a hang, never required."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from seggpt_core.cpu_kernels import build_folder, kernel_available

PROBE = "from seggpt_core.cpu_kernels import kernel_available; print(kernel_available())"


def probe(**env) -> str:
    result = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=300,
                            env={**os.environ, **env})
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


@pytest.mark.skipif(not kernel_available(), reason="the fused attention kernel needs an AVX-512 CPU and a compiler")
def test_a_build_killed_half_way_does_not_hang_the_next_load():
    """torch waits for ever on its ``lock`` file, which a killed build leaves behind; the next load removes it."""
    (build_folder() / "lock").touch()
    assert probe() == "True"  # within the timeout, not a hang
    assert not (build_folder() / "lock").exists()


def test_kernels_can_be_turned_off():
    assert probe(SEGGPT_VOS_NO_KERNELS="1") == "False"
