"""What the central system knows of each charge point and connector, from its own messages.

Meter values are parsed here for both OCPP versions: power (``Power.Active.Import`` minus
``Power.Active.Export``, W or kW), the import register (``Energy.Active.Import.Register``, Wh
or kWh) and the vehicle's ``SoC`` [%]; per-phase values are left out when the total is there.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from dataclasses import dataclass, field
from typing import Any

# 1.6 ChargePointStatus values with a vehicle at the connector
OCCUPIED_16 = {"Preparing", "Charging", "SuspendedEV", "SuspendedEVSE", "Finishing"}


@dataclass
class ConnectorState:
    status: str | None = None
    import_w: float | None = None  # charging the vehicle, OCPP's own direction
    energy_import_kwh: float | None = None
    soc_percent: float | None = None
    meter_at: float = 0.0  # monotonic time of the last MeterValues
    transaction_id: int | str | None = None
    id_tag: str | None = None
    setpoint_kw: float | None = None  # the last set-point the charge point accepted

    @property
    def reported(self) -> bool:
        """The charge point has said something about this connector since it connected."""
        return (
            self.status is not None
            or self.meter_at > 0
            or self.transaction_id is not None
            or self.soc_percent is not None
        )

    @property
    def plugged(self) -> bool | None:
        if self.transaction_id is not None:
            return True
        if self.status is None:
            return None
        return self.status in OCCUPIED_16 or self.status == "Occupied"


@dataclass
class ChargePointSession:
    charge_point_id: str
    version: str = ""
    connected: bool = False
    booted: bool = False
    vendor: str = ""
    model: str = ""
    connections: int = 0
    last_seen: float = 0.0
    disconnected_at: dt.datetime | None = None
    connectors: dict[int, ConnectorState] = field(default_factory=dict)
    handler: Any = None  # the ocpp ChargePoint object of the live connection (the library ships no types)
    ready: asyncio.Event = field(default_factory=asyncio.Event)  # the connection's failsafe is in place

    def connector(self, number: int) -> ConnectorState:
        return self.connectors.setdefault(number, ConnectorState())

    def seen(self) -> None:
        self.last_seen = time.monotonic()

    def transaction(self, transaction_id) -> tuple[int, ConnectorState] | None:
        for number, state in self.connectors.items():
            if state.transaction_id is not None and str(state.transaction_id) == str(transaction_id):
                return number, state
        return None


POWER_SCALE = {"W": 1.0, "kW": 1000.0}
ENERGY_SCALE = {"Wh": 0.001, "kWh": 1.0}


def apply_meter_values(state: ConnectorState, meter_value: list[dict]) -> None:
    """Update ``state`` from a MeterValues list (either version's field names, snake_case)."""
    for entry in meter_value or []:
        totals: dict[str, float] = {}
        phased: dict[str, float] = {}
        for sample in entry.get("sampled_value", []):
            measurand = sample.get("measurand") or "Energy.Active.Import.Register"
            unit, multiplier = _unit(sample)
            try:
                value = float(sample["value"]) * 10.0**multiplier
            except (KeyError, TypeError, ValueError):
                continue
            if measurand.startswith("Power.Active"):
                value *= POWER_SCALE.get(unit or "W", 1.0)
            elif measurand.startswith("Energy.Active"):
                value *= ENERGY_SCALE.get(unit or "Wh", 0.001)
            target = phased if sample.get("phase") else totals
            target[measurand] = target.get(measurand, 0.0) + value
        for key, value in phased.items():
            totals.setdefault(key, value)  # phases summed, only where no total came
        if "Power.Active.Import" in totals or "Power.Active.Export" in totals:
            state.import_w = totals.get("Power.Active.Import", 0.0) - totals.get("Power.Active.Export", 0.0)
            state.meter_at = time.monotonic()
        if "Energy.Active.Import.Register" in totals:
            state.energy_import_kwh = totals["Energy.Active.Import.Register"]
            state.meter_at = time.monotonic()
        if "SoC" in totals:
            state.soc_percent = totals["SoC"]


def _unit(sample: dict) -> tuple[str | None, int]:
    measure = sample.get("unit_of_measure")  # 2.0.1: {"unit": "W", "multiplier": 0}
    if isinstance(measure, dict):
        return measure.get("unit"), int(measure.get("multiplier", 0) or 0)
    return sample.get("unit"), 0
