"""Fleet energy and positioning, and the fleet plan published to the energy manager.

Rules (pure functions of the state passed in; the simulated or live clock is an argument):

- A vehicle's battery floor is ``soc_min + reserve_kwh`` or the energy manager's
  ``keep_energy_kwh`` for it, whichever is larger; every trip must leave that floor after the
  drive to the nearest charger (``dispatch.routes``).
- A vehicle called to a shelter (``Reservation.shelter_calls``) takes no trip it cannot finish
  before driving there; from the call time it goes to the shelter and stays.
- An idle vehicle charges at once when it is below its charge-now level
  (``ems.config.dispatch.charge_now_kwh``: ``low_soc_fraction`` of the battery, never less than
  the floor plus an hour of expected driving, so an idle vehicle too empty for a typical trip is
  never left waiting), or when it holds less than its next ``charge_lookahead_h`` of expected driving and
  the forecast demand is at or below the day's mean (the time that costs least service). It goes
  to the free charger it reaches soonest with its floor kept (its home charger on a tie) and
  takes riders again at ``charge_release_fraction``.
- An idle vehicle that has waited ``idle_rebalance_s`` moves toward forecast demand (the
  hotspots are shared out in proportion to their rates) or, without a forecast, to the depot; a
  move is made only if the vehicle can still reach the nearest charger from its target with its
  floor kept (it can always be brought back). With ``rebalance_method`` "stations" or
  "transport" the moves come from the LPs of ``dispatch.rebalance`` instead, with the same check.
  Outside its hours it returns to its home charger.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache, partial
from typing import Protocol

import numpy as np

from dispatch.clock import ServiceClock
from dispatch.model import Point, Stop, StopKind, VehicleView
from dispatch.rebalance import Coverer, Mover, station_moves, transport_moves, weighted_k_median
from dispatch.router import Router
from ems.config.dispatch import DispatchSettings, charge_now_kwh
from ems.config.schema import Portfolio
from ems.fleet import ChargingWindow, Reservation, VehiclePlan

SHIFT_OVERRUN_S = 1800.0  # riders picked up before the shift ends are still dropped off
ARRIVED_KM = 0.3  # a vehicle this close to its rebalancing target stays put


@dataclass(frozen=True)
class ChargerSpec:
    charger_id: str
    point: Point
    power_kw: float
    efficiency: float = 0.95


@dataclass(frozen=True)
class VehicleSpec:
    vehicle_id: str
    seats: int
    battery_kwh: float
    consumption_kwh_per_km: float
    soc_min_kwh: float
    soc_max_kwh: float
    reserve_kwh: float
    initial_soc_kwh: float
    home_charger: str | None  # none: the dispatcher sends it to any free charger
    shifts: tuple[tuple[float, float], ...]  # (start_s, end_s) of each shift in service-day seconds

    def shift_at(self, now_s: float) -> tuple[float, float] | None:
        for start, end in self.shifts:
            if start <= now_s < end:
                return start, end
        return None

    def remaining_service_h(self, now_s: float) -> float:
        return sum(max(0.0, end - max(start, now_s)) for start, end in self.shifts) / 3600.0


@dataclass(frozen=True)
class FleetSetup:
    vehicles: tuple[VehicleSpec, ...]
    chargers: tuple[ChargerSpec, ...]
    depot: Point
    clock: ServiceClock
    shelters: tuple[tuple[str, Point], ...] = ()  # (shelter id, where a called vehicle goes)

    def charger(self, charger_id: str) -> ChargerSpec:
        return next(c for c in self.chargers if c.charger_id == charger_id)


class DemandForecast(Protocol):
    def rate_per_h(self, time_s: float) -> float:
        """Expected requests per hour at ``time_s``."""

    def mean_rate_per_h(self) -> float:
        """Mean of the rate over the service day."""

    def hotspots(self, time_s: float) -> Sequence[tuple[Point, float]]:
        """Where requests are expected to start around ``time_s``, with relative weights."""


def fleet_from_portfolio(portfolio: Portfolio, date: dt.date) -> FleetSetup:
    """Vehicles, chargers and depot of a portfolio for one service day."""
    settings = portfolio.dispatch
    clock = ServiceClock(date, portfolio.portfolio.timezone)
    sites = {s.id: Point(s.latitude_deg, s.longitude_deg) for s in portfolio.sites}
    chargers = tuple(
        ChargerSpec(c.id, sites[c.site], c.charge_power_kw, c.efficiency) for c in portfolio.chargers if not c.v2h
    )
    by_id = {c.id: c for c in portfolio.chargers}
    depot_site = portfolio.portfolio.depot_site
    service = ((clock.time_of_day_s(settings.service_start), clock.time_of_day_s(settings.service_end)),)
    vehicles = []
    for v in portfolio.vehicles:
        if settings.vehicle_hours == "duties":
            shifts = tuple(_duty_span(clock, d.depart, d.return_) for d in v.duties)
        else:
            shifts = service
        vehicles.append(
            VehicleSpec(
                vehicle_id=v.id,
                seats=v.seats,
                battery_kwh=v.battery_kwh,
                consumption_kwh_per_km=v.consumption_kwh_per_km,
                soc_min_kwh=v.battery_kwh * v.soc_min_fraction,
                soc_max_kwh=v.battery_kwh * v.soc_max_fraction,
                reserve_kwh=v.reserve_kwh,
                initial_soc_kwh=v.battery_kwh * v.initial_soc_fraction,
                home_charger=v.home_charger,
                shifts=shifts,
            )
        )
    if depot_site:
        depot = sites[depot_site]
    elif (first_home := portfolio.vehicles[0].home_charger) is not None:
        depot = sites[by_id[first_home].site]
    else:
        raise ValueError("portfolio.depot_site: needed when vehicles[0] has no home_charger (the depot is its site)")
    shelters = tuple((s.id, sites[s.site]) for s in portfolio.shelters)
    return FleetSetup(tuple(vehicles), chargers, depot, clock, shelters)


def _duty_span(clock: ServiceClock, depart: dt.time, back: dt.time) -> tuple[float, float]:
    start, end = clock.time_of_day_s(depart), clock.time_of_day_s(back)
    return start, end if end > start else end + 86400.0


def floor_kwh(spec: VehicleSpec, reservation: Reservation | None) -> float:
    """Energy the vehicle must still hold at a charger after any trip [kWh]."""
    floor = spec.soc_min_kwh + spec.reserve_kwh
    if reservation is not None:
        floor = max(floor, reservation.keep_energy_kwh.get(spec.vehicle_id, 0.0))
    return floor


def shelter_call(spec: VehicleSpec, reservation: Reservation | None, clock: ServiceClock):
    """(shelter id, call time [s]) of the earliest call of this vehicle, if any."""
    if reservation is None:
        return None
    calls = [c for c in reservation.shelter_calls if c.vehicle_id == spec.vehicle_id]
    if not calls:
        return None
    first = min(calls, key=lambda c: c.from_time)
    return first.shelter_id, clock.to_s(first.from_time)


def energy_needed_kwh(spec: VehicleSpec, now_s: float, settings: DispatchSettings, floor: float) -> float:
    """Floor plus the expected driving of the next ``charge_lookahead_h`` service hours [kWh]."""
    hours = min(settings.charge_lookahead_h, spec.remaining_service_h(now_s))
    return floor + hours * settings.expected_km_per_hour * spec.consumption_kwh_per_km


@dataclass(frozen=True)
class IdleVehicle:
    """A vehicle with no rider on board or promised, as the fleet rules see it."""

    spec: VehicleSpec
    position: Point
    soc_kwh: float
    idle_since_s: float
    plugged_charger: str | None
    heading: StopKind | None  # what it is already driving to, if anything
    target: Point | None = None  # where it is driving to
    locked: bool = False  # charging because its battery was low


def needs_charge(vehicle: IdleVehicle, now_s, settings, floor, forecast: DemandForecast | None) -> bool:
    spec = vehicle.spec
    if vehicle.soc_kwh < charge_now_kwh(settings, spec.battery_kwh, floor, spec.consumption_kwh_per_km):
        return True
    if vehicle.soc_kwh >= energy_needed_kwh(spec, now_s, settings, floor):
        return False
    return forecast is None or forecast.rate_per_h(now_s) <= forecast.mean_rate_per_h()


def choose_charger(
    position: Point,
    spec: VehicleSpec,
    free: Sequence[ChargerSpec],
    router: Router,
    soc_kwh: float = float("inf"),
    floor: float = 0.0,
) -> ChargerSpec | None:
    """The free charger reached soonest (home charger first on a tie) among those reached with
    ``floor`` kept; if none is, the one reached with the most energy left."""
    if not free:
        return None
    reachable = [c for c in free if soc_kwh - router.leg(position, c.point)[0] * spec.consumption_kwh_per_km >= floor]
    return min(reachable or free, key=lambda c: (router.leg(position, c.point)[1], c.charger_id != spec.home_charger))


def idle_moves(
    idle: Sequence[IdleVehicle],
    now_s: float,
    setup: FleetSetup,
    settings: DispatchSettings,
    router: Router,
    taken_chargers: set[str],
    forecast: DemandForecast | None,
    reservation: Reservation | None,
    busy: Sequence[tuple[Point, float]] = (),
) -> dict[str, Stop]:
    """Where each idle vehicle should go next (vehicles left out stay where they are).

    A vehicle plugged in only to wait (not locked for a low battery) counts as idle once it
    holds ``charge_release_fraction``: standing at the depot is not a reason to stay there.
    ``busy`` are the vehicles on a trip: (last stop, when they are free there); the station and
    transport rebalancers count those free within their window as covering demand there.
    """
    moves: dict[str, Stop] = {}
    taken = set(taken_chargers)
    positioned: list[IdleVehicle] = []
    settled: list[IdleVehicle] = []  # idle too briefly to move, but covering demand where they stand
    for vehicle in idle:
        spec = vehicle.spec
        if vehicle.heading is StopKind.CHARGER or vehicle.locked:
            continue
        if spec.shift_at(now_s) is None:
            if vehicle.plugged_charger is None and vehicle.heading is not StopKind.DEPOT:
                charger = _home_or_nearest(vehicle, setup, router, taken)
                moves[spec.vehicle_id] = _charger_stop(charger, StopKind.DEPOT) if charger else _depot(setup)
                if charger:
                    taken.add(charger.charger_id)
            continue
        if vehicle.plugged_charger is None and needs_charge(
            vehicle, now_s, settings, floor_kwh(spec, reservation), forecast
        ):
            free = [c for c in setup.chargers if c.charger_id not in taken]
            charger = choose_charger(
                vehicle.position, spec, free, router, vehicle.soc_kwh, floor_kwh(spec, reservation)
            )
            if charger is not None:
                moves[spec.vehicle_id] = _charger_stop(charger, StopKind.CHARGER)
                taken.add(charger.charger_id)
                continue
        if (
            vehicle.plugged_charger is not None
            and vehicle.soc_kwh < settings.charge_release_fraction * spec.battery_kwh
        ):
            continue
        if vehicle.heading is StopKind.REBALANCE or now_s - vehicle.idle_since_s >= settings.idle_rebalance_s:
            positioned.append(vehicle)
        elif vehicle.heading is None:
            settled.append(vehicle)
    floors = {v.spec.vehicle_id: floor_kwh(v.spec, reservation) for v in positioned}
    if settings.rebalance and forecast is not None and settings.rebalance_method == "stations":
        moves.update(_stations(positioned, settled, idle, busy, now_s, setup, settings, router, forecast, floors))
    elif settings.rebalance and forecast is not None and settings.rebalance_method == "transport":
        moves.update(_transport(positioned, settled, busy, now_s, setup, settings, router, forecast, floors))
    else:
        moves.update(_reposition(positioned, settled, now_s, setup, settings, router, forecast, floors))
    return moves


def _stations(vehicles, settled, idle, busy, now_s, setup, settings, router, forecast, floors) -> dict[str, Stop]:
    """``dispatch.rebalance.station_moves`` to the stations of the forecast demand at ``now_s``."""
    if not vehicles:
        return {}
    hotspots = tuple(forecast.hotspots(now_s))
    if settings.station_count == "fleet":
        stations, shares = _station_points(hotspots, len(setup.vehicles), router)
    else:
        # as many stations as vehicles free to stand at them: the best points they can hold (the
        # fleet's k-median leaves a third of its stations empty while taxis are on trips); greedy
        # k-median without swaps, so the stations for k are those for k + 1 less one and a taxi
        # leaving for a ride moves at most the one standing at the station dropped
        stations, shares = _station_points(hotspots, len(vehicles) + len(settled), router, iterations=0)
    standing = [v.position for v in vehicles if v.heading is None]
    fixed = [v.position for v in settled] + [
        v.target for v in idle if v.heading is StopKind.REBALANCE and v.target is not None
    ]
    held = fixed + standing
    movers = [
        Mover(
            v.spec.vehicle_id,
            v.position,
            v.position,
            partial(can_come_back, v, setup=setup, router=router, floor=floors[v.spec.vehicle_id]),
        )
        for v in vehicles
        if v.heading is None
    ]
    if not movers:
        return {}
    # a station is worth the pickup km it saves over the window's demand in its catchment (as much
    # as one vehicle takes), each km priced as the batch prices a pickup km (1 + wait_weight);
    # without it that demand comes from the nearest vehicle already standing (or free soon)
    window_h = settings.rebalance_window_s / 3600.0
    expected = forecast.rate_per_h(now_s + settings.rebalance_window_s / 2) * window_h
    cover = held + [point for point, free_s in busy if free_s < now_s + settings.rebalance_window_s]
    far = [
        min(
            (router.leg(c, s)[0] for c in cover), default=float(np.mean([router.leg(m.position, s)[0] for m in movers]))
        )
        for s in stations
    ]
    values = [
        (1.0 + settings.wait_weight) * min(expected * share, settings.vehicle_rides_per_h * window_h) * d
        for share, d in zip(shares, far)
    ]
    if settings.one_vehicle_per_station:
        return station_moves(movers, stations, fixed, lambda a, b: router.leg(a, b)[0], values, one_per_station=True)
    return station_moves(movers, stations, held, lambda a, b: router.leg(a, b)[0], values)


@lru_cache(maxsize=16)  # memo only: the same hotspots and fleet give the same stations
def _station_points(hotspots: tuple[tuple[Point, float], ...], k: int, router: Router, iterations: int = 20):
    """The k-median stations of the hotspots and the share of the demand nearest each."""
    points = [p for p, _ in hotspots]
    weights = [w for _, w in hotspots]
    chosen = weighted_k_median(points, weights, k, lambda a, b: router.leg(a, b)[0], iterations)
    catchment = dict.fromkeys(chosen, 0.0)
    for p, w in hotspots:
        catchment[min(chosen, key=lambda c: router.leg(p, points[c])[0])] += w
    total = sum(catchment.values()) or 1.0
    return tuple(points[c] for c in chosen), tuple(catchment[c] / total for c in chosen)


def _transport(vehicles, settled, busy, now_s, setup, settings, router, forecast, floors) -> dict[str, Stop]:
    """``dispatch.rebalance.transport_moves`` on the fleet's idle and soon-free vehicles."""
    if not vehicles:
        return {}
    window_s = settings.rebalance_window_s
    # every idle vehicle is placed again each batch; one driving to a target may keep going there
    # (measured: keeping such vehicles on their targets drove more km, docs/dispatch.md)
    movers = [
        Mover(
            v.spec.vehicle_id,
            v.position,
            v.target if v.heading is StopKind.REBALANCE and v.target else v.position,
            partial(can_come_back, v, setup=setup, router=router, floor=floors[v.spec.vehicle_id]),
        )
        for v in vehicles
    ]
    window_h = window_s / 3600.0
    coverers = [Coverer(v.position, window_h) for v in settled]
    coverers += [
        Coverer(point, (now_s + window_s - free_s) / 3600.0) for point, free_s in busy if free_s < now_s + window_s
    ]
    expected = forecast.rate_per_h(now_s + window_s / 2) * window_h
    hotspots = forecast.hotspots(now_s + window_s / 2)
    return transport_moves(
        movers,
        coverers,
        hotspots,
        expected,
        window_h,
        settings.vehicle_rides_per_h,
        settings.wait_weight,
        lambda a, b: router.leg(a, b)[0],
    )


