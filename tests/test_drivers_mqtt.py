"""MQTT drivers against a private Mosquitto: set-points, broker restarts, bad payloads."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import shutil
import subprocess
import threading
import time

import paho.mqtt.client as mqtt
import pytest
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from paho.mqtt.enums import CallbackAPIVersion

from drivers.api import DeviceUnavailable, NotWritable, Quality
from drivers.mqtt.devices import MqttCharger
from drivers.mqtt.payload import MAX_PAYLOAD_BYTES, Command, PayloadError, Telemetry, parse
from tests.mqtt_fixtures import UTC, Rig, run_rig


@pytest.mark.parametrize("protocol", ["3.1.1", "5"])
def test_setpoint_round_trip(mosquitto, protocol):
    async def scenario(rig: Rig):
        ack = await rig.driver.write(-4.5)
        await asyncio.sleep(0.2)
        return ack, await rig.driver.read(), await rig.vehicle_driver.read()

    ack, reading, vehicle = run_rig(mosquitto, scenario, protocol=protocol)
    assert ack.applied_kw == pytest.approx(-4.5)
    assert reading.quality is Quality.GOOD
    assert reading.power_kw == pytest.approx(-4.5) and reading.setpoint_kw == pytest.approx(-4.5)
    assert reading.plugged is True and reading.vehicle_id == "taxi-01" and reading.soc_fraction == pytest.approx(0.5)
    assert vehicle.soc_fraction == pytest.approx(0.5) and vehicle.plugged is True


def test_device_limits_what_it_applies_and_vehicle_is_not_writable(mosquitto):
    async def scenario(rig: Rig):
        rig.vehicle.v2g_allowed = False
        ack = await rig.driver.write(5.0)
        with pytest.raises(NotWritable):
            await rig.vehicle_driver.write(1.0)
        return ack

    assert run_rig(mosquitto, scenario).applied_kw == 0.0


def test_broker_restart_loses_no_acknowledgement(mosquitto):
    async def scenario(rig: Rig):
        restarter = threading.Thread(target=lambda: (time.sleep(0.3), mosquitto.restart(down_s=0.7)))
        restarter.start()
        acks = []
        for i in range(8):
            acks.append(await rig.driver.write(-float(i % 6)))
            await asyncio.sleep(0.1)
        restarter.join()
        after = await rig.driver.write(-3.0)
        await asyncio.sleep(0.2)
        return acks + [after], await rig.driver.read(), rig

    acks, reading, rig = run_rig(mosquitto, scenario)
    assert [a.applied_kw for a in acks] == [-float(i % 6) for i in range(8)] + [-3.0]
    assert rig.device.commands_applied == 9  # each command applied once, even if sent twice
    assert rig.link.connections >= 2 and rig.device.link.connections >= 2  # both reconnected
    assert reading.quality is Quality.GOOD and reading.power_kw == pytest.approx(-3.0)


def test_write_times_out_when_nobody_acknowledges(mosquitto):
    async def scenario(rig: Rig):
        rig.device.stop()
        started = time.monotonic()
        driver = MqttCharger(MqttCharger.Settings(name="c1", topic_prefix="test/c1", timeout_s=0.6), rig.link)
        with pytest.raises(DeviceUnavailable, match="no acknowledgement on test/c1/ack"):
            await driver.write(-1.0)
        elapsed = time.monotonic() - started
        await asyncio.sleep(0.2)
        return elapsed, await rig.driver.read()

    elapsed, reading = run_rig(mosquitto, scenario)
    assert 0.6 <= elapsed < 1.0
    assert reading.quality is Quality.MISSING and "offline" in reading.error  # the device said goodbye


def publish_raw(broker, topic: str, payloads: list[bytes]) -> None:
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="raw-publisher")
    client.connect(broker.host, broker.port)
    client.loop_start()
    for payload in payloads:
        client.publish(topic, payload, qos=1).wait_for_publish(2)
    client.disconnect()
    client.loop_stop()


BAD_TELEMETRY = [
    (b"{not json", "(payload)"),
    (b"[1, 2, 3]", "(payload)"),
    (b'{"time": "2026-04-15T12:00:00+09:00", "power_kw": "5"}', "power_kw"),
    (b'{"time": "2026-04-15T12:00:00+09:00", "soc": 1.5}', "soc"),
    (b'{"time": "2026-04-15T12:00:00+09:00", "plugged": "yes"}', "plugged"),
    (b'{"time": "2026-04-15T12:00:00"}', "time"),
    (b'{"power_kw": 1.0}', "time"),
    (
        json.dumps({"time": "2026-04-15T12:00:00+09:00", "vehicle_id": "x" * (MAX_PAYLOAD_BYTES + 10)}).encode(),
        "(payload)",
    ),
]


def test_bad_payloads_are_rejected_with_topic_and_field_and_the_driver_keeps_running(mosquitto, caplog):
    caplog.set_level(logging.WARNING)

    async def scenario(rig: Rig):
        await asyncio.to_thread(publish_raw, mosquitto, "test/c1/telemetry", [p for p, _ in BAD_TELEMETRY])
        await asyncio.to_thread(
            publish_raw, mosquitto, "test/c1/command", [b'{"id": "x", "power_kw": "big"}', b"\xff\xfe"]
        )
        await asyncio.sleep(0.3)
        ack = await rig.driver.write(-2.0)  # still commands and reads after all that
        await asyncio.sleep(0.2)
        return ack, await rig.driver.read(), rig

    ack, reading, rig = run_rig(mosquitto, scenario)
    fields = [e.field for e in rig.driver.rejected]
    assert fields == [f for _, f in BAD_TELEMETRY]
    assert [e.field for e in rig.device.rejected] == ["power_kw", "(payload)"]
    messages = [r.getMessage() for r in caplog.records]
    for _, field in BAD_TELEMETRY:
        assert any("'test/c1/telemetry'" in m and f"field {field!r}" in m for m in messages), field
    assert any("'test/c1/command'" in m and "field 'power_kw'" in m for m in messages)
    assert ack.applied_kw == pytest.approx(-2.0)
    assert reading.quality is Quality.GOOD and reading.power_kw == pytest.approx(-2.0)


# --- the parser, property-tested ------------------------------------------------------------

VALID = st.fixed_dictionaries(
    {"time": st.datetimes(timezones=st.just(UTC)).map(lambda t: t.isoformat())},
    optional={
        "power_kw": st.floats(-1000, 1000, allow_nan=False),
        "soc": st.floats(0, 1),
        "plugged": st.booleans(),
        "vehicle_id": st.text(st.characters(codec="utf-8"), max_size=20),
        "setpoint_kw": st.integers(-1000, 1000),
    },
)
WRONG_TYPES = st.one_of(
    st.text(max_size=5),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
    st.booleans(),
)


@hsettings(max_examples=80, deadline=None)
@given(payload=st.binary(max_size=300))
def test_parser_never_raises_anything_but_payload_error(payload):
    try:
        parse("t/telemetry", payload, Telemetry)
    except PayloadError as error:
        assert error.topic == "t/telemetry" and error.field


@hsettings(max_examples=80, deadline=None)
@given(data=VALID)
def test_parser_accepts_every_valid_payload(data):
    telemetry = parse("t/telemetry", json.dumps(data).encode(), Telemetry)
    assert telemetry.time == dt.datetime.fromisoformat(data["time"])
    for key in ("power_kw", "soc", "plugged", "vehicle_id", "setpoint_kw"):
        if key in data:
            assert getattr(telemetry, key) == data[key]


@hsettings(max_examples=80, deadline=None)
@given(data=VALID, key=st.sampled_from(["power_kw", "soc", "setpoint_kw"]), value=WRONG_TYPES)
def test_parser_names_the_wrong_typed_field(data, key, value):
    data = {**data, key: value}
    with pytest.raises(PayloadError) as error:
        parse("t/telemetry", json.dumps(data).encode(), Telemetry)
    assert error.value.field == key


@hsettings(max_examples=50, deadline=None)
@given(power=st.floats(allow_nan=False, allow_infinity=False).filter(lambda x: abs(x) > 1000))
def test_command_out_of_range_is_rejected(power):
    with pytest.raises(PayloadError) as error:
        parse("t/command", Command(id="a", power_kw=0).model_dump_json().replace("0.0", repr(power)).encode(), Command)
    assert error.value.field == "power_kw"


# --- an independent reader: mosquitto_sub -----------------------------------------------------


@pytest.mark.skipif(shutil.which("mosquitto_sub") is None, reason="mosquitto-clients missing (.ci/run installs it)")
def test_twin_topics_are_readable_with_mosquitto_sub(mosquitto, twin_factory):
    twin = twin_factory(broker=mosquitto)
    twin.twin.mqtt_devices["depot_c01"].publish()
    out = subprocess.run(
        [
            "mosquitto_sub",
            "-h",
            mosquitto.host,
            "-p",
            str(mosquitto.port),
            "-t",
            "arao/depot_c01/telemetry",
            "-t",
            "arao/depot_c01/availability",
            "-v",
            "-C",
            "2",
            "-W",
            "5",
        ],
        capture_output=True,
        text=True,
        timeout=10,
        check=True,
    ).stdout
    lines = dict(line.split(" ", 1) for line in out.strip().splitlines())
    assert lines["arao/depot_c01/availability"] == "online"
    telemetry = Telemetry.model_validate_json(lines["arao/depot_c01/telemetry"])
    assert telemetry.plugged is not None and telemetry.power_kw is not None
