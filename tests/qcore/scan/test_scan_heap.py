from __future__ import annotations

import platform

import pytest

from qcore.scan.heap import reuse_freed_blocks


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt is glibc's")
def test_glibc_accepts_the_heap_thresholds():
    assert reuse_freed_blocks() is True
