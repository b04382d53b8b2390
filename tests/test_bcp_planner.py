"""The BCP planner on hand-made cases with known answers, and on the reference portfolio."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from ems.bcp import BcpProblemError, bcp_problem_from_portfolio, load_outage, plan_bcp
from ems.bcp.bound import upper_bound_hours
from ems.config import load_portfolio, parse_portfolio, profile_values
from tests.bcp_fixtures import battery, problem, shelter, vehicle

TYPHOON = "config/outages/typhoon-72h.toml"


def test_one_shelter_one_vehicle_known_answer():
    # 2 kW for 12 h; the vehicle holds 20 kWh: 1 kWh to drive there, 1 kWh kept to drive back,
    # 2 kWh minimum: 16 kWh to give, which is exactly 8 hours.
    case = problem([shelter("s", 2.0, 12)], [vehicle("v", 20.0, ["s"])])
    plan = plan_bcp(case)
    assert plan.summary()["critical_energy_served_kwh"] == pytest.approx(16.0, abs=1e-4)
    assert plan.shelter_hours() == {"s": 8.0}
    assert plan.vehicles_assigned() == ["v"]
    (visit,) = plan.visits
    assert visit.delivered_kwh == pytest.approx(16.0, abs=1e-4)
    assert visit.lowest_soc_kwh == pytest.approx(3.0, abs=1e-4) == visit.drive_back_floor_kwh
    # the bound counts the energy of the drives there and back: 16 kWh above that floor is 8 hours
    assert upper_bound_hours(case) == {"s": 8.0}


def test_a_vehicle_never_plans_below_the_energy_to_drive_back():
    # no charger: 72 kWh of load against 31 kWh above the vehicles' floors
    case = problem(
        [shelter("s", 3.0, 24)],
        [vehicle("v1", 15.0, ["s"], trip_kwh=2.5), vehicle("v2", 30.0, ["s"], trip_kwh=2.5)],
        steps=24,
    )
    plan = plan_bcp(case)
    specs = {v.id: v for v in case.vehicles}
    assert plan.visits
    for visit in plan.visits:
        floor = specs[visit.vehicle_id].soc_min_kwh + specs[visit.vehicle_id].trip_back_kwh["s"]
        assert visit.lowest_soc_kwh >= floor - 1e-6
    # independent check on the energy at block starts: never below the minimum
    for v in specs:
        assert plan.vehicle_soc_kwh[v].min() >= specs[v].soc_min_kwh - 1e-6
    # energy is short here, so some vehicle ends a visit exactly at its floor
    assert min(v.lowest_soc_kwh - v.drive_back_floor_kwh for v in plan.visits) == pytest.approx(0.0, abs=1e-4)


def test_priorities_are_respected_when_energy_is_short():
    shelters = [shelter("first", 2.0, 12, priority=1), shelter("second", 2.0, 12, priority=2)]
    case = problem(shelters, [vehicle("v", 14.0, ["first", "second"])])  # 10 kWh to give, 24 kWh wanted per shelter
    served = plan_bcp(case).summary()["served_kwh_by_shelter"]
    assert served == pytest.approx({"first": 10.0, "second": 0.0}, abs=1e-4)
    swapped = problem(
        [dataclasses.replace(shelters[0], priority=2), dataclasses.replace(shelters[1], priority=1)], case.vehicles
    )
    served = plan_bcp(swapped).summary()["served_kwh_by_shelter"]
    assert served == pytest.approx({"first": 0.0, "second": 10.0}, abs=1e-4)


def test_a_shelter_with_no_v2h_point_is_never_assigned_a_vehicle():
    # the pointless shelter has priority 1 and nothing else: a vehicle would help it most, if it could plug in
    shelters = [shelter("no_point", 3.0, 12, priority=1, points=0), shelter("with_point", 1.0, 12, priority=2)]
    case = problem(
        shelters,
        [vehicle("v1", 30.0, ["no_point", "with_point"]), vehicle("v2", 30.0, ["no_point", "with_point"])],
        batteries=[battery("b", "no_point", 6.0)],
    )
    plan = plan_bcp(case)
    assert {v.shelter_id for v in plan.visits} == {"with_point"}
    assert not (plan.vehicle_location == "no_point").any().any()
    assert plan.vehicle_kw["no_point"].abs().max() == 0.0
    assert plan.summary()["served_kwh_by_shelter"]["no_point"] == pytest.approx(6.0, abs=1e-4)  # its battery only
    assert plan.shelter_hours()["no_point"] == 2.0


def test_shuttling_to_charge_delivers_more_than_a_battery():
    # 3 kW for 48 h (144 kWh) from two vehicles with 36 kWh usable each: only rotations make it
    case = problem(
        [shelter("s", 3.0, 48)], [vehicle("v1", 38.0, ["s"]), vehicle("v2", 38.0, ["s"])], steps=48, chargers=2
    )
    plan = plan_bcp(case)
    assert plan.shelter_hours() == {"s": 48.0}
    multiples = plan.delivered_per_usable_battery()
    assert sum(plan.vehicle_delivered_kwh.values()) == pytest.approx(144.0, abs=1e-3)
    assert max(multiples.values()) > 1.0
    assert len(plan.visits) >= 3


def test_inconsistent_input_is_rejected_naming_what_is_wrong():
    case = problem([shelter("s", 2.0, 12)], [vehicle("v", 20.0, ["elsewhere"])])
    with pytest.raises(BcpProblemError, match="vehicle v: no trip energy to shelters s"):
        plan_bcp(case)


@pytest.fixture(scope="module")
def reference():
    portfolio = load_portfolio("config/arao.toml")
    profiles = {name: profile_values(p, "config/arao.toml") for name, p in portfolio.profiles.items()}
    return portfolio, profiles


@pytest.fixture(scope="module")
def typhoon_plan(reference):
    portfolio, profiles = reference
    return plan_bcp(bcp_problem_from_portfolio(portfolio, load_outage(TYPHOON), profiles))


def test_reference_typhoon_plan_balances_every_shelter_bus(typhoon_plan):
    plan = typhoon_plan
    supply = plan.pv_kw + plan.battery_kw + plan.vehicle_kw
    assert np.allclose(supply.to_numpy(), plan.served_kw.to_numpy(), atol=1e-5)
    assert (plan.served_kw <= plan.demand_kw + 1e-6).all().all()
    summary = plan.summary()
    for key in (
        "shelter_hours",
        "critical_energy_served_kwh",
        "critical_energy_demand_kwh",
        "served_share",
        "vehicles_assigned",
        "vehicle_km",
        "upper_bound_hours",
    ):
        assert key in summary
    assert set(summary["shelter_hours"]) == {"north_school_gym", "central_community_hall", "south_school_gym"}
    for s, hours in summary["shelter_hours"].items():
        assert 0 <= hours <= summary["upper_bound_hours"][s] <= 72
    # vehicles that may not discharge stay in the ride service
    assert not {"taxi-11", "taxi-12"} & set(summary["vehicles_assigned"])


def test_reference_plan_never_exceeds_v2h_points(typhoon_plan, reference):
    portfolio, _ = reference
    points = {s.id: len(s.v2h_points) for s in portfolio.shelters}
    for s, count in points.items():
        assert (typhoon_plan.vehicle_location == s).sum(axis=1).max() <= count


def test_removing_the_v2h_points_of_a_reference_shelter_keeps_vehicles_away(reference):
    import tomllib

    raw = tomllib.loads(open("config/arao.toml").read())
    for entry in raw["shelters"]:
        if entry["id"] == "central_community_hall":
            entry["v2h_points"] = []
    portfolio = parse_portfolio(raw, "config/arao.toml")
    _, profiles = reference
    outage = load_outage("start=2026-09-15T14:00+09:00; hours=24; sites=shelter_north,shelter_central,shelter_south")
    plan = plan_bcp(bcp_problem_from_portfolio(portfolio, outage, profiles))
    assert "central_community_hall" not in {v.shelter_id for v in plan.visits}
    assert plan.shelter_hours()["central_community_hall"] == 0.0  # no battery, no PV, no point
    assert plan.shelter_hours()["north_school_gym"] == 24.0


def test_without_the_fleet_shelters_fall_back_to_battery_and_pv(reference, typhoon_plan):
    portfolio, profiles = reference
    alone = plan_bcp(bcp_problem_from_portfolio(portfolio, load_outage(TYPHOON), profiles, include_fleet=False))
    assert alone.vehicles_assigned() == []
    with_fleet, without = typhoon_plan.summary(), alone.summary()
    assert without["critical_energy_served_kwh"] < with_fleet["critical_energy_served_kwh"]
    for s in with_fleet["shelter_hours"]:
        assert without["shelter_hours"][s] <= with_fleet["shelter_hours"][s]
        assert without["shelter_hours"][s] <= without["upper_bound_hours"][s]
