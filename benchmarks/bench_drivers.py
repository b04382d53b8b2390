"""Poll latency of the reference portfolio's devices against the digital twin over loopback.

Starts a private Mosquitto on a free port and the twin of config/arao.toml (24 SunSpec Modbus
TCP devices, 29 MQTT devices), then polls every device concurrently, ``POLLS`` times.
Rows: median and p95 of one full poll [ms], devices read per second by one process (all, and
the Modbus devices alone: an MQTT read returns the last retained telemetry without a round
trip), and the median of one SunSpec battery read done alone [ms]. The twin runs in the same
process (another thread), so the figures include its share of the interpreter.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import statistics
import tempfile
import time
from pathlib import Path

POLLS = 40
SINGLE_READS = 100
from benchmarks.harness import free_port_block, percentile, start_broker

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


def run() -> list[dict]:
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
            options = TwinOptions(mqtt_port=mqtt_port, modbus_base_port=free_port_block(30),
                                  start=dt.datetime(2026, 4, 15, 12, 0, tzinfo=dt.timezone(dt.timedelta(hours=9))))
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
        {"name": "drivers_poll_modbus_devices_only", "metric": "devices_per_second", "value": modbus_per_s, "unit": "1/s"},
        {"name": "drivers_sunspec_battery_read", "metric": "single_read_median", "value": statistics.median(single_ms), "unit": "ms"},
    ]
