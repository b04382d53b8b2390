"""Batch assignment of open requests to vehicles (pure: no I/O, no clock, no globals).

Three policies share the same feasibility rules (``dispatch.routes``):

- ``insertion``: the fast path. Requests in order of request time each go to the vehicle
  where their cheapest insertion costs least.
- ``no-pooling``: a vehicle carries one request at a time (a new rider is appended after the
  vehicle's last drop-off); the best matching is chosen by the ILP.
- ``ilp`` (default): trip-vehicle assignment in the spirit of Alonso-Mora et al. (PNAS 2017).
  For every vehicle the feasible trips (sets of up to ``max_trip_size`` new requests, each set
  grown only from feasible smaller sets and from request pairs that can share a ride) are
  enumerated by insertion into its route; an ILP on HiGHS chooses at most one trip per vehicle
  and at most one trip per request. The insertion solution is added to the trips and given to
  HiGHS as its starting point, and the better of the two is kept, so the result is never worse
  than insertion, even when the time limit stops the solver.

Riders already promised a vehicle but not yet picked up (``promised``) take part again in the
``ilp`` and ``no-pooling`` batches when ``settings.reassign`` is on, as in Alonso-Mora et al.: a
vehicle's route is then rebuilt from the riders it carries, its promised riders are candidates
for every vehicle like new ones, and each vehicle's current route (with the insertion of the new
requests) is a trip of the start solution, so the solver only moves a rider where that lowers
the batch's cost. A promised rider must stay served (its ``u_r`` is fixed at 0) and keeps the
latest pickup it was promised.

ILP (x_k binary: trip k chosen; u_r in [0, 1]: request r unserved)::

    minimise   sum_k cost_k x_k + M sum_r u_r
    subject to sum_{k of vehicle v} x_k <= 1             for every vehicle v
               sum_{k containing r} x_k + u_r = 1        for every request r

``cost_k`` is the time the vehicle's route grows by [s] (over the route of the riders it carries
and keeps) plus ``wait_weight`` times the waits of the trip's riders; ``M`` exceeds any possible
total cost, so serving one more request always wins (served requests first, then least added
travel).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum

import highspy
import numpy as np

from dispatch.model import REASON_TEXT, BatchResult, Reason, Rejection, Request, Stop, StopKind, VehicleView
from dispatch.reoptimise import improve
from dispatch.routes import (
    Failure,
    Insertion,
    RouteContext,
    RoutePlan,
    best_insertion,
    evaluate,
    most_telling,
    rider_stops,
)
from ems.config.dispatch import DispatchSettings
from ems.fleet.geo import great_circle_km_many


class Policy(str, Enum):
    ILP = "ilp"
    INSERTION = "insertion"
    NO_POOLING = "no-pooling"


@dataclass(frozen=True)
class Trip:
    vehicle_id: str
    request_ids: frozenset[str]
    plan: RoutePlan
    cost: float


@dataclass(kw_only=True)
class _Batch:
    """Working data of one batch (built by ``_prepare`` with every field named)."""

    vehicles: dict[str, VehicleView]
    requests: dict[str, Request]  # new and movable promised ones
    stops: dict[str, tuple[Stop, Stop]]
    base_end_s: dict[str, float]  # end of each vehicle's kept route
    ctx: RouteContext
    settings: DispatchSettings
    pooling: bool
    kept_stops: dict[str, tuple[Stop, ...]]  # the route a vehicle keeps whatever the batch decides
    promised: dict[str, str]  # movable promised rider -> the vehicle it has now
    current: dict[str, RoutePlan]  # today's route of each vehicle holding movable riders

    def holders(self) -> dict[str, list[str]]:
        """Vehicle -> its movable promised riders."""
        held: dict[str, list[str]] = {}
        for request_id, vehicle_id in self.promised.items():
            held.setdefault(vehicle_id, []).append(request_id)
        return held

    def insert(
        self, vehicle_id: str, stops: tuple[Stop, ...], request_id: str, new_ids: frozenset[str]
    ) -> Insertion | Reason:
        """One rider into ``stops``: the cheapest placement, or appended after the last drop-off
        without pooling; the reason when it cannot be done."""
        vehicle = self.vehicles[vehicle_id]
        pickup, dropoff = self.stops[request_id]
        if not self.pooling:
            return _append(vehicle, stops, pickup, dropoff, self.ctx)
        return best_insertion(
            vehicle,
            stops,
            pickup,
            dropoff,
            self.ctx,
            new_ids,
            self.settings.wait_weight,
            self.requests[request_id].time_s,
        )

    def trip_cost(self, vehicle_id: str, plan: RoutePlan, request_ids: frozenset[str]) -> float:
        waits = sum(plan.pickup_s[r] - self.requests[r].time_s for r in request_ids)
        return max(0.0, plan.end_s - self.base_end_s[vehicle_id]) + self.settings.wait_weight * waits


def _append(vehicle: VehicleView, stops, pickup: Stop, dropoff: Stop, ctx: RouteContext) -> Insertion | Reason:
    result = evaluate(vehicle, stops + (pickup, dropoff), ctx)
    if isinstance(result, Failure):
        return result.reason
    return Insertion(result, result.end_s)


def assign_batch(
    vehicles: Sequence[VehicleView],
    requests: Sequence[Request],
    ctx: RouteContext,
    settings: DispatchSettings,
    policy: Policy = Policy.ILP,
    promised: Sequence[Request] = (),
) -> BatchResult:
    """Assign ``requests`` (all new in this batch) to ``vehicles``; every request is either given
    a vehicle or rejected with a reason. ``promised`` are riders given a vehicle in an earlier
    batch and not yet picked up: with ``settings.reassign`` the ``ilp`` and ``no-pooling``
    policies may move them to another vehicle (``BatchResult.reassigned``)."""
    movable = promised if settings.reassign and policy is not Policy.INSERTION else ()
    batch = _prepare(vehicles, requests, movable, ctx, settings, pooling=policy is not Policy.NO_POOLING)
    candidates, reasons = _candidate_vehicles(batch)
    singles = _single_trips(batch, candidates, reasons)
    greedy = _greedy(batch, candidates)
    if policy is Policy.INSERTION:
        return _result(batch, greedy, reasons, singles, "insertion", len(singles), "")
    trips = list(singles)
    if policy is Policy.ILP and settings.max_trip_size > 1:
        trips += _shared_trips(batch, singles)
    trips += greedy  # the start solution's trips (its singles may differ from the best single insertion)
    chosen, status = _solve_ilp(batch, _unique(trips), greedy)
    if policy is Policy.ILP and settings.reoptimise:
        chosen, status = _reoptimised(batch, chosen, status)
    return _result(batch, chosen, reasons, singles, policy.value, len(trips), status)


def _prepare(vehicles, requests, promised, ctx, settings, pooling: bool) -> _Batch:
    promised_by_id = {r.request_id: r for r in promised}
    usable, base_end, kept, holder, current_plans = {}, {}, {}, {}, {}
    stops: dict[str, tuple[Stop, Stop]] = {}
    for vehicle in vehicles:
        if not vehicle.available:
            continue
        # a route already promised cannot be worsened; a vehicle whose route went wrong takes no one
        current = evaluate(vehicle, vehicle.stops, ctx)
        if isinstance(current, Failure):
            continue
        usable[vehicle.vehicle_id] = vehicle
        waiting = {s.request_id for s in vehicle.stops if s.kind is StopKind.PICKUP} & promised_by_id.keys()
        keep = tuple(s for s in vehicle.stops if s.request_id not in waiting)
        base = evaluate(vehicle, keep, ctx) if waiting else current
        if isinstance(base, Failure):  # cannot happen on a metric router; keep the route whole
            waiting, keep, base = set(), vehicle.stops, current
        kept[vehicle.vehicle_id] = keep
        base_end[vehicle.vehicle_id] = base.end_s
        if waiting:
            current_plans[vehicle.vehicle_id] = current
        for request_id in waiting:
            holder[request_id] = vehicle.vehicle_id
            pickup = next(s for s in vehicle.stops if s.kind is StopKind.PICKUP and s.request_id == request_id)
            dropoff = next(s for s in vehicle.stops if s.kind is StopKind.DROPOFF and s.request_id == request_id)
            stops[request_id] = (pickup, dropoff)  # the limits it was promised
    for request in requests:
        direct_s = ctx.router.leg(request.origin, request.destination)[1]
        stops[request.request_id] = rider_stops(request, direct_s, settings.max_wait_s, settings.max_ride_s(direct_s))
    by_id = {r.request_id: r for r in requests}
    by_id.update({r: promised_by_id[r] for r in holder})
    return _Batch(
        vehicles=usable,
        requests=by_id,
        stops=stops,
        base_end_s=base_end,
        ctx=ctx,
        settings=settings,
        pooling=pooling,
        kept_stops=kept,
        promised=holder,
        current=current_plans,
    )


def _candidate_vehicles(batch: _Batch) -> tuple[dict[str, list[str]], dict[str, list[Reason]]]:
    """Per request, the nearest vehicles that could reach its pickup in time (a lower bound)."""
    ids = list(batch.vehicles)
    reasons: dict[str, list[Reason]] = {r: [] for r in batch.requests}
    if not ids:
        return {r: [] for r in batch.requests}, reasons
    lat = np.array([batch.vehicles[v].start.lat for v in ids])
    lon = np.array([batch.vehicles[v].start.lon for v in ids])
    start_s = np.array([batch.vehicles[v].start_s for v in ids])
    router = batch.ctx.router
    seconds_per_km = router.min_road_factor / router.speed_kmh * 3600.0
    seats = np.array([batch.vehicles[v].seats for v in ids])
    candidates = {}
    for request_id, request in batch.requests.items():
        arrive = start_s + great_circle_km_many(lat, lon, request.origin.lat, request.origin.lon) * seconds_per_km
        latest = batch.stops[request_id][0].latest_s
        ok = (arrive <= latest) & (seats >= request.passengers)
        if not ok.any():
            reasons[request_id].append(Reason.NO_SEATS if (arrive <= latest).any() else Reason.NO_VEHICLE_IN_TIME)
        order = np.argsort(np.where(ok, arrive, np.inf))[: batch.settings.vehicles_per_request]
        candidates[request_id] = [ids[i] for i in order if ok[i]]
        holder = batch.promised.get(request_id)
        if holder is not None and holder not in candidates[request_id]:
            candidates[request_id].append(holder)
    return candidates, reasons


def _single_trips(batch: _Batch, candidates, reasons) -> list[Trip]:
    trips = []
    for request_id, vehicle_ids in candidates.items():
        new = frozenset((request_id,))
        for vehicle_id in vehicle_ids:
            found = batch.insert(vehicle_id, batch.kept_stops[vehicle_id], request_id, new)
            if isinstance(found, Reason):
                reasons[request_id].append(found)
                continue
            plan = found.plan
            trips.append(Trip(vehicle_id, new, plan, batch.trip_cost(vehicle_id, plan, new)))
    return trips


def _greedy(batch: _Batch, candidates) -> list[Trip]:
    """Insertion, request by request in order of request time, each to its cheapest vehicle;
    promised riders stay where they are."""
    routes = {v: batch.vehicles[v].stops for v in batch.vehicles}
    taken: dict[str, set[str]] = {v: set(ids) for v, ids in batch.holders().items()}
    plans: dict[str, RoutePlan] = dict(batch.current)
    order = sorted(
        (r for r in batch.requests.values() if r.request_id not in batch.promised),
        key=lambda r: (r.time_s, r.request_id),
    )
    for request in order:
        best = None
        for vehicle_id in candidates[request.request_id]:
            new_ids = frozenset(taken.get(vehicle_id, set()) | {request.request_id})
            found = batch.insert(vehicle_id, routes[vehicle_id], request.request_id, new_ids)
            if isinstance(found, Reason):
                continue
            added = found.plan.end_s - (
                plans[vehicle_id].end_s if vehicle_id in plans else batch.base_end_s[vehicle_id]
            )
            wait = found.plan.pickup_s[request.request_id] - request.time_s
            score = added + batch.settings.wait_weight * wait
            if best is None or score < best[0]:
                best = (score, vehicle_id, found.plan)
        if best is not None:
            _, vehicle_id, plan = best
            routes[vehicle_id] = plan.stops
            plans[vehicle_id] = plan
            taken.setdefault(vehicle_id, set()).add(request.request_id)
    return [Trip(v, frozenset(ids), plans[v], batch.trip_cost(v, plans[v], frozenset(ids))) for v, ids in taken.items()]


def _can_share(batch: _Batch, a: str, b: str, seats: int) -> bool:
    """Could one empty vehicle at a's origin, at a's time, carry both a and b (either order)?"""
    for first, second in ((a, b), (b, a)):
        request = batch.requests[first]
        virtual = VehicleView(
            vehicle_id="virtual",
            seats=seats,
            start=request.origin,
            start_s=request.time_s,
            soc_kwh=float("inf"),
            consumption_kwh_per_km=0.0,
            floor_kwh=0.0,
            end_s=float("inf"),
        )
        pickup, dropoff = batch.stops[first]
        first_plan = evaluate(virtual, (pickup, dropoff), batch.ctx)
        if isinstance(first_plan, Failure):
            continue
        p2, d2 = batch.stops[second]
        if not isinstance(
            best_insertion(virtual, first_plan.stops, p2, d2, batch.ctx, frozenset((first, second))), Reason
        ):
            return True
    return False


def _shared_trips(batch: _Batch, singles: list[Trip]) -> list[Trip]:
    """Trips of 2..max_trip_size new requests, grown from feasible smaller trips."""
    settings = batch.settings
    by_vehicle: dict[str, list[Trip]] = {}
    for trip in singles:
        by_vehicle.setdefault(trip.vehicle_id, []).append(trip)
    max_seats = max((v.seats for v in batch.vehicles.values()), default=1)
    share_cache: dict[frozenset[str], bool] = {}

    def can_share(a: str, b: str) -> bool:
        key = frozenset((a, b))
        if key not in share_cache:
            share_cache[key] = _can_share(batch, a, b, max_seats)
        return share_cache[key]

    trips: list[Trip] = []
    for vehicle_id, own in by_vehicle.items():
        # its own promised riders always; the cheapest others up to candidates_per_vehicle
        is_mine = [batch.promised.get(next(iter(t.request_ids))) == vehicle_id for t in own]
        mine = [t for t, m in zip(own, is_mine) if m]
        others = sorted((t for t, m in zip(own, is_mine) if not m), key=lambda t: t.cost)
        own = mine + others[: max(0, settings.candidates_per_vehicle - len(mine))]
        level = {t.request_ids: t for t in own}
        singles_ids = [next(iter(t.request_ids)) for t in own]
        for size in range(2, settings.max_trip_size + 1):
            grown: dict[frozenset[str], Trip] = {}
            for base in level.values():
                for extra in singles_ids:
                    ids = base.request_ids | {extra}
                    if extra in base.request_ids or ids in grown:
                        continue
                    if not all(ids - {r} in level for r in ids):  # every smaller subset must be feasible
                        continue
                    if size == 2 and not can_share(*sorted(ids)):
                        continue
                    shared = _grow(batch, vehicle_id, ids, level)
                    if shared is not None:
                        grown[ids] = shared
            if not grown:
                break
            trips.extend(grown.values())
            level = grown
    return trips


def _grow(batch: _Batch, vehicle_id: str, ids: frozenset[str], level: dict) -> Trip | None:
    """The best route for ``ids``: insert each member into the route of the others."""
    best: Trip | None = None
    for member in ids:
        smaller = level.get(ids - {member})
        if smaller is None:
            continue
        found = batch.insert(vehicle_id, smaller.plan.stops, member, ids)
        if isinstance(found, Reason):
            continue
        cost = batch.trip_cost(vehicle_id, found.plan, ids)
        if best is None or cost < best.cost:
            best = Trip(vehicle_id, ids, found.plan, cost)
    return best


def _reoptimised(batch: _Batch, chosen: list[Trip], status: str) -> tuple[list[Trip], str]:
    """The rolling re-optimisation (``dispatch.reoptimise``) over the batch's result: every rider
    of the batch (new, or promised and not yet picked up) may still move between vehicles."""
    routes = {v: batch.vehicles[v].stops for v in batch.vehicles}
    routes.update({v: batch.kept_stops[v] for v in batch.holders()})
    routes.update({t.vehicle_id: t.plan.stops for t in chosen})
    placed = {r for t in chosen for r in t.request_ids}
    waiting = {r: batch.requests[r] for r in placed}
    found = improve(batch.vehicles, routes, waiting, batch.ctx, batch.settings.wait_weight)
    if not found.moves:
        return chosen, status
    routes.update(found.routes)
    trips = []
    for vehicle_id in {t.vehicle_id for t in chosen} | set(found.routes):
        plan = evaluate(batch.vehicles[vehicle_id], routes[vehicle_id], batch.ctx)
        if isinstance(plan, Failure):  # improve() only keeps routes that evaluate; a bug must not pass silently
            raise RuntimeError(f"re-optimised route of {vehicle_id} is infeasible: {plan.reason}")
        ids = frozenset(r for r in plan.pickup_s if r in waiting)
        trips.append(Trip(vehicle_id, ids, plan, batch.trip_cost(vehicle_id, plan, ids)))
    return trips, f"{status} (+{found.moves} re-optimisation moves)"


def _unique(trips: list[Trip]) -> list[Trip]:
    best: dict[tuple[str, frozenset[str]], Trip] = {}
    for trip in trips:
        key = (trip.vehicle_id, trip.request_ids)
        if key not in best or trip.cost < best[key].cost:
            best[key] = trip
    return list(best.values())


def _objective(trips: list[Trip], n_requests: int, big_m: float) -> float:
    served = sum(len(t.request_ids) for t in trips)
    return sum(t.cost for t in trips) + big_m * (n_requests - served)


def _solve_ilp(batch: _Batch, trips: list[Trip], fallback: list[Trip]) -> tuple[list[Trip], str]:
    """Choose trips with HiGHS; keep ``fallback`` when the solver does not beat it."""
    request_ids = list(batch.requests)
    if not trips or not request_ids:
        return fallback, "empty"
    vehicle_row = {v: i for i, v in enumerate(sorted({t.vehicle_id for t in trips}))}
    request_row = {r: len(vehicle_row) + i for i, r in enumerate(request_ids)}
    max_cost: dict[str, float] = {}
    for trip in trips:
        max_cost[trip.vehicle_id] = max(max_cost.get(trip.vehicle_id, 0.0), trip.cost)
    big_m = 1.0 + sum(max_cost.values())

    starts, index, cost = [0], [], []
    for trip in trips:
        index += [vehicle_row[trip.vehicle_id]] + sorted(request_row[r] for r in trip.request_ids)
        starts.append(len(index))
        cost.append(trip.cost)
    for request_id in request_ids:
        index.append(request_row[request_id])
        starts.append(len(index))
        cost.append(big_m)
    n_col, n_row = len(cost), len(vehicle_row) + len(request_ids)

    lp = highspy.HighsLp()
    lp.num_col_, lp.num_row_ = n_col, n_row
    lp.col_cost_ = np.array(cost)
    lp.col_lower_ = np.zeros(n_col)
    # a promised rider cannot be dropped: its "unserved" column is fixed at 0
    lp.col_upper_ = np.array([1.0] * len(trips) + [0.0 if r in batch.promised else 1.0 for r in request_ids])
    lp.row_lower_ = np.array([-highspy.kHighsInf] * len(vehicle_row) + [1.0] * len(request_ids))
    lp.row_upper_ = np.ones(n_row)
    lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    lp.a_matrix_.start_ = np.array(starts, dtype=np.int32)
    lp.a_matrix_.index_ = np.array(index, dtype=np.int32)
    lp.a_matrix_.value_ = np.ones(len(index))
    lp.integrality_ = [highspy.HighsVarType.kInteger] * len(trips) + [highspy.HighsVarType.kContinuous] * len(
        request_ids
    )

    solver = highspy.Highs()
    solver.setOptionValue("output_flag", False)
    solver.setOptionValue("time_limit", float(batch.settings.ilp_time_limit_s))
    solver.setOptionValue("mip_rel_gap", 1e-6)
    # no "threads" option: HiGHS has one thread pool per process, and a run asking for another
    # size than the pool already has (the schedule's solver runs in the same process) fails
    solver.passModel(lp)
    solver.setSolution(_start_values(trips, request_ids, fallback))
    solver.run()
    status = solver.modelStatusToString(solver.getModelStatus())
    if solver.getInfo().primal_solution_status != 2:  # 2: a feasible solution is known
        return fallback, status
    values = solver.getSolution().col_value
    chosen = [trip for trip, value in zip(trips, values) if value > 0.5]
    if _objective(chosen, len(request_ids), big_m) > _objective(fallback, len(request_ids), big_m) + 1e-6:
        return fallback, status + " (insertion kept)"
    return chosen, status


def _start_values(trips: list[Trip], request_ids: list[str], fallback: list[Trip]) -> highspy.HighsSolution:
    chosen = {(t.vehicle_id, t.request_ids) for t in fallback}
    served = {r for t in fallback for r in t.request_ids}
    values = [1.0 if (t.vehicle_id, t.request_ids) in chosen else 0.0 for t in trips]
    values += [0.0 if r in served else 1.0 for r in request_ids]
    solution = highspy.HighsSolution()
    solution.col_value = values
    solution.value_valid = True
    return solution


def _result(batch: _Batch, chosen: list[Trip], reasons, singles: list[Trip], method: str, n_trips: int, status: str):
    # a vehicle whose promised riders all went elsewhere keeps only the riders it carries
    routes = {v: batch.kept_stops[v] for v in batch.holders()}
    routes.update({t.vehicle_id: t.plan.stops for t in chosen})
    placed = {r: t.vehicle_id for t in chosen for r in t.request_ids}
    assigned = {r: v for r, v in placed.items() if r not in batch.promised}
    reassigned = {r: v for r, v in placed.items() if r in batch.promised and batch.promised[r] != v}
    missing = set(batch.promised) - set(placed)
    if missing:  # the ILP's constraints forbid it; a bug here must not lose a rider silently
        raise RuntimeError(f"promised riders lost by the assignment: {sorted(missing)}")
    feasible_somewhere = {r for t in singles for r in t.request_ids}
    rejections = {}
    for request_id in batch.requests:
        if request_id in placed:
            continue
        if not batch.vehicles:
            reason = Reason.NO_VEHICLE
        elif request_id in feasible_somewhere:
            reason = Reason.TAKEN
        else:
            reason = most_telling(reasons[request_id])
        rejections[request_id] = Rejection(request_id, reason, REASON_TEXT[reason])
    return BatchResult(
        routes=routes,
        assigned=assigned,
        rejections=rejections,
        added_cost=sum(t.cost for t in chosen),
        method=method,
        trips_considered=n_trips,
        solver_status=status,
        reassigned=reassigned,
    )
