"""Evaluating a vehicle's stop sequence and inserting a request into it.

A route is feasible when, driven from the vehicle's start at the router's times with
``dwell_s`` at each rider stop:

- every pickup happens by its ``latest_s`` (the rider's maximum wait);
- no more than ``seats`` passengers are ever on board;
- every rider's time from pickup to drop-off is at most its ``max_ride_s`` (the detour limit);
- the last stop is left by the vehicle's ``end_s`` (and a called shelter reached by then);
- the energy of the route plus the drive to the nearest charger (or the shelter it is called
  to) leaves at least ``floor_kwh`` in the battery:
  ``soc_kwh - consumption_kwh_per_km * (route_km + tail_km) >= floor_kwh``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from dispatch.model import Point, Reason, Request, Stop, StopKind, VehicleView
from dispatch.router import Router, great_circle_km

TIME_TOLERANCE_S = 1e-6


@dataclass
class RouteContext:
    """Everything route evaluation needs besides the vehicle: the router and the chargers."""

    router: Router
    dwell_s: float
    charger_points: tuple[Point, ...]

    def __post_init__(self) -> None:
        self._tail_km: dict[Point, float] = {}

    def nearest_charger_km(self, point: Point) -> float:
        km = self._tail_km.get(point)
        if km is None:
            km = min((self.router.leg(point, c)[0] for c in self.charger_points), default=0.0)
            self._tail_km[point] = km
        return km

    def lower_bound_s(self, a: Point, b: Point) -> float:
        router = self.router
        return great_circle_km(a, b) * router.min_road_factor / router.speed_kmh * 3600.0


@dataclass(frozen=True)
class RoutePlan:
    """A feasible route: its stops, when the vehicle is free again, its length and energy."""

    stops: tuple[Stop, ...]
    end_s: float
    km: float
    energy_kwh: float
    pickup_s: dict[str, float]
    dropoff_s: dict[str, float]


@dataclass(frozen=True)
class Insertion:
    """A rider placed into a route: the new route and what the placement cost (see ``best_insertion``)."""

    plan: RoutePlan
    cost: float


@dataclass(frozen=True)
class Failure:
    reason: Reason
    request_id: str


def evaluate(vehicle: VehicleView, stops: Sequence[Stop], ctx: RouteContext) -> RoutePlan | Failure:
    """Drive ``stops`` from the vehicle's start; the plan, or why it is infeasible."""
    t = vehicle.start_s
    here = vehicle.start
    load = vehicle.onboard_passengers
    km = 0.0
    pickup_s: dict[str, float] = {}
    dropoff_s: dict[str, float] = {}
    leg = ctx.router.leg
    for stop in stops:
        distance_km, time_s = leg(here, stop.point)
        t += time_s
        km += distance_km
        here = stop.point
        if stop.kind is StopKind.PICKUP:
            if t > stop.latest_s + TIME_TOLERANCE_S:
                return Failure(Reason.NO_VEHICLE_IN_TIME, stop.request_id)
            load += stop.passengers
            if load > vehicle.seats:
                return Failure(Reason.NO_SEATS, stop.request_id)
            pickup_s[stop.request_id] = t
        elif stop.kind is StopKind.DROPOFF:
            picked = stop.picked_up_s if stop.picked_up_s is not None else pickup_s[stop.request_id]
            if t - picked > stop.max_ride_s + TIME_TOLERANCE_S:
                return Failure(Reason.DETOUR, stop.request_id)
            load -= stop.passengers
            dropoff_s[stop.request_id] = t
        t += ctx.dwell_s
    if not stops:
        t = vehicle.start_s
    if vehicle.final_point is not None:
        tail_km, tail_s = leg(here, vehicle.final_point)
        if stops and t + tail_s > vehicle.end_s + TIME_TOLERANCE_S:
            return Failure(Reason.HOURS, "")
    else:
        tail_km = ctx.nearest_charger_km(here)
        if stops and t > vehicle.end_s + TIME_TOLERANCE_S:
            return Failure(Reason.HOURS, "")
    energy_kwh = (km + tail_km) * vehicle.consumption_kwh_per_km
    if stops and vehicle.soc_kwh - energy_kwh < vehicle.floor_kwh - 1e-9:
        return Failure(Reason.ENERGY, "")
    return RoutePlan(tuple(stops), t, km, km * vehicle.consumption_kwh_per_km, pickup_s, dropoff_s)


def rider_stops(request: Request, direct_s: float, max_wait_s: float, max_ride_s: float) -> tuple[Stop, Stop]:
    pickup = Stop(
        StopKind.PICKUP,
        request.origin,
        request.request_id,
        request.passengers,
        latest_s=request.time_s + max_wait_s,
    )
    dropoff = Stop(
        StopKind.DROPOFF,
        request.destination,
        request.request_id,
        request.passengers,
        max_ride_s=max_ride_s,
    )
    return pickup, dropoff


def _blame(failure: Failure, new_ids: frozenset[str]) -> Reason:
    """A missed pickup of a rider already promised is a detour for that rider, not a wait."""
    if failure.reason is Reason.NO_VEHICLE_IN_TIME and failure.request_id not in new_ids:
        return Reason.DETOUR
    return failure.reason


def best_insertion(
    vehicle: VehicleView,
    stops: tuple[Stop, ...],
    pickup: Stop,
    dropoff: Stop,
    ctx: RouteContext,
    new_ids: frozenset[str],
    wait_weight: float = 0.0,
    request_time_s: float = 0.0,
) -> Insertion | Reason:
    """The cheapest feasible way to add one rider's pickup and drop-off to ``stops``.

    Cost is the route's end time plus ``wait_weight`` times the rider's wait [s]; existing
    stops keep their order. Returns the :class:`Insertion` or the most telling reason it cannot be done.
    """
    if vehicle.start_s + ctx.lower_bound_s(vehicle.start, pickup.point) > pickup.latest_s:
        return Reason.NO_VEHICLE_IN_TIME
    best: Insertion | None = None
    reasons: list[Reason] = []
    n = len(stops)
    for i in range(n + 1):
        for j in range(i, n + 1):
            candidate = stops[:i] + (pickup,) + stops[i:j] + (dropoff,) + stops[j:]
            result = evaluate(vehicle, candidate, ctx)
            if isinstance(result, Failure):
                reasons.append(_blame(result, new_ids))
                continue
            cost = result.end_s + wait_weight * (result.pickup_s[pickup.request_id] - request_time_s)
            if best is None or cost < best.cost:
                best = Insertion(result, cost)
    if best is not None:
        return best
    return most_telling(reasons)


# When several positions fail for different reasons, report the one a rider would act on.
_REASON_ORDER = (Reason.ENERGY, Reason.HOURS, Reason.NO_SEATS, Reason.DETOUR, Reason.NO_VEHICLE_IN_TIME)


def most_telling(reasons: Sequence[Reason]) -> Reason:
    present = set(reasons)
    for reason in _REASON_ORDER:
        if reason in present:
            return reason
    return Reason.NO_VEHICLE_IN_TIME
