"""ECHONET Lite: the twin's V2H nodes found and read by an independent client built here from
the specification's frame layout, and the project's drivers reading and writing them."""

from __future__ import annotations

import asyncio
import socket
import struct
import threading

import pytest

from drivers.api import DeviceUnavailable, Quality
from drivers.echonet.client import EchonetClient
from drivers.echonet.devices import EchonetSettings, EchonetV2h
from drivers.sim.echonet_node import EchonetNode, V2hObject
from drivers.sim.physics import SimCharger, SimEv
from ems.config import load_portfolio
from ems.devices import endpoints
from tests.conftest import REPO
from tests.echonet_fixtures import free_udp_port, private_network

CONFIG = REPO / "config/arao.toml"


def echonet_portfolio():
    portfolio = load_portfolio(CONFIG)
    twin = portfolio.twin.model_copy(
        update={"v2h": "echonet", "echonet_network": private_network(), "echonet_port": free_udp_port()}
    )
    return portfolio.model_copy(update={"twin": twin})


# --- an independent client: ECHONET Lite spec part II, 3.2 (format 1), with struct only ----------


def spec_get(host: str, port: int, deoj: bytes, epcs: list[int], tid: int) -> tuple[int, dict[int, bytes]]:
    request = struct.pack(">BBH3s3sBB", 0x10, 0x81, tid, bytes((0x05, 0xFF, 0x01)), deoj, 0x62, len(epcs))
    request += b"".join(struct.pack(">BB", epc, 0) for epc in epcs)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(2.0)
        s.sendto(request, (host, port))
        data, source = s.recvfrom(1500)
    ehd1, ehd2, answer_tid, seoj, _deoj, esv, opc = struct.unpack(">BBH3s3sBB", data[:12])
    assert (ehd1, ehd2, answer_tid, source[0]) == (0x10, 0x81, tid, host)
    assert seoj == deoj
    values, offset = {}, 12
    for _ in range(opc):
        epc, pdc = data[offset], data[offset + 1]
        values[epc] = data[offset + 2 : offset + 2 + pdc]
        offset += 2 + pdc
    return esv, values


def test_the_twins_v2h_nodes_are_found_and_read_by_an_independent_client(twin_factory):
    portfolio = echonet_portfolio()
    runner = twin_factory(CONFIG, portfolio=portfolio)
    v2h = [e for e in endpoints(runner.twin.portfolio) if e.protocol == "echonet"]
    assert {e.asset_id for e in v2h} == {c.id for c in portfolio.chargers if c.v2h}
    assert all(e.asset_type == "charger" and e.driver == "echonet_v2h" for e in v2h)
    for tid, endpoint in enumerate(v2h, start=1):
        host, port = endpoint.settings["host"], endpoint.settings["port"]
        esv, profile = spec_get(host, port, bytes((0x0E, 0xF0, 0x01)), [0xD6], tid)
        assert esv == 0x72 and profile[0xD6] == bytes((1, 0x02, 0x7E, 0x01))  # one object: EV charger-discharger 1
        esv, values = spec_get(host, port, bytes((0x02, 0x7E, 0x01)), [0xC7, 0xD3, 0xDA], 100 + tid)
        charger = runner.twin.chargers[endpoint.asset_id]
        with runner.twin.lock:
            plugged = charger.vehicle is not None
            charging_w = -charger.power_kw * 1000
        assert (values[0xC7][0] != 0x30) == plugged
        assert struct.unpack(">i", values[0xD3])[0] == pytest.approx(charging_w, abs=1)
        assert values[0xDA] == bytes((0x44,))  # standby until told otherwise


def test_multicast_discovery_finds_every_twin_node(twin_factory):
    portfolio = echonet_portfolio()
    runner = twin_factory(CONFIG, portfolio=portfolio)
    expected = {e.settings["host"] for e in endpoints(runner.twin.portfolio) if e.protocol == "echonet"}

    async def discover():
        client = EchonetClient("127.0.0.1", 0, multicast_interface="127.0.0.1")
        await client.open()
        try:
            return await client.discover(None, 0.5, portfolio.twin.echonet_port), await client.discover(
                sorted(expected), 0.5, portfolio.twin.echonet_port
            )
        finally:
            client.close()

    by_multicast, by_unicast = asyncio.run(discover())
    assert set(by_unicast) == expected
    assert set(by_multicast) == expected  # 224.0.23.0 out on lo, nodes joined on their own addresses
    assert all(objects[0].class_code == 0x027E for objects in by_multicast.values())


