"""The BCP drill against the digital twin: read every device once over the real protocols
(SunSpec Modbus TCP, MQTT) and turn the readings into the energy on board of each battery and
vehicle. Only reads: nothing here writes a set-point or sends a command, and the planner is
handed numbers, not drivers.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from pathlib import Path

from drivers.api import Quality, Reading
from ems.config.schema import Portfolio
from ems.devices import DeviceSet, controller_broker
from simulations.twin import Twin, TwinOptions, TwinThread


@dataclass
class TwinSnapshot:
    soc_kwh: dict[str, float]  # battery or vehicle id -> energy on board
    readings: list[Reading]
    twin: Twin  # stopped; its servers and chargers keep what was written to them (nothing)


def soc_from_readings(portfolio: Portfolio, readings: list[Reading]) -> dict[str, float]:
    """Batteries from their own SoC; vehicles from the charger they are plugged into, else from
    their own telemetry."""
    batteries = {b.id: b.capacity_kwh for b in portfolio.batteries}
    vehicles = {v.id: v.battery_kwh for v in portfolio.vehicles}
    soc: dict[str, float] = {}
    # each good reading with its state of charge held within 0..1
    good = [
        (r, min(1.0, max(0.0, r.soc_fraction)))
        for r in readings
        if r.quality != Quality.MISSING and r.soc_fraction is not None
    ]
    for r, fraction in good:
        if r.device in batteries:
            soc[r.device] = fraction * batteries[r.device]
        elif r.device in vehicles:
            soc.setdefault(r.device, fraction * vehicles[r.device])
    for r, fraction in good:
        if r.plugged and r.vehicle_id is not None and r.vehicle_id in vehicles:
            soc[r.vehicle_id] = fraction * vehicles[r.vehicle_id]
    return soc


async def _read_when_complete(devices: DeviceSet, wait_s: float) -> list[Reading]:
    """Read all devices, again until the MQTT ones have published or ``wait_s`` has passed."""
    deadline = time.monotonic() + wait_s
    while True:
        readings = await devices.read_all()
        if all(r.quality != Quality.MISSING for r in readings) or time.monotonic() >= deadline:
            return readings
        await asyncio.sleep(0.2)


def twin_snapshot(
    portfolio: Portfolio,
    config_path: str | Path,
    mqtt_host: str | None = None,
    mqtt_port: int | None = None,
    modbus_base_port: int | None = None,
    wait_s: float = 5.0,
) -> TwinSnapshot:
    """Start the twin, read every device over its protocol, stop the twin."""
    twin = Twin(
        portfolio, config_path, TwinOptions(mqtt_host=mqtt_host, mqtt_port=mqtt_port, modbus_base_port=modbus_base_port)
    )
    runner = TwinThread(twin).start()
    try:
        broker = controller_broker(twin.portfolio, config_path, mqtt_host, mqtt_port)
        # its own client id: a drill never takes the running controller's session over
        broker = broker.model_copy(update={"client_id": f"{broker.client_id}-bcp-drill"})

        async def read() -> list[Reading]:
            devices = DeviceSet(twin.portfolio, broker)
            await devices.open()
            try:
                return await _read_when_complete(devices, wait_s)
            finally:
                await devices.close()

        readings = asyncio.run(read())
    finally:
        runner.stop()
    return TwinSnapshot(soc_kwh=soc_from_readings(portfolio, readings), readings=readings, twin=twin)
