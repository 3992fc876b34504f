"""The app runs BLAS with one thread per server process (see ui/threads.py)."""

from __future__ import annotations

import subprocess
import sys

PROBE = """
from threadpoolctl import threadpool_info
from ui.threads import limit_blas_threads
import numpy as np
np.ones((64, 64)) @ np.ones((64, 64))
blas = [i for i in threadpool_info() if i["user_api"] == "blas"]
limit_blas_threads()
print(len(blas), *[i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"])
"""


def test_limit_blas_threads_leaves_one_thread_per_blas_library() -> None:
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, check=True, timeout=120)
    count, *threads = out.stdout.split()
    assert int(count) >= 1, "numpy's BLAS not found by threadpoolctl"
    assert threads and all(int(t) == 1 for t in threads)
