"""Physical PV model: weather (or clear sky) to AC output of one array, with pvlib.

Chain, per interval (values are interval means, the index labels the interval's start, and the
sun is placed at the interval's middle):

1. solar position (``pvlib.solarposition``, NREL SPA);
2. irradiance: measured ``ghi``, ``dni``, ``dhi`` [W/m2], or clear sky from the Ineichen model
   with pvlib's bundled monthly Linke turbidity climatology;
3. transposition to the array's tilt and azimuth (Hay-Davies), with the physical incidence-
   angle modifier on the beam;
4. cell temperature (SAPM, open rack) and PVWatts DC power with a temperature coefficient of
   -0.4 %/C, the PVWatts default DC losses (14.1 %), and the PVWatts inverter (96 % nominal
   efficiency), clipped at the inverter's AC limit.

This is exactly pvlib's ``ModelChain.with_pvwatts`` with the same parameters (a test checks it),
written out so that the clear-sky and the weather runs share one code path.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pvlib

DC_LOSS_FRACTION = float(pvlib.pvsystem.pvwatts_losses()) / 100.0  # PVWatts defaults: 14.08 %
INVERTER_EFFICIENCY = 0.96
TEMPERATURE_COEFFICIENT_PER_C = -0.004
TEMPERATURE_MODEL = pvlib.temperature.TEMPERATURE_MODEL_PARAMETERS["sapm"]["open_rack_glass_polymer"]
DEFAULT_TEMP_AIR_C = 20.0
DEFAULT_WIND_SPEED_M_PER_S = 1.0


@dataclass(frozen=True)
class PvSystem:
    """One PV array at one place. Angles in degrees; azimuth 0 north, 90 east, 180 south."""

    latitude_deg: float
    longitude_deg: float
    tilt_deg: float
    azimuth_deg: float
    capacity_kwp: float
    inverter_limit_kw: float | None = None
    altitude_m: float = 0.0

    @property
    def ac_limit_kw(self) -> float:
        return self.inverter_limit_kw if self.inverter_limit_kw is not None else self.capacity_kwp

    @property
    def location(self) -> pvlib.location.Location:
        return pvlib.location.Location(self.latitude_deg, self.longitude_deg, altitude=self.altitude_m)


def interval_midpoints(index: pd.DatetimeIndex) -> pd.DatetimeIndex:
    """Middle of each interval of a regular, tz-aware index labelled by interval start."""
    if index.tz is None:
        raise ValueError("PV model needs a timezone-aware time index")
    if len(index) < 2:
        raise ValueError("PV model needs at least two time steps to know the interval length")
    step = pd.Timedelta(index[1] - index[0])
    return index + step / 2


def clearsky_irradiance(system: PvSystem, index: pd.DatetimeIndex) -> pd.DataFrame:
    """Ineichen clear-sky ``ghi``, ``dni``, ``dhi`` [W/m2] at the middle of each interval."""
    middle = interval_midpoints(index)
    sky = system.location.get_clearsky(middle, model="ineichen")
    sky.index = index
    return sky[["ghi", "dni", "dhi"]]


def pv_power_kw(system: PvSystem, weather: pd.DataFrame) -> pd.Series:
    """AC output [kW] of ``system`` under ``weather``.

    ``weather`` is indexed by interval start (tz-aware, regular) with columns ``ghi``, ``dni``,
    ``dhi`` [W/m2] and optionally ``temp_air`` [C] and ``wind_speed`` [m/s].
    """
    missing = {"ghi", "dni", "dhi"} - set(weather.columns)
    if missing:
        raise ValueError(f"weather lacks column(s) {', '.join(sorted(missing))}")
    middle = interval_midpoints(weather.index)
    solar = system.location.get_solarposition(middle)
    poa = pvlib.irradiance.get_total_irradiance(
        system.tilt_deg,
        system.azimuth_deg,
        solar["apparent_zenith"].to_numpy(),
        solar["azimuth"].to_numpy(),
        dni=weather["dni"].to_numpy(),
        ghi=weather["ghi"].to_numpy(),
        dhi=weather["dhi"].to_numpy(),
        dni_extra=pvlib.irradiance.get_extra_radiation(middle).to_numpy(),
        model="haydavies",
    )
    aoi = pvlib.irradiance.aoi(system.tilt_deg, system.azimuth_deg, solar["apparent_zenith"], solar["azimuth"])
    effective = np.asarray(poa["poa_direct"]) * pvlib.iam.physical(aoi.to_numpy()) + np.asarray(poa["poa_diffuse"])
    effective = np.nan_to_num(effective, nan=0.0).clip(min=0.0)
    temp_air = _column_or(weather, "temp_air", DEFAULT_TEMP_AIR_C)
    wind = _column_or(weather, "wind_speed", DEFAULT_WIND_SPEED_M_PER_S)
    cell_c = pvlib.temperature.sapm_cell(
        np.nan_to_num(np.asarray(poa["poa_global"])), temp_air, wind, **TEMPERATURE_MODEL
    )
    dc_kw = pvlib.pvsystem.pvwatts_dc(effective, cell_c, system.capacity_kwp, TEMPERATURE_COEFFICIENT_PER_C)
    dc_kw = dc_kw * (1.0 - DC_LOSS_FRACTION)
    ac_kw = pvlib.inverter.pvwatts(dc_kw, system.ac_limit_kw / INVERTER_EFFICIENCY, INVERTER_EFFICIENCY)
    return pd.Series(
        np.clip(np.asarray(ac_kw, dtype=float), 0.0, system.ac_limit_kw), index=weather.index, name="pv_kw"
    )


def clearsky_pv_kw(system: PvSystem, index: pd.DatetimeIndex, temp_air_c: pd.Series | float | None = None) -> pd.Series:
    """Clear-sky AC output [kW] of ``system`` on ``index`` (interval starts)."""
    weather = clearsky_irradiance(system, index)
    weather["temp_air"] = DEFAULT_TEMP_AIR_C if temp_air_c is None else temp_air_c
    return pv_power_kw(system, weather)


def _column_or(frame: pd.DataFrame, column: str, default: float) -> np.ndarray:
    if column in frame.columns:
        return frame[column].fillna(default).to_numpy(dtype=float)
    return np.full(len(frame), default)
