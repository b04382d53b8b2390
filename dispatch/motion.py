"""How a vehicle moves: the one movement model of the dispatcher's replay and the twin.

A leg from ``origin`` to ``target`` takes the router's distance and time (straight line x
detour factor at the configured speed, or a road graph); along the way the vehicle's position
is interpolated linearly between the two points by the share of the leg's time elapsed, and
it uses ``consumption_kwh_per_km`` for every km. A route is a sequence of legs: the vehicle
leaves a rider's stop ``dwell_s`` after it arrives, and never picks a rider up before the
stop's expected time (``not_before_s``), as a driver waits at the kerb.

Times are seconds on any one scale (the caller's: service-day seconds in the replay, seconds
since the epoch in the twin). Everything here is pure: no clock, no I/O.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from dispatch.model import Point
from dispatch.router import Router


def along(origin: Point, target: Point, fraction: float) -> Point:
    """The point ``fraction`` (0..1) of the way from ``origin`` to ``target``."""
    fraction = min(1.0, max(0.0, fraction))
    return Point(origin.lat + (target.lat - origin.lat) * fraction, origin.lon + (target.lon - origin.lon) * fraction)


@dataclass(frozen=True)
class Waypoint:
    """One stop of a route as the movement model sees it."""

    point: Point
    dwell_s: float = 0.0  # time spent at the stop once there (boarding, paying)
    not_before_s: float | None = None  # the stop is not left before this (a pickup's expected time)


@dataclass(frozen=True)
class LegTimes:
    origin: Point
    target: Point
    depart_s: float
    arrive_s: float
    leave_s: float  # when the vehicle leaves the target (arrival, waiting, dwell)
    km: float


@dataclass(frozen=True)
class Where:
    """Where a vehicle on a route is at one moment, and what it took to get there."""

    position: Point
    km: float  # driven since the route began
    energy_kwh: float  # used since the route began
    reached: int  # number of stops arrived at
    driving: bool  # between two points (not at a stop, not waiting, not at the end)


class RouteMotion:
    """A vehicle that leaves ``start`` at ``start_s`` and drives to each waypoint in turn."""

    def __init__(
        self, router: Router, consumption_kwh_per_km: float, start: Point, start_s: float, waypoints: Sequence[Waypoint]
    ):
        self.consumption_kwh_per_km = consumption_kwh_per_km
        self.start, self.start_s = start, start_s
        self.waypoints = tuple(waypoints)
        legs = []
        origin, depart = start, start_s
        for stop in self.waypoints:
            km, travel_s = router.leg(origin, stop.point)
            arrive = depart + travel_s
            leave = max(arrive, stop.not_before_s if stop.not_before_s is not None else arrive) + stop.dwell_s
            legs.append(LegTimes(origin, stop.point, depart, arrive, leave, km))
            origin, depart = stop.point, leave
        self.legs = tuple(legs)

    @property
    def total_km(self) -> float:
        return sum(leg.km for leg in self.legs)

    @property
    def end_s(self) -> float:
        """When the last stop is reached."""
        return self.legs[-1].arrive_s if self.legs else self.start_s

    def at(self, time_s: float) -> Where:
        """Position, km and energy used, stops reached at ``time_s``."""
        km = 0.0
        position = self.start
        for index, leg in enumerate(self.legs):
            if time_s < leg.depart_s:
                return Where(position, km, km * self.consumption_kwh_per_km, index, False)
            if time_s < leg.arrive_s:
                fraction = (time_s - leg.depart_s) / (leg.arrive_s - leg.depart_s)
                km += leg.km * fraction
                return Where(along(leg.origin, leg.target, fraction), km, km * self.consumption_kwh_per_km, index, True)
            km += leg.km
            position = leg.target
        return Where(position, km, km * self.consumption_kwh_per_km, len(self.legs), False)
