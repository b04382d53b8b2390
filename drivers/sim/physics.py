"""Physics of the simulated devices. Every device has ``step(now, dt_s)`` and ``power_kw``.

Sign convention: ``power_kw`` is positive into the site's bus (PV, discharging, import).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

SECONDS_PER_HOUR = 3600.0


def profile_at(values: tuple[float, ...], now: dt.datetime, zone: ZoneInfo) -> float:
    """A 48-slot daily profile, linearly interpolated between slot centres (local time)."""
    local = now.astimezone(zone)
    slots = len(values)
    position = (local.hour * 3600 + local.minute * 60 + local.second) / (86400 / slots) - 0.5
    low = int(position // 1) % slots
    frac = position - (position // 1)
    return values[low] * (1 - frac) + values[(low + 1) % slots] * frac


@dataclass
class EnergyCounters:
    import_kwh: float = 0.0  # energy into the bus from this device
    export_kwh: float = 0.0

    def add(self, power_kw: float, dt_s: float) -> None:
        energy = power_kw * dt_s / SECONDS_PER_HOUR
        if energy >= 0:
            self.import_kwh += energy
        else:
            self.export_kwh -= energy


@dataclass
class SimPv:
    """A PV array following a per-kWp profile, limited by its inverter."""

    name: str
    capacity_kwp: float
    profile: tuple[float, ...]
    zone: ZoneInfo
    inverter_limit_kw: float | None = None
    power_kw: float = 0.0
    energy: EnergyCounters = field(default_factory=EnergyCounters)

    def step(self, now: dt.datetime, dt_s: float) -> None:
        self.energy.add(self.power_kw, dt_s)
        power = self.capacity_kwp * profile_at(self.profile, now, self.zone)
        limit = self.inverter_limit_kw or self.capacity_kwp
        self.power_kw = max(0.0, min(power, limit))


@dataclass
class SimMeter:
    """A meter: its power is set from outside (a load profile, or a site's balance)."""

    name: str
    power_kw: float = 0.0
    energy: EnergyCounters = field(default_factory=EnergyCounters)

    def step(self, now: dt.datetime, dt_s: float) -> None:
        self.energy.add(self.power_kw, dt_s)


@dataclass
class SimLoad(SimMeter):
    peak_kw: float = 0.0
    profile: tuple[float, ...] = ()
    zone: ZoneInfo = ZoneInfo("UTC")  # noqa: RUF009 - ZoneInfo instances are immutable and cached

    def step(self, now: dt.datetime, dt_s: float) -> None:
        super().step(now, dt_s)
        self.power_kw = -self.peak_kw * profile_at(self.profile, now, self.zone)


@dataclass
class SimBattery:
    """A battery: SoC integrates power with one-way efficiencies, within power and SoC limits."""

    name: str
    capacity_kwh: float
    charge_power_kw: float
    discharge_power_kw: float
    soc_kwh: float
    charge_efficiency: float = 0.95
    discharge_efficiency: float = 0.95
    soc_min_fraction: float = 0.0
    soc_max_fraction: float = 1.0
    setpoint_kw: float = 0.0
    power_kw: float = 0.0
    energy: EnergyCounters = field(default_factory=EnergyCounters)

    @property
    def soc_fraction(self) -> float:
        return self.soc_kwh / self.capacity_kwh

    def apply_setpoint(self, setpoint_kw: float) -> None:
        """Take a set-point now; the device limits it to what it can do."""
        self.setpoint_kw = setpoint_kw
        self.power_kw = self._feasible(setpoint_kw, dt_s=1.0)

    def _feasible(self, setpoint_kw: float, dt_s: float) -> float:
        hours = dt_s / SECONDS_PER_HOUR
        if setpoint_kw > 0:
            available_kwh = max(0.0, self.soc_kwh - self.soc_min_fraction * self.capacity_kwh)
            return min(setpoint_kw, self.discharge_power_kw, available_kwh * self.discharge_efficiency / hours)
        room_kwh = max(0.0, self.soc_max_fraction * self.capacity_kwh - self.soc_kwh)
        return -min(-setpoint_kw, self.charge_power_kw, room_kwh / self.charge_efficiency / hours)

    def step(self, now: dt.datetime, dt_s: float) -> None:
        if dt_s <= 0:
            return
        self.power_kw = self._feasible(self.setpoint_kw, dt_s)
        hours = dt_s / SECONDS_PER_HOUR
        if self.power_kw > 0:
            self.soc_kwh -= self.power_kw * hours / self.discharge_efficiency
        else:
            self.soc_kwh += -self.power_kw * hours * self.charge_efficiency
        self.energy.add(self.power_kw, dt_s)


@dataclass(frozen=True)
class PlugWindow:
    """The vehicle is plugged into ``charger_id`` from ``plug_in`` to ``plug_out``; the trip that
    follows uses ``trip_energy_kwh``."""

    charger_id: str
    plug_in: dt.datetime
    plug_out: dt.datetime
    trip_energy_kwh: float = 0.0


@dataclass
class SimEv:
    """A simulated electric vehicle (a taxi of the twin): its battery, where it is, what it is
    plugged into. Without a route it follows its plug windows (``step``); on a route the twin
    moves it (``simulations.twin_routes``), and ``position`` and ``odometer_km`` change."""

    name: str
    battery_kwh: float
    soc_kwh: float
    soc_min_fraction: float = 0.1
    soc_max_fraction: float = 1.0
    v2g_allowed: bool = False
    windows: tuple[PlugWindow, ...] = ()
    charger_id: str | None = None
    trip_energy_due_kwh: float = 0.0  # consumed by the trip under way, charged on return
    position: tuple[float, float] | None = None  # (lat, lon) in degrees, when known
    odometer_km: float = 0.0

    @property
    def soc_fraction(self) -> float:
        return self.soc_kwh / self.battery_kwh

    def window_at(self, now: dt.datetime) -> PlugWindow | None:
        for window in self.windows:
            if window.plug_in <= now < window.plug_out:
                return window
        return None

    def step(self, now: dt.datetime, dt_s: float) -> None:
        """Plug in or drive away according to the plan."""
        window = self.window_at(now)
        if window is None and self.charger_id is not None:
            departed = [w for w in self.windows if w.plug_out <= now]
            self.trip_energy_due_kwh = departed[-1].trip_energy_kwh if departed else 0.0
            self.charger_id = None
        elif window is not None and self.charger_id is None:
            self.soc_kwh = max(0.0, self.soc_kwh - self.trip_energy_due_kwh)
            self.trip_energy_due_kwh = 0.0
            self.charger_id = window.charger_id


@dataclass
class SimCharger:
    """A charger: power flows only with a vehicle plugged; discharge only if both allow it."""

    name: str
    charge_power_kw: float
    discharge_power_kw: float = 0.0
    efficiency: float = 0.95
    vehicle: SimEv | None = None  # plugged vehicle, set by the twin each step
    setpoint_kw: float = 0.0
    power_kw: float = 0.0
    energy: EnergyCounters = field(default_factory=EnergyCounters)

    @property
    def bidirectional(self) -> bool:
        return self.discharge_power_kw > 0

    def limits_kw(self, dt_s: float = 1.0) -> tuple[float, float]:
        """(most negative, most positive) power possible now [kW]."""
        vehicle = self.vehicle
        if vehicle is None:
            return 0.0, 0.0
        hours = dt_s / SECONDS_PER_HOUR
        room_kwh = max(0.0, vehicle.soc_max_fraction * vehicle.battery_kwh - vehicle.soc_kwh)
        charge = min(self.charge_power_kw, room_kwh / self.efficiency / hours)
        discharge = 0.0
        if self.bidirectional and vehicle.v2g_allowed:
            available_kwh = max(0.0, vehicle.soc_kwh - vehicle.soc_min_fraction * vehicle.battery_kwh)
            discharge = min(self.discharge_power_kw, available_kwh * self.efficiency / hours)
        return -charge, discharge

    def apply_setpoint(self, setpoint_kw: float) -> float:
        self.setpoint_kw = setpoint_kw
        low, high = self.limits_kw()
        self.power_kw = max(low, min(high, setpoint_kw))
        return self.power_kw

    def step(self, now: dt.datetime, dt_s: float) -> None:
        if dt_s <= 0:
            return
        low, high = self.limits_kw(dt_s)
        self.power_kw = max(low, min(high, self.setpoint_kw))
        vehicle = self.vehicle
        if vehicle is not None:
            hours = dt_s / SECONDS_PER_HOUR
            if self.power_kw < 0:
                vehicle.soc_kwh += -self.power_kw * hours * self.efficiency
            else:
                vehicle.soc_kwh -= self.power_kw * hours / self.efficiency
        self.energy.add(self.power_kw, dt_s)
