"""PV from a weather forecast: GHI or cloud cover per interval to irradiance on the array.

* GHI given: split into beam and diffuse with the Erbs model;
* cloud cover given: GHI = clear-sky GHI * (0.35 + 0.65 * (1 - cover/100)), the linear model of
  Larson et al. (2016) that pvlib's former forecast module used, then split as above.

The weather grid (hourly, say) is spread onto the forecast grid by holding each interval's
clear-sky index (GHI over clear-sky GHI), so the sun's course within the hour is kept.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pvlib

from forecasting.pv_model import PvSystem, clearsky_irradiance, interval_midpoints, pv_power_kw

CLOUD_COVER_OFFSET = 0.35


def weather_clear_sky_index(system: PvSystem, weather: pd.DataFrame) -> pd.Series:
    """GHI / clear-sky GHI on the weather's own grid (``weather`` from ``read_weather_forecast``)."""
    clear = clearsky_irradiance(system, weather.index)["ghi"]
    if "ghi" in weather.columns:
        with np.errstate(invalid="ignore", divide="ignore"):
            index = np.where(clear > 1.0, weather["ghi"] / clear, np.nan)
    elif "cloud_cover" in weather.columns:
        index = CLOUD_COVER_OFFSET + (1 - CLOUD_COVER_OFFSET) * (1 - weather["cloud_cover"].to_numpy() / 100.0)
    else:
        raise ValueError("weather needs a 'ghi' or a 'cloud_cover' column")
    return pd.Series(np.clip(index, 0.0, 1.2), index=weather.index, name="clear_sky_index")


def pv_from_weather_kw(system: PvSystem, weather: pd.DataFrame, index: pd.DatetimeIndex) -> pd.Series:
    """AC output [kW] on ``index`` (interval starts) under the forecast ``weather``."""
    k = weather_clear_sky_index(system, weather)
    on_grid = k.reindex(index, method="ffill", tolerance=_step(weather.index))
    if on_grid.isna().all():
        raise ValueError(
            f"the weather forecast ({weather.index[0]} to {weather.index[-1]}) does not cover the forecast period"
        )
    on_grid = on_grid.fillna(on_grid.mean())  # night hours of a GHI file carry no index
    clear = clearsky_irradiance(system, index)
    ghi = clear["ghi"] * on_grid.to_numpy()
    middle = interval_midpoints(index)
    zenith = system.location.get_solarposition(middle)["zenith"].to_numpy()
    split = pvlib.irradiance.erbs(ghi.to_numpy(), zenith, middle)
    frame = pd.DataFrame(
        {"ghi": ghi.to_numpy(), "dni": np.asarray(split["dni"]), "dhi": np.asarray(split["dhi"])}, index=index
    )
    for column in ("temp_air", "wind_speed"):
        if column in weather.columns:
            frame[column] = weather[column].reindex(index, method="ffill", tolerance=_step(weather.index)).to_numpy()
    return pv_power_kw(system, frame)


def _step(index: pd.DatetimeIndex) -> pd.Timedelta:
    return pd.Timedelta(index[1] - index[0]) if len(index) > 1 else pd.Timedelta(hours=1)
