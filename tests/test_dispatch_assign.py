"""Batch assignment: pooling where it pays, limits never broken, energy respected, ILP >= insertion."""

from __future__ import annotations

import numpy as np
import pytest

from dispatch.assign import Policy, assign_batch
from dispatch.model import Reason, StopKind
from dispatch.router import great_circle_km
from ems.config.dispatch import DispatchSettings
from tests.dispatch_fixtures import CENTRE, check_route, context, east, north, request, vehicle

SETTINGS = DispatchSettings()


def _riders_overlap(stops, a: str, b: str) -> bool:
    """True when riders a and b are on board at the same time somewhere on the route."""
    on_board: set[str] = set()
    for stop in stops:
        if stop.kind is StopKind.PICKUP:
            on_board.add(stop.request_id)
            if {a, b} <= on_board:
                return True
        elif stop.kind is StopKind.DROPOFF:
            on_board.discard(stop.request_id)
    return False


def test_two_neighbours_to_the_hospital_share_one_vehicle():
    hospital = north(CENTRE, 4.0)
    home_a, home_b = east(CENTRE, 0.1), east(CENTRE, 0.25)
    vehicles = [vehicle("v1", east(CENTRE, -0.5)), vehicle("v2", east(CENTRE, 0.8))]
    requests = [request("a", home_a, hospital), request("b", home_b, north(hospital, 0.1))]
    pooled = assign_batch(vehicles, requests, context(), SETTINGS, Policy.ILP)
    alone = assign_batch(vehicles, requests, context(), SETTINGS, Policy.NO_POOLING)
    assert pooled.assigned["a"] == pooled.assigned["b"]
    assert _riders_overlap(pooled.routes[pooled.assigned["a"]], "a", "b")
    assert alone.assigned["a"] != alone.assigned["b"]
    assert pooled.added_cost < alone.added_cost


def test_detour_limit_forbids_pooling_riders_going_opposite_ways():
    # b's trip forces a long detour on a: with tight limits they may never ride together
    tight = DispatchSettings(max_detour_fraction=0.1, max_detour_min_s=0.0)
    requests = [request("a", CENTRE, north(CENTRE, 3.0)), request("b", east(CENTRE, 0.3), north(CENTRE, -3.0))]
    vehicles = [vehicle("v1", east(CENTRE, 0.1)), vehicle("v2", east(CENTRE, 2.5))]
    loose = assign_batch(
        vehicles, requests, context(), DispatchSettings(max_detour_fraction=3.0, max_detour_min_s=3600), Policy.ILP
    )
    assert loose.assigned["a"] == loose.assigned["b"]  # without the limit, one vehicle takes both
    result = assign_batch(vehicles, requests, context(tight), tight, Policy.ILP)
    assert set(result.assigned) == {"a", "b"}
    for stops in result.routes.values():
        assert not _riders_overlap(stops, "a", "b")
    for view in vehicles:
        if view.vehicle_id in result.routes:
            _, _, rides = check_route(view, result.routes[view.vehicle_id], tight, {r.request_id: r for r in requests})
            assert all(ride <= limit + 1e-6 for ride, limit in rides.values())


def _random_batch(seed: int, n_vehicles: int = 6, n_requests: int = 12):
    rng = np.random.default_rng(seed)

    def point():
        return east(north(CENTRE, rng.uniform(-3, 3)), rng.uniform(-3, 3))

    vehicles = [vehicle(f"v{i}", point(), seats=int(rng.integers(2, 5))) for i in range(n_vehicles)]
    requests = [
        request(
            f"r{i}", point(), point(), time_s=float(rng.uniform(-20, 0)), passengers=int(rng.choice([1, 1, 1, 2, 3]))
        )
        for i in range(n_requests)
    ]
    return vehicles, requests


