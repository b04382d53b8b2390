"""The one clamp every set-point passes (docs/architecture.md, Contracts): configured ratings and limits.

A battery set-point is held within its charge and discharge ratings and kept from pushing the
SoC past its configured window; a charger's within its ratings, zero without a plugged vehicle,
no discharge unless both the charger and the plugged vehicle allow it, and no charging of a
full vehicle. Any other device takes no set-point: :class:`SetpointRefused`. Every clamp and
refusal is logged with its reason.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from drivers.api import Reading
from ems.config.schema import Battery, Charger, Portfolio

log = logging.getLogger(__name__)


class SetpointRefused(ValueError):
    def __init__(self, device: str, reason: str):
        self.device = device
        self.reason = reason
        super().__init__(f"set-point for {device!r} refused: {reason}")


@dataclass(frozen=True)
class GuardDecision:
    device: str
    requested_kw: float
    allowed_kw: float
    reasons: tuple[str, ...] = field(default=())

    @property
    def clamped(self) -> bool:
        return abs(self.allowed_kw - self.requested_kw) > 1e-9


class WriteGuard:
    def __init__(self, portfolio: Portfolio):
        self.batteries = {b.id: b for b in portfolio.batteries}
        self.chargers = {c.id: c for c in portfolio.chargers}
        self.vehicles = {v.id: v for v in portfolio.vehicles}
        self.all_ids = {
            a.id for t in ("grid_connections", "pv_arrays", "loads", "shelters") for a in getattr(portfolio, t)
        }
        self.all_ids |= set(self.vehicles)

    def check(self, device: str, setpoint_kw: float, reading: Reading | None = None) -> GuardDecision:
        """The set-point the device may get; raises :class:`SetpointRefused` if it takes none."""
        if setpoint_kw != setpoint_kw or setpoint_kw in (float("inf"), float("-inf")):
            raise self._refuse(device, f"set-point {setpoint_kw} is not a finite number")
        if device in self.batteries:
            low, high, reasons = self._battery_limits(self.batteries[device], reading)
        elif device in self.chargers:
            low, high, reasons = self._charger_limits(self.chargers[device], reading)
        elif device in self.all_ids:
            raise self._refuse(device, "device is not writable (meter, PV array, load or vehicle)")
        else:
            raise self._refuse(device, "no such device in the portfolio")
        allowed = max(low, min(high, setpoint_kw))
        decision = GuardDecision(device, setpoint_kw, allowed, tuple(reasons))
        if decision.clamped:
            log.warning(
                "%s: set-point %.2f kW clamped to %.2f kW: %s", device, setpoint_kw, allowed, "; ".join(reasons)
            )
        else:
            log.info("%s: set-point %.2f kW passed the guard", device, setpoint_kw)
        return decision

    def _refuse(self, device: str, reason: str) -> SetpointRefused:
        log.warning("%s: set-point refused: %s", device, reason)
        return SetpointRefused(device, reason)

    @staticmethod
    def _battery_limits(b: Battery, reading: Reading | None) -> tuple[float, float, list[str]]:
        low, high = -b.charge_power_kw, b.discharge_power_kw
        reasons = [f"ratings: charge {b.charge_power_kw} kW, discharge {b.discharge_power_kw} kW"]
        soc = reading.soc_fraction if reading is not None else None
        if soc is not None and soc <= b.soc_min_fraction:
            high = 0.0
            reasons.append(f"SoC {soc:.3f} at or below soc_min_fraction {b.soc_min_fraction}")
        if soc is not None and soc >= b.soc_max_fraction:
            low = 0.0
            reasons.append(f"SoC {soc:.3f} at or above soc_max_fraction {b.soc_max_fraction}")
        return low, high, reasons

    def _charger_limits(self, c: Charger, reading: Reading | None) -> tuple[float, float, list[str]]:
        low, high = -c.charge_power_kw, c.discharge_power_kw
        reasons = [f"ratings: charge {c.charge_power_kw} kW, discharge {c.discharge_power_kw} kW"]
        if reading is None or reading.plugged is None:
            return low, min(high, 0.0), reasons + ["plug state unknown: no discharge"]
        if not reading.plugged:
            return 0.0, 0.0, reasons + ["no vehicle plugged"]
        vehicle = self.vehicles.get(reading.vehicle_id or "")
        if vehicle is None:
            return low, 0.0, reasons + [f"plugged vehicle {reading.vehicle_id!r} unknown: no discharge"]
        if not vehicle.v2g_allowed:
            high = 0.0
            reasons.append(f"vehicle {vehicle.id} does not allow V2G")
        soc = reading.soc_fraction
        if soc is not None and soc >= vehicle.soc_max_fraction:
            low = 0.0
            reasons.append(f"vehicle {vehicle.id} SoC {soc:.3f} at or above {vehicle.soc_max_fraction}")
        if soc is not None and soc <= vehicle.soc_min_fraction:
            high = 0.0
            reasons.append(f"vehicle {vehicle.id} SoC {soc:.3f} at or below {vehicle.soc_min_fraction}")
        return low, high, reasons
