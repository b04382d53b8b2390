"""Site-load forecaster, day types and baselines; backtest on real metered demand."""

import numpy as np
import pandas as pd
import pytest

from forecasting.backtest import BacktestSpec, day_ahead_skills, run_backtest
from forecasting.baselines import persistence, seasonal_naive
from forecasting.daytypes import SATURDAY, SUNDAY_HOLIDAY, WEEKDAY, day_types
from forecasting.load import LoadSettings, config_profile_load_kw, forecast_load_kw
from forecasting.loaders import taylor_demand_kw
from tests.forecasting_fixtures import half_hours, weekly_shape

NO_HOLIDAYS = LoadSettings(holiday_country=None)


def test_periodic_series_is_reproduced_exactly():
    index = half_hours("2026-06-01", 7 * 7)  # June 2026: no Japanese holiday
    series = pd.Series(weekly_shape(index), index=index)
    history, ahead = series.iloc[: 35 * 48], series.index[35 * 48 :]
    forecast = forecast_load_kw(history, ahead, LoadSettings())
    np.testing.assert_allclose(forecast.to_numpy(), series.loc[ahead].to_numpy(), rtol=1e-12)


def test_level_follows_recent_measurements():
    index = half_hours("2026-06-01", 35)
    series = pd.Series(weekly_shape(index), index=index)
    series.iloc[-48:] *= 1.2  # the last day ran 20 % higher
    ahead = pd.date_range(index[-1] + pd.Timedelta(minutes=30), periods=48, freq="30min")
    forecast = forecast_load_kw(series, ahead, NO_HOLIDAYS)
    expected = pd.Series(weekly_shape(ahead), index=ahead)
    # the high day is one of four in its weekday's profile: level = 1.2 / ((3 + 1.2) / 4)
    np.testing.assert_allclose((forecast / expected).to_numpy(), 1.2 / 1.05, rtol=1e-12)


def test_japanese_holidays_are_sundays():
    days = pd.DatetimeIndex(
        pd.to_datetime(["2026-04-29", "2026-05-06", "2026-05-07", "2026-05-09", "2026-05-10"]).tz_localize("Asia/Tokyo")
    )
    # Showa Day (Wed), the substitute holiday for Constitution Day (Wed), a Thursday, a Saturday, a Sunday
    assert list(day_types(days)) == [SUNDAY_HOLIDAY, SUNDAY_HOLIDAY, WEEKDAY, SATURDAY, SUNDAY_HOLIDAY]
    assert list(day_types(days, country=None)) == [WEEKDAY, WEEKDAY, WEEKDAY, SATURDAY, SUNDAY_HOLIDAY]


def test_holiday_gets_the_sunday_profile_from_history():
    index = half_hours("2026-03-30", 28)  # four weeks to Sunday 26 April
    history = pd.Series(weekly_shape(index), index=index)
    showa_day = half_hours("2026-04-29", 1)
    forecast = forecast_load_kw(history, showa_day, LoadSettings())
    sunday = weekly_shape(half_hours("2026-04-26", 1))
    np.testing.assert_allclose(forecast.to_numpy(), sunday, rtol=1e-9)


def test_config_profile_has_day_types_and_averages_slots_for_longer_steps():
    profile = [0.2] * 16 + [1.0] * 20 + [0.2] * 12
    friday, saturday, holiday = (half_hours(d, 1) for d in ("2026-05-01", "2026-05-02", "2026-05-05"))
    load = {
        name: config_profile_load_kw(profile, 100.0, idx, 0.5, 0.25)
        for name, idx in (("friday", friday), ("saturday", saturday), ("holiday", holiday))
    }
    assert load["friday"].max() == pytest.approx(100.0)
    assert load["saturday"].max() == pytest.approx(20 + 0.5 * 80)
    assert load["holiday"].max() == pytest.approx(20 + 0.25 * 80)
    assert load["holiday"].min() == pytest.approx(20.0)
    hourly = pd.date_range("2026-05-01 07:00", periods=2, freq="60min", tz="Asia/Tokyo")
    # 07:00-08:00 spans slot 14 (0.2) and 15 (0.2); 08:00-09:00 spans slots 16 and 17 (1.0)
    np.testing.assert_allclose(config_profile_load_kw(profile, 100.0, hourly, 0.5, 0.25).to_numpy(), [20.0, 100.0])


