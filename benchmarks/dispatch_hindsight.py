"""References for the dispatcher computed in hindsight (the whole day's requests known).

- :func:`solve_hindsight`: routes of the same fleet for the same requests, found by PyVRP on
  pre-formed trips (single riders, and pairs whose shared ride meets both riders' limits).
  Travel uses the dispatcher's router (``StraightLineRouter.leg``; metres and whole seconds
  rounded up for the solver); the plan is then re-timed in floating point with the router's own
  legs and every limit (wait, ride time, seats, hours, return to the depot) is checked exactly.
- :func:`solve_pdp_relaxed`: PyVRP's own pickup-and-delivery (``Shipment``), which has no
  ride-time limit: shows how many rides such a plan makes too long.
- :func:`placement_bound`: the mean wait if all taxis stood at the k-median of the day's request
  origins (k = fleet size) and each request were met by its nearest one, plus half a batch.

PyVRP is a benchmark dependency (the ``bench`` extra), never imported by the dispatcher.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from dispatch.model import Point, Request
from dispatch.router import StraightLineRouter
from ems.config.dispatch import DispatchSettings
from ems.fleet.geo import EARTH_RADIUS_KM

PRIZE = 10_000_000  # per rider when serving all is impossible: one more rider beats any km saving


@dataclass(frozen=True)
class Fleet:
    """The hindsight fleet: ``size`` vehicles of ``seats`` seats starting and ending at ``depot``."""

    size: int
    seats: int
    depot: Point
    start_s: float  # vehicles leave the depot from here on (service start)
    pickup_end_s: float  # last pickup (service end)
    return_s: float  # back at the depot by then (service end plus the shift overrun)


@dataclass
class HindsightPlan:
    wait_window_s: float
    pooling: bool
    routes: list[list[tuple[str, str, float]]]  # per vehicle: (pickup|dropoff, request id, time [s])
    vehicle_km: float
    served: int
    requests: int
    mean_wait_s: float
    violations: list[str] = field(default_factory=list)
    waits: dict[str, float] = field(default_factory=dict)
    solver_feasible: bool = True

    @property
    def served_share(self) -> float:
        return self.served / self.requests if self.requests else 0.0


def _km_matrix(points: list[Point], detour_factor: float) -> np.ndarray:
    """Road km between all points, the same formula as ``great_circle_km`` times the detour factor."""
    lat = np.radians([p.lat for p in points])
    lon = np.radians([p.lon for p in points])
    h = (
        np.sin((lat[None, :] - lat[:, None]) / 2) ** 2
        + np.cos(lat[:, None]) * np.cos(lat[None, :]) * np.sin((lon[None, :] - lon[:, None]) / 2) ** 2
    )
    return 2 * EARTH_RADIUS_KM * np.arcsin(np.minimum(1.0, np.sqrt(h))) * detour_factor


def solve_hindsight(
    requests,
    fleet: Fleet,
    router: StraightLineRouter,
    settings: DispatchSettings,
    wait_window_s: float | None = None,
    pooling: bool = True,
    runtime_s: float = 30.0,
    seed: int = 0,
    all_required: bool = True,
) -> HindsightPlan:
    """The shortest plan (vehicle-km) PyVRP finds on pre-formed trips; every limit checked exactly.

    A trip is one rider alone or, with ``pooling``, two riders whose shared ride (a fixed order of
    their four stops, chosen by a maximum-weight matching on the km it saves) meets both riders'
    limits. Each trip is one PyVRP client whose time window is the range of start times that keep
    every rider of it within the wait window with no waiting inside the trip; the edge from trip
    i to trip j is the drive from i's last drop-off to j's first pickup. With ``all_required``
    false every rider is optional with a prize larger than any km saving.
    """
    import pyvrp
    from pyvrp.stop import MaxRuntime

    window = settings.max_wait_s if wait_window_s is None else min(wait_window_s, settings.max_wait_s)
    requests = sorted(requests, key=lambda r: r.time_s)
    trips = form_trips(requests, fleet, router, settings, window, pooling)
    data = _trips_data(trips, fleet, router, settings.dwell_s, all_required)
    result = pyvrp.solve(data, MaxRuntime(runtime_s), seed=seed, display=False)
    plan = _retime(result.best, trips, requests, fleet, router, settings, window, pooling)
    skip: set[int] = set()
    while plan.violations and not all_required:
        # riders are optional: leave out the trips whose limits break (the vehicle only gets
        # earlier to its later trips, so no other limit can break), then re-time
        broken = {v.split()[0] for v in plan.violations}
        more = {i for i, trip in enumerate(trips) if any(r.request_id in broken for r in trip.riders)} - skip
        if not more:
            break
        skip |= more
        plan = _retime(result.best, trips, requests, fleet, router, settings, window, pooling, frozenset(skip))
    # PyVRP judges its plan on whole seconds rounded up; the exact re-check above is what counts
    plan.solver_feasible = result.best.is_feasible()
    return plan


def solve_pdp_relaxed(
    requests, fleet: Fleet, router, settings: DispatchSettings, runtime_s: float = 30.0, seed: int = 0
) -> HindsightPlan:
    """PyVRP's own pickup-and-delivery (``Shipment``) without the ride-time limit, which PyVRP
    cannot express (drop-off only by latest pickup + max ride): shows what that limit costs.
    Its plan is checked like the others, so ``violations`` lists the rides that are too long."""
    import pyvrp
    from pyvrp.stop import MaxRuntime

    requests = sorted(requests, key=lambda r: r.time_s)
    data = _shipments_data(requests, fleet, router, settings, settings.max_wait_s)
    result = pyvrp.solve(data, MaxRuntime(runtime_s), seed=seed, display=False)
    trips = [_Trip((r,), (("pickup", r, 0.0), ("dropoff", r, 0.0)), 0.0, 0.0, 0.0) for r in requests]
    return _retime(result.best, trips, requests, fleet, router, settings, settings.max_wait_s, True)


@dataclass(frozen=True)
class _Trip:
    riders: tuple[Request, ...]
    events: tuple[tuple[str, Request, float], ...]  # (pickup|dropoff, rider, offset from the first stop [s])
    km: float  # inside the trip
    early_s: float  # range of arrival times at the first stop
    late_s: float

    @property
    def first(self) -> Point:
        return self.events[0][1].origin

    @property
    def last(self) -> Point:
        return self.events[-1][1].destination

    @property
    def duration_s(self) -> float:
        return self.events[-1][2]


def rider_window(rider: Request, fleet: Fleet, router, window: float) -> float:
    """The wait window, widened for a rider no taxi can reach in it from the depot at the start."""
    return max(window, fleet.start_s + router.leg(fleet.depot, rider.origin)[1] - rider.time_s)


def _timed(events: list[tuple[str, Request]], router, dwell_s: float) -> tuple[tuple, float]:
    position, time_s, km, out = None, 0.0, 0.0, []
    for step, rider in events:
        point = rider.origin if step == "pickup" else rider.destination
        if position is not None:
            leg_km, leg_s = router.leg(position, point)
            km += leg_km
            time_s += dwell_s + leg_s
        out.append((step, rider, time_s))
        position = point
    return tuple(out), km


def _trip(events, router, settings: DispatchSettings, window: float, fleet: Fleet) -> _Trip | None:
    """The trip with these stops in this order, or None when no start time meets every limit."""
    timed, km = _timed(events, router, settings.dwell_s)
    early, late = -math.inf, math.inf
    picked = {}
    for step, rider, offset in timed:
        if step == "pickup":
            early = max(early, rider.time_s - offset)
            late = min(
                late, rider.time_s + rider_window(rider, fleet, router, window) - offset, fleet.pickup_end_s - offset
            )
            picked[rider.request_id] = offset
        elif offset - picked[rider.request_id] > settings.max_ride_s(router.leg(rider.origin, rider.destination)[1]):
            return None
    load = sum(r.passengers for r in {rider for _, rider, _ in timed})
    if late < early or load > fleet.seats:
        return None
    riders = tuple(dict.fromkeys(rider for _, rider, _ in timed))
    return _Trip(riders, timed, km, early, late)


def form_trips(requests, fleet: Fleet, router, settings: DispatchSettings, window: float, pooling: bool) -> list[_Trip]:
    """Single-rider trips, and with ``pooling`` the pairs of a maximum-weight matching on the km
    a shared ride saves against the two rides back to back (best order of the four stops)."""
    import networkx as nx

    singles: dict[str, _Trip] = {}
    for r in requests:
        single = _trip([("pickup", r), ("dropoff", r)], router, settings, window, fleet)
        if single is None:  # riding alone from the request time meets every limit, unless the request is malformed
            raise ValueError(f"request {r.request_id}: no start time lets it ride alone within its limits")
        singles[r.request_id] = single
    if not pooling:
        return list(singles.values())
    graph = nx.Graph()
    best: dict[tuple[str, str], _Trip] = {}
    for i, a in enumerate(requests):
        for b in requests[i + 1 :]:
            if b.time_s - a.time_s > window:
                break
            for trip in _pair_orders(a, b, router, settings, window, fleet):
                apart = singles[a.request_id].km + singles[b.request_id].km + router.leg(a.destination, b.origin)[0]
                saving = apart - trip.km
                key = (a.request_id, b.request_id)
                if saving > 0 and (key not in best or trip.km < best[key].km):
                    best[key] = trip
                    graph.add_edge(*key, weight=saving)
    matched = nx.max_weight_matching(graph)
    trips, used = [], set()
    for a_id, b_id in matched:
        key = (a_id, b_id) if (a_id, b_id) in best else (b_id, a_id)
        trips.append(best[key])
        used |= {a_id, b_id}
    trips += [trip for rid, trip in singles.items() if rid not in used]
    return trips


def _pair_orders(a: Request, b: Request, router, settings, window, fleet):
    for first, second in ((a, b), (b, a)):
        for tail in ((first, second), (second, first)):
            events = [("pickup", first), ("pickup", second), ("dropoff", tail[0]), ("dropoff", tail[1])]
            trip = _trip(events, router, settings, window, fleet)
            if trip is not None:
                yield trip


def _trips_data(trips: list[_Trip], fleet: Fleet, router, dwell_s: float, all_required: bool):
    """One client per trip: arriving is its first pickup, leaving is its last drop-off."""
    import pyvrp

    n = len(trips)
    starts = [fleet.depot] + [t.first for t in trips]
    ends = [fleet.depot] + [t.last for t in trips]
    km = _km_matrix(ends + starts, router.detour_factor)[: n + 1, n + 1 :]  # from an end to a start
    distance = np.rint(km * 1000).astype(np.int64)
    duration = np.ceil(km / router.speed_kmh * 3600.0).astype(np.int64)
    np.fill_diagonal(distance, 0)
    np.fill_diagonal(duration, 0)
    clients = []
    for i, trip in enumerate(trips):
        early = int(math.ceil(trip.early_s))
        late = max(early, int(math.floor(trip.late_s)))
        prize = PRIZE * len(trip.riders)
        clients.append(
            pyvrp.Client(
                1 + i,
                tw_early=early,
                tw_late=late,
                service_duration=int(math.ceil(trip.duration_s + dwell_s)),
                prize=0 if all_required else prize,
                required=all_required,
            )
        )
    depots, vehicle_types = _vehicles(fleet, [])  # one trip at a time by construction
    locations = [pyvrp.Location(p.lon, p.lat) for p in starts]
    return pyvrp.ProblemData(locations, clients, depots, vehicle_types, [distance], [duration])


def _matrices(points: list[Point], router) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    km = _km_matrix(points, router.detour_factor)
    distance = np.rint(km * 1000).astype(np.int64)
    duration = np.ceil(km / router.speed_kmh * 3600.0).astype(np.int64)
    np.fill_diagonal(distance, 0)
    np.fill_diagonal(duration, 0)
    return km, distance, duration


def _vehicles(fleet: Fleet, capacity: list[int]):
    import pyvrp

    depot = pyvrp.Depot(0, int(fleet.start_s), int(fleet.return_s))
    vehicle_type = pyvrp.VehicleType(
        num_available=fleet.size,
        capacity=capacity,
        start_depot=0,
        end_depot=0,
        tw_early=int(fleet.start_s),
        tw_late=int(fleet.return_s),
    )
    return [depot], [vehicle_type]


def _pickup_window(r: Request, fleet: Fleet, window: float, offset: float) -> tuple[int, int]:
    early = int(math.ceil(r.time_s + offset))
    late = int(math.floor(min(r.time_s + window, fleet.pickup_end_s)))
    return early, max(early, late)


def _shipments_data(requests, fleet, router, settings, window):
    import pyvrp

    n = len(requests)
    points = [fleet.depot] + [r.origin for r in requests] + [r.destination for r in requests]
    _, distance, duration = _matrices(points, router)
    dwell = int(math.ceil(settings.dwell_s))
    shipments = []
    for i, r in enumerate(requests):
        early, late = _pickup_window(r, fleet, window, 0.0)
        delivery_late = late + settings.max_ride_s(router.leg(r.origin, r.destination)[1])
        shipments.append(
            pyvrp.Shipment(
                1 + i,
                1 + n + i,
                pickup_tw_early=early,
                pickup_tw_late=late,
                pickup_service_duration=dwell,
                delivery_tw_late=int(math.floor(delivery_late)),
                delivery_service_duration=dwell,
                amount=[r.passengers],
                name=r.request_id,
            )
        )
    depots, vehicle_types = _vehicles(fleet, [fleet.seats])
    locations = [pyvrp.Location(p.lon, p.lat) for p in points]
    return pyvrp.ProblemData(
        locations,
        [],
        depots,
        vehicle_types,
        [distance],  # type: ignore[list-item]  # pyvrp's stub says np.ndarray[int]: int as the array's shape
        [duration],  # type: ignore[list-item]  # the same stub error
        shipments=shipments,
    )


@dataclass
class _Drive:
    """A vehicle driven along the solver's visit order with the router's exact legs."""

    position: Point
    time_s: float
    km: float = 0.0
    load: int = 0
    onboard: dict[str, float] = field(default_factory=dict)
    stops: list[tuple[str, str, float]] = field(default_factory=list)


def _retime(
    solution,
    trips,
    requests,
    fleet: Fleet,
    router,
    settings: DispatchSettings,
    window: float,
    pooling: bool,
    skip: frozenset[int] = frozenset(),
):
    """Drive the solver's visit order with the router's exact legs and check every limit.

    A client is a trip (all its stops, leaving the first no earlier than the trip's start
    window); a shipment's pickup or delivery is one stop of a rider. Trips in ``skip`` are left
    out (their riders unserved)."""
    routes, total_km = [], 0.0
    waits: dict[str, float] = {}  # request id -> wait [s]
    violations: list[str] = []
    for route in solution.routes():
        drive = _Drive(fleet.depot, float(route.start_time()))
        for activity in route.schedule():
            if activity.is_depot():
                continue
            if activity.is_client():
                if activity.idx in skip:
                    continue
                trip = trips[activity.idx]
                for k, (step, rider, _) in enumerate(trip.events):
                    not_before = trip.early_s if k == 0 else -math.inf
                    _step(drive, step, rider, waits, violations, fleet, router, settings, window, pooling, not_before)
            else:
                step = "pickup" if activity.is_pickup() else "dropoff"
                _step(drive, step, requests[activity.idx], waits, violations, fleet, router, settings, window, pooling)
        km, travel_s = router.leg(drive.position, fleet.depot)
        total_km += drive.km + km
        if drive.time_s + travel_s > fleet.return_s + 1e-6:
            violations.append(f"route back at the depot {drive.time_s + travel_s - fleet.return_s:.0f} s late")
        if drive.onboard:
            violations.append(f"riders never dropped off: {sorted(drive.onboard)}")
        routes.append(drive.stops)
    served = sum(1 for stops in routes for kind, _, _ in stops if kind == "dropoff")
    plan = HindsightPlan(
        window,
        pooling,
        routes,
        total_km,
        served,
        len(requests),
        float(np.mean(list(waits.values()))) if waits else float("nan"),
        violations,
    )
    plan.waits = waits
    return plan


def _step(
    drive: _Drive,
    step: str,
    request: Request,
    waits,
    violations,
    fleet,
    router,
    settings,
    window,
    pooling,
    not_before: float = -math.inf,
):
    target = request.origin if step == "pickup" else request.destination
    km, travel_s = router.leg(drive.position, target)
    drive.km += km
    drive.time_s += travel_s
    drive.position = target
    rid = request.request_id
    if step == "pickup":
        drive.time_s = max(drive.time_s, request.time_s, not_before)
        waits[rid] = drive.time_s - request.time_s
        if waits[rid] > rider_window(request, fleet, router, window) + 1e-6 or drive.time_s > fleet.pickup_end_s + 1e-6:
            violations.append(f"{rid} wait {waits[rid]:.0f} s")
        drive.load += request.passengers
        drive.onboard[rid] = drive.time_s
        if drive.load > fleet.seats or (not pooling and len(drive.onboard) > 1):  # seats, or a shared ride
            violations.append(f"{rid} load {drive.load} seats, {len(drive.onboard)} riders")
    else:
        ride = drive.time_s - drive.onboard.pop(rid)
        if ride > settings.max_ride_s(router.leg(request.origin, request.destination)[1]) + 1e-6:
            violations.append(f"{rid} ride {ride:.0f} s")
        drive.load -= request.passengers
    drive.stops.append((step, rid, drive.time_s))
    drive.time_s += settings.dwell_s


def k_median(points: list[Point], k: int, detour_factor: float, iterations: int = 50) -> tuple[list[int], float]:
    """k medians among ``points`` (indices) and the mean road km of each point to its nearest one.

    Greedy start, then swaps (PAM) until no swap lowers the mean distance."""
    km = _km_matrix(points, detour_factor)
    n = len(points)
    k = min(k, n)
    chosen: list[int] = []
    nearest = np.full(n, np.inf)
    for _ in range(k):
        gains = np.minimum(nearest[None, :], km).sum(axis=1)
        gains[chosen] = np.inf
        best = int(np.argmin(gains))
        chosen.append(best)
        nearest = np.minimum(nearest, km[best])
    cost = nearest.mean()
    for _ in range(iterations):
        improved = False
        for slot in range(k):
            rest = [c for j, c in enumerate(chosen) if j != slot]
            base = km[rest].min(axis=0) if rest else np.full(n, np.inf)
            candidate_costs = np.minimum(base[None, :], km).mean(axis=1)
            best = int(np.argmin(candidate_costs))
            if candidate_costs[best] < cost - 1e-12:
                chosen[slot], cost, improved = best, float(candidate_costs[best]), True
        if not improved:
            break
    return chosen, float(cost)


def placement_bound(requests, k: int, router: StraightLineRouter, batch_interval_s: float) -> dict[str, float]:
    """Mean wait if ``k`` taxis stood at the k-median of the request origins: the drive from the
    nearest one plus half a batch. No online policy that meets each request from a standing taxi
    can do better on average with ``k`` taxis (they cannot all stand at better points)."""
    origins = [r.origin for r in requests]
    _, mean_km = k_median(origins, k, router.detour_factor)
    return {"mean_km": mean_km, "mean_wait_s": mean_km / router.speed_kmh * 3600.0 + batch_interval_s / 2}