@pytest.mark.parametrize("policy", list(Policy))
@pytest.mark.parametrize("seed", range(4))
def test_capacity_wait_and_detour_limits_hold_in_every_route(policy, seed):
    vehicles, requests = _random_batch(seed)
    by_id = {r.request_id: r for r in requests}
    result = assign_batch(vehicles, requests, context(), SETTINGS, policy)
    assert set(result.assigned) | set(result.rejections) == set(by_id)
    assert not set(result.assigned) & set(result.rejections)
    for view in vehicles:
        stops = result.routes.get(view.vehicle_id)
        if stops is None:
            continue
        max_load, waits, rides = check_route(view, stops, SETTINGS, by_id)
        assert max_load <= view.seats
        assert all(wait <= SETTINGS.max_wait_s + 1e-6 for wait in waits.values())
        assert all(ride <= limit + 1e-6 for ride, limit in rides.values())
        assert {s.request_id for s in stops} == {r for r, v in result.assigned.items() if v == view.vehicle_id}


@pytest.mark.parametrize("seed", range(6))
def test_ilp_is_never_worse_than_insertion_on_the_same_batch(seed):
    vehicles, requests = _random_batch(100 + seed, n_vehicles=5, n_requests=14)
    ilp = assign_batch(vehicles, requests, context(), SETTINGS, Policy.ILP)
    insertion = assign_batch(vehicles, requests, context(), SETTINGS, Policy.INSERTION)
    assert len(ilp.assigned) >= len(insertion.assigned)
    if len(ilp.assigned) == len(insertion.assigned):
        assert ilp.added_cost <= insertion.added_cost + 1e-6


def test_ilp_beats_insertion_when_greedy_order_is_wrong():
    # insertion gives the first request the nearest vehicle, leaving the second with none in time;
    # the ILP serves both
    a = request("a", east(CENTRE, 0.0), north(CENTRE, 2.0), time_s=0.0)
    b = request("b", east(CENTRE, 4.2), north(east(CENTRE, 4.2), 2.0), time_s=1.0)
    vehicles = [vehicle("near_both", east(CENTRE, 1.5)), vehicle("far", east(CENTRE, -2.5))]
    # a generous time limit: this is about the optimum, not about a loaded machine's speed
    settings = DispatchSettings(max_wait_s=480.0, max_trip_size=1, ilp_time_limit_s=30.0)
    ilp = assign_batch(vehicles, [a, b], context(settings), settings, Policy.ILP)
    insertion = assign_batch(vehicles, [a, b], context(settings), settings, Policy.INSERTION)
    assert len(ilp.assigned) == 2
    assert len(insertion.assigned) == 1
    assert insertion.rejections["b"].reason is Reason.TAKEN


def test_vehicle_without_energy_for_trip_and_charger_is_not_given_it():
    trip = request("long", east(CENTRE, 0.2), north(CENTRE, 6.0))
    road_km = (
        great_circle_km(CENTRE, trip.origin) + great_circle_km(trip.origin, trip.destination)
    ) * SETTINGS.detour_factor
    back_km = great_circle_km(trip.destination, context().charger_points[0]) * SETTINGS.detour_factor
    need_kwh = (road_km + back_km) * 0.15
    short = vehicle("short", CENTRE, soc_kwh=6.0 + need_kwh - 0.05)
    enough = vehicle("enough", CENTRE, soc_kwh=6.0 + need_kwh + 0.05)
    alone = assign_batch([short], [trip], context(), SETTINGS)
    assert alone.assigned == {}
    assert alone.rejections["long"].reason is Reason.ENERGY
    assert "energy" in alone.rejections["long"].message
    both = assign_batch([short, enough], [trip], context(), SETTINGS)
    assert both.assigned == {"long": "enough"}


def test_far_request_is_rejected_at_once_with_the_wait_reason():
    far = request("far", north(CENTRE, 9.0), north(CENTRE, 10.0))
    result = assign_batch([vehicle("v1", CENTRE)], [far], context(), SETTINGS)
    assert result.rejections["far"].reason is Reason.NO_VEHICLE_IN_TIME
    assert "maximum wait" in result.rejections["far"].message


