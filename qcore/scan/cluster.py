"""Dask clusters for the scan: a local one of worker processes, or a connection to a running scheduler."""

from __future__ import annotations

import sys
import types
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from ..scheme import QuantOptionError

MALLOC_THRESHOLD = 1 << 25
"""glibc's largest mmap threshold (32 MB). Dask's nanny sets ``MALLOC_TRIM_THRESHOLD_=65536`` for its workers,
which freezes the mmap threshold at 128 kB: every chunk-sized numpy temporary is then a fresh mmap whose pages
fault in again (3x the CPU of the same scan in one process, measured). The local cluster's workers keep such
blocks on the heap instead."""


@contextmanager
def _plain_main() -> Iterator[None]:
    """Hide the parent's ``__main__`` while worker processes spawn.

    ``multiprocessing``'s spawn re-imports the parent's ``__main__`` file in every child. Under Streamlit (and after
    an ``AppTest`` run, which leaves the page script as ``__main__``) that file is a page: each worker would run it
    and die ("Nanny failed to start"). The workers need nothing from it.
    """
    main = sys.modules.get("__main__")
    sys.modules["__main__"] = types.ModuleType("__main__")
    try:
        yield
    finally:
        if main is not None:
            sys.modules["__main__"] = main


WORKER_PRELOAD = "qcore.scan.measure"
"""Imported by every local worker as it starts (numpy, scipy and the calibrators: about a second of CPU), so the
first task of each worker does not pay for it inside the scan."""


def worker_environ() -> dict[str, Any]:
    """Dask's own pre-spawn environment (one BLAS/OpenMP thread per worker) with the malloc thresholds raised.

    ``distributed.nanny.pre-spawn-environ`` is replaced, not merged, by ``dask.config.set``: the thread limits are
    copied in explicitly, else each single-threaded worker could start a BLAS pool as wide as the machine.
    """
    import dask

    environ = dict(dask.config.get("distributed.nanny.pre-spawn-environ", default={}) or {})
    environ.update({"OMP_NUM_THREADS": 1, "MKL_NUM_THREADS": 1, "OPENBLAS_NUM_THREADS": 1})
    environ.update({"MALLOC_TRIM_THRESHOLD_": MALLOC_THRESHOLD, "MALLOC_MMAP_THRESHOLD_": MALLOC_THRESHOLD})
    return environ


def local_cluster(workers: int) -> Any:
    """A ``distributed.LocalCluster`` of ``workers`` processes with one thread each (dashboard on a free port).

    Processes, not threads: the scan is numpy work between Python steps, and threads of one process share the GIL.
    """
    import dask
    from distributed import LocalCluster

    if workers < 1:
        raise QuantOptionError(f"--workers must be at least 1, got {workers}")
    with dask.config.set({"distributed.nanny.pre-spawn-environ": worker_environ()}), _plain_main():
        return LocalCluster(
            n_workers=workers,
            threads_per_worker=1,
            processes=True,
            dashboard_address=":0",
            preload=[WORKER_PRELOAD],
        )


def connect(address: str) -> Any:
    """A ``distributed.Client`` of the scheduler at ``address`` (its workers must see the checkpoint's path)."""
    from distributed import Client

    try:
        return Client(address, timeout="10s")
    except (OSError, TimeoutError, ValueError) as exc:
        raise QuantOptionError(f"cannot connect to the Dask scheduler at {address}: {exc}") from None
