"""portfolio_forecast: the planner's entry point, with and without measurements."""

import numpy as np
import pandas as pd
import pytest

from forecasting import portfolio_forecast
from forecasting.portfolio import pv_system
from forecasting.pv_model import clearsky_pv_kw
from tests.forecasting_fixtures import arao, weekly_shape

START = pd.Timestamp("2026-04-24 00:00", tz="Asia/Tokyo")  # a Friday; Wednesday 29 April is Showa Day


@pytest.fixture(scope="module")
def portfolio():
    return arao()


def test_without_history_every_asset_gets_a_banded_forecast(portfolio):
    forecast = portfolio_forecast(portfolio, START, steps=7 * 48, step_minutes=30)
    ids = {a.id for a in portfolio.pv_arrays} | {load.id for load in portfolio.loads}
    assert set(forecast.frames) == ids
    for _asset, frame in forecast.frames.items():
        assert list(frame.columns) == ["p50_kw", "p10_kw", "p90_kw"]
        assert frame.index.equals(forecast.index) and str(frame.index.tz) == "Asia/Tokyo"
        assert (frame["p10_kw"] <= frame["p50_kw"]).all() and (frame["p50_kw"] <= frame["p90_kw"]).all()
        assert (frame["p10_kw"] >= 0).all()
    pv = forecast.frames["city_hall_pv"]
    assert (pv.between_time("20:00", "04:00") == 0).all().all()
    assert 20 < pv["p50_kw"].max() < 60 and pv["p90_kw"].max() <= 60
    office = forecast.p50("city_hall_load")
    friday, saturday, showa_day = (office.loc[d].max() for d in ("2026-04-24", "2026-04-25", "2026-04-29"))
    sunday = office.loc["2026-04-26"].max()
    assert friday == pytest.approx(140.0)
    assert sunday < saturday < friday
    assert showa_day == pytest.approx(sunday)
    assert forecast.sources["city_hall_load"] == "config profile with day types"
    assert (forecast.bus_power_kw("city_hall_load") == -office).all()
    assert (forecast.bus_power_kw("city_hall_pv") == pv["p50_kw"]).all()
    assert (forecast.cautious_kw("city_hall_pv") == pv["p10_kw"]).all()
    assert (forecast.cautious_kw("city_hall_load") == forecast.frames["city_hall_load"]["p90_kw"]).all()


def test_measured_history_drives_the_forecast(portfolio):
    past = pd.date_range(START - pd.Timedelta(days=28), START - pd.Timedelta(minutes=30), freq="30min")
    array = portfolio.pv_arrays[0]
    pv_history = 0.5 * clearsky_pv_kw(pv_system(portfolio, array), past)
    load_history = pd.Series(weekly_shape(past), index=past).tz_convert("UTC")  # any zone is accepted
    forecast = portfolio_forecast(
        portfolio, START, 96, 30, history={array.id: pv_history, "city_hall_load": load_history}
    )
    expected_pv = 0.5 * clearsky_pv_kw(pv_system(portfolio, array), forecast.index)
    np.testing.assert_allclose(forecast.p50(array.id).to_numpy(), expected_pv.to_numpy(), atol=1e-9)
    np.testing.assert_allclose(forecast.p50("city_hall_load").to_numpy(), weekly_shape(forecast.index))
    assert forecast.sources[array.id] == "clear sky x measured clear-sky index"
    assert forecast.sources["city_hall_load"] == "day-type profiles of measured load"
    assert forecast.sources["cultural_centre_load"] == "config profile with day types"


def test_history_at_another_step_is_resampled(portfolio):
    past = pd.date_range(START - pd.Timedelta(days=14), START - pd.Timedelta(minutes=10), freq="10min")
    history = pd.Series(50.0, index=past)
    forecast = portfolio_forecast(portfolio, START, 48, 60, history={"taxi_depot_load": history})
    np.testing.assert_allclose(forecast.p50("taxi_depot_load").to_numpy(), 50.0)


def test_weather_forecast_cloud_cover_lowers_output(portfolio):
    hours = pd.date_range(START, periods=48, freq="h")
    clear_day = portfolio_forecast(portfolio, START, 96, 30, weather=pd.DataFrame({"cloud_cover": 0.0}, index=hours))
    grey_day = portfolio_forecast(portfolio, START, 96, 30, weather=pd.DataFrame({"cloud_cover": 100.0}, index=hours))
    clear_kwh = clear_day.p50("city_hall_pv").sum() / 2
    grey_kwh = grey_day.p50("city_hall_pv").sum() / 2
    clear_sky_kwh = clearsky_pv_kw(pv_system(portfolio, portfolio.pv_arrays[0]), clear_day.index).sum() / 2
    assert clear_kwh == pytest.approx(clear_sky_kwh, rel=0.1)  # Erbs split vs Ineichen's own
    assert 0.25 < grey_kwh / clear_kwh < 0.5
    assert clear_day.sources["city_hall_pv"] == "weather forecast"


def test_weather_forecast_ghi_equal_to_clear_sky_gives_clear_sky_output(portfolio):
    from forecasting.pv_model import clearsky_irradiance

    system = pv_system(portfolio, portfolio.pv_arrays[0])
    hours = pd.date_range(START, periods=48, freq="h")
    weather = pd.DataFrame({"ghi": clearsky_irradiance(system, hours)["ghi"].to_numpy()}, index=hours)
    forecast = portfolio_forecast(portfolio, START, 48, 60, weather=weather)
    clear = clearsky_pv_kw(system, forecast.index)
    assert forecast.p50("city_hall_pv").sum() == pytest.approx(clear.sum(), rel=0.1)
    half = portfolio_forecast(portfolio, START, 48, 60, weather=weather.assign(ghi=weather["ghi"] / 2))
    assert 0.4 < half.p50("city_hall_pv").sum() / forecast.p50("city_hall_pv").sum() < 0.6


def test_bad_arguments_are_explained(portfolio):
    with pytest.raises(ValueError, match="timezone-aware"):
        portfolio_forecast(portfolio, pd.Timestamp("2026-04-24"), 48, 30)
    with pytest.raises(ValueError, match="not on the 30-minute grid"):
        portfolio_forecast(portfolio, START + pd.Timedelta(minutes=10), 48, 30)
    from_csv = portfolio.profiles["depot"].model_copy(update={"values": None, "csv": "office.csv"})
    csv_profile = portfolio.model_copy(update={"profiles": {**portfolio.profiles, "office_weekday": from_csv}})
    with pytest.raises(ValueError, match=r"loads\[id=city_hall_load\]: profile 'office_weekday' is a CSV file"):
        portfolio_forecast(csv_profile, START, 48, 30)
