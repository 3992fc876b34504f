"""Download payloads: parameters as JSON (the CLI's ``--json`` layout), arrays as .npz, tables as CSV."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd

from qcore import Analysis, strict_json

from .state import Settings


def _finite_or_none(v: float | None) -> float | None:
    return None if v is None or not np.isfinite(v) else float(v)


def params_json(a: Analysis, settings: Settings, tensor: str) -> str:
    """Scale, zero point and clip range per row, plus the scheme and metrics (shared/cli-contract.md layout)."""
    s, p, r = a.params.scheme, a.params, a.report
    obj = {
        "tensor": tensor,
        "shape": list(a.rows.shape),
        "method": settings.method,
        "options": dict(settings.options),
        "convention": settings.convention,
        "bits": s.bits,
        "scheme": "symmetric" if s.symmetric else "asymmetric",
        "signed": s.signed,
        "narrow_range": s.narrow_range,
        "granularity": s.granularity,
        "axis": a.rows.axis,
        "group_size": a.rows.group_size,
        "qmin": p.qmin,
        "qmax": p.qmax,
        "clip_min": p.clip_min.tolist(),
        "clip_max": p.clip_max.tolist(),
        "scale": p.scale.tolist(),
        "zero_point": p.zero_point.tolist(),
        "nonfinite_count": a.rows.nonfinite_count,
        "metrics": {k: _finite_or_none(v) for k, v in r.as_dict().items()},
    }
    return strict_json.dumps(obj, indent=1)


def arrays_npz(a: Analysis) -> bytes:
    """``q``, ``scale``, ``zero_point``, ``dequantized`` (as ``python -m qcore quantize --out``)."""
    buf = io.BytesIO()
    np.savez_compressed(
        buf, q=a.codes(), scale=a.params.scale, zero_point=a.params.zero_point, dequantized=a.dequantized()
    )
    return buf.getvalue()


def tensor_npy(x: np.ndarray) -> bytes:
    """The tensor as a .npy file (to run the CLI on synthetic data)."""
    buf = io.BytesIO()
    np.save(buf, np.asarray(x), allow_pickle=False)
    return buf.getvalue()


def row_table(a: Analysis) -> pd.DataFrame:
    """Per-row (channel / group) parameters and errors."""
    p, e = a.params, a.report.rows
    return pd.DataFrame(
        {
            "row": np.arange(a.rows.n_rows),
            "min": a.rows.min,
            "max": a.rows.max,
            "clip_min": p.clip_min,
            "clip_max": p.clip_max,
            "scale": p.scale,
            "zero_point": p.zero_point,
            "mse": e.mse,
            "clip_mse": e.clip_mse,
            "round_mse": e.round_mse,
            "sqnr_db": e.sqnr_db,
            "clipped_fraction": e.clipped_fraction,
            "levels_used": e.levels_used,
        }
    )


def csv_bytes(df: pd.DataFrame) -> bytes:
    """CSV of a table, without the index."""
    return df.to_csv(index=False).encode()
