"""The dispatcher's stepping engine: the fleet, its riders and one batch step, driven alike by
the offline replay (``dispatch.simulate``) and the live service (``ems.dispatching``).

Vehicles drive their routes at the router's times, consume ``consumption_kwh_per_km``, and
charge at their charger's power. Each :meth:`Engine.step` advances the vehicles to the batch
time, applies the fleet rules (``dispatch.fleet``) and calls the pure assignment
(``dispatch.assign.assign_batch``) on the requests that arrived since the last batch, so
whatever policy the replay measures is the one that runs live.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace

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
from dispatch.motion import along
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


class Engine:
    """The fleet and its riders on the service-day clock; :meth:`step` runs one batch."""

    def __init__(
        self,
        setup: FleetSetup,
        router: Router,
        settings: DispatchSettings,
        start_s: float,
        policy: Policy | None = None,
        forecast: DemandForecast | None = None,
        reservation: Reservation | None = None,
    ):
        self.setup = setup
        self.router = router
        self.settings = settings
        self.policy = Policy(settings.policy) if policy is None else policy
        self.forecast = forecast
        self.reservation = reservation
        self.ctx = RouteContext(router, settings.dwell_s, tuple(c.point for c in setup.chargers))
        self.riders: dict[str, RiderRecord] = {}
        self.start_s = start_s
        self.vehicles = {v.vehicle_id: self._initial(v) for v in setup.vehicles}
        _check_reservation(reservation, setup)
        self.assign_ms: list[float] = []
        self.reassignments = 0
        self.last_assign_s = start_s
        self.plans: dict[str, VehiclePlan] = {}
        self.quoted: set[str] = set()  # riders answered by a quote since the last batch
        self.quote_ms: list[float] = []

    def _initial(self, spec: VehicleSpec) -> SimVehicle:
        charger = (
            self.setup.charger(spec.home_charger)
            if spec.home_charger in {c.charger_id for c in self.setup.chargers}
            else None
        )
        position = charger.point if charger else self.setup.depot
        vehicle = SimVehicle(spec, position, self.start_s, spec.initial_soc_kwh, idle_since_s=self.start_s)
        if charger is not None:
            vehicle.plugged = charger.charger_id
        return vehicle

    def add_requests(self, requests: list[Request] | tuple[Request, ...]) -> None:
        """Know these riders (a request already known keeps its record)."""
        for r in requests:
            if r.request_id not in self.riders:
                self.riders[r.request_id] = RiderRecord(r, self.router.leg(r.origin, r.destination)[1])

    def step(self, now: float, arrived: list[Request], rules: Callable[[float], None] | None = None) -> None:
        """One batch at ``now``: vehicles advanced, fleet rules applied (then ``rules``, a
        caller's own, e.g. the energy manager's charge calls live), ``arrived`` assigned."""
        for vehicle in self.vehicles.values():
            self._advance(vehicle, now)
        self._fleet_rules(now)
        if rules is not None:
            rules(now)
        quoted, self.quoted = self.quoted, set()
        reoptimise = self._reoptimise_due(now)
        if arrived or (quoted and self.settings.reassign) or reoptimise:
            self.add_requests(arrived)
            # with quotes, a batch reconsiders the riders quoted since the last one (its size stays
            # that of the requests of one interval, not of every rider waiting for a pickup)
            # a rolling re-optimisation reconsiders every rider waiting for a pickup
            movable = quoted if self.settings.quote_interval_s is not None and not reoptimise else None
            self._assign(arrived, now, movable=movable)
            self.last_assign_s = now

    def quote(self, now: float, arrived: list[Request]) -> None:
        """Between batches (``quote_interval_s``): ``arrived`` inserted at once into the routes as
        they stand (insertion policy; no fleet rules, no rider moved). A rider no route can take
        is rejected, as by a batch; the next batch's ILP may move a quoted rider (``reassign``)."""
        if not arrived:
            return
        for vehicle in self.vehicles.values():
            self._advance(vehicle, now)
        self.add_requests(arrived)
        self._assign(arrived, now, Policy.INSERTION)
        self.quote_ms.append(self.assign_ms.pop())  # assign_ms (and the KPIs' batch count) stays batches only
        self.quoted.update(r.request_id for r in arrived)

    def _reoptimise_due(self, now: float) -> bool:
        """Riders not yet picked up are re-assigned every ``reoptimise_interval_s`` even when no
        request arrives (the rolling re-optimisation, ``dispatch.reoptimise``)."""
        interval = self.settings.reoptimise_interval_s
        if interval <= 0 or now - self.last_assign_s < interval:
            return False
        return any(r.vehicle_id and r.pickup_s is None and r.rejection is None for r in self.riders.values())

    def set_reservation(self, reservation: Reservation | None) -> None:
        """Follow a new reservation from the energy manager (raises ValueError if it names an
        unknown vehicle or shelter)."""
        _check_reservation(reservation, self.setup)
        self.reservation = reservation

    def _assign(
        self, arrived: list[Request], now: float, policy: Policy | None = None, movable: set[str] | None = None
    ) -> None:
        """``arrived`` assigned; riders promised a vehicle (only those of ``movable`` when given)
        may move, as the policy allows."""
        policy = self.policy if policy is None else policy
        views = [self._view(v, now) for v in self.vehicles.values()]
        promised = (
            [
                r.request
                for r in self.riders.values()
                if r.vehicle_id
                and r.pickup_s is None
                and r.rejection is None
                and (movable is None or r.request.request_id in movable)
            ]
            if policy is not Policy.INSERTION
            else []
        )
        started = time.perf_counter()
        result = assign_batch(views, arrived, self.ctx, self.settings, policy, promised)
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
            vehicle_id=spec.vehicle_id,
            seats=spec.seats,
            start=vehicle.position,
            start_s=max(vehicle.ready_s, now),
            soc_kwh=vehicle.soc_kwh,
            consumption_kwh_per_km=spec.consumption_kwh_per_km,
            floor_kwh=floor_kwh(spec, self.reservation),
            end_s=end_s,
            onboard_passengers=vehicle.load,
            stops=tuple(vehicle.stops),
            available=available,
            final_point=final_point,
        )

    def _shelter_point(self, shelter_id: str) -> Point:
        return dict(self.setup.shelters)[shelter_id]

    def _fleet_rules(self, now: float) -> None:
        for vehicle in self.vehicles.values():
            call = shelter_call(vehicle.spec, self.reservation, self.setup.clock)
            if (
                call is None
                or vehicle.stops
                or vehicle.at_shelter
                or (vehicle.task and vehicle.task.kind is StopKind.SHELTER)
            ):
                continue
            shelter = self._shelter_point(call[0])
            if now + self.router.leg(vehicle.position, shelter)[1] + self.settings.batch_interval_s >= call[1]:
                vehicle.task = Stop(StopKind.SHELTER, shelter, place_id=call[0])
                vehicle.plugged = None
        idle = [
            IdleVehicle(
                v.spec,
                v.position,
                v.soc_kwh,
                v.idle_since_s,
                v.plugged,
                v.task.kind if v.task else None,
                v.task.point if v.task else None,
                v.locked,
            )
            for v in self.vehicles.values()
            if not v.stops and not v.at_shelter and not (v.task and v.task.kind is StopKind.SHELTER)
        ]
        taken = {v.plugged for v in self.vehicles.values() if v.plugged}
        taken |= {
            v.task.place_id
            for v in self.vehicles.values()
            if v.task and v.task.kind in (StopKind.CHARGER, StopKind.DEPOT)
        }
        moves = idle_moves(
            idle,
            now,
            self.setup,
            self.settings,
            self.router,
            taken,
            self.forecast,
            self.reservation,
            busy_vehicles(
                (self._view(v, now) for v in self.vehicles.values() if v.stops), self.router, self.settings.dwell_s
            ),
        )
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
                vehicle.position = along(leg.origin, leg.target, fraction)
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
            if stop.kind in (StopKind.CHARGER, StopKind.DEPOT) and stop.place_id in {
                c.charger_id for c in self.setup.chargers
            }:
                vehicle.plugged = stop.place_id
                vehicle.locked = stop.kind is StopKind.CHARGER
                vehicle.charging_stops += 1
            if stop.kind is StopKind.SHELTER:
                vehicle.at_shelter = True
        if not vehicle.stops:
            vehicle.idle_since_s = vehicle.ready_s

    def _charge(self, vehicle: SimVehicle, until: float) -> None:
        spec = vehicle.spec
        assert vehicle.plugged is not None  # only a plugged vehicle is charged (both callers check)
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
            low = charge_now_kwh(
                self.settings, spec.battery_kwh, floor_kwh(spec, self.reservation), spec.consumption_kwh_per_km
            )
            if status is VehicleStatus.IDLE and vehicle.soc_kwh < low and spec.shift_at(now) is not None:
                vehicle.idle_low_s += self.settings.batch_interval_s

    def _plans(self, now: float, only: Iterable[str] | None = None) -> dict[str, VehiclePlan]:
        plans = {}
        for vehicle in self.vehicles.values() if only is None else (self.vehicles[v] for v in only):
            busy_until = now
            if vehicle.stops:
                busy_until = self._view(vehicle, now).start_s
            plans[vehicle.spec.vehicle_id] = vehicle_plan(
                vehicle.spec,
                now,
                vehicle.soc_kwh,
                busy_until,
                vehicle.plugged,
                self.setup,
                self.settings,
                self.reservation,
            )
        return plans

    def _states(self, now: float, only: Iterable[str] | None = None) -> dict[str, VehicleState]:
        moment = self.setup.clock.to_datetime(now)
        vehicles = self.vehicles.values() if only is None else [self.vehicles[v] for v in only]
        return {
            v.spec.vehicle_id: VehicleState(
                vehicle_id=v.spec.vehicle_id,
                time=moment,
                position=Position(lat=v.position.lat, lon=v.position.lon),
                status=v.status(),
                soc_kwh=max(0.0, v.soc_kwh),
                charger_id=v.plugged,
            )
            for v in vehicles
        }


def _purpose(vehicle: SimVehicle, target: Stop) -> str:
    """What a km is driven for (docs/dispatch.md, "km by purpose")."""
    if vehicle.load > 0:
        return "with_riders"
    if target.kind is StopKind.PICKUP:
        return "to_pickup"
    return {
        StopKind.REBALANCE: "rebalancing",
        StopKind.CHARGER: "to_charger",
        StopKind.DEPOT: "to_depot",
        StopKind.SHELTER: "to_shelter",
    }.get(target.kind, "other")


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
            raise ValueError(
                f"reservation: shelter call names unknown shelter {call.shelter_id!r} (known: {', '.join(shelters)})"
            )
