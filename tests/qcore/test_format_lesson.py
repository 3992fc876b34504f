"""The float-bits lesson's numbers: level density and block scales on outliers."""

from __future__ import annotations

import numpy as np

from qcore.format_lesson import positive_levels, relative_step


def test_float_levels_crowd_near_zero_int_levels_do_not():
    levels = positive_levels()
    assert levels["int8"].size == 128 and levels["fp8_e4m3"][-1] == 1.0 == levels["int8"][-1]
    below_tenth = {k: int(np.count_nonzero((v > 0) & (v < 0.1))) for k, v in levels.items()}
    assert below_tenth["int8"] == 12 and below_tenth["fp8_e4m3"] > 60  # 7 binades below 1/8 hold most E4M3 codes
    # a float's relative step is 2^-m within every binade of normals: 1/8 .. 1/16 for E4M3
    normal = relative_step(levels["fp8_e4m3"])[-60:]
    assert normal.max() <= 1 / 8 + 1e-12 and normal.min() >= 1 / 16 - 1e-12
    assert relative_step(levels["int8"])[0] == 0.5  # INT: 1/127 -> 2/127 is a 50 % step near 0
