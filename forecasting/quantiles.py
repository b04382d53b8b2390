"""P10 and P90 from backtest residuals, by lead time and hour of day.

A residual is ``(actual - p50) / scale``: the scale is the clear-sky output for PV (so the band
is zero at night and widest under a high sun) and the P50 itself for load (a relative error).
For each lead-time bucket and local hour of day the 10th and 90th percentiles of the residuals are
kept (a small cell takes the hour's values over all leads, or else the lead bucket's over all hours):
the sun's error is not the same at 06:00 as at noon, so one band per lead leaves dawn and dusk
uncovered. A new forecast gets ``p10 = p50 + q10 * scale`` and ``p90 = p50 + q90 * scale``,
clipped at zero.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np
import pandas as pd

LEAD_BUCKETS_H = (1, 2, 3, 6, 12, 24, 36, 48)  # upper edges [h]; (0,1], (1,2], ... (36,48]
MIN_ROWS = 10  # fewer residuals than this in a lead bucket: fall back to all leads
MIN_HOUR_ROWS = 30  # fewer than this in an (hour, lead bucket) cell: the hour over all leads, then the bucket
QUANTILE_METHOD: Final = "weibull"  # p (n + 1)-th value: unbiased coverage on new data even for small cells


def lead_bucket_h(lead_h: np.ndarray | pd.Series) -> np.ndarray:
    """Upper edge of the lead-time bucket of each lead; leads past the last edge join the last."""
    edges = np.asarray(LEAD_BUCKETS_H, dtype=float)
    position = np.searchsorted(edges, np.asarray(lead_h, dtype=float) - 1e-9, side="left")
    return edges[np.minimum(position, len(edges) - 1)].astype(int)


@dataclass(frozen=True)
class ResidualQuantiles:
    """Relative residual quantiles per lead bucket (``lead_h`` are upper edges, as LEAD_BUCKETS_H),
    and optionally per local hour of day (``hour_q10[h][k]``: hour ``h``, lead bucket ``k``)."""

    lead_h: tuple[int, ...]
    q10: tuple[float, ...]
    q90: tuple[float, ...]
    hour_q10: tuple[tuple[float, ...], ...] = ()  # 24 rows, or empty: the same band at every hour
    hour_q90: tuple[tuple[float, ...], ...] = ()

    def band(
        self, p50: pd.Series, scale: pd.Series, lead_h: np.ndarray, hours: np.ndarray | None = None
    ) -> tuple[pd.Series, pd.Series]:
        """(p10, p90) for forecasts ``p50`` with residual scale ``scale`` at leads ``lead_h``;
        ``hours``: local hour of day of each forecast (default: from ``p50``'s time index)."""
        buckets = lead_bucket_h(lead_h)
        position = {edge: i for i, edge in enumerate(self.lead_h)}
        rows = np.array([position.get(int(b), len(self.lead_h) - 1) for b in buckets], dtype=int)
        q10, q90 = np.asarray(self.q10)[rows], np.asarray(self.q90)[rows]
        if self.hour_q10:
            if hours is None:
                hours = pd.DatetimeIndex(p50.index).hour
            hours = np.asarray(hours, dtype=int)
            q10, q90 = np.asarray(self.hour_q10)[hours, rows], np.asarray(self.hour_q90)[hours, rows]
        low = p50.to_numpy() + q10 * scale.to_numpy()
        high = p50.to_numpy() + q90 * scale.to_numpy()
        low = np.clip(np.minimum(low, p50.to_numpy()), 0.0, None)
        high = np.clip(np.maximum(high, p50.to_numpy()), 0.0, None)
        return pd.Series(low, index=p50.index, name="p10"), pd.Series(high, index=p50.index, name="p90")


def fit_residual_quantiles(
    actual: np.ndarray, p50: np.ndarray, scale: np.ndarray, lead_h: np.ndarray, hours: np.ndarray | None = None
) -> ResidualQuantiles:
    """Fit from backtest rows; rows with a scale near zero (night for PV) are left out. With
    ``hours`` (local hour of day of each row) the band also depends on the hour."""
    actual, p50, scale = (np.asarray(a, dtype=float) for a in (actual, p50, scale))
    usable = ~np.isnan(actual) & ~np.isnan(p50) & (scale > 1e-6 * np.nanmax(np.abs(scale), initial=1.0))
    residual = (actual[usable] - p50[usable]) / scale[usable]
    if len(residual) == 0:
        raise ValueError("no usable backtest rows to fit quantiles from")
    buckets = lead_bucket_h(np.asarray(lead_h)[usable])
    q10, q90 = [], []
    for edge in LEAD_BUCKETS_H:
        chosen = residual[buckets == edge]
        if len(chosen) < MIN_ROWS:
            chosen = residual  # too few rows in this bucket: use all leads
        q10.append(_quantile(chosen, 0.1))
        q90.append(_quantile(chosen, 0.9))
    if hours is None:
        return ResidualQuantiles(tuple(LEAD_BUCKETS_H), tuple(q10), tuple(q90))
    hour_of_row = np.asarray(hours, dtype=int)[usable]
    hour_q10, hour_q90 = [], []
    for hour in range(24):
        low, high = [], []
        in_hour = residual[hour_of_row == hour]
        for k, edge in enumerate(LEAD_BUCKETS_H):
            chosen = residual[(buckets == edge) & (hour_of_row == hour)]
            chosen = chosen if len(chosen) >= MIN_HOUR_ROWS else in_hour
            enough = len(chosen) >= MIN_HOUR_ROWS
            low.append(_quantile(chosen, 0.1) if enough else q10[k])
            high.append(_quantile(chosen, 0.9) if enough else q90[k])
        hour_q10.append(tuple(low))
        hour_q90.append(tuple(high))
    return ResidualQuantiles(tuple(LEAD_BUCKETS_H), tuple(q10), tuple(q90), tuple(hour_q10), tuple(hour_q90))


def _quantile(values: np.ndarray, p: float) -> float:
    return float(np.quantile(values, p, method=QUANTILE_METHOD))


def coverage(actual: np.ndarray, p10: np.ndarray, p90: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Share of actuals inside [p10, p90] (where ``mask`` is true and the actual is known)."""
    actual, p10, p90 = (np.asarray(a, dtype=float) for a in (actual, p10, p90))
    keep = ~np.isnan(actual) if mask is None else (~np.isnan(actual) & np.asarray(mask, dtype=bool))
    inside = (actual[keep] >= p10[keep] - 1e-9) & (actual[keep] <= p90[keep] + 1e-9)
    return float(inside.mean()) if keep.any() else float("nan")
