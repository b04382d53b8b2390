"""Reference forecasts every model is scored against.

* persistence: the last measured value, held for the whole horizon;
* seasonal naive: the value one season earlier (one day for PV, one week for load), taken from
  the most recent season that was already measured at the forecast origin.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def persistence(history: pd.Series, index: pd.DatetimeIndex) -> pd.Series:
    """Last non-missing value of ``history`` on every time of ``index``."""
    measured = history.dropna()
    value = float(measured.iloc[-1]) if len(measured) else np.nan
    return pd.Series(value, index=index, name="persistence")


def seasonal_naive(history: pd.Series, index: pd.DatetimeIndex, period: pd.Timedelta) -> pd.Series:
    """Value at ``t - k * period`` for the smallest ``k >= 1`` already in ``history``."""
    last = history.index[-1]
    ahead = (index - last) / period
    seasons_back = np.maximum(np.ceil(ahead.to_numpy(dtype=float)), 1).astype(int)
    source_times = index - pd.to_timedelta(seasons_back * period.value, unit="ns")
    values = history.reindex(source_times).to_numpy()
    return pd.Series(values, index=index, name="seasonal_naive")