def test_the_v2h_driver_reads_and_commands_a_twin_node(twin_factory):
    portfolio = echonet_portfolio()
    runner = twin_factory(CONFIG, portfolio=portfolio)
    endpoint = next(e for e in endpoints(runner.twin.portfolio) if e.protocol == "echonet")
    charger = runner.twin.chargers[endpoint.asset_id]
    with runner.twin.lock:  # a vehicle that may discharge, plugged in
        charger.vehicle = SimEv("taxi-test", 40.0, 20.0, v2g_allowed=True)

    async def session():
        client = EchonetClient("127.0.0.1", 0)
        driver = EchonetV2h(EchonetSettings.model_validate(endpoint.settings), client)
        await driver.connect()
        try:
            discharge = await driver.write(4.0)
            after_discharge = await driver.read()
            charge = await driver.write(-2.5)
            after_charge = await driver.read()
            return discharge, after_discharge, charge, after_charge
        finally:
            client.close()

    discharge, after_discharge, charge, after_charge = asyncio.run(session())
    assert discharge.applied_kw == pytest.approx(4.0) and charge.applied_kw == pytest.approx(-2.5)
    assert after_discharge.quality is Quality.GOOD and after_discharge.plugged is True
    assert after_discharge.power_kw == pytest.approx(4.0) and after_discharge.setpoint_kw == pytest.approx(4.0)
    assert after_discharge.soc_fraction == pytest.approx(0.5, abs=0.01) and after_discharge.vehicle_id == "taxi-test"
    assert after_charge.power_kw == pytest.approx(-2.5) and after_charge.setpoint_kw == pytest.approx(-2.5)
    assert charger.setpoint_kw == pytest.approx(-2.5)


def run_node(node: EchonetNode, body):
    async def main():
        await node.start()
        try:
            return await body()
        finally:
            await node.stop()

    return asyncio.run(main())


def test_a_setc_answered_with_sna_is_a_failed_write_and_changes_nothing():
    host, port = "127.0.0.1", free_udp_port()
    charger = SimCharger("v2h-locked", 6.0, 6.0, vehicle=SimEv("taxi-x", 40.0, 20.0, v2g_allowed=True))
    node = EchonetNode(host, port, V2hObject(charger, threading.Lock()), refuse_writes=True)

    async def body():
        client = EchonetClient("127.0.0.1", 0)
        driver = EchonetV2h(EchonetSettings(name="v2h-locked", host=host, port=port, timeout_s=1.0), client)
        try:
            with pytest.raises(DeviceUnavailable, match=r"SetC_SNA\) of 0xDA, 0xEC"):
                await driver.write(3.0)
            return await driver.read()
        finally:
            client.close()

    reading = run_node(node, body)
    assert charger.setpoint_kw == 0.0 and node.device.writes_applied == 0
    assert reading.quality is Quality.GOOD and reading.setpoint_kw == 0.0  # still in standby


def test_a_silent_node_reads_missing_and_a_write_fails_within_its_timeout():
    async def body():
        client = EchonetClient("127.0.0.1", 0)
        driver = EchonetV2h(EchonetSettings(name="gone", host="127.0.0.1", port=free_udp_port(), timeout_s=0.3), client)
        loop = asyncio.get_running_loop()
        started = loop.time()
        try:
            reading = await driver.read()
            with pytest.raises(DeviceUnavailable, match="not acknowledged"):
                await driver.write(-3.0)
            return reading, loop.time() - started
        finally:
            client.close()

    reading, elapsed_s = asyncio.run(body())
    assert reading.quality is Quality.MISSING and "no answer" in reading.error
    assert elapsed_s < 1.5