def busy_vehicles(views: Iterable[VehicleView], router: Router, dwell_s: float) -> list[tuple[Point, float]]:
    """(last stop, time it is left) of each vehicle on a trip: where and when it is free again."""
    out = []
    for view in views:
        here, t = view.start, view.start_s
        for stop in view.stops:
            t += router.leg(here, stop.point)[1] + dwell_s
            here = stop.point
        if view.stops:
            out.append((here, t))
    return out


def can_come_back(
    vehicle: IdleVehicle, target: Point, setup: FleetSetup, router: Router, floor: float, back_km: float | None = None
) -> bool:
    """The vehicle reaches ``target`` and then the charger nearest to it (``back_km`` away, when
    the caller knows it) with ``floor`` kept."""
    if back_km is None:
        back_km = min(
            (router.leg(target, c.point)[0] for c in setup.chargers), default=router.leg(target, setup.depot)[0]
        )
    km = router.leg(vehicle.position, target)[0] + back_km
    return vehicle.soc_kwh - km * vehicle.spec.consumption_kwh_per_km >= floor


def _home_or_nearest(vehicle: IdleVehicle, setup: FleetSetup, router: Router, taken: set[str]):
    free = [c for c in setup.chargers if c.charger_id not in taken]
    home = [c for c in free if c.charger_id == vehicle.spec.home_charger]
    return home[0] if home else choose_charger(vehicle.position, vehicle.spec, free, router)


