"""Modbus TCP drivers against real pymodbus servers on 127.0.0.1 (and independent peers)."""

from __future__ import annotations

import asyncio
import datetime as dt
import re
import shutil
import socket
import subprocess
import threading
import time

import pytest

from drivers.api import DeviceUnavailable, NotWritable, Quality
from drivers.modbus import sunspec
from drivers.modbus.connection import ModbusConnection, ModbusEndpoint
from drivers.modbus.sunspec_drivers import SunSpecBattery, SunSpecInverter, SunSpecMeter
from drivers.modbus.vendor import VendorMapDevice
from drivers.sim.devices import SunSpecBatteryDevice, SunSpecMeterDevice, SunSpecPvDevice
from drivers.sim.modbus_server import ModbusDeviceServer
from drivers.sim.physics import SimBattery, SimMeter, SimPv
from tests.conftest import free_port

UTC = dt.UTC
NOON = dt.datetime(2026, 4, 15, 3, 0, tzinfo=UTC)  # 12:00 in Tokyo


def flat_profile(value: float) -> tuple[float, ...]:
    return (value,) * 48


def settings(cls, port: int, **extra):
    return cls.Settings(name="dev", host="127.0.0.1", port=port, timeout_s=0.5, **extra)


def serve(store, coroutine):
    """Run ``coroutine(port)`` against a server for ``store`` on a free port."""

    async def main():
        port = free_port()
        server = ModbusDeviceServer("dev", store, port=port)
        await server.start()
        try:
            return await coroutine(port, server)
        finally:
            await server.stop()

    return asyncio.run(main())


def test_scan_walks_the_model_chain_from_the_suns_marker():
    device = SunSpecBatteryDevice(SimBattery("b", 100.0, 50.0, 50.0, soc_kwh=50.0))

    async def check(port, _server):
        connection = ModbusConnection("b", ModbusEndpoint(host="127.0.0.1", port=port, timeout_s=0.5))
        found = await sunspec.scan(connection)
        await connection.close()
        return found

    # ID/L of model 1 at 40002, L=66 -> 103 at 40070, L=50 -> 124 at 40122
    assert serve(device.store, check) == {1: 40002, 103: 40070, 124: 40122}


@pytest.mark.parametrize("capacity_kwp, expected_sf", [(0.3, -1), (10.0, 0), (60.0, 1)])
def test_pv_reads_are_scaled_by_the_sunspec_scale_factor(capacity_kwp, expected_sf):
    pv = SimPv("pv", capacity_kwp, flat_profile(0.7234), dt.UTC)
    pv.step(NOON, 0.0)
    pv.energy.import_kwh = 1234.0
    served = SunSpecPvDevice(pv)
    assert served.image.get_signed(103, "W_SF") == expected_sf

    async def check(port, _server):
        driver = SunSpecInverter(settings(SunSpecInverter, port))
        reading = await driver.read()
        plate = await driver.nameplate()
        await driver.close()
        return reading, plate

    reading, plate = serve(served.store, check)
    assert reading.quality is Quality.GOOD
    resolution_kw = 10.0**expected_sf / 1000.0
    assert reading.power_kw == pytest.approx(capacity_kwp * 0.7234, abs=resolution_kw / 2 + 1e-12)
    assert reading.energy_kwh == pytest.approx(1234.0, abs=0.001)
    assert plate["Mn"] == "AraoTwin" and plate["SN"] == "pv"


def test_load_meter_reports_consumption_as_negative_site_power():
    meter = SimMeter("load", power_kw=-42.5)
    served = SunSpecMeterDevice(meter, rating_kw=100.0, consumption_positive=True)
    assert served.image.get_signed(203, "W") * 10 ** served.image.get_signed(203, "W_SF") == pytest.approx(42500)

    async def check(port, _server):
        driver = SunSpecMeter(settings(SunSpecMeter, port, invert_sign=True))
        return await driver.read()

    assert serve(served.store, check).power_kw == pytest.approx(-42.5)


