"""The float-bits lesson's numbers: level density and block scales on outliers."""

from __future__ import annotations

import numpy as np

from qcore.format_lesson import block_scales_on_outliers, outlier_tensor, positive_levels, relative_step


def test_float_levels_crowd_near_zero_int_levels_do_not():
    levels = positive_levels()
    assert levels["int8"].size == 128 and levels["fp8_e4m3"][-1] == 1.0 == levels["int8"][-1]
    below_tenth = {k: int(np.count_nonzero((v > 0) & (v < 0.1))) for k, v in levels.items()}
    assert below_tenth["int8"] == 12 and below_tenth["fp8_e4m3"] > 60  # 7 binades below 1/8 hold most E4M3 codes
    # a float's relative step is 2^-m within every binade of normals: 1/8 .. 1/16 for E4M3
    normal = relative_step(levels["fp8_e4m3"])[-60:]
    assert normal.max() <= 1 / 8 + 1e-12 and normal.min() >= 1 / 16 - 1e-12
    assert relative_step(levels["int8"])[0] == 0.5  # INT: 1/127 -> 2/127 is a 50 % step near 0


def test_block_scales_beat_one_scale_per_tensor_on_outliers():
    cases = {c.name: c for c in block_scales_on_outliers(outlier_tensor())}
    per_tensor = max(cases["int4 per tensor"].sqnr_db, cases["fp4_e2m1 per tensor"].sqnr_db)
    for name in ("mxfp4", "nvfp4", "q4_0", "nf4", "int4 per group 32"):
        assert cases[name].sqnr_db > per_tensor + 5, (name, cases[name].sqnr_db, per_tensor)
    assert cases["mxfp4"].bits_per_weight == 4.25 and cases["q4_0"].bits_per_weight == 4.5