def test_promised_riders_keep_their_limits_when_a_new_rider_is_added():
    first = assign_batch(
        [vehicle("v1", CENTRE)], [request("a", east(CENTRE, 0.5), north(CENTRE, 3.0))], context(), SETTINGS
    )
    loaded = vehicle("v1", CENTRE, stops=first.routes["v1"])
    # b's destination is the opposite way: inserting it would stretch a's ride past its limit
    second = assign_batch(
        [loaded], [request("b", east(CENTRE, 0.6), north(CENTRE, -4.0), time_s=30.0)], context(), SETTINGS
    )
    if "b" in second.assigned:
        _, _, rides = check_route(loaded, second.routes["v1"], SETTINGS, {})
        assert all(ride <= limit + 1e-6 for ride, limit in rides.values())
        assert not _riders_overlap(second.routes["v1"], "a", "b") or rides["a"][0] <= rides["a"][1]
    else:
        assert second.rejections["b"].reason in (Reason.DETOUR, Reason.NO_VEHICLE_IN_TIME)


def test_keep_energy_and_shelter_call_limit_what_a_vehicle_accepts():
    trip = request("r", east(CENTRE, 0.2), north(CENTRE, 3.0))
    kept = vehicle("v1", CENTRE, soc_kwh=20.0, floor_kwh=19.5)  # the energy manager keeps 19.5 kWh
    assert assign_batch([kept], [trip], context(), SETTINGS).rejections["r"].reason is Reason.ENERGY
    called = vehicle("v1", CENTRE, end_s=300.0, final_point=north(CENTRE, -2.0))  # called to a shelter in 5 min
    assert assign_batch([called], [trip], context(), SETTINGS).rejections["r"].reason is Reason.HOURS


def test_solver_time_limit_still_leaves_a_valid_assignment():
    vehicles, requests = _random_batch(7, n_vehicles=6, n_requests=16)
    rushed = DispatchSettings(ilp_time_limit_s=1e-6)
    result = assign_batch(vehicles, requests, context(rushed), rushed, Policy.ILP)
    insertion = assign_batch(vehicles, requests, context(rushed), rushed, Policy.INSERTION)
    assert len(result.assigned) >= len(insertion.assigned) > 0
    assert set(result.assigned) | set(result.rejections) == {r.request_id for r in requests}
    by_id = {r.request_id: r for r in requests}
    for view in vehicles:
        if view.vehicle_id in result.routes:
            max_load, waits, rides = check_route(view, result.routes[view.vehicle_id], rushed, by_id)
            assert max_load <= view.seats
            assert all(ride <= limit + 1e-6 for ride, limit in rides.values())


def _promise(first_vehicle_at, rider, now_s: float, others=()):
    """A vehicle at ``first_vehicle_at`` promised ``rider`` at time 0, seen again at ``now_s``."""
    first = assign_batch([vehicle("v1", first_vehicle_at)], [rider], context(), SETTINGS)
    assert first.assigned == {rider.request_id: "v1"}
    return [vehicle("v1", first_vehicle_at, stops=first.routes["v1"], start_s=now_s), *others]


def test_a_promised_rider_moves_to_a_vehicle_that_became_free_nearby():
    # v1 was sent 3 km to fetch a; 30 s later v2 is free beside a, and b asks for a ride by v1
    a = request("a", CENTRE, north(CENTRE, 2.0))
    b = request("b", east(CENTRE, -3.1), north(east(CENTRE, -3.1), 1.5), time_s=30.0)
    views = _promise(east(CENTRE, -3.0), a, 30.0, others=[vehicle("v2", east(CENTRE, 0.1), start_s=30.0)])
    moved = assign_batch(views, [b], context(), SETTINGS, Policy.ILP, promised=[a])
    assert moved.reassigned == {"a": "v2"}
    assert moved.assigned == {"b": "v1"}
    assert {s.request_id for s in moved.routes["v1"]} == {"b"}
    assert {s.request_id for s in moved.routes["v2"]} == {"a"}
    _, waits, _ = check_route(views[1], moved.routes["v2"], SETTINGS, {"a": a})
    assert waits["a"] < 60.0  # against about 7 minutes from v1

    kept = assign_batch(
        views, [b], context(), SETTINGS.model_copy(update={"reassign": False}), Policy.ILP, promised=[a]
    )
    assert kept.reassigned == {}
    assert "a" in {s.request_id for s in kept.routes.get("v1", views[0].stops)}
    assert moved.added_cost < kept.added_cost
    # the fast path never moves a promised rider
    assert assign_batch(views, [b], context(), SETTINGS, Policy.INSERTION, promised=[a]).reassigned == {}


