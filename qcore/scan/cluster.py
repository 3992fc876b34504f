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


def local_cluster(workers: int) -> Any:
    """A ``distributed.LocalCluster`` of ``workers`` processes with one thread each (dashboard on a free port)."""
    import dask
    from distributed import LocalCluster

    if workers < 1:
        raise QuantOptionError(f"--workers must be at least 1, got {workers}")
    environ = {"MALLOC_TRIM_THRESHOLD_": MALLOC_THRESHOLD, "MALLOC_MMAP_THRESHOLD_": MALLOC_THRESHOLD}
    with dask.config.set({"distributed.nanny.pre-spawn-environ": environ}), _plain_main():
        return LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=":0")


def connect(address: str) -> Any:
    """A ``distributed.Client`` of the scheduler at ``address`` (its workers must see the checkpoint's path)."""
    from distributed import Client

    try:
        return Client(address, timeout="10s")
    except (OSError, TimeoutError, ValueError) as exc:
        raise QuantOptionError(f"cannot connect to the Dask scheduler at {address}: {exc}") from None
