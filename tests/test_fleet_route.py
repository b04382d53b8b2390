"""The route a dispatcher publishes with a vehicle's plan (``VehiclePlan.route``)."""

import datetime as dt
import json

import pytest
from pydantic import ValidationError

from ems.fleet import Position, RouteStop, StopKind, VehiclePlan
from ems.fleet.bounds import FleetBounds

JST = dt.timezone(dt.timedelta(hours=9))
NOW = dt.datetime(2026, 4, 15, 9, 0, tzinfo=JST)


def _stop(kind: StopKind, minutes: int, **extra) -> RouteStop:
    return RouteStop(
        kind=kind, position=Position(lat=32.98, lon=130.44), eta=NOW + dt.timedelta(minutes=minutes), **extra
    )


def test_a_plan_without_a_route_is_the_message_it_was_before():
    message = json.loads(VehiclePlan(vehicle_id="taxi-01", issued=NOW).model_dump_json())
    assert "route" not in message
    assert VehiclePlan.model_validate(message).route == ()


def test_a_route_travels_as_json_and_comes_back_equal():
    plan = VehiclePlan(
        vehicle_id="taxi-01",
        issued=NOW,
        route=(
            _stop(StopKind.PICKUP, 4, rider_ids=("r1",)),
            _stop(StopKind.DROPOFF, 15, rider_ids=("r1",)),
            _stop(StopKind.CHARGER, 30, charger_id="depot_c1"),
        ),
    )
    again = VehiclePlan.model_validate_json(plan.model_dump_json())
    assert again == plan
    assert [stop.kind for stop in again.route] == [StopKind.PICKUP, StopKind.DROPOFF, StopKind.CHARGER]


def test_stops_out_of_time_order_are_refused():
    with pytest.raises(ValidationError, match="out of order"):
        VehiclePlan(vehicle_id="taxi-01", issued=NOW, route=(_stop(StopKind.PICKUP, 10), _stop(StopKind.DROPOFF, 5)))


def test_a_route_to_an_unknown_charger_fails_the_bounds_with_its_path():
    bounds = FleetBounds({"taxi-01": 40.0}, frozenset({"depot_c1"}))
    plan = VehiclePlan(vehicle_id="taxi-01", issued=NOW, route=(_stop(StopKind.CHARGER, 5, charger_id="depot_c9"),))
    assert bounds.check_plan(plan) == ("route.0.charger_id", "unknown charger 'depot_c9'")