def _charger_stop(charger: ChargerSpec, kind: StopKind) -> Stop:
    return Stop(kind, charger.point, place_id=charger.charger_id)


def _depot(setup: FleetSetup) -> Stop:
    return Stop(StopKind.DEPOT, setup.depot, place_id="depot")


def _reposition(vehicles, settled, now_s, setup, settings, router, forecast, floors) -> dict[str, Stop]:
    """Move idle vehicles where they best cover the forecast demand of the next ``rebalance_horizon_s``.

    Coverage is the demand-weighted distance from each forecast hotspot to its nearest idle
    vehicle (``vehicles`` may move; ``settled`` ones, idle only briefly, cover but stay). A move
    of one vehicle to one hotspot is worth the pickup km it saves over the next
    ``rebalance_horizon_s`` (coverage gain times the requests expected), priced as the
    assignment prices them: a pickup second is a second of driving plus ``wait_weight`` seconds
    of a rider's wait, so a saved pickup km is worth ``1 + wait_weight`` km of repositioning. The
    best move is made while one is worth it, each vehicle moving at most once per call.
    """
    if not vehicles:
        return {}
    if not settings.rebalance or forecast is None:
        return {
            v.spec.vehicle_id: _depot(setup)
            for v in vehicles
            if v.plugged_charger is None and v.heading is None and router.leg(v.position, setup.depot)[0] > ARRIVED_KM
        }
    hotspots = tuple(forecast.hotspots(now_s + settings.rebalance_horizon_s))
    weights = np.array([w for _, w in hotspots])
    if not hotspots or weights.sum() <= 0:
        return {}
    points = [p for p, _ in hotspots]
    weights = weights / weights.sum()
    between = np.array(_hotspot_km(hotspots, router))
    horizon_h = settings.rebalance_horizon_s / 3600.0
    requests = forecast.rate_per_h(now_s + settings.rebalance_horizon_s / 2) * horizon_h
    # a vehicle driving to a hotspot covers it already: it is counted where it is going
    anchors = [v.target if v.heading is StopKind.REBALANCE else v.position for v in vehicles]
    cover = np.array([[router.leg(a, p)[0] for p in points] for a in anchors + [v.position for v in settled]])
    drive = np.array([[router.leg(v.position, p)[0] for p in points] for v in vehicles])
    # the way back from each hotspot, once (not once per vehicle: a fleet may have a charger each)
    back_km = [
        min((router.leg(p, c.point)[0] for c in setup.chargers), default=router.leg(p, setup.depot)[0]) for p in points
    ]
    for i, v in enumerate(vehicles):  # a move it could not come back from is never worth it
        for j, p in enumerate(points):
            if not can_come_back(v, p, setup, router, floors[v.spec.vehicle_id], back_km[j]):
                drive[i, j] = np.inf
    moves: dict[str, Stop] = {}
    movable = list(range(len(vehicles)))
    while movable:
        # each vehicle's "others" (the cover without it, as np.delete(cover, i).min(axis=0)) from
        # the two nearest per hotspot: O(vehicles x hotspots) a round, not its square
        if len(cover) > 1:
            first, second = np.partition(cover, 1, axis=0)[:2]
            nearest = cover.argmin(axis=0)
        best = None
        for i in movable:
            others = np.where(nearest == i, second, first) if len(cover) > 1 else np.full(len(points), np.inf)
            current = weights @ np.minimum(others, cover[i])
            after = np.minimum(others[None, :], between).dot(weights)  # vehicle i at each hotspot
            value = (current - after) * requests * (1.0 + settings.wait_weight) - drive[i]
            j = int(np.argmax(value))
            if value[j] > 0 and (best is None or value[j] > best[0]):
                best = (value[j], i, j)
        if best is None:
            break
        _, i, j = best
        cover[i] = between[j]
        movable.remove(i)
        moves[vehicles[i].spec.vehicle_id] = Stop(StopKind.REBALANCE, points[j], place_id="hotspot")
    return moves


