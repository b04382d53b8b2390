"""Ride demand rates by hour of week and zone, from a request log."""

import math

import numpy as np
import pandas as pd
import pytest

from forecasting.ride import ZoneGrid, expected_requests, fleet_availability, request_rates, validate_request_log

CENTRE = (32.987, 130.433)
GRID = ZoneGrid(*CENTRE, side_km=12.0, cells_per_side=3)
KM_LAT = 1 / 111.32
KM_LON = 1 / (111.32 * math.cos(math.radians(CENTRE[0])))


def request(i, time, north_km=0.0, east_km=0.0, passengers=1):
    return {
        "request_id": f"r{i}",
        "time": pd.Timestamp(time, tz="Asia/Tokyo"),
        "origin_lat": CENTRE[0] + north_km * KM_LAT,
        "origin_lon": CENTRE[1] + east_km * KM_LON,
        "dest_lat": CENTRE[0],
        "dest_lon": CENTRE[1] + 1 * KM_LON,
        "passengers": passengers,
    }


@pytest.fixture
def two_weeks():
    rows = []
    for week in (0, 1):
        monday = pd.Timestamp("2026-06-01") + pd.Timedelta(weeks=week)
        for minute in (5, 25, 50):
            rows.append(request(len(rows), monday + pd.Timedelta(hours=8, minutes=minute)))
    rows.append(request(len(rows), "2026-06-05 18:10", north_km=-5, east_km=-5, passengers=2))  # Friday, south-west
    rows.append(request(len(rows), "2026-06-06 03:00", north_km=10))  # Saturday, beyond the area
    return pd.DataFrame(rows)


def test_rates_by_hour_of_week_and_zone(two_weeks):
    start, end = pd.Timestamp("2026-06-01", tz="Asia/Tokyo"), pd.Timestamp("2026-06-15", tz="Asia/Tokyo")
    rates = request_rates(two_weeks, GRID, "Asia/Tokyo", start, end)
    assert rates.shape == (168, 10)
    assert rates.loc[8, "r1c1"] == pytest.approx(3.0)  # Monday 08:00-09:00, three an hour each week
    assert rates.loc[4 * 24 + 18, "r0c0"] == pytest.approx(0.5)  # once in two Fridays
    assert rates.loc[5 * 24 + 3, "outside"] == pytest.approx(0.5)
    assert rates.to_numpy().sum() == pytest.approx(3.0 + 0.5 + 0.5)


def test_expected_requests_and_fleet_on_the_road(two_weeks):
    rates = request_rates(
        two_weeks,
        GRID,
        "Asia/Tokyo",
        pd.Timestamp("2026-06-01", tz="Asia/Tokyo"),
        pd.Timestamp("2026-06-15", tz="Asia/Tokyo"),
    )
    index = pd.date_range("2026-06-22 07:00", periods=6, freq="30min", tz="Asia/Tokyo")  # a later Monday
    expected = expected_requests(rates, index)
    np.testing.assert_allclose(expected["r1c1"].to_numpy(), [0, 0, 1.5, 1.5, 0, 0])
    fleet = fleet_availability(rates, index, vehicles=12, trip_minutes=30)
    np.testing.assert_allclose(fleet["on_road"].to_numpy(), [0, 0, 1.5, 1.5, 0, 0])
    np.testing.assert_allclose((fleet["on_road"] + fleet["plugged_in"]).to_numpy(), 12)
    assert fleet_availability(rates, index, vehicles=1, trip_minutes=30)["on_road"].max() == 1


def test_log_validation_names_the_problem(two_weeks):
    naive = two_weeks.assign(time=two_weeks["time"].dt.tz_localize(None))
    with pytest.raises(ValueError, match="timezone-aware"):
        validate_request_log(naive)
    with pytest.raises(ValueError, match="lacks column\\(s\\) passengers"):
        validate_request_log(two_weeks.drop(columns="passengers"))
    repeated = pd.concat([two_weeks, two_weeks.iloc[:1]])
    with pytest.raises(ValueError, match="request id 'r0' appears twice"):
        validate_request_log(repeated)
