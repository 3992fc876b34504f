"""Chunked calibration (qcore.chunked): the same result as one call, progress between chunks, a way to stop."""

from __future__ import annotations

import numpy as np
import pytest

from qcore import CALIBRATORS, CalibrationData, Curve, QuantOptionError, QuantScheme, analyze, make_calibrator, to_rows
from qcore.chunked import ROW_LOCAL, Cancelled, calibrate, plan, row_slice

OBJECTIVE_RTOL = 1e-12
"""Objective values may differ in the last bits (a matrix product's summation order depends on its row count)."""

CHUNK = 600
"""Elements per chunk in these tests: several chunks on every small tensor below."""


def _tensor(shape: tuple[int, ...], seed: int = 0, missing: bool = False) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = rng.standard_t(4, size=shape).astype(np.float32)
    x[..., 0] *= 8.0  # an outlier column: rows differ in range
    if missing:
        x.flat[::37] = np.nan
        x.flat[5::91] = np.inf
    return x


LAYOUTS = [
    pytest.param((48, 200), dict(granularity="channel", axis=0), id="channel"),
    pytest.param((6, 40, 5), dict(granularity="channel", axis=1), id="channel-3d"),
    pytest.param((64, 96), dict(granularity="group", axis=1, group_size=32), id="group"),
    pytest.param((4, 70, 6), dict(granularity="group", axis=1, group_size=32), id="group-padded-3d"),
]
OPTIONS = {
    "mse": [{}, {"source": "histogram", "bins": 128}, {"source": "values", "bins": 128}],
    "admm": [{}, {"max_raw": 256, "bins": 16}],
    "easyquant": [{}, {"max_raw": 256, "bins": 16}, {"init": "entropy"}],
    "entropy": [{}, {"bins": 160}],
}
CASES = [(m, o) for m in CALIBRATORS for o in OPTIONS.get(m, [{}])]


def _same_array(a: np.ndarray | None, b: np.ndarray | None) -> None:
    assert (a is None) == (b is None)
    if a is not None:
        assert a.dtype == b.dtype and a.shape == b.shape
        np.testing.assert_array_equal(a, b)


def _same_curve(chunked: Curve, whole: Curve, method: str) -> None:
    assert (chunked.objective, chunked.parameter, chunked.goal) == (whole.objective, whole.parameter, whole.goal)
    if method == "admm":  # at most 64 kept iterates, spaced by a block's longest history: the chosen one is equal
        r = np.arange(whole.chosen.size)
        _same_array(chunked.x[r, chunked.chosen], whole.x[r, whole.chosen])
        _same_array(chunked.y[r, chunked.chosen], whole.y[r, whole.chosen])
        return
    _same_array(chunked.chosen, whole.chosen)
    for a, b in ((chunked.x, whole.x), (chunked.y, whole.y)):  # BLAS and the KL tables sum per call size
        assert a.shape == b.shape
        np.testing.assert_allclose(a, b, rtol=OBJECTIVE_RTOL, atol=0)


def _same_calibration(chunked, whole, method: str) -> None:
    for name in ("lo", "hi", "scale", "grid", "splits"):
        _same_array(getattr(chunked, name), getattr(whole, name))
    assert (chunked.curve is None) == (whole.curve is None)
    if whole.curve is not None:
        _same_curve(chunked.curve, whole.curve, method)
    assert chunked.details.keys() == whole.details.keys()
    for key, value in whole.details.items():
        if isinstance(value, Curve):
            _same_curve(chunked.details[key], value, method)
        elif isinstance(value, np.ndarray):
            _same_array(chunked.details[key], value)
        else:
            assert chunked.details[key] == value, key


@pytest.mark.parametrize(("shape", "layout"), LAYOUTS)
@pytest.mark.parametrize("symmetric", [True, False], ids=["sym", "asym"])
@pytest.mark.parametrize(("method", "options"), CASES, ids=[f"{m}{o or ''}" for m, o in CASES])
def test_chunks_give_the_unchunked_result(method, options, symmetric, shape, layout) -> None:
    scheme = QuantScheme(bits=4, symmetric=symmetric, **layout)
    x = _tensor(shape, missing=layout["granularity"] == "channel")
    calibrator = make_calibrator(method, **options)
    rows = to_rows(x, scheme)
    try:
        whole = calibrator.calibrate(CalibrationData(rows), scheme)
    except QuantOptionError as exc:  # e.g. EMA refuses groups: the chunked call refuses the same way
        with pytest.raises(QuantOptionError, match=str(exc)[:30]):
            calibrate(calibrator, CalibrationData(rows), scheme, chunk_elements=CHUNK)
        return
    chunks = plan(calibrator, rows, scheme, CHUNK)
    assert (len(chunks) > 1) == (method in ROW_LOCAL)  # every row-local method really runs in pieces here
    done: list[tuple[int, int]] = []
    chunked = calibrate(calibrator, CalibrationData(rows), scheme, lambda d, t: done.append((d, t)), CHUNK)
    _same_calibration(chunked, whole, method)
    assert done[0] == (0, rows.n_rows) and done[-1] == (rows.n_rows, rows.n_rows)
    assert [d for d, _ in done] == sorted(d for d, _ in done) and len(done) == len(chunks) + 1


