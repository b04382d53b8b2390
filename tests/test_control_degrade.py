"""Degrade, never stop: a missing charger or a bad fleet plan leaves one asset out, never the plan.

Against the digital twin over a real Mosquitto and real Modbus TCP: the controller keeps
planning and writing every other asset, records why, and ``ems status`` shows it.
"""

from __future__ import annotations

import asyncio
import datetime as dt

from ems.cli.status import controller_status
from ems.control.fleetbus import FleetBus
from ems.fleet import ChargingWindow, VehiclePlan
from ems.fleet.bounds import FleetBounds
from ems.fleet.publisher import plan_topic
from tests.control_fixtures import START, SteppedRun, mqtt_link, wait_until

ON_DUTY = START + dt.timedelta(hours=2)  # 08:00: taxi-01 is out on its 07:00-12:00 shift


def _events(store) -> list[tuple]:
    return list(store.rows("events"))[1:]


def _battery_writes(store, since_ms: int) -> set[str]:
    rows = list(store.rows("setpoints"))[1:]
    return {
        device
        for t, device, _r, written, _s, _why in rows
        if t >= since_ms and written is not None and "bess" in device
    }


def test_an_offline_charger_while_its_taxi_is_on_duty_leaves_only_that_charger_out(twin_factory, mosquitto, tmp_path):
    run = SteppedRun(twin_factory, mosquitto, tmp_path / "ems.sqlite", start=ON_DUTY)
    operator = mqtt_link(mosquitto, "test-operator")

    async def scenario():
        controller = await run.open_controller()
        operator.publish("arao/depot_c01/availability", "offline", retain=True)
        assert wait_until(lambda: run.devices.drivers["depot_c01"]._availability == "offline")
        before_ms = int(run.clock.now().timestamp() * 1000)
        figures = await controller.cycle()
        report = controller_status(run.store, run.served, run.clock.now())
        await run.advance(1800)
        second = await controller.replan()
        writes = _battery_writes(run.store, before_ms)
        events = _events(run.store)
        await run.close_controller()
        return controller, figures, report, second, writes, events

    try:
        controller, figures, report, second, writes, events = asyncio.run(scenario())
    finally:
        operator.publish("arao/depot_c01/availability", "", retain=True)
        operator.stop()
    assert figures.plan_status in ("optimal", "time-limit", "fallback") and controller.health.failing_since is None
    assert second is not None  # the next re-plan works too
    assert run.store_path.exists() and controller.plan_power_kw is not None
    assert "taxi-02" in controller.plan_power_kw.columns  # the other vehicles are still planned
    assert writes == {b.id for b in run.served.batteries}  # every battery got its set-point
    inputs = [e for e in events if e[1] == "plan-input"]
    assert (
        len(inputs) == 1
        and "taxi-01" in inputs[0][2]
        and "depot_c01" in inputs[0][2]
        and "not answering" in inputs[0][2]
    )
    missing = {d["device"]: d for d in report["devices"]}
    assert missing["depot_c01"]["state"] == "missing"
    assert "depot_c01" in report["replan"]["last_degraded"]["message"]
    assert report["last_plan"]["status"] == figures.plan_status and report["replan"]["failures_since_last_plan"] == 0


def test_a_retained_plan_naming_an_unknown_charger_is_rejected_and_never_kept(twin_factory, mosquitto, tmp_path):
    run = SteppedRun(twin_factory, mosquitto, tmp_path / "ems.sqlite", start=ON_DUTY)
    dispatcher = mqtt_link(mosquitto, "test-dispatcher")
    now = ON_DUTY

    def plan(charger: str, energy_kwh: float = 30.0) -> str:
        window = ChargingWindow(
            charger_id=charger,
            plug_in=now + dt.timedelta(hours=4),
            plug_out=now + dt.timedelta(hours=5),
            departure_energy_kwh=energy_kwh,
        )
        return VehiclePlan(vehicle_id="taxi-01", issued=now, windows=(window,)).model_dump_json()

    async def scenario():
        controller = await run.open_controller()
        bus = FleetBus(
            run.devices.link,
            {v.id for v in run.served.vehicles},
            run.clock.now,
            bounds=FleetBounds.from_portfolio(run.served),
        )
        controller.fleet = bus
        await asyncio.sleep(0.2)
        dispatcher.publish(plan_topic("taxi-01"), plan("depot_c05"), retain=True)
        assert wait_until(lambda: "taxi-01" in bus.plans)
        good = bus.plans["taxi-01"]
        dispatcher.publish(plan_topic("taxi-01"), plan("depot_c99"), retain=True)
        assert wait_until(lambda: len(bus.rejected) >= 1)
        kept_after_bad = bus.plans["taxi-01"]
        figures = await controller.cycle()
        dispatcher.publish(plan_topic("taxi-01"), plan("depot_c05", energy_kwh=400.0), retain=True)
        assert wait_until(lambda: len(bus.rejected) >= 2)
        dispatcher.publish(plan_topic("taxi-01"), "", retain=True)  # the dispatcher clears its message
        assert wait_until(lambda: "taxi-01" not in bus.plans)
        second = await controller.replan()
        events = _events(run.store)
        report = controller_status(run.store, run.served, run.clock.now())
        await run.close_controller()
        return good, kept_after_bad, list(bus.rejected), figures, second, events, report

    try:
        good, kept, rejected, figures, second, events, report = asyncio.run(scenario())
    finally:
        dispatcher.stop()
    assert kept == good and kept.windows[0].charger_id == "depot_c05"  # the bad one never became "last good"
    assert rejected[0] == ("fleet/taxi-01/plan", "field windows.0.charger_id: unknown charger 'depot_c99'")
    assert rejected[1][1].startswith(
        "field windows.0.departure_energy_kwh: 400.0 kWh exceeds the vehicle's battery of 40.0 kWh"
    )
    assert figures.plan_status != "failed" and second is not None
    fleet_events = [e for e in events if e[1] == "fleet-rejected"]
    assert len(fleet_events) == 2 and "depot_c99" in fleet_events[0][2] and "fleet/taxi-01/plan" in fleet_events[0][2]
    assert report["last_plan"] is not None and report["replan"]["failures_since_last_plan"] == 0


def test_an_unreadable_bcp_switch_keeps_planning_in_the_known_mode(twin_factory, mosquitto, tmp_path):
    from ems.cli.run import BcpSwitch

    run = SteppedRun(twin_factory, mosquitto, tmp_path / "ems.sqlite", start=ON_DUTY)
    state_dir = tmp_path / "bcp"
    state_dir.mkdir()
    (state_dir / "bcp_mode.json").write_text('{"active": tru')  # a half-written record

    async def scenario():
        controller = await run.open_controller()
        controller.bcp = BcpSwitch(run.served, "config/arao.toml", state_dir)
        first = await controller.cycle()
        await run.advance(600)
        second = await controller.replan()
        events, plans = _events(run.store), run.store.count("plans")
        await run.close_controller()
        return controller, first, second, events, plans

    controller, first, second, events, plans = asyncio.run(scenario())
    assert first.plan_status != "failed" and second is not None and controller.bcp_since is None
    unreadable = [e for e in events if e[1] == "bcp-mode-unreadable"]
    assert len(unreadable) == 1 and "bcp_mode.json" in unreadable[0][2] and "stays off" in unreadable[0][2]
    assert plans == 2
