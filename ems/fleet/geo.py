"""Great-circle distance on the WGS 84 mean sphere: the one formula the dispatcher's router,
its vehicle pruning and the BCP's drive estimates share."""

from __future__ import annotations

import math

import numpy as np

EARTH_RADIUS_KM = 6371.0088  # mean radius of the WGS 84 ellipsoid (IUGG)


def great_circle_km(lat1_deg: float, lon1_deg: float, lat2_deg: float, lon2_deg: float) -> float:
    """Haversine distance between two points given in degrees [km]."""
    lat1, lon1, lat2, lon2 = map(math.radians, (lat1_deg, lon1_deg, lat2_deg, lon2_deg))
    h = math.sin((lat2 - lat1) / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(h)))


def great_circle_km_many(lat_deg: np.ndarray, lon_deg: np.ndarray, to_lat_deg: float, to_lon_deg: float) -> np.ndarray:
    """Haversine distance from each of many points to one point [km] (vectorised)."""
    lat, lon = np.radians(lat_deg), np.radians(lon_deg)
    o_lat, o_lon = math.radians(to_lat_deg), math.radians(to_lon_deg)
    h = np.sin((lat - o_lat) / 2) ** 2 + np.cos(lat) * math.cos(o_lat) * np.sin((lon - o_lon) / 2) ** 2
    return 2 * EARTH_RADIUS_KM * np.arcsin(np.sqrt(np.minimum(h, 1.0)))
