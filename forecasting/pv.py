"""PV forecast: clear-sky output times a clear-sky index (smart persistence).

The clear-sky index ``k`` is measured output over clear-sky output. Two estimates come from the
measured history at the forecast origin:

* ``k_recent``: over the last ``recent_hours`` of daylight (what the sky is doing now);
* ``k_typical``: over the last ``climatology_days`` days (what the sky usually does here now).

Cloudiness now says little about cloudiness tomorrow, so the forecast's index relaxes from the
first to the second with the lead time ``h`` [h]::

    k(h)        = k_typical + exp(-h / decorrelation_hours) * (k_recent - k_typical)
    forecast(t) = k(h) * clearsky_kw(t)

With no measurement at all, ``k`` is ``default_clear_sky_index``. With a weather forecast, the
index comes from the forecast instead (see :mod:`forecasting.weather`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

DAYLIGHT_FRACTION = 0.05  # of the window's clear-sky peak: below it, a ratio is mostly noise


@dataclass(frozen=True)
class PvSettings:
    recent_hours: float = 3.0
    climatology_days: int = 14
    decorrelation_hours: float = 4.0
    default_clear_sky_index: float = 0.75
    max_clear_sky_index: float = 1.2


def clear_sky_index(measured_kw: np.ndarray, clearsky_kw: np.ndarray) -> float | None:
    """Energy-weighted ratio over the daylight intervals measured; None if there are none."""
    if len(clearsky_kw) == 0:
        return None
    daylight = (clearsky_kw > DAYLIGHT_FRACTION * np.nanmax(clearsky_kw, initial=0.0)) & ~np.isnan(measured_kw)
    total_clear = clearsky_kw[daylight].sum()
    if not daylight.any() or total_clear <= 0:
        return None
    return float(measured_kw[daylight].sum() / total_clear)


def _recent_daylight_index(measured: np.ndarray, clear: np.ndarray, step_h: float, hours: float) -> float | None:
    daylight = np.flatnonzero((clear > DAYLIGHT_FRACTION * np.nanmax(clear, initial=0.0)) & ~np.isnan(measured))
    wanted = max(1, int(round(hours / step_h)))
    if len(daylight) == 0:
        return None
    last = daylight[-wanted:]
    return clear_sky_index(measured[last], clear[last])


def forecast_pv_kw(
    history_kw: pd.Series,
    clearsky_kw: pd.Series,
    index: pd.DatetimeIndex,
    settings: PvSettings = PvSettings(),
) -> pd.Series:
    """PV forecast [kW] on ``index``.

    ``history_kw``: measured output up to the forecast origin (may be empty); ``clearsky_kw``:
    clear-sky output of the same array covering both the history and ``index``.
    """
    clear_ahead = clearsky_kw.reindex(index).to_numpy(dtype=float)
    if np.isnan(clear_ahead).any():
        raise ValueError("clearsky_kw does not cover every forecast time")
    k_recent, k_typical = _indices(history_kw, clearsky_kw, settings)
    origin = history_kw.index[-1] if len(history_kw) else index[0]
    lead_h = (index - origin).total_seconds().to_numpy() / 3600.0
    weight = np.exp(-np.maximum(lead_h, 0.0) / settings.decorrelation_hours)
    k = np.clip(k_typical + weight * (k_recent - k_typical), 0.0, settings.max_clear_sky_index)
    return pd.Series(k * clear_ahead, index=index, name="pv_kw")


def _indices(history_kw: pd.Series, clearsky_kw: pd.Series, settings: PvSettings) -> tuple[float, float]:
    if len(history_kw) < 2:
        return settings.default_clear_sky_index, settings.default_clear_sky_index
    origin = history_kw.index[-1]
    window = history_kw[history_kw.index > origin - pd.Timedelta(days=settings.climatology_days)]
    measured = window.to_numpy(dtype=float)
    clear = clearsky_kw.reindex(window.index).to_numpy(dtype=float)
    k_typical = clear_sky_index(measured, clear)
    if k_typical is None:
        return settings.default_clear_sky_index, settings.default_clear_sky_index
    step_h = (history_kw.index[1] - history_kw.index[0]).total_seconds() / 3600.0
    k_recent = _recent_daylight_index(measured, clear, step_h, settings.recent_hours)
    return (k_typical if k_recent is None else k_recent), k_typical
