"""Every calibrator x every format that takes a calibrated range: a valid range, a finite round trip."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from qcore import CALIBRATORS, QuantOptionError, QuantScheme, analyze
from qcore.formats import FORMATS

CALIBRATED = [name for name, fmt in FORMATS.items() if fmt.calibrated and name != "int"]  # INT: its own suite
LAYOUTS = {
    "tensor": {"granularity": "tensor"},
    "channel": {"granularity": "channel", "axis": 1},
    "group": {"granularity": "group", "axis": 0, "group_size": 16},
}


def _tensor() -> np.ndarray:
    rng = np.random.default_rng(7)
    x = rng.standard_normal((40, 6)) * rng.uniform(0.2, 2.0, 6)
    x[7, 1], x[30, 4] = 9.0, -7.5
    return x.astype(np.float32)


CASES = list(itertools.product(sorted(CALIBRATORS), CALIBRATED, LAYOUTS))


@pytest.mark.parametrize(("method", "name", "layout"), CASES)
def test_calibrator_on_format(method, name, layout):
    x = _tensor()
    scheme = QuantScheme(bits=FORMATS[name].bits or 8, format=name, **LAYOUTS[layout])
    try:
        a = analyze(x, scheme, method)
    except QuantOptionError as exc:  # a clear refusal (e.g. a calibrator that needs a batch axis)
        assert str(exc)
        return
    t = a.calibration.threshold
    assert np.all(np.isfinite(t)) and np.all(t > 0) and np.all(t <= a.rows.absmax * (1 + 1e-9))
    x_hat = a.dequantized()
    assert x_hat.shape == x.shape and np.all(np.isfinite(x_hat))
    rows_hat = np.abs(a.encoding.dequantized_rows())  # saturation: nothing beyond the row's range
    assert np.all((rows_hat <= t[:, None] * (1 + 1e-6)) | np.isnan(a.rows.values))
    r = a.report
    assert np.isfinite(r.mse) and r.mse == pytest.approx(r.clip_mse + r.round_mse) and 0 < r.cosine <= 1
    assert np.all(a.encoding.clip_max <= t * (1 + 1e-9))  # the format clips at (or inside) the calibrated range
    assert np.all(a.encoding.clip_max > 0)
    if np.all(a.encoding.clip_max >= a.rows.absmax):  # nothing beyond the format's range: nothing clipped
        assert r.clipped_fraction == 0.0
    assert analyze(x, scheme, method).report.mse == r.mse  # deterministic
