"""Keep freed memory in the process's heap (glibc malloc) for the training and rollout loops.

glibc's malloc serves a request above its mmap threshold (dynamic, at most 32 MiB on 64-bit
Linux) with a fresh ``mmap`` and unmaps it on ``free``. A width-100 network on the pairs of a
frame of N = 1e4 particles (81,203 pairs, float32) makes activations of 32.5 MiB, just above
that limit, so every training step mapped them afresh and the kernel zeroed them page by
page: about 28,000 minor page faults a step and a tenth of the step's CPU time in the kernel
(bench/model.md, "Compiled friction-table interpolation, heap retention, compiled
rollouts"). With mmap off (``M_MMAP_MAX = 0``) and trimming only above
2 GiB (``M_TRIM_THRESHOLD``), freed blocks stay in the heap and the next step reuses them; the
price is that the resident memory does not shrink below its peak until the process ends,
which is what a training or rollout process wants.
"""

from __future__ import annotations

import ctypes
import logging
import sys

log = logging.getLogger(__name__)

M_TRIM_THRESHOLD = -1  # mallopt parameter numbers of glibc's <malloc.h>
M_MMAP_MAX = -4
TRIM_THRESHOLD_BYTES = 2**31 - 1  # mallopt takes an int


def retain_freed_memory() -> bool:
    """Switch glibc malloc to keep freed memory for reuse (see the module docstring).

    Returns True if glibc accepted both settings; False (and changes nothing) off Linux or
    where the C library has no ``mallopt`` (e.g. musl). Affects allocations made afterwards
    in the whole process; calling it again is harmless.
    """
    if not sys.platform.startswith("linux"):
        return False
    libc = ctypes.CDLL(None)
    mallopt = getattr(libc, "mallopt", None)
    gnu_version = getattr(libc, "gnu_get_libc_version", None)
    if mallopt is None or gnu_version is None:
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    ok = bool(mallopt(M_MMAP_MAX, 0)) and bool(mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES))
    log.debug("glibc malloc keeps freed memory (mmap off, trim above 2 GiB): %s", ok)
    return ok
