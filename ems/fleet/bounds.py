"""Physical bounds of the fleet messages, checked where they arrive (MQTT) and before a plan uses them.

A message that parses can still be impossible: a state of charge above the vehicle's battery, a
plan that sends a vehicle to a charger the portfolio does not have, a departure energy the
battery cannot hold. Each check returns ``(field, reason)`` for the first problem, or None.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from ems.fleet import VehiclePlan, VehicleState

SOC_TOLERANCE_KWH = 0.01  # rounding of a reported state of charge


@dataclass(frozen=True)
class FleetBounds:
    """What the portfolio allows: each vehicle's battery [kWh] and the charger ids."""

    battery_kwh: dict[str, float] = field(default_factory=dict)
    charger_ids: frozenset[str] | None = None  # None: chargers are not checked

    @classmethod
    def from_portfolio(cls, portfolio) -> FleetBounds:
        return cls({v.id: v.battery_kwh for v in portfolio.vehicles}, frozenset(c.id for c in portfolio.chargers))

    def check_state(self, state: VehicleState) -> tuple[str, str] | None:
        if not math.isfinite(state.soc_kwh):
            return "soc_kwh", f"{state.soc_kwh} is not a finite number"
        capacity = self.battery_kwh.get(state.vehicle_id)
        if capacity is not None and state.soc_kwh > capacity + SOC_TOLERANCE_KWH:
            return "soc_kwh", f"{state.soc_kwh} kWh exceeds the vehicle's battery of {capacity} kWh"
        if state.charger_id is not None and self.charger_ids is not None and state.charger_id not in self.charger_ids:
            return "charger_id", f"unknown charger {state.charger_id!r}"
        return None

    def check_plan(self, plan: VehiclePlan) -> tuple[str, str] | None:
        capacity = self.battery_kwh.get(plan.vehicle_id)
        for index, window in enumerate(plan.windows):
            where = f"windows.{index}"
            if self.charger_ids is not None and window.charger_id not in self.charger_ids:
                return f"{where}.charger_id", f"unknown charger {window.charger_id!r}"
            for name in ("departure_energy_kwh", "trip_energy_kwh"):
                value = getattr(window, name)
                if not math.isfinite(value):
                    return f"{where}.{name}", f"{value} is not a finite number"
                if capacity is not None and value > capacity + SOC_TOLERANCE_KWH:
                    return f"{where}.{name}", f"{value} kWh exceeds the vehicle's battery of {capacity} kWh"
        for index, stop in enumerate(plan.route):
            if stop.charger_id is not None and self.charger_ids is not None and stop.charger_id not in self.charger_ids:
                return f"route.{index}.charger_id", f"unknown charger {stop.charger_id!r}"
        return None