@pytest.mark.parametrize(("shape", "layout"), LAYOUTS)
def test_a_row_slice_is_what_to_rows_makes_of_those_channels_or_lines(shape, layout) -> None:
    scheme = QuantScheme(**layout)
    x = _tensor(shape, missing=True)
    rows = to_rows(x, scheme)
    per = 1 if rows.granularity == "channel" else -(-shape[layout["axis"]] // layout.get("group_size", 1))
    part = row_slice(rows, slice(per, 3 * per))
    if rows.granularity == "channel":
        alone = to_rows(np.take(x, [1, 2], axis=layout["axis"]), scheme)
    else:
        lines = np.moveaxis(x, layout["axis"], -1).reshape(-1, shape[layout["axis"]])
        alone = to_rows(lines[1:3], QuantScheme(granularity="group", axis=1, group_size=layout["group_size"]))
    np.testing.assert_array_equal(part.values, alone.values)
    assert (part.shape, part.nonfinite_count, part.padded, part.size) == (
        alone.shape,
        alone.nonfinite_count,
        alone.padded,
        alone.size,
    )


def test_analyze_with_progress_reports_rows_and_matches_the_plain_call() -> None:
    x = _tensor((128, 256))
    scheme = QuantScheme(bits=4, granularity="group", axis=1, group_size=32)
    seen: list[int] = []
    plain = analyze(x, scheme, "entropy")
    stepped = analyze(x, scheme, "entropy", progress=lambda done, total: seen.append(done))
    np.testing.assert_array_equal(stepped.dequantized(), plain.dequantized())
    assert stepped.report.mse == plain.report.mse
    assert seen[0] == 0 and seen[-1] == plain.rows.n_rows


def test_a_cancelling_callback_stops_between_chunks_and_keeps_nothing() -> None:
    scheme = QuantScheme(bits=4, granularity="group", axis=1, group_size=32)
    data = CalibrationData(to_rows(_tensor((64, 96)), scheme))
    calls: list[int] = []

    def stop_after_first_chunk(done: int, total: int) -> None:
        calls.append(done)
        if done > 0:
            raise Cancelled

    with pytest.raises(Cancelled):
        calibrate(make_calibrator("mse", source="histogram", bins=128), data, scheme, stop_after_first_chunk, CHUNK)
    assert len(calls) == 2 and 0 < calls[1] < data.rows.n_rows
    assert not data._abs and data._sorted is None  # the first chunk's histogram is not kept half-built


def test_chunks_keep_what_they_built_for_the_next_method() -> None:
    scheme = QuantScheme(bits=8, granularity="channel", axis=0)
    x = _tensor((48, 200))
    data = CalibrationData(to_rows(x, scheme))
    calibrate(make_calibrator("mse", source="histogram", bins=128), data, scheme, chunk_elements=CHUNK)
    whole = CalibrationData(to_rows(x, scheme)).abs_histogram(128)
    np.testing.assert_array_equal(data.abs_histogram(128).counts, whole.counts)


def test_per_tensor_and_extreme_ranges_run_in_one_piece() -> None:
    calibrator = make_calibrator("entropy")
    x = _tensor((48, 200))
    assert plan(calibrator, to_rows(x, QuantScheme()), QuantScheme(), CHUNK) == [slice(0, 1)]
    x[3, 7] = 3e37  # the histogram bins every row in float64 then: chunks would bin the others in float32
    scheme = QuantScheme(granularity="channel", axis=0)
    assert plan(calibrator, to_rows(x, scheme), scheme, CHUNK) == [slice(0, 48)]


def test_chunks_follow_line_boundaries_and_the_sample_blocks() -> None:
    scheme = QuantScheme(granularity="group", axis=1, group_size=128)
    rows = to_rows(np.ones((2048, 4096), dtype=np.float32), scheme)
    chunks = plan(make_calibrator("mse"), rows, scheme, 1 << 21)
    sizes = {c.stop - c.start for c in chunks[:-1]}
    assert len(chunks) == 4 and sizes == {(1 << 21) // 128}  # whole lines of 32 groups, whole 4096-row blocks
