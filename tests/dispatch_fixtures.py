"""Shared helpers of the dispatcher tests: a settings object, a router and small vehicles."""

from __future__ import annotations

from dispatch.model import Point, Request, Stop, StopKind, VehicleView
from dispatch.router import StraightLineRouter, great_circle_km
from dispatch.routes import RouteContext
from ems.config.dispatch import DispatchSettings

CENTRE = Point(32.987, 130.433)
DEPOT = Point(32.9925, 130.4390)
KM_LAT = 1 / 111.195  # degrees of latitude per km (on the sphere used by the router)


def north(point: Point, km: float) -> Point:
    return Point(point.lat + km * KM_LAT, point.lon)


def east(point: Point, km: float) -> Point:
    import math

    return Point(point.lat, point.lon + km * KM_LAT / math.cos(math.radians(point.lat)))


def context(settings: DispatchSettings | None = None) -> RouteContext:
    settings = settings or DispatchSettings()
    return RouteContext(StraightLineRouter(settings.speed_kmh, settings.detour_factor), settings.dwell_s, (DEPOT,))


def vehicle(
    vehicle_id: str,
    at: Point,
    soc_kwh: float = 30.0,
    seats: int = 4,
    stops=(),
    onboard: int = 0,
    start_s: float = 0.0,
    floor_kwh: float = 6.0,
    end_s: float = 36000.0,
    final_point=None,
) -> VehicleView:
    return VehicleView(
        vehicle_id, seats, at, start_s, soc_kwh, 0.15, floor_kwh, end_s, onboard, tuple(stops), final_point=final_point
    )


def request(request_id: str, origin: Point, destination: Point, time_s: float = 0.0, passengers: int = 1) -> Request:
    return Request(request_id, time_s, origin, destination, passengers)


def check_route(view: VehicleView, stops: tuple[Stop, ...], settings: DispatchSettings, requests: dict[str, Request]):
    """Independent re-drive of a route: (max load, {rider: wait}, {rider: (ride, limit)})."""
    t, here, load, max_load = view.start_s, view.start, view.onboard_passengers, view.onboard_passengers
    pickups, waits, rides = {}, {}, {}
    for stop in stops:
        km = great_circle_km(here, stop.point) * settings.detour_factor
        t += km / settings.speed_kmh * 3600
        here = stop.point
        if stop.kind is StopKind.PICKUP:
            load += stop.passengers
            pickups[stop.request_id] = t
            if stop.request_id in requests:
                waits[stop.request_id] = t - requests[stop.request_id].time_s
        elif stop.kind is StopKind.DROPOFF:
            load -= stop.passengers
            start = stop.picked_up_s if stop.picked_up_s is not None else pickups[stop.request_id]
            rides[stop.request_id] = (t - start, stop.max_ride_s)
        max_load = max(max_load, load)
        t += settings.dwell_s
    return max_load, waits, rides
