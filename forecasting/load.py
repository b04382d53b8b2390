"""Site-load forecast: day-type profiles by slot of day, rescaled to the recent measured level.

For a forecast time ``t`` with day type ``d(t)`` (weekday, Saturday, Sunday/holiday) and slot of
day ``s(t)``::

    profile[d, s] = mean of measured load [kW] over the last ``history_weeks`` weeks, same d and s
    level       = sum(measured) / sum(profile at the same times), over the last ``level_days``
    forecast(t) = level * profile[d(t), s(t)]  (+ temperature term when temperatures are given)

so a purely periodic history is reproduced exactly (level = 1). A day type absent from the
history (no holiday in the window, say) borrows the profile of the nearest type (Sunday/holiday
from Saturday, Saturday from weekday). With ``temperature_c`` the residual after the profile is
regressed on the temperature's anomaly (its departure from its own mean for the same day type
and slot) with one slope [kW/C].

Without measurements, :func:`config_profile_load_kw` turns the config's 48-slot profile (peak
1.0) into a forecast: weekdays follow it times ``peak_kw``; Saturdays and Sundays/holidays keep
only a fraction of its rise above its night-time minimum.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from forecasting.daytypes import SATURDAY, SUNDAY_HOLIDAY, WEEKDAY, day_types

SLOT_MINUTES = 30


@dataclass(frozen=True)
class LoadSettings:
    history_weeks: int = 4
    level_days: int = 1
    weekday_detail: float = 1.0  # 0: one weekday profile; 1: each weekday its own shape
    holiday_country: str | None = "JP"
    holiday_subdivision: str | None = None


def slot_of_day(index: pd.DatetimeIndex, step: pd.Timedelta) -> np.ndarray:
    """Position of each time within its local day, in steps of ``step``."""
    minutes = index.hour.to_numpy() * 60 + index.minute.to_numpy()
    return minutes // int(step.total_seconds() // 60)


def regular_step(index: pd.DatetimeIndex) -> pd.Timedelta:
    if len(index) < 2:
        raise ValueError("a series needs at least two times to have a step")
    steps = np.diff(index.asi8)
    if not (steps == steps[0]).all():
        raise ValueError("times must be on a regular grid (reindex gaps to NaN first)")
    return pd.Timedelta(index[1] - index[0])


def _mean_table(values: np.ndarray, rows: np.ndarray, slots: np.ndarray, n_rows: int, slots_per_day: int) -> np.ndarray:
    """Mean of ``values`` by (row, slot); NaN where a combination was never measured."""
    seen = ~np.isnan(values)
    flat = rows[seen] * slots_per_day + slots[seen]
    sums = np.bincount(flat, weights=values[seen], minlength=n_rows * slots_per_day)
    counts = np.bincount(flat, minlength=n_rows * slots_per_day)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (sums / counts).reshape(n_rows, slots_per_day)


@dataclass(frozen=True)
class _Profile:
    by_type: np.ndarray  # [day type, slot] mean load [kW]
    weekday_factor: np.ndarray  # [Monday..Friday, slot] shape of each weekday against the weekday mean


def _fit_profile(history: pd.Series, step: pd.Timedelta, settings: LoadSettings) -> _Profile:
    slots_per_day = int(pd.Timedelta(days=1) / step)
    codes = day_types(history.index, settings.holiday_country, settings.holiday_subdivision)
    slots = slot_of_day(history.index, step)
    values = history.to_numpy(dtype=float)
    table = _mean_table(values, codes, slots, 3, slots_per_day)
    for missing, donor in ((SATURDAY, WEEKDAY), (SUNDAY_HOLIDAY, SATURDAY), (WEEKDAY, SATURDAY)):
        gaps = np.isnan(table[missing])
        table[missing, gaps] = table[donor, gaps]
    working = codes == WEEKDAY
    weekday = history.index.day_of_week.to_numpy()
    by_day = _mean_table(np.where(working, values, np.nan), np.minimum(weekday, 4), slots, 5, slots_per_day)
    with np.errstate(invalid="ignore", divide="ignore"):
        raw = by_day / table[WEEKDAY]
    factor = 1.0 + settings.weekday_detail * (np.nan_to_num(raw, nan=1.0, posinf=1.0) - 1.0)
    return _Profile(table, factor)


def _evaluate(profile: _Profile, index: pd.DatetimeIndex, step: pd.Timedelta, settings: LoadSettings) -> np.ndarray:
    codes = day_types(index, settings.holiday_country, settings.holiday_subdivision)
    slots = slot_of_day(index, step)
    values = profile.by_type[codes, slots]
    weekday = np.minimum(index.day_of_week.to_numpy(), 4)
    return np.where(codes == WEEKDAY, values * profile.weekday_factor[weekday, slots], values)


def forecast_load_kw(
    history_kw: pd.Series,
    index: pd.DatetimeIndex,
    settings: LoadSettings = LoadSettings(),
    temperature_c: pd.Series | None = None,
) -> pd.Series:
    """Load forecast [kW] on ``index`` from measured ``history_kw`` (same regular step, local tz)."""
    step = regular_step(history_kw.index)
    if len(index) > 1 and regular_step(index) != step:
        raise ValueError(f"forecast step {regular_step(index)} differs from the history's step {step}")
    end = history_kw.index[-1]
    recent = history_kw[history_kw.index > end - pd.Timedelta(weeks=settings.history_weeks)]
    if recent.notna().sum() == 0:
        raise ValueError("no measured load in the history window")
    table = _fit_profile(recent, step, settings)
    measured = recent.to_numpy(dtype=float)
    weather_kw, weather_ahead_kw = np.zeros(len(recent)), np.zeros(len(index))
    if temperature_c is not None:
        weather_kw, weather_ahead_kw = _temperature_effect(recent, table, step, settings, temperature_c, index)
    in_window = recent.index > end - pd.Timedelta(days=settings.level_days)
    fitted = _evaluate(table, recent.index[in_window], step, settings)
    adjusted = (measured - weather_kw)[in_window]
    both = ~np.isnan(adjusted) & ~np.isnan(fitted)
    level = adjusted[both].sum() / fitted[both].sum() if fitted[both].sum() > 0 else 1.0
    values = level * _evaluate(table, index, step, settings) + weather_ahead_kw
    return pd.Series(values, index=index, name="load_kw")


def _temperature_effect(recent, table, step, settings, temperature_c, index) -> tuple[np.ndarray, np.ndarray]:
    """Load explained by temperature [kW] over the history and ahead: slope x anomaly.

    The anomaly is the temperature minus its mean for the same day type and slot, so the part
    of the temperature's daily cycle already inside the load profile is not counted twice; the
    slope [kW/C] is the least-squares fit of the profile's residual on the anomaly.
    """
    temps_hist = temperature_c.reindex(recent.index)
    if temps_hist.notna().sum() < 2:
        raise ValueError("temperature_c does not cover the measured load history")
    normal = _fit_profile(temps_hist, step, replace(settings, weekday_detail=0.0))
    anomaly_hist = temps_hist.to_numpy(dtype=float) - _evaluate(normal, recent.index, step, settings)
    residual = recent.to_numpy(dtype=float) - _evaluate(table, recent.index, step, settings)
    usable = ~np.isnan(anomaly_hist) & ~np.isnan(residual)
    denominator = float((anomaly_hist[usable] ** 2).sum())
    slope_kw_per_c = float((anomaly_hist[usable] * residual[usable]).sum() / denominator) if denominator > 0 else 0.0
    ahead = temperature_c.reindex(index).to_numpy(dtype=float)
    if np.isnan(ahead).any():
        raise ValueError("temperature_c does not cover every forecast time")
    anomaly_ahead = ahead - _evaluate(normal, index, step, settings)
    return slope_kw_per_c * np.nan_to_num(anomaly_hist), slope_kw_per_c * anomaly_ahead


def config_profile_load_kw(
    profile_48: Sequence[float],
    peak_kw: float,
    index: pd.DatetimeIndex,
    saturday_fraction: float,
    holiday_fraction: float,
    settings: LoadSettings = LoadSettings(),
) -> pd.Series:
    """Load [kW] from a config profile (48 half-hourly values, peak 1.0) with day types.

    For a step longer than 30 minutes the slots inside each step are averaged; for a shorter
    step each time takes the slot that contains it.
    """
    shape = np.asarray(profile_48, dtype=float)
    base = shape.min()
    rise = shape - base
    by_type = np.vstack([shape, base + saturday_fraction * rise, base + holiday_fraction * rise]) * peak_kw
    step = regular_step(index) if len(index) > 1 else pd.Timedelta(minutes=SLOT_MINUTES)
    fine_step = min(step, pd.Timedelta(minutes=SLOT_MINUTES))
    fine = pd.date_range(index[0], index[-1] + step - fine_step, freq=fine_step)
    slot = slot_of_day(fine, pd.Timedelta(minutes=SLOT_MINUTES))
    codes = day_types(fine, settings.holiday_country, settings.holiday_subdivision)
    fine_values = pd.Series(by_type[codes, slot], index=fine)
    per_step = fine_values.groupby(np.arange(len(fine)) // int(step / fine_step)).mean().to_numpy()
    return pd.Series(per_step[: len(index)], index=index, name="load_kw")
