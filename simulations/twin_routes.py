"""The twin's taxis drive the dispatcher's routes (``fleet/<vehicle>/plan``, ``VehiclePlan.route``).

A vehicle that has received a route drives it on :mod:`dispatch.motion`, the movement model
of the dispatcher (the router's distance and time, ``consumption_kwh_per_km`` of the vehicle,
``dwell_s`` at riders' stops, a pickup never left before its expected time). It loses the
energy of every km as it goes, and on arriving at a charger, depot or shelter stop that names
a charger it plugs in there, if no other vehicle holds that charger (at a shelter stop that names no charger,
into a free V2H point of the shelter). While it drives it is
plugged into nothing, so its charger has no vehicle and takes no power whatever is written to
it. A new plan replaces the route from where the vehicle is at that moment; a vehicle plugged
into the charger its new route starts at stays plugged. A vehicle that never received a route
keeps its plug windows (``plans_from_duties``).
"""

from __future__ import annotations

import datetime as dt
import logging

from dispatch.model import Point
from dispatch.motion import RouteMotion, Waypoint, Where
from dispatch.router import Router
from drivers.sim.physics import SimEv
from ems.fleet import RouteStop, StopKind, VehiclePlan

log = logging.getLogger(__name__)

PLUG_STOPS = (StopKind.CHARGER, StopKind.DEPOT, StopKind.SHELTER)
SAME_PLACE_KM = 0.05  # a stop this close to where the vehicle stands is where it stands


def _epoch_s(moment: dt.datetime) -> float:
    return moment.timestamp()


class RouteFollower:
    """One vehicle on the dispatcher's route."""

    def __init__(
        self,
        vehicle: SimEv,
        router: Router,
        consumption_kwh_per_km: float,
        dwell_s: float,
        v2h_points: dict[str, tuple[str, ...]] | None = None,
    ):
        self.vehicle = vehicle
        self.v2h_points = v2h_points or {}  # shelter id -> its V2H chargers, for a shelter stop naming none
        self.router = router
        self.consumption_kwh_per_km = consumption_kwh_per_km
        self.dwell_s = dwell_s
        self.stops: tuple[RouteStop, ...] = ()
        self.motion: RouteMotion | None = None
        self.plan_issued: dt.datetime | None = None
        self._km = 0.0  # of the current route, already counted
        self.waiting_for_charger: str | None = None  # arrived, but another vehicle holds it

    def follow(self, plan: VehiclePlan, now: dt.datetime) -> None:
        """Drive ``plan.route`` from where the vehicle is ``now``."""
        vehicle = self.vehicle
        where = self._advance(now)  # the route driven so far counts up to now, not only to the last step
        self.plan_issued = plan.issued
        start = Point(*vehicle.position) if vehicle.position is not None else None
        stops = plan.route
        standing_at = self._plug_stop(where.reached, _epoch_s(now)) if where is not None and not where.driving else None
        if not stops and standing_at is not None:
            # "stay where you are" while standing at a charging stop (arrived since the last step,
            # not yet plugged): stay there, plugged
            stops = (standing_at,)
        if start is None:
            start = Point(stops[0].position.lat, stops[0].position.lon) if stops else Point(0.0, 0.0)
        if vehicle.charger_id is not None:
            first = stops[0] if stops else None
            stays = first is not None and first.charger_id == vehicle.charger_id and self._here(start, first)
            if not stays and stops:
                vehicle.charger_id = None
        self.stops = stops
        self.waiting_for_charger = None
        self._km = 0.0
        self.motion = RouteMotion(
            self.router, self.consumption_kwh_per_km, start, _epoch_s(now), self._waypoints(start, stops)
        )

    def _here(self, start: Point, stop: RouteStop) -> bool:
        return self.router.leg(start, Point(stop.position.lat, stop.position.lon))[0] <= SAME_PLACE_KM

    def _waypoints(self, start: Point, stops: tuple[RouteStop, ...]) -> list[Waypoint]:
        waypoints = []
        for index, stop in enumerate(stops):
            point = Point(stop.position.lat, stop.position.lon)
            if stop.kind in (StopKind.PICKUP, StopKind.DROPOFF):
                not_before = _epoch_s(stop.eta) if stop.kind is StopKind.PICKUP else None
                waypoints.append(Waypoint(point, self.dwell_s, not_before))
                continue
            not_before = None
            if stop.kind in PLUG_STOPS and index + 1 < len(stops):
                # a charging stop on the way: stay until the drive to the next stop must begin
                after = stops[index + 1]
                travel_s = self.router.leg(point, Point(after.position.lat, after.position.lon))[1]
                not_before = _epoch_s(after.eta) - travel_s
            waypoints.append(Waypoint(point, 0.0, not_before))
        return waypoints

    def step(self, now: dt.datetime, chargers_taken: set[str], known_chargers: set[str]) -> None:
        """Move the vehicle to where the route has it at ``now``; plug in or out."""
        where = self._advance(now)
        if where is None:
            return
        vehicle = self.vehicle
        at_stop = self._plug_stop(where.reached, _epoch_s(now)) if not where.driving else None
        wanted = self._charger_at(at_stop, chargers_taken) if at_stop is not None else None
        if wanted is None:
            if vehicle.charger_id is not None and (where.driving or where.reached > 0):
                vehicle.charger_id = None
            self.waiting_for_charger = None
            return
        if vehicle.charger_id == wanted:
            return
        if wanted not in known_chargers:
            return
        if wanted in chargers_taken:
            if self.waiting_for_charger != wanted:
                log.warning("%s: charger %s is taken by another vehicle; waiting beside it", vehicle.name, wanted)
            self.waiting_for_charger = wanted
            return
        vehicle.charger_id = wanted
        self.waiting_for_charger = None

    def _advance(self, now: dt.datetime) -> Where | None:
        """Move the vehicle along the route to ``now``: position, km and the energy they took."""
        if self.motion is None:
            return None
        vehicle = self.vehicle
        where = self.motion.at(_epoch_s(now))
        driven_km = where.km - self._km
        if driven_km > 0:
            vehicle.soc_kwh = max(0.0, vehicle.soc_kwh - driven_km * self.consumption_kwh_per_km)
            vehicle.odometer_km += driven_km
            self._km = where.km
        vehicle.position = (where.position.lat, where.position.lon)
        return where

    def _charger_at(self, stop: RouteStop, chargers_taken: set[str]) -> str | None:
        """The charger named by the stop; at a shelter stop naming none, the shelter's V2H point
        this vehicle holds, or else its first free one (all taken: the first, to wait for)."""
        if stop.charger_id is not None or stop.kind is not StopKind.SHELTER:
            return stop.charger_id
        points = self.v2h_points.get(stop.shelter_id or "", ())
        if self.vehicle.charger_id in points:
            return self.vehicle.charger_id
        free = [c for c in points if c not in chargers_taken]
        return (free or list(points))[0] if points else None

    def _plug_stop(self, reached: int, now_s: float) -> RouteStop | None:
        """The plug stop the vehicle stands at now, or None."""
        if reached == 0 or self.motion is None:
            return None
        stop = self.stops[reached - 1]
        if stop.kind not in PLUG_STOPS or (stop.charger_id is None and stop.kind is not StopKind.SHELTER):
            return None
        leave_s = self.motion.legs[reached - 1].leave_s
        if reached < len(self.stops) and now_s >= leave_s:
            return None
        return stop
