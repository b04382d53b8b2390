"""The BCP upper bound binds on energy, and the depot's import limit binds the plan's recharging."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from ems.bcp import bcp_problem_from_portfolio, load_outage, plan_bcp
from ems.bcp.bound import joint_upper_bound_hours, upper_bound_hours
from ems.bcp.problem import ChargingSiteSpec
from ems.config import load_portfolio, profile_values
from tests.bcp_fixtures import problem, shelter, vehicle


def _with_depot(case, chargers: int, headroom_kw: float | None):
    headroom = None if headroom_kw is None else np.full(case.steps, headroom_kw)
    depot = ChargingSiteSpec(
        site="depot", chargers=chargers, charge_kw=6.0, efficiency=1.0, import_headroom_kw=headroom
    )
    return dataclasses.replace(case, charging_sites=(depot,))


def test_bound_binds_on_energy_by_hand():
    # 2 kW for 48 h; one vehicle with 24 kWh: floor 2 kWh + 1 kWh each way leaves 20 kWh for the
    # shelter; the depot's connection leaves 1 kW for its chargers. In t hours the shelter needs
    # 2 t kWh and can have 20 + t kWh: up 20 h, whatever the chargers' rating (12 kW here).
    case = _with_depot(
        problem([shelter("s", 2.0, 48)], [vehicle("v", 24.0, ["s"])], steps=48), chargers=2, headroom_kw=1.0
    )
    assert upper_bound_hours(case) == {"s": 20.0}
    plan = plan_bcp(case)
    assert plan.shelter_hours()["s"] <= 20.0
    assert plan.summary()["upper_bound_hours"]["s"] == 20.0


def test_joint_bound_shares_the_fleet_between_shelters():
    # no charger: two shelters of 2 kW and one vehicle with 20 kWh for them. Alone, either lasts
    # 20 / 2 = 10 h; together 20 / 4 = 5 h.
    shelters = [shelter("a", 2.0, 24), shelter("b", 2.0, 24)]
    case = problem(shelters, [vehicle("v", 24.0, ["a", "b"])], steps=24)
    assert upper_bound_hours(case) == {"a": 10.0, "b": 10.0}
    assert joint_upper_bound_hours(case) == 5.0
    plan = plan_bcp(case)
    assert plan.hours_all_up() <= 5.0 and plan.summary()["joint_upper_bound_hours"] == 5.0


def test_the_import_limit_restricts_recharging():
    # 4 kW for 24 h, two vehicles with 8 kWh each above their floor, two 6 kW chargers behind a
    # connection that leaves 1.5 kW: at most 16 + 1.5 x 24 = 52 kWh can reach the shelter.
    base = problem(
        [shelter("s", 4.0, 24, points=2)], [vehicle("v1", 12.0, ["s"]), vehicle("v2", 12.0, ["s"])], steps=24
    )
    limited = plan_bcp(_with_depot(base, chargers=2, headroom_kw=1.5))
    free = plan_bcp(_with_depot(base, chargers=2, headroom_kw=None))
    served_limited = float(limited.served_kw["s"].sum())
    assert served_limited <= 52.0 + 1e-6
    assert float(free.served_kw["s"].sum()) > served_limited + 10.0
    assert (limited.grid_charge_kwh["depot"] <= 1.5 * 4 + 1e-6).all()  # per 4 h block
    assert limited.summary()["recharged_kwh_by_site"]["depot"] <= 1.5 * 24 + 1e-6


@pytest.fixture(scope="module")
def arao():
    portfolio = load_portfolio("config/arao.toml")
    profiles = {name: profile_values(p, "config/arao.toml") for name, p in portfolio.profiles.items()}
    return portfolio, profiles


def test_depot_headroom_leaves_room_for_its_load_and_the_taxis_in_service(arao):
    portfolio, profiles = arao
    outage = load_outage("config/outages/typhoon-72h.toml")
    depot = bcp_problem_from_portfolio(portfolio, outage, profiles).charging_sites[0]
    assert depot.site == "taxi_depot"
    assert depot.chargers == 10  # taxi-11 and taxi-12 cannot discharge: they stay in service on their own chargers
    no_taxis = bcp_problem_from_portfolio(portfolio, outage, profiles, include_fleet=False).charging_sites[0]
    # 60 kW connection, 8 kW peak load, 30 kWp PV at 30 %: never above 60 + 9, never below 60 - 8
    assert (no_taxis.import_headroom_kw <= 60.0 + 0.3 * 30 + 1e-9).all() and (
        no_taxis.import_headroom_kw >= 52.0 - 1e-9
    ).all()
    # the two taxis in service recharge what they drive (18 and 15 kWh a day) while off duty
    taken_kwh = float((no_taxis.import_headroom_kw - depot.import_headroom_kw).sum())
    assert taken_kwh == pytest.approx(sum(d * 0.15 for d in (120.0, 100.0)) * 3 / 0.95, rel=0.05)


def test_joint_bound_is_never_above_a_single_shelters_bound(arao):
    portfolio, profiles = arao
    outage = load_outage(
        "start=2026-04-16T01:00+09:00; hours=24; sites=taxi_depot,shelter_north,shelter_central,shelter_south"
    )
    case = bcp_problem_from_portfolio(portfolio, outage, profiles)
    bounds, joint = upper_bound_hours(case), joint_upper_bound_hours(case)
    assert joint <= min(bounds.values())
    assert case.charging_sites == ()


def test_taxis_in_service_share_the_import_limit():
    # a taxi left in service drives 3 kWh every hour of its duties (half of each hour on the road)
    # and starts at its floor: it can drive only what it charges. The shelter's battery covers
    # the shelter. Behind 1 kW of headroom it charges, and drives, 8 kWh in 8 h; with the
    # chargers' full 6 kW, half of each hour parked, it keeps all 24 kWh of its duties.
    from ems.bcp.problem import StationaryBatterySpec

    taxi = dataclasses.replace(vehicle("taxi", 2.0, ["s"]), service_kwh=np.full(8, 3.0), service_away=np.full(8, 0.5))
    store = StationaryBatterySpec(
        id="b",
        shelter_id="s",
        soc_min_kwh=0.0,
        soc_max_kwh=10.0,
        initial_soc_kwh=10.0,
        charge_max_kw=5.0,
        discharge_max_kw=5.0,
        charge_efficiency=1.0,
        discharge_efficiency=1.0,
    )
    base = problem([shelter("s", 1.0, 8)], [taxi], [store], steps=8)
    limited, free = plan_bcp(_with_depot(base, 1, 1.0)), plan_bcp(_with_depot(base, 1, None))
    assert limited.shelter_hours() == free.shelter_hours() == {"s": 8.0}
    assert limited.vehicles_assigned() == [] == free.vehicles_assigned()
    assert limited.summary()["ride_service_kwh"] == pytest.approx(8.0, abs=1e-6)
    assert free.summary()["ride_service_kwh"] == pytest.approx(24.0, abs=1e-6)
    assert free.summary()["ride_service_duty_kwh"] == 24.0
