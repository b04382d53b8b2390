"""Day-ahead spot price forecast for dates JEPX has not published yet, with its backtest.

Per delivery date ``d`` and slot ``s`` (0-47), a ridge regression on the stored history with the
features

* the slot of day (48 levels);
* the day type (Saturday; Sunday or Japanese public holiday, from ``holidays``) in six
  four-hour bands of the day;
* the solar feature ``solar[d, s]`` [kW/kWp]: what a 1 kWp south-facing array at the
  portfolio yields (pvlib clear sky times a clear-sky index), alone and on non-working days:
  Kyushu's midday prices fall as solar output rises;
* the last known price of the same slot (date ``d - lead``) and the mean price of the last
  known week (``d - lead - 6 .. d - lead``), ``lead`` being the days from the last published
  date to ``d`` (1 for tomorrow after the 10:00 gate, 2 for a 48-hour plan's second day);
* the same slot a week before (``d - 7``).

One model is fitted per lead. P10/P90 are the P50 plus the 10 % and 90 % quantiles of the
residuals on the last ``CALIBRATION_DAYS`` of the history, per four-hour band, from a model
fitted without those days. Prices are floored at JEPX's minimum bid of 0.01 yen/kWh.

For the past, the solar feature uses the configured typical clear-sky index; for the dates
forecast, a solar forecast per slot may be passed instead (``solar_kw_per_kwp``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import pandas as pd

from forecasting.daytypes import SATURDAY, SUNDAY_HOLIDAY, day_types
from forecasting.pv_model import PvSystem, clearsky_pv_kw

SLOTS = 48
BANDS = 6  # four-hour bands of the day
CALIBRATION_DAYS = 14
RIDGE = 1.0
FLOOR_YEN_PER_KWH = 0.01
MIN_TRAINING_DAYS = 14


class PriceHistoryError(ValueError):
    """Too little stored price history to forecast from; the message says what is there."""


@dataclass(frozen=True)
class PriceSite:
    """Where and how the solar feature is computed."""

    latitude_deg: float
    longitude_deg: float
    timezone: str = "Asia/Tokyo"
    clear_sky_index: float = 0.75
    holiday_country: str | None = "JP"


@dataclass(frozen=True)
class PriceForecast:
    """P10, P50, P90 per forecast date: 48 values each [yen/kWh]."""

    p10: dict[dt.date, np.ndarray]
    p50: dict[dt.date, np.ndarray]
    p90: dict[dt.date, np.ndarray]


def price_frame(days: Mapping[dt.date, tuple[float, ...]]) -> pd.DataFrame:
    """Dates (rows, every calendar day from the first to the last; missing days NaN) x 48 slots."""
    frame = pd.DataFrame.from_dict({d: list(v) for d, v in days.items()}, orient="index").sort_index()
    frame.index = pd.DatetimeIndex(frame.index)
    return frame.reindex(pd.date_range(frame.index[0], frame.index[-1], freq="D"))


def solar_kw_per_kwp(dates: pd.DatetimeIndex, site: PriceSite) -> np.ndarray:
    """(days, 48): clear-sky output of 1 kWp (20 deg tilt, south) times the clear-sky index."""
    return _solar(tuple(dates), site).copy()


@lru_cache(maxsize=16)
def _solar(dates: tuple, site: PriceSite) -> np.ndarray:
    dates = pd.DatetimeIndex(dates)
    system = PvSystem(site.latitude_deg, site.longitude_deg, 20.0, 180.0, 1.0)
    first = pd.Timestamp(dates[0].date()).tz_localize(site.timezone)
    index = pd.date_range(first, periods=len(dates) * SLOTS, freq="30min")
    clear = clearsky_pv_kw(system, index).to_numpy()
    by_day = clear.reshape(len(dates), SLOTS)
    # dates may skip days: pick each asked date's row
    offsets = ((dates - dates[0]).days).to_numpy()
    if offsets[-1] != len(dates) - 1:
        full = pd.date_range(dates[0], dates[-1], freq="D")
        return _solar(tuple(full), site)[offsets]
    return by_day * site.clear_sky_index


def _day_type(dates: pd.DatetimeIndex, country: str | None) -> np.ndarray:
    return day_types(dates.tz_localize("Asia/Tokyo") if dates.tz is None else dates, country)


def _design(prices: np.ndarray, rows: np.ndarray, lead: int, solar: np.ndarray, types: np.ndarray) -> np.ndarray:
    """Feature matrix (len(rows) * 48, features) for the day rows ``rows`` of ``prices``."""
    n = len(rows)
    slot = np.tile(np.arange(SLOTS), n)
    band = slot // (SLOTS // BANDS)
    day = np.repeat(rows, SLOTS)
    columns = [np.eye(SLOTS)[slot]]
    for code in (SATURDAY, SUNDAY_HOLIDAY):
        is_type = (types[day] == code).astype(float)
        columns.append(np.eye(BANDS)[band] * is_type[:, None])
    sun = solar[day, slot]
    off_day = (types[day] != 0).astype(float)
    lag = prices[day - lead, slot]
    week = np.stack([prices[day - lead - k] for k in range(7)], axis=1).mean(axis=(1, 2))
    last_week = prices[day - 7, slot]
    columns += [np.stack([sun, sun * off_day, lag, week, last_week], axis=1)]
    return np.concatenate(columns, axis=1)


def _usable_rows(prices: np.ndarray, lead: int, candidates: np.ndarray) -> np.ndarray:
    """Rows whose own prices and every lagged day are complete."""
    first = lead + 6
    ok = []
    for r in candidates:
        if r < max(first, 7) or np.isnan(prices[r]).any():
            continue
        needed = [r - lead - k for k in range(7)] + [r - 7]
        if not np.isnan(prices[needed]).any():
            ok.append(r)
    return np.array(ok, dtype=int)


def _fit(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    penalty = RIDGE * np.eye(x.shape[1])
    return np.linalg.solve(x.T @ x + penalty, x.T @ y)


@dataclass(frozen=True)
class _Model:
    coefficients: np.ndarray
    band_q10: np.ndarray  # per band, residual quantile [yen/kWh]
    band_q90: np.ndarray


def _train(prices: np.ndarray, rows: np.ndarray, lead: int, solar: np.ndarray, types: np.ndarray) -> _Model:
    if len(rows) < MIN_TRAINING_DAYS:
        raise PriceHistoryError(
            f"{len(rows)} complete days of price history usable at lead {lead}; "
            f"the forecast needs {MIN_TRAINING_DAYS} (with the {lead + 6} days before each)"
        )
    calibrate = rows[-CALIBRATION_DAYS:] if len(rows) >= MIN_TRAINING_DAYS + CALIBRATION_DAYS // 2 else rows
    fit_rows = rows[: len(rows) - len(calibrate)] if len(calibrate) < len(rows) else rows
    early = _fit(_design(prices, fit_rows, lead, solar, types), prices[fit_rows].ravel())
    residual = (prices[calibrate].ravel() - _design(prices, calibrate, lead, solar, types) @ early).reshape(
        -1, BANDS, SLOTS // BANDS
    )
    q10 = np.quantile(residual.transpose(1, 0, 2).reshape(BANDS, -1), 0.1, axis=1)
    q90 = np.quantile(residual.transpose(1, 0, 2).reshape(BANDS, -1), 0.9, axis=1)
    return _Model(_fit(_design(prices, rows, lead, solar, types), prices[rows].ravel()), q10, q90)


def forecast_prices(
    history: Mapping[dt.date, tuple[float, ...]],
    dates: list[dt.date],
    site: PriceSite,
    solar_forecast_kw_per_kwp: Mapping[dt.date, np.ndarray] | None = None,
) -> PriceForecast:
    """P10/P50/P90 of each date in ``dates`` (all after the last stored date) from ``history``."""
    if not history:
        raise PriceHistoryError("no stored prices: import a JEPX spot file first (ems prices import)")
    last = max(history)
    if any(d <= last for d in dates):
        raise ValueError(f"forecast dates must follow the last stored date {last}")
    frame = price_frame(history)
    full = pd.date_range(frame.index[0], pd.Timestamp(max(dates)), freq="D")
    prices = frame.reindex(full).to_numpy(float)
    solar = solar_kw_per_kwp(full, site)
    for day, values in (solar_forecast_kw_per_kwp or {}).items():
        solar[full.get_loc(pd.Timestamp(day))] = np.asarray(values, float)
    types = _day_type(full, site.holiday_country)
    known = np.flatnonzero(~np.isnan(prices).any(axis=1))
    out: tuple[dict, dict, dict] = ({}, {}, {})
    models: dict[int, _Model] = {}
    for day in sorted(dates):
        lead = (day - last).days
        if lead not in models:
            models[lead] = _train(prices, _usable_rows(prices, lead, known), lead, solar, types)
        model = models[lead]
        row = np.array([full.get_loc(pd.Timestamp(day))])
        p50 = np.maximum(_design(prices, row, lead, solar, types) @ model.coefficients, FLOOR_YEN_PER_KWH)
        band = np.arange(SLOTS) // (SLOTS // BANDS)
        out[0][day] = np.maximum(p50 + model.band_q10[band], FLOOR_YEN_PER_KWH)
        out[1][day] = p50
        out[2][day] = np.maximum(p50 + model.band_q90[band], p50)
    return PriceForecast(*out)


def backtest_prices(
    history: Mapping[dt.date, tuple[float, ...]], site: PriceSite, held_out_days: int, lead: int = 1
) -> dict:
    """Forecast each of the last ``held_out_days`` dates from the history before it (``lead``
    days after the last date used), against "same slot last week" and "same slot yesterday".

    Skill = 1 - MAE(model) / MAE(reference), positive when the model is better; coverage is the
    share of actual prices inside the P10-P90 band.
    """
    days = sorted(history)
    test = days[-held_out_days:]
    actual, model, p10, p90, last_week, yesterday = ([] for _ in range(6))
    for day in test:
        known = {d: v for d, v in history.items() if d <= day - dt.timedelta(days=lead)}
        forecast = forecast_prices(known, [day], site)
        truth = np.asarray(history[day])
        week_ago, day_before = day - dt.timedelta(days=7), day - dt.timedelta(days=1)
        if week_ago not in history or day_before not in history:
            continue
        actual.append(truth)
        model.append(forecast.p50[day])
        p10.append(forecast.p10[day])
        p90.append(forecast.p90[day])
        last_week.append(np.asarray(history[week_ago]))
        yesterday.append(np.asarray(history[day_before]))
    actual_a, model_a = np.concatenate(actual), np.concatenate(model)
    mae = float(np.abs(model_a - actual_a).mean())
    mae_week = float(np.abs(np.concatenate(last_week) - actual_a).mean())
    mae_yesterday = float(np.abs(np.concatenate(yesterday) - actual_a).mean())
    inside = (actual_a >= np.concatenate(p10)) & (actual_a <= np.concatenate(p90))
    return {
        "days": len(actual),
        "first": str(test[0]),
        "last": str(test[-1]),
        "lead_days": lead,
        "mae_yen_per_kwh": round(mae, 3),
        "mae_same_slot_last_week_yen_per_kwh": round(mae_week, 3),
        "mae_same_slot_yesterday_yen_per_kwh": round(mae_yesterday, 3),
        "skill_vs_last_week": round(1 - mae / mae_week, 3) if mae_week > 0 else None,
        "skill_vs_yesterday": round(1 - mae / mae_yesterday, 3) if mae_yesterday > 0 else None,
        "p10_p90_coverage": round(float(inside.mean()), 3),
    }
