"""Forecasts for every PV array and site load of a portfolio: the entry point for the planner.

    forecast = portfolio_forecast(portfolio, start, steps=96, step_minutes=30, history=measured)
    forecast.frames["city_hall_pv"]   # DataFrame: p50_kw, p10_kw, p90_kw, indexed by local time

PV values are output [kW, >= 0]; load values are demand [kW, >= 0] (the planner applies the sign
convention). Each time labels the start of its step; values are means over the step.

Sources, per asset, in order of preference:
* PV: a weather forecast when ``weather`` is given; else clear sky times the clear-sky index of
  the measured history (smart persistence); else clear sky times the default index.
* load: day-type profiles of the measured history; else the config's profile times ``peak_kw``
  with day types (Saturdays and Sundays/holidays keep a share of the daytime rise).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ems.config.schema import Portfolio, PvArray, SiteLoad
from forecasting.default_quantiles import LOAD_QUANTILES, PV_QUANTILES
from forecasting.load import config_profile_load_kw, forecast_load_kw
from forecasting.pv import forecast_pv_kw
from forecasting.pv_model import PvSystem, clearsky_pv_kw
from forecasting.quantiles import ResidualQuantiles
from forecasting.settings import load_settings, pv_settings
from forecasting.weather import pv_from_weather_kw

MIN_LOAD_HISTORY = pd.Timedelta(days=1)


@dataclass
class PortfolioForecast:
    """Per asset id a DataFrame with columns ``p50_kw``, ``p10_kw``, ``p90_kw`` on one time grid."""

    index: pd.DatetimeIndex
    frames: dict[str, pd.DataFrame] = field(default_factory=dict)
    kinds: dict[str, str] = field(default_factory=dict)  # "pv" or "load"
    sources: dict[str, str] = field(default_factory=dict)  # how each forecast was made

    def p50(self, asset_id: str) -> pd.Series:
        return self.frames[asset_id]["p50_kw"]

    def bus_power_kw(self, asset_id: str, column: str = "p50_kw") -> pd.Series:
        """The forecast in the site-bus sign convention: PV output positive, load negative."""
        sign = 1.0 if self.kinds[asset_id] == "pv" else -1.0
        return (sign * self.frames[asset_id][column]).rename(f"{asset_id}_power_kw")

    def cautious_kw(self, asset_id: str) -> pd.Series:
        """The side of the band a reserve is held against: PV at P10, load at P90 [kW, >= 0]."""
        return self.frames[asset_id]["p10_kw" if self.kinds[asset_id] == "pv" else "p90_kw"]

    def to_long(self) -> pd.DataFrame:
        """Long form: time, asset, kind, source, p50_kw, p10_kw, p90_kw."""
        parts = [
            frame.assign(asset=asset, kind=self.kinds[asset], source=self.sources[asset])
            .rename_axis("time")
            .reset_index()
            for asset, frame in self.frames.items()
        ]
        columns = ["time", "asset", "kind", "source", "p50_kw", "p10_kw", "p90_kw"]
        return pd.concat(parts, ignore_index=True)[columns] if parts else pd.DataFrame(columns=columns)


def forecast_grid(portfolio: Portfolio, start, steps: int, step_minutes: int) -> pd.DatetimeIndex:
    """``steps`` interval starts from ``start`` (tz-aware, on the step) in the portfolio's zone."""
    start = pd.Timestamp(start)
    if start.tzinfo is None:
        raise ValueError("start must be timezone-aware")
    if steps < 1 or step_minutes < 1:
        raise ValueError("steps and step_minutes must be positive")
    step = pd.Timedelta(minutes=step_minutes)
    start = start.tz_convert(portfolio.portfolio.timezone)
    if start != start.floor(step):
        raise ValueError(f"start {start} is not on the {step_minutes}-minute grid")
    return pd.date_range(start, periods=steps, freq=step)


def portfolio_forecast(
    portfolio: Portfolio,
    start,
    steps: int,
    step_minutes: int,
    history: Mapping[str, pd.Series] | None = None,
    weather: pd.DataFrame | None = None,
    quantiles: Mapping[str, ResidualQuantiles] | None = None,
    profiles: Mapping[str, Sequence[float]] | None = None,
) -> PortfolioForecast:
    """Forecast every PV array and site load of ``portfolio`` (pure: no I/O, no clock).

    ``history``: measured kW per asset id (tz-aware index; any step, resampled here; only
    values before ``start`` are used). ``weather``: a weather forecast as returned by
    :func:`forecasting.loaders.read_weather_forecast`. ``quantiles``: residual tables for
    ``"pv"`` and ``"load"`` from a backtest (defaults: :mod:`forecasting.default_quantiles`).
    ``profiles``: 48-slot values of profiles kept in CSV files (see
    :func:`forecasting.loaders.read_config_profiles`); inline profiles are read from the config.
    """
    index = forecast_grid(portfolio, start, steps, step_minutes)
    history = history or {}
    tables = {"pv": PV_QUANTILES, "load": LOAD_QUANTILES, **(quantiles or {})}
    result = PortfolioForecast(index)
    for array in portfolio.pv_arrays:
        frame, source = _pv_forecast(portfolio, array, index, history.get(array.id), weather, tables["pv"])
        result.frames[array.id], result.kinds[array.id], result.sources[array.id] = frame, "pv", source
    for load in portfolio.loads:
        frame, source = _load_forecast(portfolio, load, index, history.get(load.id), tables["load"], profiles or {})
        result.frames[load.id], result.kinds[load.id], result.sources[load.id] = frame, "load", source
    return result