def test_a_vehicle_whose_promised_rider_leaves_keeps_only_the_riders_on_board():
    a = request("a", CENTRE, north(CENTRE, 2.0))
    views = _promise(east(CENTRE, -3.0), a, 30.0, others=[vehicle("v2", east(CENTRE, 0.1), start_s=30.0)])
    result = assign_batch(views, [], context(), SETTINGS, Policy.ILP, promised=[a])
    assert result.reassigned == {"a": "v2"}
    assert result.routes["v1"] == ()
    assert result.assigned == {} and result.rejections == {}


@pytest.mark.parametrize("policy", [Policy.ILP, Policy.NO_POOLING])
@pytest.mark.parametrize("seed", range(4))
def test_promised_riders_are_never_lost_and_keep_their_limits_when_moved(policy, seed):
    vehicles, requests = _random_batch(200 + seed, n_vehicles=6, n_requests=10)
    first = assign_batch(vehicles, requests, context(), SETTINGS, policy)
    promised = [r for r in requests if r.request_id in first.assigned]
    # the next batch, before anyone moved: vehicles with their promised routes, new requests
    later = [vehicle(v.vehicle_id, v.start, seats=v.seats, stops=first.routes.get(v.vehicle_id, ())) for v in vehicles]
    _, fresh = _random_batch(300 + seed, n_vehicles=0, n_requests=8)
    fresh = [request(r.request_id + "n", r.origin, r.destination, 0.0, r.passengers) for r in fresh]
    second = assign_batch(later, fresh, context(), SETTINGS, policy, promised=promised)
    routes = {v.vehicle_id: second.routes.get(v.vehicle_id, v.stops) for v in later}
    by_id = {r.request_id: r for r in promised + fresh}
    carried = [s.request_id for stops in routes.values() for s in stops if s.kind is StopKind.PICKUP]
    assert sorted(carried) == sorted([r.request_id for r in promised] + list(second.assigned))
    for view in later:
        max_load, waits, rides = check_route(view, routes[view.vehicle_id], SETTINGS, by_id)
        assert max_load <= view.seats
        assert all(wait <= SETTINGS.max_wait_s + 1e-6 for wait in waits.values())
        assert all(ride <= limit + 1e-6 for ride, limit in rides.values())
    for request_id, vehicle_id in second.reassigned.items():
        assert first.assigned[request_id] != vehicle_id
        assert request_id in {s.request_id for s in routes[vehicle_id]}


def test_insertion_names_its_plan_and_cost_and_a_failure_its_reason():
    from dispatch.routes import Insertion, best_insertion, rider_stops

    ctx = context()
    ride = request("a", east(CENTRE, 0.5), north(CENTRE, 2.0))
    direct_s = ctx.router.leg(ride.origin, ride.destination)[1]
    pickup, dropoff = rider_stops(ride, direct_s, SETTINGS.max_wait_s, SETTINGS.max_ride_s(direct_s))
    near = vehicle("v1", CENTRE)
    found = best_insertion(
        near, (), pickup, dropoff, ctx, frozenset({"a"}), wait_weight=2.0, request_time_s=ride.time_s
    )
    assert isinstance(found, Insertion)
    assert found.plan.stops == (pickup, dropoff)
    assert found.cost == pytest.approx(found.plan.end_s + 2.0 * (found.plan.pickup_s["a"] - ride.time_s))
    far = vehicle("v2", north(CENTRE, -40.0))  # 40 km away: 80 min at 30 km/h, beyond the 10 min wait
    assert best_insertion(far, (), pickup, dropoff, ctx, frozenset({"a"})) is Reason.NO_VEHICLE_IN_TIME
