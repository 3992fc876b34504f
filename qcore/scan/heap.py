"""Keep freed blocks of a few MB in the process heap while scanning.

glibc's ``malloc`` serves a block above its mmap threshold with fresh pages and returns them
on ``free``: every chunk's float32/float64 temporaries (1-8 MB each) then page-faults again
(about a fifth of the serial INT8 minmax scan's CPU time, measured on the benchmark checkpoint).
Raising the threshold to :data:`HEAP_REUSE_BYTES` (glibc's largest) and the heap trim threshold to
twice that keeps at most :data:`HEAP_REUSE_BYTES` x 2 of freed memory for reuse: within the scan's
stated per-chunk overhead. A no-op where ``mallopt`` does not exist (macOS, Windows, musl).
"""

from __future__ import annotations

import ctypes
import functools

M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
HEAP_REUSE_BYTES = 32 << 20


@functools.cache
def reuse_freed_blocks() -> bool:
    """Set glibc's mmap and trim thresholds once per process; True when both were accepted."""
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError, TypeError):
        return False
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    return bool(mallopt(M_MMAP_THRESHOLD, HEAP_REUSE_BYTES)) and bool(mallopt(M_TRIM_THRESHOLD, 2 * HEAP_REUSE_BYTES))