def pv_system(portfolio: Portfolio, array: PvArray) -> PvSystem:
    site = next(s for s in portfolio.sites if s.id == array.site)
    return PvSystem(
        site.latitude_deg,
        site.longitude_deg,
        array.tilt_deg,
        array.azimuth_deg,
        array.capacity_kwp,
        array.inverter_limit_kw,
    )


def _history_before(series: pd.Series | None, index: pd.DatetimeIndex, span: pd.Timedelta) -> pd.Series | None:
    """Measured values in [start - span, start), resampled onto the forecast step."""
    if series is None or len(series) == 0:
        return None
    if not isinstance(series.index, pd.DatetimeIndex) or series.index.tz is None:
        raise ValueError("history series need a timezone-aware DatetimeIndex")
    step = index[1] - index[0] if len(index) > 1 else pd.Timedelta(minutes=30)
    local = series.tz_convert(index.tz).sort_index()
    local = local[(local.index < index[0]) & (local.index >= index[0] - span)]
    if local.dropna().empty:
        return None
    grid = pd.date_range(index[0] - span, index[0] - step, freq=step)
    return local.resample(step, origin=index[0]).mean().reindex(grid)


def _pv_forecast(portfolio, array, index, measured, weather, table: ResidualQuantiles) -> tuple[pd.DataFrame, str]:
    settings = portfolio.forecasting
    pv_config = pv_settings(settings)
    system = pv_system(portfolio, array)
    span = pd.Timedelta(days=settings.pv_climatology_days)
    past = _history_before(measured, index, span)
    step = index[1] - index[0] if len(index) > 1 else pd.Timedelta(minutes=30)
    full = pd.date_range(index[0] - span, index[-1], freq=step)
    clear = clearsky_pv_kw(system, full)
    if weather is not None:
        p50, source = pv_from_weather_kw(system, weather, index), "weather forecast"
    elif past is not None:
        p50, source = forecast_pv_kw(past, clear, index, pv_config), "clear sky x measured clear-sky index"
    else:
        p50 = forecast_pv_kw(pd.Series(dtype=float), clear, index, pv_config)
        source = "clear sky x default clear-sky index"
    origin = index[0] - step
    lead_h = (index - origin).total_seconds().to_numpy() / 3600.0
    scale = clear.reindex(index)
    p10, p90 = table.band(p50, scale, lead_h)
    return _frame(p50, np.minimum(p10, system.ac_limit_kw), np.minimum(p90, system.ac_limit_kw)), source


def _load_forecast(portfolio, load: SiteLoad, index, measured, table: ResidualQuantiles, profiles):
    settings = portfolio.forecasting
    load_config = load_settings(settings)
    past = _history_before(measured, index, pd.Timedelta(weeks=settings.load_history_weeks))
    if past is not None and past.dropna().index.max() - past.dropna().index.min() >= MIN_LOAD_HISTORY:
        p50, source = forecast_load_kw(past, index, load_config), "day-type profiles of measured load"
    else:
        values = _profile_values(portfolio, load, profiles)
        p50 = config_profile_load_kw(
            values,
            load.peak_kw,
            index,
            settings.saturday_activity_fraction,
            settings.holiday_activity_fraction,
            load_config,
        )
        source = "config profile with day types"
    step = index[1] - index[0] if len(index) > 1 else pd.Timedelta(minutes=30)
    lead_h = (index - (index[0] - step)).total_seconds().to_numpy() / 3600.0
    p10, p90 = table.band(p50, p50, lead_h)
    return _frame(p50, p10, p90), source


def _profile_values(portfolio: Portfolio, load: SiteLoad, profiles: Mapping[str, Sequence[float]]) -> Sequence[float]:
    if load.profile in profiles:
        return profiles[load.profile]
    profile = portfolio.profiles[load.profile]
    if profile.values is None:
        raise ValueError(
            f"loads[id={load.id}]: profile {load.profile!r} is a CSV file; pass its values in 'profiles' "
            "(forecasting.loaders.read_config_profiles)"
        )
    return profile.values


def _frame(p50: pd.Series, p10: pd.Series, p90: pd.Series) -> pd.DataFrame:
    p50 = p50.clip(lower=0.0)
    return pd.DataFrame(
        {
            "p50_kw": p50.to_numpy(),
            "p10_kw": np.minimum(p10.to_numpy(), p50.to_numpy()),
            "p90_kw": np.maximum(p90.to_numpy(), p50.to_numpy()),
        },
        index=p50.index,
    )
