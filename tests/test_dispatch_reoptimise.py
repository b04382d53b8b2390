"""Rolling re-optimisation: riders not yet picked up move between vehicles only when the fleet's
cost falls, and every promised limit still holds."""

from __future__ import annotations

import numpy as np
import pytest

from dispatch.assign import Policy, assign_batch
from dispatch.model import StopKind
from dispatch.reoptimise import improve
from dispatch.routes import Failure, evaluate, rider_stops
from ems.config.dispatch import DispatchSettings
from tests.dispatch_fixtures import CENTRE, check_route, context, east, north, request, vehicle

SETTINGS = DispatchSettings()


def _stops(req, ctx):
    direct_s = ctx.router.leg(req.origin, req.destination)[1]
    return rider_stops(req, direct_s, SETTINGS.max_wait_s, SETTINGS.max_ride_s(direct_s))


def _fleet_cost(views, routes, waiting, ctx, wait_weight):
    total = 0.0
    for view in views:
        plan = evaluate(view, routes.get(view.vehicle_id, view.stops), ctx)
        assert not isinstance(plan, Failure)
        total += plan.end_s - view.start_s if plan.stops else 0.0
        total += wait_weight * sum(t - waiting[r].time_s for r, t in plan.pickup_s.items() if r in waiting)
    return total


def test_a_rider_promised_to_a_far_taxi_moves_to_the_idle_one_beside_it():
    ctx = context()
    rider = request("a", east(CENTRE, 0.2), north(CENTRE, 3.0))
    pickup, dropoff = _stops(rider, ctx)
    near = vehicle("near", CENTRE)
    far = vehicle("far", east(CENTRE, 3.0), stops=(pickup, dropoff))
    found = improve({"near": near, "far": far}, {}, {"a": rider}, ctx, SETTINGS.wait_weight)
    assert found.moved == {"a": "near"}
    assert found.routes["far"] == ()
    assert [s.request_id for s in found.routes["near"]] == ["a", "a"]
    before = _fleet_cost([near, far], {}, {"a": rider}, ctx, SETTINGS.wait_weight)
    after = _fleet_cost([near, far], found.routes, {"a": rider}, ctx, SETTINGS.wait_weight)
    assert after == pytest.approx(before - found.saved_cost)
    assert after < before


def test_a_rider_is_not_moved_to_a_taxi_that_would_break_another_riders_promised_pickup():
    ctx = context()
    # b is promised to "near" with almost no slack left; taking a first would make b late
    rider_a = request("a", east(CENTRE, 0.3), north(CENTRE, 4.0))
    rider_b = request("b", east(CENTRE, -1.0), north(CENTRE, -2.0), time_s=-SETTINGS.max_wait_s + 160.0)
    pa, da = _stops(rider_a, ctx)
    pb, db = _stops(rider_b, ctx)
    near = vehicle("near", CENTRE, stops=(pb, db))
    far = vehicle("far", east(CENTRE, 2.5), stops=(pa, da))
    waiting = {"a": rider_a, "b": rider_b}
    found = improve({"near": near, "far": far}, {}, waiting, ctx, SETTINGS.wait_weight)
    routes = {"near": near.stops, "far": far.stops, **found.routes}
    for view in (near, far):
        _, waits, rides = check_route(view, routes[view.vehicle_id], SETTINGS, waiting)
        assert all(w <= SETTINGS.max_wait_s + 1e-6 for w in waits.values())
        assert all(ride <= limit + 1e-6 for ride, limit in rides.values())
    assert {s.request_id for s in routes["near"] if s.kind is StopKind.PICKUP} >= {"b"}