def test_hostile_datagrams_are_dropped_and_the_node_keeps_answering():
    host, port = "127.0.0.1", free_udp_port()
    charger = SimCharger("v2h", 6.0, 6.0)
    node = EchonetNode(host, port, V2hObject(charger, threading.Lock()))

    async def body():
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            for junk in (
                b"",
                b"\x10\x81",
                b"\x10\x81\x00\x01\x05\xff\x01\x02\x7e\x01\x62\x05\xe4",
                bytes(range(256)) * 4,
            ):
                s.sendto(junk, (host, port))
        await asyncio.sleep(0.1)
        client = EchonetClient("127.0.0.1", 0)
        driver = EchonetV2h(EchonetSettings(name="v2h", host=host, port=port), client)
        try:
            return await driver.read()
        finally:
            client.close()

    reading = run_node(node, body)
    assert node.malformed == 4
    assert reading.quality is Quality.GOOD and reading.plugged is False and reading.power_kw == 0.0


class FixedObject:
    """A device object with fixed property values, written here from the class's EPC table."""

    def __init__(self, class_code: int, values: dict[int, bytes], settable: set[int] = frozenset()):
        from drivers.echonet.frame import Eoj

        self.eoj = Eoj.of(class_code)
        self.values = dict(values)
        self.settable = settable
        self.writes_applied = 0

    def get(self, epc: int) -> bytes | None:
        return self.values.get(epc)

    def set(self, epc: int, edt: bytes) -> bool:
        if epc not in self.settable:
            return False
        self.values[epc] = edt
        return True

    def apply(self) -> None:
        self.writes_applied += 1


def read_object(obj: FixedObject, driver_cls, write_kw: float | None = None, **settings):
    host, port = "127.0.0.1", free_udp_port()
    node = EchonetNode(host, port, obj)

    async def body():
        client = EchonetClient("127.0.0.1", 0)
        driver = driver_cls(EchonetSettings(name="dev", host=host, port=port, **settings), client)
        try:
            reading = await driver.read()
            write = None
            if write_kw is not None:
                write = await driver.write(write_kw)
            return reading, write
        finally:
            client.close()

    return run_node(node, body)


def test_battery_pv_and_smart_meter_classes_read_in_the_sites_sign_and_units():
    from drivers.echonet.devices import EchonetBattery, EchonetPv, EchonetSmartMeter

    battery = FixedObject(
        0x027D,
        {
            0xD3: struct.pack(">i", -2500),
            0xD6: struct.pack(">I", 12_345),
            0xD8: struct.pack(">I", 20_000),
            0xE4: bytes((64,)),
            0xDA: bytes((0x43,)),
            0xEC: struct.pack(">I", 2500),
        },
        settable={0xDA, 0xEB},
    )
    reading, write = read_object(battery, EchonetBattery, write_kw=-1.5)
    assert reading.power_kw == pytest.approx(2.5)  # ECHONET -2500 W (discharging) is +2.5 kW into the bus
    assert reading.energy_kwh == pytest.approx(32.345) and reading.soc_fraction == pytest.approx(0.64)
    assert reading.setpoint_kw == pytest.approx(2.5)
    assert (
        write.applied_kw == pytest.approx(-1.5)
        and battery.values[0xDA] == bytes((0x42,))
        and battery.values[0xEB] == struct.pack(">I", 1500)
    )

    pv = FixedObject(0x0279, {0xE0: struct.pack(">H", 3120), 0xE1: struct.pack(">I", 9_876_543)})
    reading, _ = read_object(pv, EchonetPv)
    assert reading.power_kw == pytest.approx(3.12) and reading.energy_kwh == pytest.approx(9876.543)

    meter = FixedObject(
        0x0288,
        {
            0xE7: struct.pack(">i", 1450),
            0xE0: struct.pack(">I", 71_234),
            0xD3: struct.pack(">I", 1),
            0xE1: bytes((0x01,)),
        },
    )
    reading, _ = read_object(meter, EchonetSmartMeter)
    assert reading.power_kw == pytest.approx(1.45) and reading.energy_kwh == pytest.approx(7123.4)  # unit 0x01: 0.1 kWh


def test_a_node_missing_a_property_answers_get_sna_and_the_reading_leaves_it_out():
    from drivers.echonet.devices import EchonetBattery

    battery = FixedObject(0x027D, {0xD3: struct.pack(">i", 1000), 0xDA: bytes((0x44,))})  # no SoC, no counters
    reading, _ = read_object(battery, EchonetBattery)
    assert reading.quality is Quality.GOOD and reading.power_kw == pytest.approx(-1.0)
    assert reading.soc_fraction is None and reading.energy_kwh is None and reading.setpoint_kw == 0.0
