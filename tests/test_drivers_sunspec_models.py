"""SunSpec from pysunspec2's model definitions: pysunspec2's own client scans the twin; meters
201-204, DER 701 and battery base 802 read through the drivers; a word-swapped vendor map; and
Modbus RTU on a serial line (a pseudo-terminal pair joined by a relay)."""

from __future__ import annotations

import asyncio
import os
import select
import threading

import pytest
from pymodbus.server import ModbusSerialServer
from pymodbus.simulator import SimData, SimDevice
from sunspec2.modbus.client import SunSpecModbusClientDeviceTCP

from drivers.api import Quality
from drivers.modbus import sunspec
from drivers.modbus.connection import decode, encode
from drivers.modbus.sunspec_drivers import SunSpecBattery, SunSpecInverter, SunSpecMeter
from drivers.modbus.vendor import VendorMapDevice, VendorSettings
from drivers.sim.modbus_server import ModbusDeviceServer, RegisterStore, SunSpecImage
from ems.devices import endpoints
from tests.conftest import REPO, free_port

CONFIG = REPO / "config/arao.toml"


def test_model_tables_come_from_the_sunspec_information_model():
    assert sunspec.MODELS[103].point("W").offset == 14 and sunspec.MODELS[103].length == 50
    assert sunspec.MODELS[124].point("InOutWRte_SF").offset == 25
    for meter in (201, 202, 203, 204):  # one layout for single, split-phase, wye and delta meters
        assert sunspec.MODELS[meter].point("TotWhImp").offset == 46 and sunspec.MODELS[meter].length == 105
    assert sunspec.MODELS[802].point("SoC").sf == "SoC_SF"
    assert sunspec.MODELS[704].length == 65 and sunspec.MODELS[704].point("PFWAbsRvrt.Ext").offset == 66


def test_pysunspec2_scans_every_model_the_twin_serves(twin_factory):
    runner = twin_factory(CONFIG)
    served = [e for e in endpoints(runner.twin.portfolio) if e.protocol == "modbus"]
    assert served
    one_of_each_kind = {e.asset_type: e for e in served}  # grid, pv, load, battery, shelter: every model set served
    assert set(one_of_each_kind) == {"grid", "pv", "load", "battery", "shelter"}
    for endpoint in one_of_each_kind.values():
        device = SunSpecModbusClientDeviceTCP(
            slave_id=1, ipaddr="127.0.0.1", ipport=endpoint.settings["port"], timeout=2
        )
        try:
            device.scan()
            found = {int(model_id) for model_id in device.models if str(model_id).isdigit()}
            image = runner.twin.modbus_devices[endpoint.asset_id].image
            assert found == set(image.addresses), endpoint.asset_id
            for model_id in found - {1}:
                model = device.models[model_id][0]
                assert model_id == 124 or model.W.cvalue is not None
        finally:
            device.close()


def serve(image: SunSpecImage, body):
    async def main():
        server = ModbusDeviceServer("dev", image.store, "127.0.0.1", free_port())
        await server.start()
        try:
            return await body(server.port)
        finally:
            await server.stop()

    return asyncio.run(main())


def settings(cls, port: int, **extra):
    return cls.Settings(name="dev", host="127.0.0.1", port=port, timeout_s=1.0, **extra)


@pytest.mark.parametrize("meter_id", [201, 202, 204])
def test_single_split_phase_and_delta_meters_read(meter_id):
    image = SunSpecImage([sunspec.COMMON, sunspec.MODELS[meter_id]])
    image.set_raw(meter_id, "W_SF", 1)
    image.set_raw(meter_id, "TotWh_SF", 0)
    image.set_scaled(meter_id, "W", -4560.0)
    image.set_raw(meter_id, "TotWhImp", 123_456)

    async def body(port):
        meter = SunSpecMeter(settings(SunSpecMeter, port))
        return await meter.read()

    reading = serve(image, body)
    assert reading.quality is Quality.GOOD
    assert reading.power_kw == pytest.approx(-4.56) and reading.energy_kwh == pytest.approx(123.456)


