"""The energy manager plans on the live fleet: the dispatcher's published plans and states,
reconciled with where each vehicle really is (a late, unplugged or off-plan vehicle is planned
around at the next cycle; a stale state's SoC is not used)."""

from __future__ import annotations

import datetime as dt

from drivers.mqtt.link import BrokerSettings, MqttLink
from ems.config import load_portfolio
from ems.control.fleetbus import FleetBus
from ems.fleet import ChargingWindow, Position, VehiclePlan, VehicleState, VehicleStatus
from ems.fleet.bounds import FleetBounds
from ems.fleet.reconcile import reconcile_fleet
from tests.dispatch_live_fixtures import CONFIG, START, LiveRun, persistent_broker, stop, wait_until

NOW = START + dt.timedelta(hours=1)
STEP = dt.timedelta(minutes=15)
AGE = dt.timedelta(minutes=15)


def _plan(charger="depot_c01", plug_in=NOW - dt.timedelta(minutes=10), hours=2.0) -> VehiclePlan:
    window = ChargingWindow(
        charger_id=charger, plug_in=plug_in, plug_out=plug_in + dt.timedelta(hours=hours), departure_energy_kwh=30.0
    )
    return VehiclePlan(vehicle_id="taxi-01", issued=NOW - dt.timedelta(minutes=20), windows=(window,))


def _state(status=VehicleStatus.ON_TRIP, charger=None, at=NOW, soc=21.0) -> VehicleState:
    return VehicleState(
        vehicle_id="taxi-01",
        time=at,
        position=Position(lat=32.99, lon=130.44),
        status=status,
        soc_kwh=soc,
        charger_id=charger,
    )


def test_a_vehicle_the_dispatcher_reports_on_the_road_is_late_for_its_window():
    plans, socs = reconcile_fleet({"taxi-01": _plan()}, {"taxi-01": _state()}, NOW, {}, STEP, AGE)
    assert plans["taxi-01"].windows[0].plug_in == NOW + STEP  # expected one step later, not now
    assert socs == {"taxi-01": 21.0}


def test_a_vehicle_charging_elsewhere_than_its_plan_is_planned_where_it_is():
    plans, _socs = reconcile_fleet(
        {"taxi-01": _plan()}, {"taxi-01": _state(VehicleStatus.CHARGING, "depot_c05")}, NOW, {}, STEP, AGE
    )
    assert plans["taxi-01"].windows[0].charger_id == "depot_c05"


def test_a_vehicle_back_early_is_planned_plugged_from_now():
    later = _plan(plug_in=NOW + dt.timedelta(hours=3))
    plans, _socs = reconcile_fleet(
        {"taxi-01": later}, {"taxi-01": _state(VehicleStatus.CHARGING, "depot_c01")}, NOW, {}, STEP, AGE
    )
    assert plans["taxi-01"].windows[0].plug_in == NOW


def test_a_vehicle_plugged_in_now_counts_as_plugged_from_the_step_in_progress():
    # a plan counts a vehicle plugged only for whole steps: from NOW (mid-step) it would sit idle
    # through the step in progress, the one whose set-points the controller writes
    step_start = NOW - dt.timedelta(minutes=7)
    plugged = {"taxi-01": "depot_c01"}
    back_early, _socs = reconcile_fleet(
        {"taxi-01": _plan(plug_in=NOW + dt.timedelta(hours=3))}, {}, NOW, plugged, STEP, AGE, step_start=step_start
    )
    assert back_early["taxi-01"].windows[0].plug_in == step_start
    just_in, _socs = reconcile_fleet(
        {"taxi-01": _plan(plug_in=NOW - dt.timedelta(minutes=2))}, {}, NOW, plugged, STEP, AGE, step_start=step_start
    )
    assert just_in["taxi-01"].windows[0].plug_in == step_start
    long_in, _socs = reconcile_fleet(
        {"taxi-01": _plan(plug_in=NOW - dt.timedelta(hours=1))}, {}, NOW, plugged, STEP, AGE, step_start=step_start
    )
    assert long_in["taxi-01"].windows[0].plug_in == NOW - dt.timedelta(hours=1)  # already plugged before: unchanged
    late, _socs = reconcile_fleet(
        {"taxi-01": _plan(plug_in=NOW - dt.timedelta(minutes=2))},
        {},
        NOW,
        {"taxi-01": None},
        STEP,
        AGE,
        step_start=step_start,
    )
    assert late["taxi-01"].windows[0].plug_in == NOW + STEP  # not plugged in: late, as before


def test_the_charger_wins_over_the_dispatcher_and_a_stale_state_is_not_used():
    # the charger says unplugged, the dispatcher says charging: the vehicle is late
    plans, _socs = reconcile_fleet(
        {"taxi-01": _plan()},
        {"taxi-01": _state(VehicleStatus.CHARGING, "depot_c01")},
        NOW,
        {"taxi-01": None},
        STEP,
        AGE,
    )
    assert plans["taxi-01"].windows[0].plug_in == NOW + STEP
    stale = _state(at=NOW - dt.timedelta(hours=1), soc=5.0)
    plans, socs = reconcile_fleet({"taxi-01": _plan()}, {"taxi-01": stale}, NOW, {}, STEP, AGE)
    assert plans["taxi-01"] == _plan() and socs == {}  # nothing fresh is known: the plan stands, no old SoC


def test_the_energy_manager_reads_the_live_dispatchers_fleet_and_plans_around_an_unplugged_taxi(tmp_path):
    portfolio = load_portfolio(CONFIG)
    broker = persistent_broker(tmp_path)
    live = LiveRun(broker, tmp_path, speed=60.0, epoch=0.0)
    link = MqttLink(
        BrokerSettings(
            host=broker.host,
            port=broker.port,
            client_id="test-ems",
            username="ems-controller",
            password="controller-example-only",
        )
    )
    bus = FleetBus(
        link, {v.id for v in portfolio.vehicles}, live.simulated_now, bounds=FleetBounds.from_portfolio(portfolio)
    )
    link.start()
    serve = live.start_serving()
    try:
        live.wait_simulated(START + dt.timedelta(minutes=2))
        # every taxi starts plugged at its home charger: the dispatcher's state and plan say so
        assert wait_until(
            lambda: len(bus.states) == len(portfolio.vehicles) and len(bus.plans) == len(portfolio.vehicles), 30
        ), bus.rejected
        states, plans = bus.states, bus.plans
    finally:
        assert stop(serve) == 0
        link.stop()
        broker.stop()
    assert not bus.rejected  # every published state and plan (routes included) passed the energy manager's checks
    now = max(s.time for s in states.values())
    charging = next(
        v for v, s in states.items() if s.status is VehicleStatus.CHARGING and plans[v].windows[0].plug_in <= now
    )
    window = plans[charging].windows[0]
    assert window.charger_id == states[charging].charger_id
    # as the dispatcher says: plugged now, its SoC from the dispatcher
    kept, socs = reconcile_fleet(plans, states, now, {}, STEP, AGE)
    assert kept[charging].windows[0] == window and socs[charging] == states[charging].soc_kwh
    # its charger reports it unplugged (the driver took it away): the next cycle plans it late
    late, _socs = reconcile_fleet(plans, states, now, {charging: None}, STEP, AGE)
    assert late[charging].windows[0].plug_in == now + STEP or late[charging].windows[0].plug_out == now
