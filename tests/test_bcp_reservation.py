"""A BCP reservation never asks a vehicle to keep more than it has; a recharge first is a charge call."""

from __future__ import annotations

import json

import pandas as pd

from ems.bcp import plan_bcp
from ems.fleet import Reservation
from tests.bcp_fixtures import START, battery, problem, shelter, vehicle


def _recharge_first_plan():
    # 3 kW for 12 h; the shelter's battery covers the first 4 h block (12 kWh); the only vehicle
    # starts with 5 kWh, 1 kWh above its floor (2 kWh + 1 kWh each way): it must charge at the
    # depot in the first block to carry the next 24 kWh.
    case = problem([shelter("s", 3.0, 12)], [vehicle("v", 5.0, ["s"])], [battery("b", "s", 12.0)], steps=12, chargers=1)
    return plan_bcp(case)


def test_reservation_never_asks_more_than_on_board_and_says_where_to_charge_first():
    plan = _recharge_first_plan()
    assert plan.shelter_hours()["s"] == 12.0
    first = min(v.arrive for v in plan.visits if v.vehicle_id == "v")
    leave_kwh = float(plan.vehicle_soc_kwh["v"].asof(first))
    assert first > START and leave_kwh > 5.0 + 10.0  # the plan charges before it goes
    reservation = plan.reservation(START)
    assert reservation.keep_energy_kwh["v"] <= 5.0
    (call,) = reservation.charge_calls
    assert (call.vehicle_id, call.site_id) == ("v", "depot")
    assert pd.Timestamp(call.from_time) == START and pd.Timestamp(call.until_time) == first
    assert call.target_kwh <= leave_kwh and call.target_kwh > leave_kwh - 0.01
    again = Reservation.model_validate_json(reservation.model_dump_json())
    assert again == reservation


def test_a_reservation_without_charge_calls_is_the_old_message():
    plan = plan_bcp(problem([shelter("s", 2.0, 8)], [vehicle("v", 20.0, ["s"])], steps=8))
    reservation = plan.reservation(START)
    assert reservation.charge_calls == () and reservation.keep_energy_kwh["v"] <= 20.0
    payload = json.loads(reservation.model_dump_json())
    assert set(payload) == {"issued", "keep_energy_kwh", "shelter_calls"}
    assert Reservation.model_validate(payload) == reservation  # a message from before the addition parses