def test_an_inverter_with_only_der_model_701_and_a_battery_with_soc_in_802():
    inverter = SunSpecImage([sunspec.COMMON, sunspec.DER_AC_MEASUREMENT])
    inverter.set_raw(701, "W_SF", 0)
    inverter.set_raw(701, "TotWh_SF", 0)
    inverter.set_raw(701, "W", 7250)
    inverter.set_raw(701, "TotWhInj", 5_000_000_000)  # a 64-bit counter past 32 bits
    battery = SunSpecImage(
        [sunspec.COMMON, sunspec.INVERTER_THREE_PHASE, sunspec.STORAGE_CONTROLS, sunspec.BATTERY_BASE]
    )
    battery.set_raw(103, "W_SF", 0)
    battery.set_raw(103, "W", -3000)
    battery.set_raw(124, "ChaState", 0xFFFF)  # not implemented in 124 ...
    battery.set_raw(802, "SoC_SF", -1)
    battery.set_raw(802, "SoC", 734)  # ... but the battery base says 73.4 %

    async def read_inverter(port):
        return await SunSpecInverter(settings(SunSpecInverter, port)).read()

    async def read_battery(port):
        return await SunSpecBattery(settings(SunSpecBattery, port)).read()

    pv = serve(inverter, read_inverter)
    bess = serve(battery, read_battery)
    assert pv.power_kw == pytest.approx(7.25) and pv.energy_kwh == pytest.approx(5_000_000.0)
    assert bess.power_kw == pytest.approx(-3.0) and bess.soc_fraction == pytest.approx(0.734)


def test_a_word_swapped_vendor_map_reads_and_writes_the_right_value():
    store = RegisterStore(0, 20)
    store.set(10, encode(123_456_789, "int32", "little"))  # low word first, as some meters send it
    store.set(12, encode(-2.5, "float32", "little"))
    store.writable.update(range(14, 16))
    points = {
        "energy_kwh": {"address": 10, "type": "int32", "scale": 0.001},
        "power_kw": {"address": 12, "type": "float32"},
        "setpoint_kw": {"address": 14, "type": "int32", "scale": 0.01, "writable": True},
    }

    async def body(port):
        swapped = VendorMapDevice(
            VendorSettings(name="meter", host="127.0.0.1", port=port, points=points, word_order="little")
        )
        plain = VendorMapDevice(VendorSettings(name="meter", host="127.0.0.1", port=port, points=points))
        right, wrong = await swapped.read(), await plain.read()
        await swapped.write(-70000.0)
        return right, wrong

    async def main():
        server = ModbusDeviceServer("meter", store, "127.0.0.1", free_port())
        await server.start()
        try:
            return await body(server.port)
        finally:
            await server.stop()

    right, wrong = asyncio.run(main())
    assert store.get(10, 2) == [123_456_789 & 0xFFFF, 123_456_789 >> 16]
    assert right.energy_kwh == pytest.approx(123_456.789) and right.power_kw == pytest.approx(-2.5)
    assert wrong.energy_kwh != pytest.approx(123_456.789)
    assert decode(store.get(14, 2), "int32", "little") == -7_000_000


class PtyRelay:
    """Two pseudo-terminals joined back to back, like a null-modem cable (socat's pty,pty)."""

    def __init__(self):
        self.a_master, a_slave = os.openpty()
        self.b_master, b_slave = os.openpty()
        self.a_path, self.b_path = os.ttyname(a_slave), os.ttyname(b_slave)
        self._slaves = (a_slave, b_slave)
        for fd in self._slaves:  # raw mode, so no byte of an RTU frame is taken for a control character
            import tty

            tty.setraw(fd)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        pair = {self.a_master: self.b_master, self.b_master: self.a_master}
        while not self._stop.is_set():
            ready, _, _ = select.select(list(pair), [], [], 0.05)
            for fd in ready:
                try:
                    os.write(pair[fd], os.read(fd, 1024))
                except OSError:
                    return

    def close(self):
        self._stop.set()
        self._thread.join(1)
        for fd in (self.a_master, self.b_master, *self._slaves):
            os.close(fd)


def test_modbus_rtu_over_a_serial_line_reads_a_sunspec_meter():
    relay = PtyRelay()
    image = SunSpecImage([sunspec.COMMON, sunspec.MODELS[204]])
    image.set_raw(204, "W_SF", 0)
    image.set_raw(204, "TotWh_SF", 0)
    image.set_raw(204, "W", 1800)
    image.set_raw(204, "TotWhImp", 42_000)

    async def main():
        server = ModbusSerialServer(SimDevice(id=0, simdata=[SimData(0, values=0)]), port=relay.a_path, baudrate=19200)
        server.context = image.store
        task = asyncio.create_task(server.serve_forever())
        await asyncio.sleep(0.3)
        meter = SunSpecMeter(
            SunSpecMeter.Settings(
                name="building", host="", transport="rtu", serial_port=relay.b_path, baudrate=19200, timeout_s=2.0
            )
        )
        try:
            return await meter.read()
        finally:
            await meter.close()
            await server.shutdown()
            task.cancel()

    try:
        reading = asyncio.run(main())
    finally:
        relay.close()
    assert reading.quality is Quality.GOOD, reading.error
    assert reading.power_kw == pytest.approx(1.8) and reading.energy_kwh == pytest.approx(42.0)
