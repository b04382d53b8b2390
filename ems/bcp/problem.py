"""The BCP planner's input: shelters, batteries, vehicles and charging sites on an outage grid.

Pure data: arrays have one value per step (the step starting at ``start + t * step``); powers
are kW averaged over the step, energies kWh. Building one reads files and the config
(:mod:`ems.bcp.inputs`); planning it (:func:`ems.bcp.plan_bcp`) reads nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ems.config.bcp import BcpSettings


class BcpProblemError(ValueError):
    """The BCP problem is inconsistent; the message names the shelter, battery or vehicle."""


@dataclass(frozen=True)
class ShelterSpec:
    id: str
    site: str
    name: str
    priority: int  # 1 is most important
    demand_kw: np.ndarray  # critical load per step [kW]
    pv_kw: np.ndarray  # PV available at the shelter's site per step [kW]
    v2h_points: int  # vehicles that can plug in at once
    v2h_discharge_kw: float  # most power one V2H point delivers [kW]
    v2h_charge_kw: float  # most power one V2H point takes from the shelter bus [kW]
    v2h_efficiency: float  # one-way, each direction
    hub_site: str | None  # the grid-kept charging site nearest to it (None: no site keeps the grid)


@dataclass(frozen=True)
class StationaryBatterySpec:
    id: str
    shelter_id: str  # the shelter it feeds (it sits at that shelter's site)
    soc_min_kwh: float
    soc_max_kwh: float
    initial_soc_kwh: float
    charge_max_kw: float
    discharge_max_kw: float
    charge_efficiency: float
    discharge_efficiency: float


@dataclass(frozen=True)
class VehicleSpec:
    id: str
    soc_min_kwh: float  # never planned below it, with the drive back counted on top
    soc_max_kwh: float
    initial_soc_kwh: float
    trip_to_kwh: dict[str, float]  # shelter -> energy to drive there [kWh]
    trip_back_kwh: dict[str, float]  # shelter -> energy to drive from it to a grid-kept charger [kWh]
    trip_to_h: dict[str, float]  # shelter -> driving time there [h]
    trip_back_h: dict[str, float]  # shelter -> driving time back to a charger [h]
    trip_to_km: dict[str, float]
    trip_back_km: dict[str, float]
    # The ride service, for as long as the vehicle is not called to a shelter (None: no duties):
    service_kwh: np.ndarray | None = None  # energy its duties drive in each step [kWh]
    service_away: np.ndarray | None = None  # share of each step it is on the road for them, 0..1

    def service_kwh_in(self, steps: list[int]) -> float:
        return 0.0 if self.service_kwh is None else float(sum(self.service_kwh[t] for t in steps))

    def parked_share_in(self, steps: list[int]) -> float:
        """Share of these steps it is off duty (free to charge) while in the ride service."""
        if self.service_away is None or not steps:
            return 1.0
        return 1.0 - float(sum(self.service_away[t] for t in steps)) / len(steps)


@dataclass(frozen=True)
class ChargingSiteSpec:
    site: str  # keeps the grid in the outage
    chargers: int
    charge_kw: float  # per charger
    efficiency: float
    # What the site's grid connection can give the chargers in each step: import limit + the
    # site's PV - its own load - charging of taxis that stay in service and cannot discharge
    # [kW, grid side]; None: no limit beyond the chargers.
    import_headroom_kw: np.ndarray | None = None

    def headroom_kw(self, t: int) -> float:
        """Most power all its chargers draw together in step t [kW, grid side]."""
        full = self.chargers * self.charge_kw
        return full if self.import_headroom_kw is None else min(full, max(0.0, float(self.import_headroom_kw[t])))


def _bcp_default(key: str):
    """The default of ``[bcp] key``: the config schema is the one place a default is set."""
    return BcpSettings.model_fields[key].default


@dataclass(frozen=True)
class BcpSolverSettings:
    """The solver's settings and the objective's weights (docs/bcp.md, ``[bcp]``)."""

    time_limit_s: float = _bcp_default("time_limit_s")
    mip_gap: float = _bcp_default("mip_gap")
    priority_weight_ratio: float = _bcp_default("priority_weight_ratio")
    up_hour_weight_kwh: float = _bcp_default("up_hour_weight_kwh")  # earliness premium (second goal: hours up)
    vehicle_call_weight_kwh: float = _bcp_default("vehicle_call_weight_kwh")
    drive_weight_kwh: float = _bcp_default("drive_weight_kwh")
    dwell_weight_kwh: float = _bcp_default("dwell_weight_kwh")
    service_weight_kwh: float = _bcp_default("service_weight_kwh")
    terminal_weight_kwh: float = _bcp_default("terminal_weight_kwh")
    secondary_time_limit_s: float = _bcp_default("secondary_time_limit_s")


@dataclass(frozen=True)
class BcpProblem:
    start: pd.Timestamp
    step_minutes: int
    steps: int
    shelters: tuple[ShelterSpec, ...]
    batteries: tuple[StationaryBatterySpec, ...] = ()
    vehicles: tuple[VehicleSpec, ...] = ()
    charging_sites: tuple[ChargingSiteSpec, ...] = ()
    settings: BcpSolverSettings = field(default_factory=BcpSolverSettings)
    excluded_vehicles: dict[str, str] = field(default_factory=dict)  # id -> why it stays in ride service
    sheltered_with_grid: tuple[str, ...] = ()  # shelters whose site keeps the grid (always up)
    rotation_steps: int = 1  # a vehicle's place is decided per block of this many steps

    @property
    def step_h(self) -> float:
        return self.step_minutes / 60.0

    @property
    def index(self) -> pd.DatetimeIndex:
        return pd.date_range(self.start, periods=self.steps, freq=f"{self.step_minutes}min")

    def validate(self) -> None:
        if self.start.tzinfo is None:
            raise BcpProblemError("start must be timezone-aware")
        if self.rotation_steps < 1:
            raise BcpProblemError("rotation_steps must be at least 1")
        if self.steps < 1:
            raise BcpProblemError("the outage needs at least one step")
        shelter_ids = [s.id for s in self.shelters]
        if len(set(shelter_ids)) != len(shelter_ids):
            raise BcpProblemError("duplicate shelter ids")
        for s in self.shelters:
            for name in ("demand_kw", "pv_kw"):
                values = getattr(s, name)
                if len(values) != self.steps:
                    raise BcpProblemError(f"shelter {s.id}: {name} has {len(values)} values, expected {self.steps}")
                if np.min(values) < 0:
                    raise BcpProblemError(f"shelter {s.id}: {name} is negative")
        for b in self.batteries:
            if b.shelter_id not in shelter_ids:
                raise BcpProblemError(f"battery {b.id}: feeds unknown shelter {b.shelter_id!r}")
            if not 0 <= b.soc_min_kwh <= b.soc_max_kwh:
                raise BcpProblemError(f"battery {b.id}: needs 0 <= soc_min_kwh <= soc_max_kwh")
        for v in self.vehicles:
            if not 0 <= v.soc_min_kwh <= v.soc_max_kwh:
                raise BcpProblemError(f"vehicle {v.id}: needs 0 <= soc_min_kwh <= soc_max_kwh")
            if v.initial_soc_kwh < 0:
                raise BcpProblemError(f"vehicle {v.id}: initial_soc_kwh is negative")
            missing = [s for s in shelter_ids if s not in v.trip_to_kwh or s not in v.trip_back_kwh]
            if missing:
                raise BcpProblemError(f"vehicle {v.id}: no trip energy to shelters {', '.join(missing)}")
            for name in ("service_kwh", "service_away"):
                values = getattr(v, name)
                if values is not None and (len(values) != self.steps or np.min(values) < 0):
                    raise BcpProblemError(f"vehicle {v.id}: {name} needs {self.steps} values, none negative")
            if v.service_away is not None and np.max(v.service_away) > 1:
                raise BcpProblemError(f"vehicle {v.id}: service_away is a share of each step, at most 1")
        for c in self.charging_sites:
            if c.import_headroom_kw is not None and len(c.import_headroom_kw) != self.steps:
                raise BcpProblemError(
                    f"charging site {c.site}: import_headroom_kw has {len(c.import_headroom_kw)} values, "
                    f"expected {self.steps}"
                )
