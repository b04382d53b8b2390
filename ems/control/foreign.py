"""Set-points the controller did not write: found on every poll, recorded, then undone.

Modbus TCP has no authentication: anything that reaches a battery's port can write its
set-point registers. So every poll compares the set-point each watched device reports (read
back from its registers, ``Reading.setpoint_kw``) with what the controller last wrote to it; a
difference beyond the registers' resolution is a ``foreign_write``: the controller records
the device, the value seen and the value expected, and writes its own value again.

Only devices whose set-point lives in registers anyone on the network can write are watched
(writable Modbus devices). MQTT chargers are protected by the broker's ACL instead, and forget
their set-point by design when a vehicle leaves. A device that restarted and lost its
set-point is reported the same way, which is what an operator wants to hear about too.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from drivers.api import Quality, Reading
from ems.control.collaborators import Devices

MIN_TOLERANCE_KW = 0.1  # above the resolution of a SunSpec rate register (0.1 % of 100 kW)
RELATIVE_TOLERANCE = 0.01  # of the device's rating


@dataclass(frozen=True)
class ForeignWrite:
    """A set-point seen on a device that differs from what the controller wrote."""

    device: str
    seen_kw: float
    expected_kw: float

    def message(self) -> str:
        return (
            f"{self.device}: set-point {self.seen_kw:+.2f} kW found, the controller wrote {self.expected_kw:+.2f} kW; "
            f"written by someone else: recorded and re-asserted"
        )

    def details(self) -> dict[str, Any]:
        return {"device": self.device, "seen_kw": self.seen_kw, "expected_kw": self.expected_kw}


def watched_devices(devices: Devices, ratings_kw: Mapping[str, float]) -> dict[str, float]:
    """Writable Modbus devices (id -> tolerance in kW) of an ``ems.devices.DeviceSet``."""
    modbus = {e.asset_id for e in getattr(devices, "endpoints", ()) if e.protocol == "modbus"}
    writable = {name for name, driver in devices.drivers.items() if getattr(driver, "writable", False)}
    return {name: max(MIN_TOLERANCE_KW, RELATIVE_TOLERANCE * ratings_kw.get(name, 0.0)) for name in modbus & writable}


def find_foreign_writes(
    readings: Iterable[Reading],
    expected_kw: Mapping[str, float],
    current_kw: Mapping[str, float],
    watched: Mapping[str, float],
) -> list[ForeignWrite]:
    """Devices whose reported set-point is not the controller's.

    ``expected_kw`` is what the controller had written when the poll began, ``current_kw`` what
    it has written now: a device written by the controller during the poll is skipped (its
    reading may predate the write). Missing or unreadable set-points are not judged.
    """
    found = []
    for reading in readings:
        tolerance = watched.get(reading.device)
        expected = expected_kw.get(reading.device)
        if tolerance is None or expected is None or current_kw.get(reading.device) != expected:
            continue
        if reading.quality is Quality.MISSING or reading.setpoint_kw is None:
            continue
        if abs(reading.setpoint_kw - expected) > tolerance:
            found.append(ForeignWrite(reading.device, reading.setpoint_kw, expected))
    return found
