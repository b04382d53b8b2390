"""One great-circle distance for the whole tree: the dispatcher's router, its pruning of far
vehicles and the BCP's drive estimates all measure with ``ems.fleet.geo``."""

from __future__ import annotations

import math

import numpy as np
import pytest

from dispatch.model import Point
from dispatch.router import StraightLineRouter, great_circle_km
from ems.bcp.inputs import straight_line_km
from ems.config.schema import Site
from ems.fleet import geo

ARAO_HOSPITAL = (32.9790, 130.4515)
ARAO_STATION = (32.9866, 130.4331)


def test_a_degree_of_latitude_is_the_mean_earth_radius_times_pi_over_180():
    assert geo.great_circle_km(33.0, 130.0, 34.0, 130.0) == pytest.approx(
        geo.EARTH_RADIUS_KM * math.pi / 180, rel=1e-12
    )
    assert geo.EARTH_RADIUS_KM == 6371.0088


def test_antipodes_do_not_fail_on_rounding():
    assert geo.great_circle_km(0.0, 0.0, 0.0, 180.0) == pytest.approx(math.pi * geo.EARTH_RADIUS_KM)


def test_vectorised_form_matches_the_scalar_one():
    lat = np.array([ARAO_HOSPITAL[0], 33.5, -10.0])
    lon = np.array([ARAO_HOSPITAL[1], 131.0, 20.0])
    many = geo.great_circle_km_many(lat, lon, *ARAO_STATION)
    one = [geo.great_circle_km(a, b, *ARAO_STATION) for a, b in zip(lat, lon)]
    assert many == pytest.approx(one, rel=1e-12)


def test_router_and_bcp_measure_the_same_distance():
    hospital, station = Point(*ARAO_HOSPITAL), Point(*ARAO_STATION)
    expected = geo.great_circle_km(*ARAO_HOSPITAL, *ARAO_STATION)
    assert great_circle_km(hospital, station) == expected
    assert StraightLineRouter(30.0, 1.3).leg(hospital, station)[0] == pytest.approx(expected * 1.3, rel=1e-12)
    a = Site(id="a", latitude_deg=ARAO_HOSPITAL[0], longitude_deg=ARAO_HOSPITAL[1])
    b = Site(id="b", latitude_deg=ARAO_STATION[0], longitude_deg=ARAO_STATION[1])
    assert straight_line_km(a, b) == expected
