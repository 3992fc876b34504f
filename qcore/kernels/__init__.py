"""Compiled inner loops (numba) for the searches whose numpy form is bound by per-step passes over whole rows.

A kernel here is used only where ``bench/run.py`` showed that plain numpy cannot reach the issue's figure (for
instance ADMM's alternation: hundreds of steps per channel of which each changes a few dozen codes, while a numpy
step reads the whole row). Conventions, so that a kernel computes what the numpy path computes:

- ``@numba.njit(cache=True, nogil=True)``, never ``fastmath``: IEEE float32/float64 operations in the written
  order, no reassociation, no fused multiply-add contraction; the numpy path stays the reference in the tests.
  Kernels that divide as C does (``x / 0`` is inf or NaN, not an exception) add ``error_model="numpy"``.
- Explicit dtypes at the boundary (the caller passes contiguous float32 / float64 / int64 arrays); no Python
  objects inside; loops over rows are plain ranges (no ``parallel=True``: the server's cores are shared).
- Each kernel module holds the kernels of one calibrator or format and is imported by that module only.

numba (prebuilt wheels, no compiler needed) is a runtime requirement; the compiled code is cached in
``__pycache__`` next to each module after the first call.
"""
