"""Fleet: the vehicles on a sketch of the city (config coordinates, no map tiles), rides served
and waiting (the live dispatcher's store), each taxi's SoC through the day (the controller's store)."""

from __future__ import annotations

import datetime as dt
import math

from fastapi import APIRouter, Request

from ems.store.reads import latest_values
from ems.web.assets import iso, local_day
from ems.web.context import Console
from ems.web.dispatch_view import dispatcher_view
from ems.web.i18n import LABELS
from ems.web.pages import NavItem, page
from ems.web.series_cache import bucketed_series

router = APIRouter()
NAV = NavItem("/fleet", "nav.fleet", order=30)
KM_PER_DEG_LAT = 110.574
MAP_SIZE = 1000  # SVG user units across the service area
SOC_BUCKET_S = 300

LABELS.update(
    {
        "fleet.map": {
            "ja": "車両の位置 (設定の座標による略図)",
            "en": "Vehicles on a sketch of the city (config coordinates)",
        },
        "fleet.rides": {"ja": "配車", "en": "Rides"},
        "fleet.rides_none": {"ja": "配車システムの記録がありません", "en": "no dispatcher store found"},
        "fleet.soc": {"ja": "各車両の充電量 (本日)", "en": "Each taxi's state of charge today"},
        "fleet.position_home": {
            "ja": "位置: 配車記録がない車両は充電拠点に表示",
            "en": "vehicles without a dispatcher position are drawn at their home charger",
        },
        "rides.served": {"ja": "完了", "en": "served"},
        "rides.received": {"ja": "待機 (受付)", "en": "waiting (received)"},
        "rides.promised": {"ja": "待機 (配車済)", "en": "waiting (promised)"},
        "rides.onboard": {"ja": "乗車中", "en": "on board"},
        "rides.refused": {"ja": "お断り", "en": "refused"},
    }
)


@page(router, "/fleet", "fleet.html")
def fleet(console: Console, request: Request) -> dict:
    now = console.now()
    zone = console.zone
    start = local_day(now, zone)
    portfolio = console.portfolio
    dispatcher = dispatcher_view(console.dispatch_store)
    latest = latest_values(console.store, [v.id for v in portfolio.vehicles])
    project = projection(portfolio.portfolio.latitude_deg, portfolio.portfolio.longitude_deg, sketch_side_km(portfolio))
    shelter_sites = {s.site for s in portfolio.shelters}
    sites = {}
    for site in portfolio.sites:
        x, y = project(site.latitude_deg, site.longitude_deg)
        kind = (
            "depot"
            if site.id == portfolio.portfolio.depot_site
            else ("shelter" if site.id in shelter_sites else "building")
        )
        sites[site.id] = {"id": site.id, "name": site.name or site.id, "x": x, "y": y, "kind": kind}
    charger_site = {c.id: c.site for c in portfolio.chargers}
    vehicles = []
    for n, vehicle in enumerate(portfolio.vehicles):
        soc = latest.get(vehicle.id, {}).get("soc_fraction")
        seen = dispatcher["vehicles"].get(vehicle.id)
        if seen is not None:
            x, y = project(seen["lat"], seen["lon"])
            source = "dispatcher"
        else:
            home = sites.get(charger_site.get(vehicle.home_charger or "", portfolio.portfolio.depot_site or ""))
            if home is None:
                continue
            angle = 2 * math.pi * n / max(len(portfolio.vehicles), 1)  # around the home site, so none hides another
            x, y = home["x"] + 70 * math.cos(angle), home["y"] + 70 * math.sin(angle)
            source = "home"
        vehicles.append(
            {
                "id": vehicle.id,
                "x": round(x, 1),
                "y": round(y, 1),
                "source": source,
                "soc_fraction": None if soc is None or soc[1] is None else round(soc[1], 3),
            }
        )
    series = bucketed_series(
        console.extras,
        console.store,
        [v.id for v in portfolio.vehicles],
        "soc_fraction",
        start,
        now + dt.timedelta(seconds=1),
        SOC_BUCKET_S,
    )
    capacity = {v.id: v.battery_kwh for v in portfolio.vehicles}
    return {
        "now": iso(now, zone),
        "start": iso(start, zone),
        "end": iso(start + dt.timedelta(days=1), zone),
        "map": {
            "size": MAP_SIZE,
            "side_km": round(sketch_side_km(portfolio), 2),
            "sites": list(sites.values()),
            "vehicles": vehicles,
        },
        "rides": {
            "available": dispatcher["available"],
            "source": dispatcher["source"],
            "by_status": dispatcher["riders"],
            "served": dispatcher["riders"].get("served", 0),
            "waiting": dispatcher["riders"].get("received", 0) + dispatcher["riders"].get("promised", 0),
        },
        "soc": {
            vehicle: [[iso(t, zone), round(v * capacity[vehicle], 2)] for t, v in values]
            for vehicle, values in sorted(series.items())
        },
    }


def sketch_side_km(portfolio) -> float:
    """Side of the square drawn: the sites with a margin around the city centre (the service
    area is usually much larger than the part of it where the sites are)."""
    info = portfolio.portfolio
    km_per_deg_lon = KM_PER_DEG_LAT * math.cos(math.radians(info.latitude_deg))
    reach = [
        max(
            abs(s.latitude_deg - info.latitude_deg) * KM_PER_DEG_LAT,
            abs(s.longitude_deg - info.longitude_deg) * km_per_deg_lon,
        )
        for s in portfolio.sites
    ]
    return min(max(2.6 * max(reach, default=0.0), 1.0), info.service_area_km)


def projection(centre_lat: float, centre_lon: float, side_km: float):
    """(lat, lon) -> SVG (x, y): equirectangular around the centre, north up, the service area
    square filling the drawing."""
    km_per_deg_lon = KM_PER_DEG_LAT * math.cos(math.radians(centre_lat))
    scale = MAP_SIZE / side_km

    def to_xy(lat: float, lon: float) -> tuple[float, float]:
        east_km = (lon - centre_lon) * km_per_deg_lon
        north_km = (lat - centre_lat) * KM_PER_DEG_LAT
        return round(MAP_SIZE / 2 + east_km * scale, 1), round(MAP_SIZE / 2 - north_km * scale, 1)

    return to_xy
