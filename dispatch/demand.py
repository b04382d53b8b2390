"""A model of ride demand in Arao and a seeded generator of request logs.

ILLUSTRATIVE: the points of interest and residential zones below are plausible places for a
city like Arao (a hospital, clinics, shopping centres, JR stations, civic buildings; homes
east of the coast), placed at plausible coordinates, not a survey. Demand follows an older
population: trips to hospital and clinics peak in the morning, shopping and the ride home
around midday, little in the late afternoon. Until the forecasting module learns request rates
from logs, the same model serves as the dispatcher's demand forecast for rebalancing.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from dispatch.model import Point

KM_PER_DEG_LAT = 111.32


@dataclass(frozen=True)
class Place:
    name: str
    kind: str  # hospital, clinic, shopping, station, civic, home
    point: Point
    weight: float


PLACES: tuple[Place, ...] = (
    Place("Arao city hospital", "hospital", Point(32.9790, 130.4515), 3.0),
    Place("Clinics near Arao station", "clinic", Point(32.9862, 130.4368), 1.2),
    Place("Clinic, Yotsuyama", "clinic", Point(33.0015, 130.4462), 0.8),
    Place("Clinic, Hirai", "clinic", Point(32.9675, 130.4590), 0.7),
    Place("Shopping centre by Green Land", "shopping", Point(32.9665, 130.4388), 2.0),
    Place("Supermarket, north", "shopping", Point(33.0040, 130.4395), 1.0),
    Place("Supermarket, east", "shopping", Point(32.9880, 130.4640), 0.9),
    Place("JR Arao station", "station", Point(32.9866, 130.4331), 1.5),
    Place("JR Minami-Arao station", "station", Point(32.9555, 130.4435), 0.6),
    Place("City hall", "civic", Point(32.9868, 130.4335), 0.8),
    Place("Cultural centre", "civic", Point(32.9790, 130.4420), 0.6),
)

# Residential zones (centroid, share of older residents); homes scatter around each centroid.
HOME_ZONES: tuple[Place, ...] = (
    Place("Arao centre", "home", Point(32.9885, 130.4410), 1.4),
    Place("Yotsuyama", "home", Point(33.0030, 130.4480), 1.0),
    Place("Manda", "home", Point(33.0090, 130.4560), 0.8),
    Place("Hirai", "home", Point(32.9700, 130.4620), 0.9),
    Place("Midoriga-oka", "home", Point(32.9760, 130.4720), 1.0),
    Place("Fumoto", "home", Point(32.9950, 130.4700), 0.7),
    Place("Nagasu road", "home", Point(32.9560, 130.4520), 0.8),
    Place("Hara-mankita", "home", Point(32.9620, 130.4400), 0.9),
    Place("Shimoi", "home", Point(32.9820, 130.4580), 1.0),
    Place("Ariake coast", "home", Point(32.9740, 130.4345), 0.6),
)
HOME_SPREAD_KM = 0.45
PLACE_SPREAD_KM = 0.04

# Share of the day's requests in each hour of service (08:00..17:00 start of hour).
HOURLY_SHARE = {8: 0.13, 9: 0.16, 10: 0.14, 11: 0.12, 12: 0.10, 13: 0.09, 14: 0.09, 15: 0.08, 16: 0.05, 17: 0.04}

# Trip purposes by hour: (origin kind, destination kind, weight by hour band)
_BANDS = ("morning", "midday", "afternoon")
PURPOSES: tuple[tuple[str, str, tuple[float, float, float]], ...] = (
    ("home", "hospital", (0.34, 0.08, 0.05)),
    ("home", "clinic", (0.20, 0.06, 0.05)),
    ("hospital", "home", (0.08, 0.24, 0.18)),
    ("clinic", "home", (0.06, 0.12, 0.10)),
    ("home", "shopping", (0.10, 0.18, 0.14)),
    ("shopping", "home", (0.03, 0.14, 0.22)),
    ("hospital", "shopping", (0.03, 0.08, 0.04)),
    ("home", "station", (0.08, 0.04, 0.06)),
    ("station", "home", (0.03, 0.03, 0.10)),
    ("home", "civic", (0.05, 0.03, 0.03)),
    ("civic", "home", (0.00, 0.02, 0.03)),
)
PARTY_SIZE = ((1, 0.82), (2, 0.15), (3, 0.03))


def _band(hour: int) -> int:
    return 0 if hour < 11 else (1 if hour < 14 else 2)


def _places(kind: str) -> tuple[Place, ...]:
    return HOME_ZONES if kind == "home" else tuple(p for p in PLACES if p.kind == kind)


def _scatter(rng: np.random.Generator, place: Place, spread_km: float) -> Point:
    d_lat, d_lon = rng.normal(0.0, spread_km, size=2)
    km_per_deg_lon = KM_PER_DEG_LAT * math.cos(math.radians(place.point.lat))
    return Point(round(place.point.lat + d_lat / KM_PER_DEG_LAT, 6), round(place.point.lon + d_lon / km_per_deg_lon, 6))


def _pick(rng: np.random.Generator, places: tuple[Place, ...]) -> Place:
    weights = np.array([p.weight for p in places])
    return places[int(rng.choice(len(places), p=weights / weights.sum()))]


def _endpoint(rng, kind: str) -> Point:
    place = _pick(rng, _places(kind))
    return _scatter(rng, place, HOME_SPREAD_KM if kind == "home" else PLACE_SPREAD_KM)


MIN_TRIP_KM = 0.8  # shorter is a walk, not a taxi ride


def _trip_ends(rng: np.random.Generator, origin_kind: str, dest_kind: str) -> tuple[Point, Point]:
    while True:  # terminates: every purpose has ends further apart than MIN_TRIP_KM
        origin, dest = _endpoint(rng, origin_kind), _endpoint(rng, dest_kind)
        if _km(origin, dest) >= MIN_TRIP_KM:
            return origin, dest


def generate_requests(date: dt.date, n_requests: int, timezone: str = "Asia/Tokyo", seed: int = 0) -> pd.DataFrame:
    """A request log of ``n_requests`` trips on ``date`` (pure and seeded).

    Columns: request_id, time (ISO 8601 with offset), origin_lat, origin_lon, dest_lat,
    dest_lon, passengers; rows in time order.
    """
    if n_requests < 0:
        raise ValueError("n_requests must not be negative")
    rng = np.random.default_rng(seed)
    hours = np.array(sorted(HOURLY_SHARE))
    shares = np.array([HOURLY_SHARE[h] for h in hours])
    start_s = np.sort(
        hours[rng.choice(len(hours), size=n_requests, p=shares / shares.sum())] * 3600.0
        + rng.uniform(0, 3600, n_requests)
    )
    midnight = pd.Timestamp(dt.datetime.combine(date, dt.time(0, 0))).tz_localize(timezone)
    rows = []
    for index, seconds in enumerate(start_s):
        band = _band(int(seconds // 3600))
        weights = np.array([w[band] for _, _, w in PURPOSES])
        origin_kind, dest_kind, _ = PURPOSES[int(rng.choice(len(PURPOSES), p=weights / weights.sum()))]
        origin, dest = _trip_ends(rng, origin_kind, dest_kind)
        size = int(rng.choice([s for s, _ in PARTY_SIZE], p=[p for _, p in PARTY_SIZE]))
        moment = midnight + pd.Timedelta(seconds=round(float(seconds)))
        rows.append((f"r{index + 1:05d}", moment.isoformat(), origin.lat, origin.lon, dest.lat, dest.lon, size))
    return pd.DataFrame(
        rows, columns=["request_id", "time", "origin_lat", "origin_lon", "dest_lat", "dest_lon", "passengers"]
    )


def _km(a: Point, b: Point) -> float:
    d_lat = (a.lat - b.lat) * KM_PER_DEG_LAT
    d_lon = (a.lon - b.lon) * KM_PER_DEG_LAT * math.cos(math.radians(a.lat))
    return math.hypot(d_lat, d_lon)


class DemandModel:
    """The generator's expectations as a forecast: requests per hour and where they start."""

    def __init__(self, requests_per_day: float):
        self.requests_per_day = requests_per_day

    def rate_per_h(self, time_s: float) -> float:
        return self.requests_per_day * HOURLY_SHARE.get(int(time_s // 3600), 0.0)

    def mean_rate_per_h(self) -> float:
        return self.requests_per_day / len(HOURLY_SHARE)

    def hotspots(self, time_s: float) -> list[tuple[Point, float]]:
        """Where requests start around ``time_s``: points with their share of the requests.

        A residential zone is a disc of homes, not its centroid: it is represented by its centre
        and six points on a ring at the homes' mean distance from it (``_zone_points``), so the
        rebalancer can spread several vehicles over one zone and does not take a vehicle parked
        at the centroid for one at every door.
        """
        hour = int(time_s // 3600)
        band = _band(min(max(hour, min(HOURLY_SHARE)), max(HOURLY_SHARE)))
        weight_by_point: dict[Point, float] = {}
        for origin_kind, _, weights in PURPOSES:
            places = _places(origin_kind)
            total = sum(p.weight for p in places)
            for place in places:
                share = weights[band] * place.weight / total
                for point, part in _zone_points(place, HOME_SPREAD_KM if origin_kind == "home" else 0.0):
                    weight_by_point[point] = weight_by_point.get(point, 0.0) + share * part
        return sorted(weight_by_point.items(), key=lambda item: -item[1])


RING_POINTS = 6


def _zone_points(place: Place, spread_km: float) -> list[tuple[Point, float]]:
    """A place's origins as (point, share) pairs: the place itself when its spread is small,
    else its centre (1/7) and six ring points (6/7 together) placed so that the mean distance
    from the centre equals that of the scatter, sqrt(pi/2) x ``spread_km``."""
    if spread_km <= 0.1:
        return [(place.point, 1.0)]
    ring_share = RING_POINTS / (RING_POINTS + 1)
    radius_km = math.sqrt(math.pi / 2) * spread_km / ring_share
    km_per_deg_lon = KM_PER_DEG_LAT * math.cos(math.radians(place.point.lat))
    points = [(place.point, 1.0 - ring_share)]
    for k in range(RING_POINTS):
        angle = 2 * math.pi * k / RING_POINTS
        points.append(
            (
                Point(
                    place.point.lat + radius_km * math.sin(angle) / KM_PER_DEG_LAT,
                    place.point.lon + radius_km * math.cos(angle) / km_per_deg_lon,
                ),
                ring_share / RING_POINTS,
            )
        )
    return points