def test_baselines():
    index = half_hours("2026-06-01", 8)
    history = pd.Series(np.arange(len(index), dtype=float), index=index)
    ahead = pd.date_range(index[-1] + pd.Timedelta(minutes=30), periods=96, freq="30min")
    held = persistence(history, ahead).to_numpy()
    # up to a 12 h lead the last value is held; beyond, the same time of day on the last day
    assert (held[:24] == len(index) - 1).all()
    np.testing.assert_array_equal(held[24:48], history.to_numpy()[-24:])
    np.testing.assert_array_equal(held[48:], history.to_numpy()[-48:])
    naive = seasonal_naive(history, ahead, pd.Timedelta(days=1))
    # the first day ahead repeats the last measured day; the second day repeats it too
    np.testing.assert_array_equal(naive.to_numpy()[:48], history.to_numpy()[-48:])
    np.testing.assert_array_equal(naive.to_numpy()[48:], history.to_numpy()[-48:])


def test_temperature_term_learns_a_cooling_slope():
    index = half_hours("2026-07-01", 35)
    temperature = pd.Series(25 + 5 * np.sin(np.arange(len(index)) / 37.0), index=index)
    series = pd.Series(100.0 + 3.0 * (temperature.to_numpy() - 25.0), index=index)
    history = series.iloc[: 28 * 48]
    ahead = index[28 * 48 :]
    with_temp = forecast_load_kw(history, ahead, NO_HOLIDAYS, temperature_c=temperature)
    without = forecast_load_kw(history, ahead, NO_HOLIDAYS)
    error_with = np.abs(with_temp - series.loc[ahead]).mean()
    error_without = np.abs(without - series.loc[ahead]).mean()
    assert error_with < 0.3 * error_without


@pytest.fixture(scope="module")
def taylor_backtest():
    settings = LoadSettings(holiday_country="GB", holiday_subdivision="ENG")
    spec = BacktestSpec(pd.Timedelta("48h"), pd.Timedelta(weeks=4), pd.Timedelta(days=7), pd.Timedelta(hours=6))
    return run_backtest("taylor", taylor_demand_kw(), lambda h, i: forecast_load_kw(h, i, settings), spec)


def test_taylor_series_is_the_published_one():
    from pmdarima.datasets import load_taylor

    ours = taylor_demand_kw()
    assert len(ours) == 4032
    assert ours.index[0] == pd.Timestamp("2000-06-05 00:00", tz="Europe/London")
    assert ours.index[0].day_name() == "Monday"
    np.testing.assert_array_equal(ours.to_numpy(), load_taylor() * 1000.0)


def test_load_backtest_on_metered_demand_beats_baselines_day_ahead(taylor_backtest):
    skills = day_ahead_skills(taylor_backtest.table())
    assert len(skills) == 3
    assert (skills["skill_vs_persistence"] > 0.5).all()
    assert (skills["skill_vs_seasonal_naive"] > 0.1).all()


def test_load_band_covers_eighty_percent_of_held_out_actuals(taylor_backtest):
    assert abs(taylor_backtest.coverage_held_out - 0.80) <= 0.05
    rows = taylor_backtest.rows
    assert (rows["p10"] <= rows["model"]).all() and (rows["model"] <= rows["p90"]).all()


def test_backtest_tolerates_gaps_in_the_measurements():
    complete = taylor_demand_kw().iloc[: 42 * 48]
    demand = complete.copy()
    rng = np.random.default_rng(7)
    demand.iloc[rng.choice(len(demand), size=len(demand) // 20, replace=False)] = np.nan
    demand.iloc[30 * 48 : 31 * 48] = np.nan  # a whole day lost
    settings = LoadSettings(holiday_country="GB", holiday_subdivision="ENG")
    spec = BacktestSpec(pd.Timedelta("48h"), pd.Timedelta(weeks=4), pd.Timedelta(days=7), pd.Timedelta(hours=6))
    result = run_backtest("taylor-gappy", demand, lambda h, i: forecast_load_kw(h, i, settings), spec)
    assert result.rows["model"].notna().all()
    table = result.table()
    assert np.isfinite(table[["mae", "rmse", "nmae", "skill_vs_seasonal_naive"]].to_numpy()).all()
    reference = run_backtest("taylor", complete, lambda h, i: forecast_load_kw(h, i, settings), spec).table()
    model_mae = table[table["model"] == "model"]["mae"].to_numpy()
    assert (model_mae < 1.15 * reference[reference["model"] == "model"]["mae"].to_numpy()).all()
