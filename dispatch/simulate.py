"""Replay a request log through the dispatcher on a simulated clock and measure the service.

Vehicles drive their routes at the router's times, consume ``consumption_kwh_per_km``, and
charge at their charger's power. Every batch interval the simulation advances the vehicles,
applies the fleet rules (``dispatch.fleet``) and calls the pure assignment
(``dispatch.assign.assign_batch``) on the requests that arrived since the last batch. The run
ends when every request is either rejected or dropped off.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field, replace

import numpy as np

from dispatch.assign import Policy, assign_batch
from dispatch.fleet import (
    SHIFT_OVERRUN_S,
    DemandForecast,
    FleetSetup,
    IdleVehicle,
    VehicleSpec,
    busy_vehicles,
    floor_kwh,
    idle_moves,
    shelter_call,
    vehicle_plan,
)
from dispatch.model import Point, Rejection, Request, Stop, StopKind, VehicleView
from dispatch.router import Router
from dispatch.routes import RouteContext
from ems.config.dispatch import DispatchSettings, charge_now_kwh
from ems.fleet import Position, Reservation, VehiclePlan, VehicleState, VehicleStatus


@dataclass
class Leg:
    """The drive under way: from ``origin`` at ``start_s`` to ``target`` in ``travel_s``."""

    origin: Point
    target: Point
    start_s: float
    travel_s: float
    km: float
    driven_km: float = 0.0


@dataclass
class SimVehicle:
    spec: VehicleSpec
    position: Point
    ready_s: float
    soc_kwh: float
    plugged: str | None = None
    locked: bool = False  # charging because low: takes no riders until charge_release_fraction
    stops: list[Stop] = field(default_factory=list)
    task: Stop | None = None
    leg: Leg | None = None
    onboard: dict[str, int] = field(default_factory=dict)
    idle_since_s: float = 0.0
    at_shelter: bool = False
    km: float = 0.0
    empty_km: float = 0.0
    passenger_km: float = 0.0
    energy_kwh: float = 0.0
    charging_stops: int = 0
    max_load: int = 0
    min_soc_kwh: float = float("inf")
    km_by_purpose: dict[str, float] = field(default_factory=dict)
    idle_low_s: float = 0.0  # idle, not charging nor driving to charge, below its charge-now level
    timeline: list[tuple[float, str, float, int]] = field(default_factory=list)

    @property
    def load(self) -> int:
        return sum(self.onboard.values())

    def status(self) -> VehicleStatus:
        if self.at_shelter or (self.task is not None and self.task.kind is StopKind.SHELTER):
            return VehicleStatus.RESERVED_FOR_SHELTER
        if self.plugged is not None:
            return VehicleStatus.CHARGING
        if self.stops:
            return VehicleStatus.ON_TRIP
        if self.task is not None and self.task.kind in (StopKind.CHARGER, StopKind.DEPOT):
            return VehicleStatus.TO_CHARGER
        return VehicleStatus.IDLE


@dataclass
class RiderRecord:
    request: Request
    direct_s: float
    vehicle_id: str = ""
    pickup_s: float | None = None
    dropoff_s: float | None = None
    shared: bool = False
    rejection: Rejection | None = None


@dataclass
class SimulationResult:
    riders: dict[str, RiderRecord]
    vehicles: dict[str, SimVehicle]
    assign_ms: list[float]
    plans: dict[str, VehiclePlan]
    states: dict[str, VehicleState]
    end_s: float
    policy: str
    reassignments: int = 0
    floors_kwh: dict[str, float] = field(default_factory=dict)


class Simulation:
    """One replay; ``run()`` returns the :class:`SimulationResult`."""

    def __init__(
        self,
        setup: FleetSetup,
        requests: tuple[Request, ...],
        router: Router,
        settings: DispatchSettings,
        policy: Policy | None = None,
        forecast: DemandForecast | None = None,
        reservation: Reservation | None = None,
    ):
        self.setup = setup
        self.requests = sorted(requests, key=lambda r: r.time_s)
        self.router = router
        self.settings = settings
        self.policy = Policy(settings.policy) if policy is None else policy
        self.forecast = forecast
        self.reservation = reservation
        self.ctx = RouteContext(router, settings.dwell_s, tuple(c.point for c in setup.chargers))
        self.riders = {r.request_id: RiderRecord(r, router.leg(r.origin, r.destination)[1]) for r in self.requests}
        start_s = min([s for v in setup.vehicles for s, _ in v.shifts] + [r.time_s for r in self.requests[:1]])
        self.start_s = math.floor(start_s / settings.batch_interval_s) * settings.batch_interval_s
        self.vehicles = {v.vehicle_id: self._initial(v) for v in setup.vehicles}
        _check_reservation(reservation, setup)
        self.assign_ms: list[float] = []
        self.reassignments = 0
        self.plans: dict[str, VehiclePlan] = {}

    def _initial(self, spec: VehicleSpec) -> SimVehicle:
        charger = self.setup.charger(spec.home_charger) if spec.home_charger in {c.charger_id for c in self.setup.chargers} else None
        position = charger.point if charger else self.setup.depot
        vehicle = SimVehicle(spec, position, self.start_s, spec.initial_soc_kwh, idle_since_s=self.start_s)
        if charger is not None:
            vehicle.plugged = charger.charger_id
        return vehicle

    # --- the loop --------------------------------------------------------------------------

    def run(self) -> SimulationResult:
        step = self.settings.batch_interval_s
        now = self.start_s
        next_request = 0
        while True:
            for vehicle in self.vehicles.values():
                self._advance(vehicle, now)
            self._fleet_rules(now)
            arrived = []
            while next_request < len(self.requests) and self.requests[next_request].time_s <= now:
                arrived.append(self.requests[next_request])
                next_request += 1
            if arrived:
                self._assign(arrived, now)
            if now == self.start_s or not self.plans:
                self.plans = self._plans(now)
            self._record(now)
            if next_request >= len(self.requests) and not any(v.stops for v in self.vehicles.values()):
                break
            now += step
        return SimulationResult(
            self.riders, self.vehicles, self.assign_ms, self.plans, self._states(now), now, self.policy.value,
            self.reassignments, {v: floor_kwh(x.spec, self.reservation) for v, x in self.vehicles.items()},
        )

    def _assign(self, arrived: list[Request], now: float) -> None:
        views = [self._view(v, now) for v in self.vehicles.values()]
        promised = [
            r.request for r in self.riders.values() if r.vehicle_id and r.pickup_s is None and r.rejection is None
        ]
        started = time.perf_counter()
        result = assign_batch(views, arrived, self.ctx, self.settings, self.policy, promised)
        self.assign_ms.append((time.perf_counter() - started) * 1000.0)
        for vehicle_id, stops in result.routes.items():
            vehicle = self.vehicles[vehicle_id]
            if not stops and not vehicle.stops:
                continue
            vehicle.stops = list(stops)
            vehicle.ready_s = max(vehicle.ready_s, now)
            if not stops:  # its waiting riders went to other vehicles: idle from here
                vehicle.leg = None
                vehicle.idle_since_s = vehicle.ready_s
                continue
            vehicle.task = None
            vehicle.plugged = None
        for request_id, vehicle_id in {**result.assigned, **result.reassigned}.items():
            self.riders[request_id].vehicle_id = vehicle_id
        self.reassignments += len(result.reassigned)
        for request_id, rejection in result.rejections.items():
            self.riders[request_id].rejection = rejection

    def _view(self, vehicle: SimVehicle, now: float) -> VehicleView:
        spec = vehicle.spec
        shift = spec.shift_at(now)
        call = shelter_call(spec, self.reservation, self.setup.clock)
        end_s = (shift[1] + SHIFT_OVERRUN_S) if shift else now
        final_point = None
        if call is not None:
            end_s = min(end_s, call[1])
            final_point = self._shelter_point(call[0])
        heading_to_charge = vehicle.task is not None and vehicle.task.kind in (StopKind.CHARGER, StopKind.SHELTER)
        available = shift is not None and not vehicle.locked and not vehicle.at_shelter and not heading_to_charge
        return VehicleView(
            vehicle_id=spec.vehicle_id, seats=spec.seats, start=vehicle.position, start_s=max(vehicle.ready_s, now),
            soc_kwh=vehicle.soc_kwh, consumption_kwh_per_km=spec.consumption_kwh_per_km,
            floor_kwh=floor_kwh(spec, self.reservation), end_s=end_s, onboard_passengers=vehicle.load,
            stops=tuple(vehicle.stops), available=available, final_point=final_point,
        )

    def _shelter_point(self, shelter_id: str) -> Point:
        return dict(self.setup.shelters)[shelter_id]

    def _fleet_rules(self, now: float) -> None:
        for vehicle in self.vehicles.values():
            call = shelter_call(vehicle.spec, self.reservation, self.setup.clock)
            if call is None or vehicle.stops or vehicle.at_shelter or (vehicle.task and vehicle.task.kind is StopKind.SHELTER):
                continue
            shelter = self._shelter_point(call[0])
            if now + self.router.leg(vehicle.position, shelter)[1] + self.settings.batch_interval_s >= call[1]:
                vehicle.task = Stop(StopKind.SHELTER, shelter, place_id=call[0])
                vehicle.plugged = None
        idle = [
            IdleVehicle(
                v.spec, v.position, v.soc_kwh, v.idle_since_s, v.plugged, v.task.kind if v.task else None,
                v.task.point if v.task else None, v.locked,
            )
            for v in self.vehicles.values()
            if not v.stops and not v.at_shelter and not (v.task and v.task.kind is StopKind.SHELTER)
        ]
        taken = {v.plugged for v in self.vehicles.values() if v.plugged}
        taken |= {v.task.place_id for v in self.vehicles.values() if v.task and v.task.kind in (StopKind.CHARGER, StopKind.DEPOT)}
        moves = idle_moves(idle, now, self.setup, self.settings, self.router, taken, self.forecast, self.reservation,
                           busy_vehicles((self._view(v, now) for v in self.vehicles.values() if v.stops),
                                         self.router, self.settings.dwell_s))
        for vehicle_id, stop in moves.items():
            vehicle = self.vehicles[vehicle_id]
            vehicle.task = stop
            vehicle.plugged = None
            vehicle.ready_s = max(vehicle.ready_s, now)

    # --- movement and charging -------------------------------------------------------------

    def _advance(self, vehicle: SimVehicle, until: float) -> None:
        if vehicle.plugged is not None:
            self._charge(vehicle, until)
            return
        while True:
            target = vehicle.stops[0] if vehicle.stops else vehicle.task
            if target is None or vehicle.ready_s >= until:
                break
            leg = vehicle.leg
            if leg is None or leg.target != target.point:
                km, travel_s = self.router.leg(vehicle.position, target.point)
                leg = vehicle.leg = Leg(vehicle.position, target.point, vehicle.ready_s, travel_s, km)
            arrival_s = leg.start_s + leg.travel_s
            purpose = _purpose(vehicle, target)
            if arrival_s <= until:
                self._drive(vehicle, leg.km - leg.driven_km, purpose)
                vehicle.position = target.point
                vehicle.leg = None
                self._arrive(vehicle, target, arrival_s)
            else:
                # part of the way: the leg keeps its total time, so the vehicle always arrives
                fraction = (until - leg.start_s) / leg.travel_s
                self._drive(vehicle, leg.km * fraction - leg.driven_km, purpose)
                leg.driven_km = leg.km * fraction
                vehicle.position = Point(
                    leg.origin.lat + (leg.target.lat - leg.origin.lat) * fraction,
                    leg.origin.lon + (leg.target.lon - leg.origin.lon) * fraction,
                )
                vehicle.ready_s = until
                break
        if not vehicle.stops and vehicle.task is None:
            vehicle.ready_s = max(vehicle.ready_s, until) if vehicle.plugged is None else vehicle.ready_s
        if vehicle.plugged is not None:
            self._charge(vehicle, until)

    def _drive(self, vehicle: SimVehicle, km: float, purpose: str) -> None:
        vehicle.km += km
        vehicle.km_by_purpose[purpose] = vehicle.km_by_purpose.get(purpose, 0.0) + km
        vehicle.energy_kwh += km * vehicle.spec.consumption_kwh_per_km
        vehicle.soc_kwh -= km * vehicle.spec.consumption_kwh_per_km
        vehicle.min_soc_kwh = min(vehicle.min_soc_kwh, vehicle.soc_kwh)
        if vehicle.load == 0:
            vehicle.empty_km += km
        vehicle.passenger_km += km * vehicle.load

    def _arrive(self, vehicle: SimVehicle, stop: Stop, at: float) -> None:
        dwell = self.settings.dwell_s
        if stop.kind is StopKind.PICKUP:
            rider = self.riders[stop.request_id]
            rider.pickup_s = at
            if vehicle.onboard:
                rider.shared = True
                for other in vehicle.onboard:
                    self.riders[other].shared = True
            vehicle.onboard[stop.request_id] = stop.passengers
            vehicle.max_load = max(vehicle.max_load, vehicle.load)
            vehicle.stops.pop(0)
            # the drop-off now knows its pickup time (the detour limit runs from it)
            vehicle.stops = [
                replace(s, picked_up_s=at) if s.kind is StopKind.DROPOFF and s.request_id == stop.request_id else s
                for s in vehicle.stops
            ]
            vehicle.ready_s = at + dwell
        elif stop.kind is StopKind.DROPOFF:
            self.riders[stop.request_id].dropoff_s = at
            vehicle.onboard.pop(stop.request_id, None)
            vehicle.stops.pop(0)
            vehicle.ready_s = at + dwell
        else:
            vehicle.task = None
            vehicle.ready_s = at
            if stop.kind in (StopKind.CHARGER, StopKind.DEPOT) and stop.place_id in {c.charger_id for c in self.setup.chargers}:
                vehicle.plugged = stop.place_id
                vehicle.locked = stop.kind is StopKind.CHARGER
                vehicle.charging_stops += 1
            if stop.kind is StopKind.SHELTER:
                vehicle.at_shelter = True
        if not vehicle.stops:
            vehicle.idle_since_s = vehicle.ready_s

    def _charge(self, vehicle: SimVehicle, until: float) -> None:
        spec = vehicle.spec
        charger = self.setup.charger(vehicle.plugged)
        hours = max(0.0, until - vehicle.ready_s) / 3600.0
        target = min(spec.soc_max_kwh, self.settings.charge_target_fraction * spec.battery_kwh)
        if vehicle.soc_kwh < target:
            vehicle.soc_kwh = min(target, vehicle.soc_kwh + charger.power_kw * charger.efficiency * hours)
        vehicle.ready_s = max(vehicle.ready_s, until)
        if vehicle.locked and vehicle.soc_kwh >= self.settings.charge_release_fraction * spec.battery_kwh - 1e-9:
            vehicle.locked = False

    # --- records ---------------------------------------------------------------------------

    def _record(self, now: float) -> None:
        for vehicle in self.vehicles.values():
            status = vehicle.status()
            vehicle.timeline.append((now, status.value, vehicle.soc_kwh, vehicle.load))
            spec = vehicle.spec
            low = charge_now_kwh(self.settings, spec.battery_kwh, floor_kwh(spec, self.reservation), spec.consumption_kwh_per_km)
            if status is VehicleStatus.IDLE and vehicle.soc_kwh < low and spec.shift_at(now) is not None:
                vehicle.idle_low_s += self.settings.batch_interval_s

    def _plans(self, now: float) -> dict[str, VehiclePlan]:
        plans = {}
        for vehicle in self.vehicles.values():
            busy_until = now
            if vehicle.stops:
                busy_until = self._view(vehicle, now).start_s
            plans[vehicle.spec.vehicle_id] = vehicle_plan(
                vehicle.spec, now, vehicle.soc_kwh, busy_until, vehicle.plugged, self.setup, self.settings, self.reservation
            )
        return plans

    def _states(self, now: float) -> dict[str, VehicleState]:
        moment = self.setup.clock.to_datetime(now)
        return {
            v.spec.vehicle_id: VehicleState(
                vehicle_id=v.spec.vehicle_id, time=moment, position=Position(lat=v.position.lat, lon=v.position.lon),
                status=v.status(), soc_kwh=max(0.0, v.soc_kwh), charger_id=v.plugged,
            )
            for v in self.vehicles.values()
        }


def _purpose(vehicle: SimVehicle, target: Stop) -> str:
    """What a km is driven for (docs/dispatch.md, "km by purpose")."""
    if vehicle.load > 0:
        return "with_riders"
    if target.kind is StopKind.PICKUP:
        return "to_pickup"
    return {StopKind.REBALANCE: "rebalancing", StopKind.CHARGER: "to_charger", StopKind.DEPOT: "to_depot",
            StopKind.SHELTER: "to_shelter"}.get(target.kind, "other")


def _check_reservation(reservation: Reservation | None, setup: FleetSetup) -> None:
    if reservation is None:
        return
    vehicles = {v.vehicle_id for v in setup.vehicles}
    shelters = dict(setup.shelters)
    for vehicle_id in reservation.keep_energy_kwh:
        if vehicle_id not in vehicles:
            raise ValueError(f"reservation: keep_energy_kwh names unknown vehicle {vehicle_id!r}")
    for call in reservation.shelter_calls:
        if call.vehicle_id not in vehicles:
            raise ValueError(f"reservation: shelter call names unknown vehicle {call.vehicle_id!r}")
        if call.shelter_id not in shelters:
            raise ValueError(f"reservation: shelter call names unknown shelter {call.shelter_id!r} (known: {', '.join(shelters)})")


def kpis(result: SimulationResult) -> dict[str, float]:
    """The service and fleet figures of a replay (see docs/dispatch.md for definitions)."""
    riders = list(result.riders.values())
    served = [r for r in riders if r.dropoff_s is not None]
    waits = np.array([r.pickup_s - r.request.time_s for r in served]) if served else np.array([np.nan])
    detours = [(r.dropoff_s - r.pickup_s) / r.direct_s for r in served if r.direct_s > 0]
    vehicles = list(result.vehicles.values())
    km = sum(v.km for v in vehicles)
    empty_km = sum(v.empty_km for v in vehicles)
    occupied_km = km - empty_km
    assign = np.array(result.assign_ms) if result.assign_ms else np.array([0.0])
    purposes = ("with_riders", "to_pickup", "rebalancing", "to_charger", "to_depot", "to_shelter")
    by_purpose = {f"km_{p}": sum(v.km_by_purpose.get(p, 0.0) for v in vehicles) for p in purposes}
    return {
        "requests": len(riders),
        "served": len(served),
        "served_share": len(served) / len(riders) if riders else 0.0,
        "mean_wait_s": float(np.mean(waits)),
        "p95_wait_s": float(np.percentile(waits, 95)),
        "mean_detour_ratio": float(np.mean(detours)) if detours else float("nan"),
        "vehicle_km": km,
        "empty_km_share": empty_km / km if km > 0 else 0.0,
        "shared_ride_share": sum(r.shared for r in served) / len(served) if served else 0.0,
        "mean_occupancy": sum(v.passenger_km for v in vehicles) / occupied_km if occupied_km > 0 else 0.0,
        "energy_kwh": sum(v.energy_kwh for v in vehicles),
        "charging_stops": sum(v.charging_stops for v in vehicles),
        "reassigned_riders": result.reassignments,
        **by_purpose,
        "vehicles_below_floor": sum(v.min_soc_kwh < floor - 1e-9 for v, floor in _floors(result)),
        "min_soc_above_floor_kwh": min((v.min_soc_kwh - floor for v, floor in _floors(result)), default=float("nan")),
        "idle_low_vehicle_h": sum(v.idle_low_s for v in vehicles) / 3600.0,
        "assign_ms_p50": float(np.percentile(assign, 50)),
        "assign_ms_p95": float(np.percentile(assign, 95)),
        "batches": len(result.assign_ms),
    }


def _floors(result: SimulationResult):
    """(vehicle, its floor) of the vehicles that drove at all."""
    return [(v, result.floors_kwh.get(vid, 0.0)) for vid, v in result.vehicles.items() if v.min_soc_kwh < float("inf")]
