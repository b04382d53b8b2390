"""P10 and P90 from backtest residuals, by lead time.

A residual is ``(actual - p50) / scale``: the scale is the clear-sky output for PV (so the band
is zero at night and widest under a high sun) and the P50 itself for load (a relative error).
For each lead-time bucket the 10th and 90th percentiles of the residuals are kept; a new
forecast gets ``p10 = p50 + q10 * scale`` and ``p90 = p50 + q90 * scale``, clipped at zero.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

LEAD_BUCKETS_H = (1, 2, 3, 6, 12, 24, 36, 48)  # upper edges [h]; (0,1], (1,2], ... (36,48]


def lead_bucket_h(lead_h: np.ndarray | pd.Series) -> np.ndarray:
    """Upper edge of the lead-time bucket of each lead; leads past the last edge join the last."""
    edges = np.asarray(LEAD_BUCKETS_H, dtype=float)
    position = np.searchsorted(edges, np.asarray(lead_h, dtype=float) - 1e-9, side="left")
    return edges[np.minimum(position, len(edges) - 1)].astype(int)


@dataclass(frozen=True)
class ResidualQuantiles:
    """Relative residual quantiles per lead bucket (``lead_h`` are upper edges, as LEAD_BUCKETS_H)."""

    lead_h: tuple[int, ...]
    q10: tuple[float, ...]
    q90: tuple[float, ...]

    def band(self, p50: pd.Series, scale: pd.Series, lead_h: np.ndarray) -> tuple[pd.Series, pd.Series]:
        """(p10, p90) for forecasts ``p50`` with residual scale ``scale`` at leads ``lead_h``."""
        buckets = lead_bucket_h(lead_h)
        position = {edge: i for i, edge in enumerate(self.lead_h)}
        rows = np.array([position.get(int(b), len(self.lead_h) - 1) for b in buckets], dtype=int)
        low = p50.to_numpy() + np.asarray(self.q10)[rows] * scale.to_numpy()
        high = p50.to_numpy() + np.asarray(self.q90)[rows] * scale.to_numpy()
        low = np.clip(np.minimum(low, p50.to_numpy()), 0.0, None)
        high = np.clip(np.maximum(high, p50.to_numpy()), 0.0, None)
        return pd.Series(low, index=p50.index, name="p10"), pd.Series(high, index=p50.index, name="p90")


def fit_residual_quantiles(actual: np.ndarray, p50: np.ndarray, scale: np.ndarray, lead_h: np.ndarray) -> ResidualQuantiles:
    """Fit from backtest rows; rows with a scale near zero (night for PV) are left out."""
    actual, p50, scale = (np.asarray(a, dtype=float) for a in (actual, p50, scale))
    usable = ~np.isnan(actual) & ~np.isnan(p50) & (scale > 1e-6 * np.nanmax(np.abs(scale), initial=1.0))
    residual = (actual[usable] - p50[usable]) / scale[usable]
    buckets = lead_bucket_h(np.asarray(lead_h)[usable])
    q10, q90 = [], []
    for edge in LEAD_BUCKETS_H:
        chosen = residual[buckets == edge]
        if len(chosen) < 10:
            chosen = residual  # too few rows in this bucket: use all leads
        if len(chosen) == 0:
            raise ValueError("no usable backtest rows to fit quantiles from")
        q10.append(float(np.quantile(chosen, 0.1)))
        q90.append(float(np.quantile(chosen, 0.9)))
    return ResidualQuantiles(tuple(LEAD_BUCKETS_H), tuple(q10), tuple(q90))


def coverage(actual: np.ndarray, p10: np.ndarray, p90: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Share of actuals inside [p10, p90] (where ``mask`` is true and the actual is known)."""
    actual, p10, p90 = (np.asarray(a, dtype=float) for a in (actual, p10, p90))
    keep = ~np.isnan(actual) if mask is None else (~np.isnan(actual) & np.asarray(mask, dtype=bool))
    inside = (actual[keep] >= p10[keep] - 1e-9) & (actual[keep] <= p90[keep] + 1e-9)
    return float(inside.mean()) if keep.any() else float("nan")
