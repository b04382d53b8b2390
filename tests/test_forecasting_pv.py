"""PV physics against pvlib's own model chain, clear-sky shape, and smart persistence."""

import numpy as np
import pandas as pd
import pvlib
import pytest

from forecasting.backtest import BacktestSpec, day_ahead_skills, run_backtest
from forecasting.loaders import pvlib_data_file, read_tmy3
from forecasting.pv import PvSettings, clear_sky_index, forecast_pv_kw
from forecasting.pv_model import INVERTER_EFFICIENCY, TEMPERATURE_MODEL, PvSystem, clearsky_pv_kw, pv_power_kw
from tests.forecasting_fixtures import arao

ARAO_LAT, ARAO_LON = 32.987, 130.433


def test_clear_sky_peaks_near_solar_noon_and_is_zero_at_night():
    system = PvSystem(ARAO_LAT, ARAO_LON, tilt_deg=20, azimuth_deg=180, capacity_kwp=60)
    index = pd.date_range("2026-04-15 00:00", periods=24 * 6, freq="10min", tz="Asia/Tokyo")
    output = clearsky_pv_kw(system, index)
    day = pd.DatetimeIndex([pd.Timestamp("2026-04-15", tz="Asia/Tokyo")])
    sun = pvlib.solarposition.sun_rise_set_transit_spa(day, ARAO_LAT, ARAO_LON)
    noon, sunrise, sunset = (pd.Timestamp(sun[c].iloc[0]) for c in ("transit", "sunrise", "sunset"))
    peak_middle = output.idxmax() + pd.Timedelta(minutes=5)  # values are 10-minute means
    assert abs(peak_middle - noon) <= pd.Timedelta(minutes=15)
    night = (output.index + pd.Timedelta(minutes=10) <= sunrise) | (output.index >= sunset)
    assert night.sum() > 40
    assert (output[night] == 0).all()
    assert 0.6 * 60 < output.max() < 60  # a clear April noon on a 20-degree south roof


def test_tmy_day_energy_matches_pvlib_model_chain():
    tmy = read_tmy3(pvlib_data_file("723170TYA.CSV"))
    system = PvSystem(tmy.latitude_deg, tmy.longitude_deg, 25, 190, 60.0, 50.0, tmy.altitude_m)
    day = tmy.weather.loc["2001-06-10"]
    ours_kwh = pv_power_kw(system, day).sum()  # hourly means: kW x 1 h
    chain_system = pvlib.pvsystem.PVSystem(
        surface_tilt=25,
        surface_azimuth=190,
        module_parameters={"pdc0": 60.0, "gamma_pdc": -0.004},
        inverter_parameters={"pdc0": 50.0 / INVERTER_EFFICIENCY, "eta_inv_nom": INVERTER_EFFICIENCY},
        temperature_model_parameters=TEMPERATURE_MODEL,
    )
    location = pvlib.location.Location(tmy.latitude_deg, tmy.longitude_deg, altitude=tmy.altitude_m)
    chain = pvlib.modelchain.ModelChain(
        chain_system,
        location,
        transposition_model="haydavies",
        aoi_model="physical",
        spectral_model="no_loss",
        losses_model="pvwatts",
    )
    weather = day.copy()
    weather.index = weather.index + pd.Timedelta(minutes=30)  # the chain evaluates at the hour's middle
    chain.run_model(weather)
    chain_kwh = chain.results.ac.clip(lower=0).sum()
    assert chain_kwh > 100
    assert ours_kwh == pytest.approx(chain_kwh, rel=0.002)


def test_smart_persistence_keeps_a_steady_clear_sky_index():
    system = PvSystem(ARAO_LAT, ARAO_LON, 20, 180, 30.0)
    index = pd.date_range("2026-05-01", periods=16 * 48, freq="30min", tz="Asia/Tokyo")
    clear = clearsky_pv_kw(system, index)
    history = 0.6 * clear.iloc[: 14 * 48]
    ahead = index[14 * 48 :]
    forecast = forecast_pv_kw(history, clear, ahead)
    np.testing.assert_allclose(forecast.to_numpy(), 0.6 * clear.loc[ahead].to_numpy(), atol=1e-9)


def test_recent_cloud_relaxes_towards_the_typical_index():
    system = PvSystem(ARAO_LAT, ARAO_LON, 20, 180, 30.0)
    index = pd.date_range("2026-05-01", periods=16 * 48, freq="30min", tz="Asia/Tokyo")
    clear = clearsky_pv_kw(system, index)
    origin = 13 * 48 + 24  # 12:00 on day 14
    history = 0.8 * clear.iloc[: origin + 1]
    history.iloc[-8:] = 0.2 * clear.iloc[origin - 7 : origin + 1]  # the last four hours overcast
    ahead = index[origin + 1 :]
    k = forecast_pv_kw(history, clear, ahead, PvSettings(decorrelation_hours=4.0)) / clear.loc[ahead]
    k = k[clear.loc[ahead] > 1.0]
    window = history.index > history.index[-1] - pd.Timedelta(days=14)
    typical = clear_sky_index(history[window].to_numpy(), clear.loc[history.index[window]].to_numpy())
    assert 0.75 < typical < 0.8
    assert k.iloc[0] < 0.4  # close to the overcast now
    assert k.iloc[-1] == pytest.approx(typical, abs=0.01)  # a day later: back to typical
    assert (np.diff(k.to_numpy()) >= -1e-9).all()


def test_no_history_uses_the_default_index():
    system = PvSystem(ARAO_LAT, ARAO_LON, 20, 180, 30.0)
    index = pd.date_range("2026-05-01", periods=48, freq="30min", tz="Asia/Tokyo")
    clear = clearsky_pv_kw(system, index)
    forecast = forecast_pv_kw(pd.Series(dtype=float), clear, index, PvSettings(default_clear_sky_index=0.7))
    np.testing.assert_allclose(forecast.to_numpy(), 0.7 * clear.to_numpy())


def test_pv_backtest_on_real_weather_beats_baselines_day_ahead_and_band_is_calibrated():
    tmy = read_tmy3(pvlib_data_file("723170TYA.CSV"))
    array = arao().pv_arrays[0]
    system = PvSystem(tmy.latitude_deg, tmy.longitude_deg, array.tilt_deg, array.azimuth_deg, array.capacity_kwp)
    weather = tmy.weather.loc["2001-03-01":"2001-06-30"]
    actual = pv_power_kw(system, weather)
    clear = clearsky_pv_kw(system, actual.index)
    spec = BacktestSpec(pd.Timedelta("48h"), pd.Timedelta(days=14), pd.Timedelta(days=1), pd.Timedelta(hours=6))
    result = run_backtest(
        "greensboro",
        actual,
        lambda h, i: forecast_pv_kw(h, clear, i),
        spec,
        scale=lambda p, i: clear.reindex(i).to_numpy(),
    )
    skills = day_ahead_skills(result.table())
    assert len(skills) == 3
    assert (skills["skill_vs_persistence"] > 0).all()
    assert (skills["skill_vs_seasonal_naive"] > 0).all()
    assert abs(result.coverage_held_out - 0.80) <= 0.05