@pytest.mark.parametrize("seed", range(4))
def test_reoptimising_a_poor_plan_keeps_every_rider_and_limit_and_never_costs_more(seed):
    rng = np.random.default_rng(seed)

    def point():
        return east(north(CENTRE, rng.uniform(-3, 3)), rng.uniform(-3, 3))

    ctx = context()
    views = [vehicle(f"v{i}", point(), seats=int(rng.integers(2, 5))) for i in range(5)]
    requests = [request(f"r{i}", point(), point(), time_s=float(rng.uniform(-20, 0))) for i in range(10)]
    # a poor plan to start from: each rider appended to a random vehicle that can still take it
    start: dict[str, tuple] = {v.vehicle_id: () for v in views}
    waiting = {}
    for req in requests:
        for i in rng.permutation(len(views)):
            stops = start[views[i].vehicle_id] + _stops(req, ctx)
            if not isinstance(evaluate(views[i], stops, ctx), Failure):
                start[views[i].vehicle_id] = stops
                waiting[req.request_id] = req
                break
    found = improve({v.vehicle_id: v for v in views}, start, waiting, ctx, SETTINGS.wait_weight)
    routes = {**start, **found.routes}
    held = sorted(s.request_id for stops in routes.values() for s in stops if s.kind is StopKind.PICKUP)
    assert held == sorted(waiting)
    before = _fleet_cost(views, start, waiting, ctx, SETTINGS.wait_weight)
    after = _fleet_cost(views, routes, waiting, ctx, SETTINGS.wait_weight)
    assert after == pytest.approx(before - found.saved_cost)
    assert found.moves > 0 and found.saved_cost > 0.0
    for view in views:
        max_load, waits, rides = check_route(view, routes.get(view.vehicle_id, ()), SETTINGS, waiting)
        assert max_load <= view.seats
        assert all(w <= SETTINGS.max_wait_s + 1e-6 for w in waits.values())
        assert all(ride <= limit + 1e-6 for ride, limit in rides.values())


def test_the_ilp_with_reoptimisation_serves_the_same_riders_at_no_more_cost():
    rng = np.random.default_rng(7)

    def point():
        return east(north(CENTRE, rng.uniform(-3, 3)), rng.uniform(-3, 3))

    ctx = context()
    views = [vehicle(f"v{i}", point()) for i in range(4)]
    requests = [request(f"r{i}", point(), point(), time_s=float(rng.uniform(-20, 0))) for i in range(9)]
    plain = assign_batch(views, requests, ctx, SETTINGS, Policy.ILP)
    searched = assign_batch(views, requests, ctx, SETTINGS.model_copy(update={"reoptimise": True}), Policy.ILP)
    assert set(searched.assigned) == set(plain.assigned)
    waiting = {r.request_id: r for r in requests if r.request_id in plain.assigned}
    assert (
        _fleet_cost(views, searched.routes, waiting, ctx, SETTINGS.wait_weight)
        <= _fleet_cost(views, plain.routes, waiting, ctx, SETTINGS.wait_weight) + 1e-6
    )


def test_a_replay_with_rolling_reoptimisation_reassigns_between_requests_and_keeps_every_limit(tmp_path):
    import datetime as dt
    from pathlib import Path

    from dispatch.demand import DemandModel, generate_requests
    from dispatch.fleet import fleet_from_portfolio
    from dispatch.model import Point
    from dispatch.requests_io import ServiceArea, read_requests
    from dispatch.router import make_router
    from dispatch.simulate import Simulation
    from ems.config import load_portfolio

    portfolio = load_portfolio(Path(__file__).resolve().parent.parent / "config" / "arao.toml")
    path = tmp_path / "requests.csv"
    generate_requests(dt.date(2026, 4, 15), 60, seed=5).to_csv(path, index=False)
    info = portfolio.portfolio
    log = read_requests(
        path, ServiceArea(Point(info.latitude_deg, info.longitude_deg), info.service_area_km), info.timezone, 4
    )
    setup = fleet_from_portfolio(portfolio, log.clock.date)
    results = {}
    for interval in (0.0, 60.0):
        settings = portfolio.dispatch.model_copy(update={"reoptimise": True, "reoptimise_interval_s": interval})
        router = make_router(settings.speed_kmh, settings.detour_factor, None)
        results[interval] = Simulation(setup, log.requests, router, settings, Policy.ILP, DemandModel(60)).run()
    arrival_batches = len(results[0.0].assign_ms)
    # batches without a new request re-assign the riders still waiting
    assert len(results[60.0].assign_ms) > arrival_batches
    settings = portfolio.dispatch
    for result in results.values():
        served = [r for r in result.riders.values() if r.dropoff_s is not None]
        assert len(served) + sum(r.rejection is not None for r in result.riders.values()) == len(log.requests)
        for rider in served:
            assert rider.pickup_s - rider.request.time_s <= settings.max_wait_s + 1.0
            assert rider.dropoff_s - rider.pickup_s <= settings.max_ride_s(rider.direct_s) + 1.0
