"""What the controller knows of the devices right now, from the latest readings."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from drivers.api import Quality, Reading
from ems.config.schema import Portfolio


@dataclass
class DeviceStatus:
    reading: Reading | None = None
    last_good: dt.datetime | None = None
    missing_since: dt.datetime | None = None


class LiveState:
    """Latest reading per device, availability, and the states a plan starts from."""

    def __init__(self, portfolio: Portfolio):
        self.portfolio = portfolio
        self.devices: dict[str, DeviceStatus] = {}
        self.batteries = {b.id: b for b in portfolio.batteries}
        self.vehicles = {v.id: v for v in portfolio.vehicles}
        self.chargers = {c.id: c for c in portfolio.chargers}

    def update(self, readings: list[Reading], now: dt.datetime) -> tuple[list[str], list[str]]:
        """Take a poll's readings; return (devices newly missing, devices back)."""
        lost, back = [], []
        for reading in readings:
            status = self.devices.setdefault(reading.device, DeviceStatus())
            status.reading = reading
            if reading.quality == Quality.MISSING:
                if status.missing_since is None:
                    status.missing_since = now
                    lost.append(reading.device)
            else:
                if status.missing_since is not None:
                    back.append(reading.device)
                status.missing_since = None
                status.last_good = now
        return lost, back

    def missing(self) -> set[str]:
        return {device for device, status in self.devices.items() if status.missing_since is not None}

    def reading(self, device: str) -> Reading | None:
        status = self.devices.get(device)
        return status.reading if status else None

    def _good(self, device: str) -> Reading | None:
        reading = self.reading(device)
        # an out-of-range reading is not physical: its values never seed a plan
        return (
            reading if reading is not None and reading.quality not in (Quality.MISSING, Quality.OUT_OF_RANGE) else None
        )

    def battery_soc_kwh(self) -> dict[str, float]:
        socs = {}
        for battery_id, battery in self.batteries.items():
            reading = self._good(battery_id)
            if reading is not None and reading.soc_fraction is not None:
                socs[battery_id] = min(1.0, max(0.0, reading.soc_fraction)) * battery.capacity_kwh
        return socs

    def plugged(self) -> dict[str, str | None]:
        """Vehicle -> the charger it is plugged into (None: known to be unplugged)."""
        plugged: dict[str, str | None] = {}
        for charger_id in self.chargers:
            reading = self._good(charger_id)
            if reading is not None and reading.plugged and reading.vehicle_id in self.vehicles:
                plugged[reading.vehicle_id] = charger_id
        for vehicle_id in self.vehicles:
            if vehicle_id not in plugged and self._good(vehicle_id) is not None:
                plugged[vehicle_id] = None
        return plugged

    def vehicle_soc_kwh(self) -> dict[str, float]:
        socs = {}
        for charger_id in self.chargers:
            reading = self._good(charger_id)
            if (
                reading is not None
                and reading.plugged
                and reading.vehicle_id in self.vehicles
                and reading.soc_fraction is not None
            ):
                socs[reading.vehicle_id] = reading.soc_fraction * self.vehicles[reading.vehicle_id].battery_kwh
        for vehicle_id, vehicle in self.vehicles.items():
            reading = self._good(vehicle_id)
            if vehicle_id not in socs and reading is not None and reading.soc_fraction is not None:
                socs[vehicle_id] = reading.soc_fraction * vehicle.battery_kwh
        return socs
