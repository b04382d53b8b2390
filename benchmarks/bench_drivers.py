"""Poll latency of the reference portfolio's devices against the digital twin over loopback.

Starts a private Mosquitto on a free port and the twin of config/arao.toml (24 SunSpec Modbus
TCP devices, 29 MQTT devices), then polls every device concurrently, ``POLLS`` times.
Rows: median and p95 of one full poll [ms], devices read per second by one process (all, and
the Modbus devices alone: an MQTT read returns the last retained telemetry without a round
trip), and the median of one SunSpec battery read done alone [ms]. The twin runs in the same
process (another thread), so the figures include its share of the interpreter.

Protocols: 100 OCPP 1.6 charge points (the twin's charge-point class, one websocket each) on the
controller's central system and 50 ECHONET Lite V2H nodes on 127.77.0.x, all on loopback in one
process: median and p95 of one poll of all 150 devices, of the 50 ECHONET Lite reads alone
(each a UDP round trip; an OCPP read returns what the charge point last reported), and of one
set-point round trip through OCPP (SetChargingProfile sent, charge point applies, Accepted back).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import statistics
import tempfile
import time
from pathlib import Path

from benchmarks.harness import free_port_block, percentile, start_broker

POLLS = 40
SINGLE_READS = 100

CONFIG = Path(__file__).resolve().parent.parent / "config/arao.toml"


async def _measure(portfolio, broker) -> tuple[list[float], float, int, list[float], float]:
    from ems.devices import DeviceSet

    devices = DeviceSet(portfolio, broker)
    await devices.open()
    try:
        await devices.read_all()  # warm-up: connect, scan SunSpec models
        polls_ms = []
        started = time.perf_counter()
        for _ in range(POLLS):
            t0 = time.perf_counter()
            readings = await devices.read_all()
            polls_ms.append((time.perf_counter() - t0) * 1000)
            bad = [r.device for r in readings if r.quality.value != "good"]
            if bad:
                raise RuntimeError(f"devices not good during the benchmark: {bad}")
        elapsed = time.perf_counter() - started
        modbus = [d for e, d in zip(devices.endpoints, devices.drivers.values()) if e.protocol == "modbus"]
        started = time.perf_counter()
        for _ in range(POLLS):
            await asyncio.gather(*(d.read() for d in modbus))
        modbus_per_s = len(modbus) * POLLS / (time.perf_counter() - started)
        battery = devices.drivers["city_hall_bess"]
        single_ms = []
        for _ in range(SINGLE_READS):
            t0 = time.perf_counter()
            await battery.read()
            single_ms.append((time.perf_counter() - t0) * 1000)
        return polls_ms, elapsed, len(readings), single_ms, modbus_per_s
    finally:
        await devices.close()


OCPP_CHARGE_POINTS = 100
ECHONET_NODES = 50
PROTOCOL_POLLS = 40
SETPOINT_TRIPS = 100


async def _protocols() -> tuple[list[float], list[float], list[float]]:
    import socket
    import threading

    from drivers.echonet.client import EchonetClient
    from drivers.echonet.devices import EchonetSettings, EchonetV2h
    from drivers.ocpp.csms import CentralSystem, CsmsConfig
    from drivers.ocpp.driver import OcppCharger, OcppSettings
    from drivers.sim.echonet_node import EchonetNode, V2hObject
    from drivers.sim.ocpp_charge_point import SimOcppChargePoint
    from drivers.sim.physics import SimCharger, SimEv

    lock = threading.Lock()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        ocpp_port = s.getsockname()[1]
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        udp_port = s.getsockname()[1]
    csms = CentralSystem(CsmsConfig(port=ocpp_port, id_tags={f"taxi-{i:03d}" for i in range(OCPP_CHARGE_POINTS)}))
    chargers = [
        OcppCharger(OcppSettings(name=f"cp-{i:03d}", charge_point_id=f"cp-{i:03d}", failsafe_kw=-3.0), csms)
        for i in range(OCPP_CHARGE_POINTS)
    ]
    await csms.start()
    stop = asyncio.Event()
    points = []
    for i in range(OCPP_CHARGE_POINTS):
        physics = SimCharger(f"cp-{i:03d}", 6.0, 6.0, vehicle=SimEv(f"taxi-{i:03d}", 40.0, 20.0))
        points.append(SimOcppChargePoint(physics, f"ws://127.0.0.1:{ocpp_port}", lock, retry_s=0.2))
    tasks = [asyncio.create_task(cp.run(stop)) for cp in points]
    nodes = [
        EchonetNode(f"127.77.0.{i + 1}", udp_port, V2hObject(SimCharger(f"v2h-{i}", 6.0, 6.0), lock))
        for i in range(ECHONET_NODES)
    ]
    for node in nodes:
        await node.start()
    client = EchonetClient("127.0.0.1", 0)
    v2h = [
        EchonetV2h(EchonetSettings(name=f"v2h-{i}", host=f"127.77.0.{i + 1}", port=udp_port), client)
        for i in range(ECHONET_NODES)
    ]
    try:
        if not await csms.wait_reported(60):
            raise RuntimeError(f"charge points not reported: {csms.silent()[:5]}")
        await asyncio.gather(*(cp.publish() for cp in points))  # MeterValues from every charge point
        every = chargers + v2h
        polls_ms, echonet_ms = [], []
        for _ in range(PROTOCOL_POLLS):
            t0 = time.perf_counter()
            readings = await asyncio.gather(*(d.read() for d in every))
            polls_ms.append((time.perf_counter() - t0) * 1000)
            bad = [r.device for r in readings if r.quality.value != "good"]
            if bad:
                raise RuntimeError(f"devices not good during the benchmark: {bad[:5]}")
            t0 = time.perf_counter()
            await asyncio.gather(*(d.read() for d in v2h))
            echonet_ms.append((time.perf_counter() - t0) * 1000)
        trips_ms = []
        for i in range(SETPOINT_TRIPS):
            t0 = time.perf_counter()
            await chargers[i % OCPP_CHARGE_POINTS].write(-1.0 - (i % 5))
            trips_ms.append((time.perf_counter() - t0) * 1000)
        return polls_ms, echonet_ms, trips_ms
    finally:
        stop.set()
        await csms.stop()
        await asyncio.wait(tasks, timeout=10)
        client.close()
        for node in nodes:
            await node.stop()


def run() -> list[dict]:
    return _reference_portfolio() + _protocol_rows()


def _protocol_rows() -> list[dict]:
    polls_ms, echonet_ms, trips_ms = asyncio.run(_protocols())
    name = f"drivers_poll_{OCPP_CHARGE_POINTS}_ocpp_{ECHONET_NODES}_echonet"
    return [
        {"name": name, "metric": "full_poll_median", "value": statistics.median(polls_ms), "unit": "ms"},
        {"name": name, "metric": "full_poll_p95", "value": percentile(polls_ms, 0.95), "unit": "ms"},
        {
            "name": f"drivers_poll_{ECHONET_NODES}_echonet_nodes",
            "metric": "poll_median",
            "value": statistics.median(echonet_ms),
            "unit": "ms",
        },
        {
            "name": f"drivers_poll_{ECHONET_NODES}_echonet_nodes",
            "metric": "poll_p95",
            "value": percentile(echonet_ms, 0.95),
            "unit": "ms",
        },
        {
            "name": "drivers_ocpp_setpoint_round_trip",
            "metric": "median",
            "value": statistics.median(trips_ms),
            "unit": "ms",
        },
        {
            "name": "drivers_ocpp_setpoint_round_trip",
            "metric": "p95",
            "value": percentile(trips_ms, 0.95),
            "unit": "ms",
        },
    ]


def _reference_portfolio() -> list[dict]:
    import logging

    from ems.config import load_portfolio
    from ems.devices import controller_broker
    from simulations.twin import Twin, TwinOptions, TwinThread

    logging.getLogger("pymodbus").setLevel(logging.CRITICAL)
    with tempfile.TemporaryDirectory() as tmp:
        process, mqtt_port = start_broker(Path(tmp))
        runner = None
        try:
            portfolio = load_portfolio(CONFIG)
            options = TwinOptions(
                mqtt_port=mqtt_port,
                modbus_base_port=free_port_block(30),
                start=dt.datetime(2026, 4, 15, 12, 0, tzinfo=dt.timezone(dt.timedelta(hours=9))),
            )
            runner = TwinThread(Twin(portfolio, CONFIG, options)).start()
            served = runner.twin.portfolio
            broker = controller_broker(served, CONFIG, port=mqtt_port)
            polls_ms, elapsed, count, single_ms, modbus_per_s = asyncio.run(_measure(served, broker))
        finally:
            if runner is not None:
                runner.stop()
            process.terminate()
            process.wait(5)
    name = f"drivers_poll_reference_portfolio_{count}_devices"
    return [
        {"name": name, "metric": "full_poll_median", "value": statistics.median(polls_ms), "unit": "ms"},
        {"name": name, "metric": "full_poll_p95", "value": percentile(polls_ms, 0.95), "unit": "ms"},
        {"name": name, "metric": "devices_per_second", "value": count * POLLS / elapsed, "unit": "1/s"},
        {
            "name": "drivers_poll_modbus_devices_only",
            "metric": "devices_per_second",
            "value": modbus_per_s,
            "unit": "1/s",
        },
        {
            "name": "drivers_sunspec_battery_read",
            "metric": "single_read_median",
            "value": statistics.median(single_ms),
            "unit": "ms",
        },
    ]
