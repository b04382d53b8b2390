"""Fleet messages are checked against physics where they arrive, over a real Mosquitto."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from ems.config import load_portfolio
from ems.control.fleetbus import FleetBus
from ems.fleet.bounds import FleetBounds
from ems.fleet.publisher import state_topic
from tests.control_fixtures import mqtt_link, wait_until
from tests.fleet_fixtures import NOW, vehicle_state


@pytest.fixture
def bounded(mosquitto):
    portfolio = load_portfolio("config/arao.toml")
    ems_link, dispatcher_link = mqtt_link(mosquitto, "ems-controller"), mqtt_link(mosquitto, "dispatcher")
    bus = FleetBus(
        ems_link, {v.id for v in portfolio.vehicles}, lambda: NOW, bounds=FleetBounds.from_portfolio(portfolio)
    )
    yield bus, dispatcher_link
    ems_link.stop()
    dispatcher_link.stop()


@pytest.mark.parametrize(
    "soc_text, reason",
    [
        ("1e309", "field soc_kwh: Input should be a finite number"),
        ("99999", "field soc_kwh: 99999.0 kWh exceeds the vehicle's battery of 40.0 kWh"),
        ("-1", "field soc_kwh: Input should be greater than or equal to 0"),
    ],
)
def test_an_impossible_state_of_charge_is_rejected_with_topic_and_field(bounded, soc_text, reason):
    bus, dispatcher = bounded
    good = vehicle_state(soc=21.0)
    dispatcher.publish(state_topic("taxi-01"), good.model_dump_json(), retain=True)
    assert wait_until(lambda: "taxi-01" in bus.states)
    body = json.loads(vehicle_state(soc=1.0, at=NOW + dt.timedelta(seconds=5)).model_dump_json())
    text = json.dumps(body).replace('"soc_kwh": 1.0', f'"soc_kwh": {soc_text}')
    dispatcher.publish(state_topic("taxi-01"), text, retain=True)
    assert wait_until(lambda: bus.rejected_total >= 1)
    assert bus.rejected[-1] == ("fleet/taxi-01/state", reason)
    assert bus.states["taxi-01"] == good  # the last good state stays


def test_a_state_naming_an_unknown_charger_is_rejected(bounded):
    bus, dispatcher = bounded
    body = vehicle_state(soc=10.0).model_copy(update={"charger_id": "depot_c99"}).model_dump_json()
    dispatcher.publish(state_topic("taxi-01"), body, retain=True)
    assert wait_until(lambda: bus.rejected_total >= 1)
    assert bus.rejected[-1] == ("fleet/taxi-01/state", "field charger_id: unknown charger 'depot_c99'")
    assert "taxi-01" not in bus.states


def test_charger_telemetry_beyond_its_rating_is_out_of_range_naming_device_and_field(mosquitto):
    import asyncio

    from drivers.api import Quality
    from drivers.mqtt.devices import MqttCharger, MqttDeviceSettings

    ems_link, device_link = mqtt_link(mosquitto, "ems-controller"), mqtt_link(mosquitto, "depot-c01")
    settings = MqttDeviceSettings(
        name="depot_c01", topic_prefix="arao/depot_c01", timeout_s=1.0, bidirectional=True, rated_power_kw=6.0
    )
    charger = MqttCharger(settings, ems_link)

    async def read(power_kw: float):
        body = json.dumps(
            {"time": NOW.isoformat(), "power_kw": power_kw, "plugged": True, "vehicle_id": "taxi-01", "soc": 0.5}
        )
        device_link.publish("arao/depot_c01/telemetry", body, retain=True)
        await asyncio.sleep(0.3)
        return await charger.read()

    async def scenario():
        await charger.connect()
        await asyncio.sleep(0.2)
        return await read(-5.5), await read(-60.0)

    try:
        within, beyond = asyncio.run(scenario())
    finally:
        ems_link.stop()
        device_link.stop()
    assert within.quality is Quality.GOOD and within.power_kw == -5.5
    assert beyond.quality is Quality.OUT_OF_RANGE
    assert beyond.error == "depot_c01: field power_kw: -60.0 kW beyond the rating of 6.0 kW"