def test_battery_setpoint_round_trip_and_soc_follows():
    battery = SimBattery("bess", 120.0, 50.0, 50.0, soc_kwh=60.0, charge_efficiency=0.95, discharge_efficiency=0.95)
    served = SunSpecBatteryDevice(battery)

    async def check(port, _server):
        driver = SunSpecBattery(settings(SunSpecBattery, port))
        ack = await driver.write(20.0)
        after_write = await driver.read()
        battery.step(NOON, 3600.0)  # one hour at the set-point
        served.refresh()
        after_hour = await driver.read()
        await driver.write(-10.0)
        charging = await driver.read()
        await driver.close()
        return ack, after_write, after_hour, charging

    ack, after_write, after_hour, charging = serve(served.store, check)
    assert ack.applied_kw == pytest.approx(20.0)
    assert battery.setpoint_kw == pytest.approx(-10.0)
    assert after_write.power_kw == pytest.approx(20.0) and after_write.setpoint_kw == pytest.approx(20.0)
    # 20 kWh delivered at 95 % discharge efficiency takes 21.05 kWh out of 120 kWh
    assert after_hour.soc_fraction == pytest.approx((60.0 - 20.0 / 0.95) / 120.0, abs=0.001)
    assert charging.power_kw == pytest.approx(-10.0) and charging.setpoint_kw == pytest.approx(-10.0)
    stor_ctl = [w for a, w in served.store.writes if a == served.image.address(124, "StorCtl_Mod")]
    assert stor_ctl == [[sunspec.STORCTL_DISCHARGE], [sunspec.STORCTL_CHARGE]]


def test_meter_and_inverter_are_not_writable():
    served = SunSpecPvDevice(SimPv("pv", 10.0, flat_profile(0.5), dt.UTC))

    async def check(port, _server):
        driver = SunSpecInverter(settings(SunSpecInverter, port))
        with pytest.raises(NotWritable):
            await driver.write(1.0)
        return True

    assert serve(served.store, check)


def test_modbus_exception_response_is_reported_not_a_crash(caplog):
    served = SunSpecPvDevice(SimPv("pv", 10.0, flat_profile(0.5), dt.UTC))
    points = {"power_kw": {"address": 100, "type": "int16", "scale": 0.1}}

    async def check(port, _server):
        vendor = VendorMapDevice(
            VendorMapDevice.Settings(name="odd", host="127.0.0.1", port=port, timeout_s=0.5, points=points)
        )
        reading = await vendor.read()
        connection = ModbusConnection("pv", ModbusEndpoint(host="127.0.0.1", port=port, timeout_s=0.5))
        with pytest.raises(DeviceUnavailable) as refused:  # W is read-only: the device refuses the write
            await connection.write_registers(served.image.address(103, "W"), [1])
        still = await SunSpecInverter(settings(SunSpecInverter, port)).read()
        return reading, refused.value, still

    reading, refused, still = serve(served.store, check)
    assert reading.quality is Quality.MISSING
    assert "Modbus exception 2 (illegal data address)" in reading.error and "register 100" in reading.error
    assert "Modbus exception 2" in str(refused)
    assert still.quality is Quality.GOOD  # the same server keeps answering
    assert any("odd" in r.getMessage() and "Modbus exception 2" in r.getMessage() for r in caplog.records)


def test_stopped_server_reads_missing_within_timeout_and_recovers():
    served = SunSpecPvDevice(SimPv("pv", 10.0, flat_profile(0.5), dt.UTC))
    served.physics.step(NOON, 0.0)
    served.refresh()

    async def check(port, server):
        driver = SunSpecInverter(settings(SunSpecInverter, port))
        first = await driver.read()
        await server.stop()
        started = time.monotonic()
        gone = await driver.read()
        elapsed = time.monotonic() - started
        await server.start()
        back = await driver.read()
        await driver.close()
        return first, gone, elapsed, back

    first, gone, elapsed, back = serve(served.store, check)
    assert first.quality is Quality.GOOD
    assert gone.quality is Quality.MISSING and gone.power_kw is None
    assert elapsed <= 0.5 + 0.2
    assert back.quality is Quality.GOOD and back.power_kw == pytest.approx(5.0)


def test_device_that_accepts_but_never_answers_reads_missing_within_timeout():
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    port = listener.getsockname()[1]
    accepted = []
    threading.Thread(target=lambda: accepted.append(listener.accept()), daemon=True).start()

    async def check():
        driver = SunSpecInverter(settings(SunSpecInverter, port))
        started = time.monotonic()
        reading = await driver.read()
        await driver.close()
        return reading, time.monotonic() - started

    try:
        reading, elapsed = asyncio.run(check())
    finally:
        listener.close()
    assert reading.quality is Quality.MISSING
    assert "0.5 s" in reading.error or "Timeout" in reading.error
    assert elapsed <= 0.5 + 0.2


# --- independent peers: pysunspec2 and mbpoll against the twin's SunSpec devices -------------


@pytest.fixture
def modbus_twin(twin_factory):
    start = dt.datetime(2026, 4, 15, 12, 0, tzinfo=dt.timezone(dt.timedelta(hours=9)))
    return twin_factory(start=start)