@lru_cache(maxsize=32)  # memo only: the same hotspots give the same distances
def _hotspot_km(hotspots: tuple[tuple[Point, float], ...], router: Router) -> tuple[tuple[float, ...], ...]:
    return tuple(tuple(router.leg(a, b)[0] for b, _ in hotspots) for a, _ in hotspots)


def vehicle_plan(
    spec: VehicleSpec,
    now_s: float,
    soc_kwh: float,
    busy_until_s: float,
    plugged_charger: str | None,
    setup: FleetSetup,
    settings: DispatchSettings,
    reservation: Reservation | None,
) -> VehiclePlan:
    """The fleet contract for one vehicle: expected plug-in windows and departure energy.

    A vehicle charging now is expected to stay until it reaches ``charge_target_fraction``
    (or its next shift starts); after its last shift it is expected at its home charger until
    the same shift the next day, needing the floor plus a full day's expected driving.
    """
    clock = setup.clock
    floor = floor_kwh(spec, reservation)
    windows: list[ChargingWindow] = []
    if plugged_charger is not None:
        charger = setup.charger(plugged_charger)
        target = min(spec.soc_max_kwh, settings.charge_target_fraction * spec.battery_kwh)
        hours = max(0.0, target - soc_kwh) / (charger.power_kw * charger.efficiency)
        out_s = max(now_s + hours * 3600.0, now_s + 60.0)
        windows.append(
            ChargingWindow(
                charger_id=plugged_charger,
                plug_in=clock.to_datetime(now_s),
                plug_out=clock.to_datetime(out_s),
                departure_energy_kwh=min(spec.soc_max_kwh, energy_needed_kwh(spec, out_s, settings, floor)),
                trip_energy_kwh=min(settings.charge_lookahead_h, spec.remaining_service_h(out_s))
                * settings.expected_km_per_hour
                * spec.consumption_kwh_per_km,
            )
        )
    if spec.shifts and spec.home_charger is not None:  # without one it charges wherever the dispatcher sends it
        last_end = max(end for _, end in spec.shifts)
        first_start = min(start for start, _ in spec.shifts)
        plug_in = max(
            last_end, busy_until_s, windows[-1].plug_out.timestamp() - clock.midnight.timestamp() if windows else 0.0
        )
        plug_out = first_start + 86400.0
        if plug_out > plug_in:
            day_kwh = (
                sum(e - s for s, e in spec.shifts)
                / 3600.0
                * settings.expected_km_per_hour
                * spec.consumption_kwh_per_km
            )
            windows.append(
                ChargingWindow(
                    charger_id=spec.home_charger,
                    plug_in=clock.to_datetime(plug_in),
                    plug_out=clock.to_datetime(plug_out),
                    departure_energy_kwh=min(spec.soc_max_kwh, floor + day_kwh),
                    trip_energy_kwh=day_kwh,
                )
            )
    return VehiclePlan(vehicle_id=spec.vehicle_id, issued=clock.to_datetime(now_s), windows=tuple(windows))
