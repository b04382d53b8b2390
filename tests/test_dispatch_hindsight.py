"""The hindsight reference of the dispatch benchmark: every rider carried exactly once within
every limit (checked exactly), shared rides only where both riders' limits hold, and the
k-median placement bound."""

from __future__ import annotations

import pytest

pytest.importorskip("pyvrp")

from benchmarks.dispatch_hindsight import Fleet, _trip, form_trips, k_median, placement_bound, solve_hindsight
from dispatch.router import StraightLineRouter
from ems.config.dispatch import DispatchSettings
from tests.dispatch_fixtures import CENTRE, DEPOT, east, north, request

SETTINGS = DispatchSettings()
ROUTER = StraightLineRouter(SETTINGS.speed_kmh, SETTINGS.detour_factor)
START = 8 * 3600.0
FLEET = Fleet(3, 4, DEPOT, START, 10 * 3600.0, 10.5 * 3600.0)


def _requests():
    # two riders going the same way a minute apart, and four scattered ones
    out = [
        request("a", north(CENTRE, 1.0), north(CENTRE, 5.0), START + 600.0),
        request("b", north(CENTRE, 1.2), north(CENTRE, 5.2), START + 660.0),
    ]
    for i in range(4):
        out.append(
            request(f"s{i}", east(CENTRE, 1.0 + i), north(CENTRE, -1.0 - i), START + 1200.0 + 900.0 * i, 1 + i % 2)
        )
    return out


@pytest.mark.parametrize("pooling", [True, False])
def test_every_rider_is_carried_exactly_once_within_every_limit(pooling):
    requests = _requests()
    plan = solve_hindsight(requests, FLEET, ROUTER, SETTINGS, None, pooling, runtime_s=1.0)
    assert plan.violations == []
    stops = [stop for route in plan.routes for stop in route]
    for r in requests:
        pickups = [t for kind, rid, t in stops if rid == r.request_id and kind == "pickup"]
        dropoffs = [t for kind, rid, t in stops if rid == r.request_id and kind == "dropoff"]
        assert len(pickups) == 1 and len(dropoffs) == 1
        assert r.time_s <= pickups[0] <= r.time_s + SETTINGS.max_wait_s
        assert dropoffs[0] - pickups[0] <= SETTINGS.max_ride_s(ROUTER.leg(r.origin, r.destination)[1]) + 1e-6
    assert len(plan.routes) <= FLEET.size and plan.served == len(requests)
    shared = any(
        kind == "pickup" and i + 1 < len(route) and route[i + 1][0] == "pickup"
        for route in plan.routes
        for i, (kind, _, _) in enumerate(route)
    )
    assert shared is pooling  # a and b ride together only when pooling


def test_pooled_plan_drives_less_than_the_plan_without_pooling():
    requests = _requests()
    pooled = solve_hindsight(requests, FLEET, ROUTER, SETTINGS, None, True, runtime_s=1.0)
    alone = solve_hindsight(requests, FLEET, ROUTER, SETTINGS, None, False, runtime_s=1.0)
    assert pooled.vehicle_km < alone.vehicle_km - 3.0  # one of the two 5.2 km rides is saved, nearly


def test_a_shared_ride_that_breaks_a_ride_limit_is_never_formed():
    a = request("a", north(CENTRE, 1.0), north(CENTRE, 2.0), START)
    far = request("far", east(CENTRE, 6.0), east(CENTRE, 7.0), START)
    # picking 'far' up between a's pickup and drop-off adds ~16 min to a 2.6 min ride
    assert (
        _trip([("pickup", a), ("pickup", far), ("dropoff", a), ("dropoff", far)], ROUTER, SETTINGS, 600.0, FLEET)
        is None
    )
    trips = form_trips([a, far], FLEET, ROUTER, SETTINGS, 600.0, True)
    assert sorted(len(t.riders) for t in trips) == [1, 1]


def test_riders_too_many_for_one_car_never_share_it():
    a = request("a", north(CENTRE, 1.0), north(CENTRE, 5.0), START, passengers=3)
    b = request("b", north(CENTRE, 1.1), north(CENTRE, 5.1), START, passengers=2)
    assert all(len(t.riders) == 1 for t in form_trips([a, b], FLEET, ROUTER, SETTINGS, 600.0, True))


def test_k_median_finds_the_two_clusters_and_the_bound_adds_half_a_batch():
    west_cluster = [east(CENTRE, -5.0 + 0.01 * i) for i in range(10)]
    east_cluster = [east(CENTRE, 5.0 + 0.01 * i) for i in range(10)]
    chosen, mean_km = k_median(west_cluster + east_cluster, 2, ROUTER.detour_factor)
    assert {i // 10 for i in chosen} == {0, 1}
    assert mean_km < 0.05
    _, one_km = k_median(west_cluster + east_cluster, 1, ROUTER.detour_factor)
    assert one_km > 6.0
    requests = [request(f"r{i}", p, CENTRE) for i, p in enumerate(west_cluster + east_cluster)]
    bound = placement_bound(requests, 2, ROUTER, 30.0)
    assert bound["mean_wait_s"] == pytest.approx(mean_km / 30.0 * 3600.0 + 15.0)