def port_of(runner, device_id: str) -> int:
    return next(e.settings["port"] for e in runner.twin.endpoints if e.asset_id == device_id)


def test_pysunspec2_scans_and_reads_the_twin(modbus_twin):
    import sunspec2.modbus.client as sunspec_client

    async def our_reading():
        driver = SunSpecBattery(settings(SunSpecBattery, port_of(modbus_twin, "city_hall_bess")))
        await driver.write(20.0)
        reading = await driver.read()
        await driver.close()
        return reading

    ours = asyncio.run(our_reading())
    device = sunspec_client.SunSpecModbusClientDeviceTCP(
        slave_id=1, ipaddr="127.0.0.1", ipport=port_of(modbus_twin, "city_hall_bess"), timeout=2
    )
    try:
        device.scan()
        assert {1, 103, 124} <= set(device.models)
        assert device.common[0].SN.cvalue == "city_hall_bess"
        inverter = device.models[103][0]
        storage = device.models[124][0]
        assert inverter.W.cvalue == pytest.approx(20000.0)
        assert inverter.W.cvalue / 1000 == pytest.approx(ours.power_kw)
        assert storage.ChaState.cvalue / 100 == pytest.approx(ours.soc_fraction, abs=0.002)
        assert storage.StorCtl_Mod.value == sunspec.STORCTL_DISCHARGE
    finally:
        device.close()

    pv = sunspec_client.SunSpecModbusClientDeviceTCP(
        slave_id=1, ipaddr="127.0.0.1", ipport=port_of(modbus_twin, "city_hall_pv"), timeout=2
    )
    try:
        pv.scan()
        expected_kw = modbus_twin.twin.physics["city_hall_pv"].power_kw
        assert expected_kw > 10  # noon in April
        assert pv.models[103][0].W.cvalue / 1000 == pytest.approx(expected_kw, rel=0.02)
    finally:
        pv.close()
    meter = sunspec_client.SunSpecModbusClientDeviceTCP(
        slave_id=1, ipaddr="127.0.0.1", ipport=port_of(modbus_twin, "city_hall_grid"), timeout=2
    )
    try:
        meter.scan()
        assert 203 in meter.models
    finally:
        meter.close()


@pytest.mark.skipif(shutil.which("mbpoll") is None, reason="mbpoll missing (.ci/run installs it)")
def test_mbpoll_reads_the_suns_marker_and_power(modbus_twin):
    port = port_of(modbus_twin, "city_hall_pv")

    def mbpoll(*args: str) -> dict[int, str]:
        out = subprocess.run(
            ["mbpoll", "-m", "tcp", "-p", str(port), "-0", "-1", *args, "127.0.0.1"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout
        return {int(a): v.strip() for a, v in re.findall(r"\[(\d+)\]:\s+(\S+)", out)}

    marker = mbpoll("-t", "4:hex", "-r", "40000", "-c", "2")
    assert marker == {40000: "0x5375", 40001: "0x6E53"}
    w_address = 40070 + 14  # model 103 starts at 40070; W at offset 14, W_SF at 15
    values = mbpoll("-t", "4", "-r", str(w_address), "-c", "2")
    power_w = int(values[w_address]) * 10 ** int(values[w_address + 1])
    assert power_w / 1000 == pytest.approx(modbus_twin.twin.physics["city_hall_pv"].power_kw, rel=0.02)


def test_a_changed_model_layout_is_scanned_again():
    from drivers.sim.modbus_server import SunSpecImage

    first = SunSpecPvDevice(SimPv("pv", 10.0, flat_profile(0.5), dt.UTC))
    first.physics.step(NOON, 0.0)
    first.refresh()
    moved = SunSpecImage([sunspec.COMMON, sunspec.METER_THREE_PHASE_WYE, sunspec.INVERTER_THREE_PHASE])
    moved.set_raw(103, "W_SF", 0)
    moved.set_scaled(103, "W", 7000.0)

    async def scenario():
        port = free_port()
        driver = SunSpecInverter(settings(SunSpecInverter, port))
        server = ModbusDeviceServer("pv", first.store, port=port)
        await server.start()
        before = await driver.read()
        await server.stop()
        server = ModbusDeviceServer("pv", moved.store, port=port)  # new firmware: model 103 moved
        await server.start()
        confused = await driver.read()
        after = await driver.read()
        await server.stop()
        await driver.close()
        return before, confused, after

    before, confused, after = asyncio.run(scenario())
    assert before.power_kw == pytest.approx(5.0)
    assert confused.quality is Quality.MISSING and "expected SunSpec model 103" in confused.error
    assert after.quality is Quality.GOOD and after.power_kw == pytest.approx(7.0)
