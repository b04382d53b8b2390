"""The operator's BCP switch reaches the running controller: reservations and held energy."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from drivers.api import Quality, Reading
from ems.bcp import Outage, load_outage
from ems.bcp.mode import BcpMode, BcpModeStore
from ems.cli.run import BcpSwitch
from ems.config import load_portfolio
from ems.control.controller import Controller
from ems.fleet import ChargingWindow, Reservation, ShelterCall, VehiclePlan
from ems.optimise import solve
from ems.store import Store

NOW = dt.datetime(2026, 9, 15, 12, 0, tzinfo=dt.timezone(dt.timedelta(hours=9)))


def test_activation_switches_the_controller_and_deactivation_returns_it(tmp_path):
    portfolio = load_portfolio("config/arao.toml")
    outage = load_outage("config/outages/typhoon-72h.toml")
    store = Store(tmp_path / "ems.sqlite")
    switch = BcpSwitch(portfolio, "config/arao.toml", tmp_path / "state")
    controller = Controller(
        portfolio, "config/arao.toml", None, store, lambda: NOW, inputs="profiles", horizon_hours=12, bcp=switch
    )
    start = pd.Timestamp(NOW)

    assert controller.check_bcp_mode() is False
    normal = controller._problem(start)
    assert controller.reservation.shelter_calls == ()

    BcpModeStore(tmp_path / "state").activate(outage, "config/arao.toml", "duty officer", NOW, "typhoon warning")
    assert controller.check_bcp_mode() is True
    calls = controller.reservation.shelter_calls
    assert calls and {c.shelter_id for c in calls} <= {s.id for s in portfolio.shelters}
    assert set(controller.reservation.keep_energy_kwh) == {c.vehicle_id for c in calls}
    held = controller._problem(start)
    reserve = {b.id: b.reserve_kwh for b in held.batteries}
    before = {b.id: b.reserve_kwh for b in normal.batteries}
    assert reserve["city_hall_bess"] > before["city_hall_bess"]  # city hall is in the outage: charge up and hold
    assert reserve["cultural_centre_bess"] == before["cultural_centre_bess"]  # keeps the grid: unchanged
    keep = {e.id: e.keep_energy_kwh for e in held.evs}
    assert all(keep[v] == controller.reservation.keep_energy_kwh[v] for v in controller.reservation.keep_energy_kwh)

    BcpModeStore(tmp_path / "state").deactivate("duty officer", NOW + dt.timedelta(hours=1), "all clear")
    assert controller.check_bcp_mode() is False
    assert controller.reservation.shelter_calls == ()
    assert {b.id: b.reserve_kwh for b in controller._problem(start).batteries} == before
    events = [row[2] for row in list(store.rows("events"))[1:] if row[1] == "bcp-mode"]
    assert len(events) == 2 and "BCP mode on (operator duty officer" in events[0] and "normal operation" in events[1]


def test_an_active_record_without_an_outage_is_recorded_and_the_mode_stays(tmp_path):
    """A hand-edited mode record that is active but names no outage: recorded, nothing switched."""
    from ems.bcp.mode import BcpMode

    class HandEdited:
        def current(self):
            return BcpMode(active=True, since=NOW, operator="someone", outage=None)

        def reservation(self, outage, soc_kwh, now):
            raise AssertionError("no BCP plan without an outage")

    portfolio = load_portfolio("config/arao.toml")
    store = Store(tmp_path / "ems.sqlite")
    controller = Controller(
        portfolio, "config/arao.toml", None, store, lambda: NOW, inputs="profiles", horizon_hours=12, bcp=HandEdited()
    )
    controller._follow_bcp_mode(NOW)
    assert controller.bcp_since is None and controller.bcp_sites == frozenset()
    events = [(row[1], row[2]) for row in list(store.rows("events"))[1:]]
    assert events == [
        (
            "bcp-mode-unreadable",
            f"BCP mode switch unreadable (ValueError: the BCP mode record since {NOW.isoformat()} "
            "names no outage); BCP mode stays off",
        )
    ]


class CalledToCentral:
    """The operator's switch, on since 14:00 for an outage at the three shelters; the BCP plan
    calls taxi-10 to the central community hall (no PV, no battery) from 14:00."""

    def __init__(self, since: dt.datetime):
        self.since = since

    def current(self) -> BcpMode:
        outage = Outage(start=self.since, duration_hours=8, sites=("shelter_north", "shelter_central", "shelter_south"))
        return BcpMode(active=True, since=self.since, operator="duty officer", outage=outage)

    def reservation(self, outage, soc_kwh, now) -> Reservation:
        call = ShelterCall(vehicle_id="taxi-10", shelter_id="central_community_hall", from_time=self.since)
        return Reservation(issued=now, keep_energy_kwh={"taxi-10": 30.0}, shelter_calls=(call,))


class DispatcherPlans:
    """The dispatcher's word: taxi-10 next charges at the depot from 18:00 (its shelter stop is a
    route stop, not a charging window)."""

    def __init__(self, at: dt.datetime):
        window = ChargingWindow(
            charger_id="depot_c10",
            plug_in=at.replace(hour=18, minute=0),
            plug_out=at + dt.timedelta(hours=18),
            departure_energy_kwh=38.0,
        )
        self.plans = {"taxi-10": VehiclePlan(vehicle_id="taxi-10", issued=at, windows=(window,))}
        self.states: dict = {}

    def rejections_since(self, seen: int) -> tuple[int, list]:
        return seen, []

    def publish_reservation(self, reservation) -> None:
        pass


def test_a_called_taxi_plugged_in_at_its_shelter_mid_step_feeds_it_in_that_step(tmp_path):
    """The set-points a re-plan writes are its first step's, the step in progress. A taxi that
    plugged in at 14:13 is planned plugged from 14:00, so the 14:15 re-plan discharges it into
    the islanded hall now, not from 14:30 (and, re-planned every few minutes, never)."""
    switched = dt.datetime(2026, 4, 15, 14, 0, tzinfo=dt.timezone(dt.timedelta(hours=9)))
    now = switched + dt.timedelta(minutes=15)
    portfolio = load_portfolio("config/arao.toml")
    controller = Controller(
        portfolio,
        "config/arao.toml",
        None,
        Store(tmp_path / "ems.sqlite"),
        lambda: now,
        inputs="profiles",
        horizon_hours=12,
        fleet=DispatcherPlans(now),
        bcp=CalledToCentral(switched),
    )
    plugged_at = switched + dt.timedelta(minutes=13)
    controller.state.update(
        [
            Reading(
                device="shelter_central_v2h1",
                time=plugged_at,
                quality=Quality.GOOD,
                power_kw=0.0,
                soc_fraction=0.85,
                plugged=True,
                vehicle_id="taxi-10",
            )
        ],
        now,
    )
    assert controller.check_bcp_mode() is True
    assert controller.shelter_arrival_unplanned() is True  # the scheduler re-plans at once
    start = pd.Timestamp(now).floor("30min")
    problem = controller._problem(start)
    assert controller.shelter_arrival_unplanned() is False  # this plan has it
    taxi = next(e for e in problem.evs if e.id == "taxi-10")
    assert taxi.keep_energy_kwh == 0.0  # plugged in at its shelter after its call: its energy is the shelter's
    assert taxi.charger_site[0] == "shelter_central" and taxi.discharge_max_kw[0] == pytest.approx(6.0)
    schedule = solve(problem)
    # the hall, islanded with no PV or battery, carries its critical load: the taxi serves all of it now
    critical = next(ld for ld in problem.loads if ld.site == "shelter_central")
    assert critical.demand_kw[0] > 0.5
    assert schedule.power_kw["taxi-10"].iloc[0] == pytest.approx(critical.demand_kw[0], abs=1e-3)
    assert schedule.power_kw[critical.id].iloc[0] == pytest.approx(-critical.demand_kw[0], abs=1e-3)


def test_an_islanded_shelter_plans_its_critical_load_and_other_sites_keep_theirs(tmp_path):
    """In the outage a shelter's site carries the shelter's critical load, as the drill plans it
    (critical_load_kw x its profile), not the whole site's everyday load; sites that keep the grid
    and islanded sites without a shelter plan their load as before."""
    switched = dt.datetime(2026, 4, 15, 14, 0, tzinfo=dt.timezone(dt.timedelta(hours=9)))
    portfolio = load_portfolio("config/arao.toml")
    outage = Outage(start=switched, duration_hours=8, sites=("shelter_central", "city_hall"))
    store = Store(tmp_path / "ems.sqlite")
    controller = Controller(
        portfolio,
        "config/arao.toml",
        None,
        store,
        lambda: switched + dt.timedelta(minutes=5),
        inputs="profiles",
        horizon_hours=12,
        bcp=BcpSwitch(portfolio, "config/arao.toml", tmp_path / "state"),
    )
    start = pd.Timestamp(switched)
    normal = {ld.id: ld for ld in controller._problem(start).loads}
    BcpModeStore(tmp_path / "state").activate(outage, "config/arao.toml", "duty officer", switched, "drill")
    assert controller.check_bcp_mode() is True
    loads = {ld.id: ld for ld in controller._problem(start).loads}

    hall = next(s for s in portfolio.shelters if s.site == "shelter_central")
    critical = loads.pop(f"{hall.id}_critical")
    assert critical.kind == "shelter_load" and critical.site == "shelter_central"
    assert 0 < critical.demand_kw.max() <= hall.critical_load_kw + 1e-9
    assert (
        critical.demand_kw.sum() < normal["shelter_central_load"].demand_kw.sum() / 3
    )  # the hall's everyday load is far larger
    assert "shelter_central_load" not in loads
    assert set(loads) == set(normal) - {"shelter_central_load"}
    for load_id, load in loads.items():  # city hall is islanded but no shelter: its load stays
        assert (load.demand_kw == normal[load_id].demand_kw).all(), load_id
