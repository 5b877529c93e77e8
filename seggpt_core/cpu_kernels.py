"""The fused bias-softmax CPU kernel (``csrc/bias_softmax.cpp``), built for this machine on first use.

torch's own CPU attention kernel gains nothing from bf16 on a CPU without AMX, while its GEMMs run bf16 at several
times the fp32 rate; the ``fused`` attention variant therefore runs the two attention matmuls as bf16 GEMMs and
needs only the softmax in between, with the decomposed bias folded in. This module compiles that one function with
``torch.utils.cpp_extension`` (a C++ compiler and ninja; about 25 s once, then cached in :func:`build_folder`). It
exists only for AVX-512 CPUs; anywhere else, or when the build fails (no compiler), :func:`kernel_available` is
False and the attention runs the ``blocked`` variant instead. Set ``SEGGPT_VOS_NO_KERNELS=1`` to never build it.
"""

from __future__ import annotations

import logging
import os
from contextlib import contextmanager
from functools import cache
from pathlib import Path

import torch

log = logging.getLogger(__name__)

SOURCE = Path(__file__).with_name("csrc") / "bias_softmax.cpp"
FLAGS = ["-O3", "-mavx512f", "-mavx512bw", "-mavx512vl", "-mavx512dq", "-mfma", "-DCPU_CAPABILITY_AVX512",
         "-DCPU_CAPABILITY=AVX512"]


@cache
def _extension():
    """The built extension module, or None where it cannot run here (built once per process, cached on disk)."""
    if os.environ.get("SEGGPT_VOS_NO_KERNELS") or torch.backends.cpu.get_cpu_capability() != "AVX512":
        return None
    from torch.utils.cpp_extension import load

    try:
        folder = build_folder()
        folder.mkdir(parents=True, exist_ok=True)
        with _build_guard(folder):
            log.info("loading the fused attention kernel (built once per machine, about 25 s)")
            return load(name="seggpt_bias_softmax", sources=[str(SOURCE)], extra_cflags=FLAGS,
                        build_directory=str(folder), verbose=False)
    except Exception as error:  # no compiler, no headers: the blocked variant does the same work, slower
        log.warning("seggpt-vos: could not build the fused attention kernel (%s); using the unfused form",
                    str(error).strip().splitlines()[-1] if str(error).strip() else type(error).__name__)
        return None


def build_folder() -> Path:
    """Where the kernel is built and cached: ``$TORCH_EXTENSIONS_DIR`` (else ``~/.cache/torch_extensions``), one folder
    per torch version."""
    base = os.environ.get("TORCH_EXTENSIONS_DIR") or Path.home() / ".cache" / "torch_extensions"
    return Path(base) / f"seggpt_bias_softmax-torch{torch.__version__}"


@contextmanager
def _build_guard(folder: Path):
    """One builder at a time, under a lock the kernel drops when its holder dies (``flock``). torch's own lock
    (a ``lock`` file, waited on for ever) outlives a build killed half-way, after which every later load would hang;
    whoever holds this guard knows such a file is stale and removes it."""
    try:
        import fcntl
    except ImportError:  # not POSIX: torch's lock alone
        yield
        return
    with open(folder / ".guard", "w") as guard:
        fcntl.flock(guard, fcntl.LOCK_EX)
        (folder / "lock").unlink(missing_ok=True)
        yield


@torch.compiler.assume_constant_result
def kernel_available() -> bool:
    """Whether :func:`bias_softmax` runs here (an AVX-512 CPU, and the kernel built); builds it on the first call."""
    return _extension() is not None


@torch.library.custom_op("seggpt_vos::bias_softmax", mutates_args=())
def bias_softmax(logits: torch.Tensor, rel_h: torch.Tensor, rel_w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """logits (m, r, n) bf16, rel_h (m, r, gh) fp32, rel_w (m, r, gw) fp32 -> (e (m, r, n) bf16, sums (m, r, 1) fp32)
    with ``e = exp(logits + rel_h[kh] + rel_w[kw] - rowmax)`` unnormalised. A torch custom op (with a shape-only
    fake below), so ``torch.compile`` keeps it in its graph."""
    extension = _extension()
    if extension is None:
        raise RuntimeError("the fused attention kernel is not available on this machine (kernel_available() is False)")
    return tuple(extension.bias_softmax(logits, rel_h, rel_w))


@bias_softmax.register_fake
def _(logits: torch.Tensor, rel_h: torch.Tensor, rel_w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    m, r, _ = logits.shape
    return torch.empty_like(logits), rel_h.new_empty(m, r, 1)
