"""One BLAS thread per server process: every session's request is already a thread of its own.

numpy's OpenBLAS starts one worker thread per core and busy-waits in them between calls. On a shared server
those workers compete with the other sessions' threads (and other processes): on the 2-core machine under a
load of 2, ADMM per tensor (1,000 steps of small batched products) took 10-16 s with the default threads and
0.11 s with one (0.14-0.23 s on the idle machine either way). The server therefore runs BLAS single-threaded,
as the Dask scan workers do (``qcore.scan.cluster``).
"""

from __future__ import annotations

from functools import cache

from threadpoolctl import threadpool_limits


@cache
def limit_blas_threads() -> None:
    """Limit every loaded BLAS library of this process to one thread (once per process)."""
    threadpool_limits(limits=1, user_api="blas")
