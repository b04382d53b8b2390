"""Reference forecasts every model is scored against.

* persistence: the last measured value up to a lead of :data:`PERSISTENCE_SAME_TIME_AFTER_H`;
  beyond it, the value at the same time of day on the last day measured (a value held from a
  midnight origin would be zero PV all the next day, an unfairly weak reference);
* seasonal naive: the value one season earlier (one day for PV, one week for load), taken from
  the most recent season that was already measured at the forecast origin.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

PERSISTENCE_SAME_TIME_AFTER_H = 12.0  # day-ahead buckets (24, 36, 48 h) use the same time of day
DAY = pd.Timedelta(days=1)


def persistence(history: pd.Series, index: pd.DatetimeIndex) -> pd.Series:
    """Last non-missing value of ``history`` for leads up to 12 h, the same time of day beyond.

    A lead runs from the end of ``history`` (its last interval's end) to the end of each interval.
    """
    measured = history.dropna()
    value = float(measured.iloc[-1]) if len(measured) else np.nan
    values = np.full(len(index), value)
    if len(history) and len(index):
        lead_h = (index - history.index[-1]) / pd.Timedelta(hours=1)  # interval end minus history's end
        far = np.asarray(lead_h > PERSISTENCE_SAME_TIME_AFTER_H)
        if far.any():
            values[far] = seasonal_naive(history, index, DAY).to_numpy()[far]
    return pd.Series(values, index=index, name="persistence")


def seasonal_naive(history: pd.Series, index: pd.DatetimeIndex, period: pd.Timedelta) -> pd.Series:
    """Value at ``t - k * period`` for the smallest ``k >= 1`` already in ``history``."""
    last = history.index[-1]
    ahead = (index - last) / period
    seasons_back = np.maximum(np.ceil(ahead.to_numpy(dtype=float)), 1).astype(int)
    source_times = index - pd.to_timedelta(seasons_back * period.value, unit="ns")
    values = history.reindex(source_times).to_numpy()
    return pd.Series(values, index=index, name="seasonal_naive")


def reference_forecasts(
    values: np.ndarray, filled: np.ndarray, position: int, horizon_steps: int, step: pd.Timedelta, season: pd.Timedelta
) -> tuple[np.ndarray, np.ndarray]:
    """(persistence, seasonal naive) as above, by position on a regular series: the history is
    ``values[:position]``, the forecast ``values[position:position + horizon_steps]``; ``filled``
    is ``values`` forward-filled (the last measured value at each position)."""
    ahead = np.arange(1, horizon_steps + 1)  # steps from the history's end to each interval's end

    def same_time(period: pd.Timedelta) -> np.ndarray:
        period_steps = int(period / step)
        back = np.maximum(np.ceil(ahead / period_steps), 1).astype(int) * period_steps
        source = position + ahead - 1 - back
        return np.where(source >= 0, values[np.maximum(source, 0)], np.nan)

    held = np.full(horizon_steps, filled[position - 1] if position > 0 else np.nan)
    far = ahead * (step / pd.Timedelta(hours=1)) > PERSISTENCE_SAME_TIME_AFTER_H
    held[far] = same_time(DAY)[far]
    return held, same_time(season)
