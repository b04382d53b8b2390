"""Ride demand: request rates by hour of week and zone, learned from a request log.

A request log is a DataFrame with columns ``request_id, time, origin_lat, origin_lon, dest_lat,
dest_lon, passengers`` (``time`` tz-aware). The service area is a square of ``side_km`` around
the portfolio's centre cut into ``cells_per_side`` x ``cells_per_side`` zones named
``r<row>c<col>`` (row 0 south, column 0 west); origins outside fall in zone ``outside``.

* :func:`request_rates`: mean requests per hour [1/h] for each hour of the week (0 = Monday
  00:00 local) and origin zone, counting each hour of the week as often as the log covers it;
* :func:`expected_requests`: requests expected in each step of a forecast grid, by zone;
* :func:`fleet_availability`: vehicles expected on the road and plugged in, by Little's law:
  busy vehicles = trips per hour x hours per trip, capped at the fleet size.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

REQUEST_COLUMNS = ("request_id", "time", "origin_lat", "origin_lon", "dest_lat", "dest_lon", "passengers")
HOURS_PER_WEEK = 168
KM_PER_DEG_LAT = 111.32
OUTSIDE = "outside"


@dataclass(frozen=True)
class ZoneGrid:
    centre_lat: float
    centre_lon: float
    side_km: float
    cells_per_side: int = 3

    @property
    def zones(self) -> list[str]:
        n = self.cells_per_side
        return [f"r{r}c{c}" for r in range(n) for c in range(n)] + [OUTSIDE]

    def zone_of(self, lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
        north_km = (np.asarray(lat, dtype=float) - self.centre_lat) * KM_PER_DEG_LAT
        east_km = (
            (np.asarray(lon, dtype=float) - self.centre_lon) * KM_PER_DEG_LAT * math.cos(math.radians(self.centre_lat))
        )
        cell = self.side_km / self.cells_per_side
        row = np.floor((north_km + self.side_km / 2) / cell).astype(int)
        col = np.floor((east_km + self.side_km / 2) / cell).astype(int)
        inside = (row >= 0) & (row < self.cells_per_side) & (col >= 0) & (col < self.cells_per_side)
        names = np.array([f"r{r}c{c}" for r, c in zip(row, col)], dtype=object)
        return np.where(inside, names, OUTSIDE)


def validate_request_log(log: pd.DataFrame) -> pd.DataFrame:
    """Check columns, tz-aware times, coordinates and passenger counts; return a sorted copy."""
    missing = [c for c in REQUEST_COLUMNS if c not in log.columns]
    if missing:
        raise ValueError(f"request log lacks column(s) {', '.join(missing)}")
    times = pd.DatetimeIndex(log["time"])
    if times.tz is None:
        raise ValueError("request log 'time' must be timezone-aware")
    checks = (
        ("origin_lat", -90, 90),
        ("dest_lat", -90, 90),
        ("origin_lon", -180, 180),
        ("dest_lon", -180, 180),
        ("passengers", 1, 20),
    )
    for column, low, high in checks:
        values = pd.to_numeric(log[column], errors="coerce")
        bad = values.isna() | (values < low) | (values > high)
        if bad.any():
            row = int(np.flatnonzero(bad.to_numpy())[0])
            where = f"row {row + 2} (request {log['request_id'].iloc[row]})"
            raise ValueError(f"{where}: {column}={log[column].iloc[row]} is outside {low}..{high}")
    if log["request_id"].duplicated().any():
        raise ValueError(f"request id {log['request_id'][log['request_id'].duplicated()].iloc[0]!r} appears twice")
    return log.sort_values("time").reset_index(drop=True)


def hour_of_week(times: pd.DatetimeIndex) -> np.ndarray:
    return times.day_of_week.to_numpy() * 24 + times.hour.to_numpy()


def request_rates(log: pd.DataFrame, grid: ZoneGrid, tz: str, start=None, end=None) -> pd.DataFrame:
    """Mean requests per hour [1/h]: index hour of week 0..167, one column per zone.

    The observed period runs from ``start`` to ``end`` (default: the first and last request,
    widened to whole hours); each hour of the week is divided by how many times it occurred.
    """
    log = validate_request_log(log)
    times = pd.DatetimeIndex(log["time"]).tz_convert(tz)
    first = pd.Timestamp(start).tz_convert(tz) if start is not None else times.min().floor("h")
    last = pd.Timestamp(end).tz_convert(tz) if end is not None else times.max().floor("h") + pd.Timedelta(hours=1)
    observed_hours = pd.date_range(first, last, freq="h", inclusive="left")
    exposure = np.bincount(hour_of_week(observed_hours), minlength=HOURS_PER_WEEK).astype(float)
    zones = grid.zone_of(log["origin_lat"], log["origin_lon"])
    counts = pd.crosstab(hour_of_week(times), zones).reindex(
        index=range(HOURS_PER_WEEK), columns=grid.zones, fill_value=0
    )
    with np.errstate(invalid="ignore", divide="ignore"):
        rates = counts.to_numpy(dtype=float) / exposure[:, None]
    hours = pd.RangeIndex(HOURS_PER_WEEK, name="hour_of_week")
    frame = pd.DataFrame(np.nan_to_num(rates, nan=0.0), index=hours, columns=grid.zones)
    frame.attrs["hours_observed"] = exposure
    return frame


def expected_requests(rates: pd.DataFrame, index: pd.DatetimeIndex) -> pd.DataFrame:
    """Requests expected in each step of ``index`` (tz-aware, local), by zone."""
    step_h = (index[1] - index[0]).total_seconds() / 3600.0 if len(index) > 1 else 1.0
    values = rates.to_numpy()[hour_of_week(index)] * step_h
    return pd.DataFrame(values, index=index, columns=rates.columns)


def fleet_availability(
    rates: pd.DataFrame,
    index: pd.DatetimeIndex,
    vehicles: int,
    trip_minutes: float,
    riders_per_vehicle_trip: float = 1.0,
) -> pd.DataFrame:
    """Vehicles expected ``on_road`` and ``plugged_in`` in each step (Little's law, capped)."""
    if vehicles < 0 or trip_minutes <= 0 or riders_per_vehicle_trip < 1:
        raise ValueError("vehicles >= 0, trip_minutes > 0 and riders_per_vehicle_trip >= 1 are required")
    total_per_h = rates.to_numpy().sum(axis=1)[hour_of_week(index)]
    on_road = np.minimum(total_per_h / riders_per_vehicle_trip * trip_minutes / 60.0, vehicles)
    return pd.DataFrame({"on_road": on_road, "plugged_in": vehicles - on_road}, index=index)
