"""Small BCP problems built by hand."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ems.bcp.problem import (
    BcpProblem,
    BcpSolverSettings,
    ChargingSiteSpec,
    ShelterSpec,
    StationaryBatterySpec,
    VehicleSpec,
)

START = pd.Timestamp("2026-09-15 14:00", tz="Asia/Tokyo")


def shelter(
    id: str, demand_kw: float, steps: int, priority: int = 1, points: int = 1, pv_kw: float = 0.0
) -> ShelterSpec:
    return ShelterSpec(
        id=id,
        site=f"site_{id}",
        name=id,
        priority=priority,
        demand_kw=np.full(steps, demand_kw),
        pv_kw=np.full(steps, pv_kw),
        v2h_points=points,
        v2h_discharge_kw=6.0,
        v2h_charge_kw=6.0,
        v2h_efficiency=1.0,
        hub_site="depot",
    )


def vehicle(
    id: str,
    soc_kwh: float,
    shelters: list[str],
    trip_kwh: float = 1.0,
    trip_h: float = 0.1,
    soc_min_kwh: float = 2.0,
    soc_max_kwh: float = 38.0,
) -> VehicleSpec:
    return VehicleSpec(
        id=id,
        soc_min_kwh=soc_min_kwh,
        soc_max_kwh=soc_max_kwh,
        initial_soc_kwh=soc_kwh,
        trip_to_kwh={s: trip_kwh for s in shelters},
        trip_back_kwh={s: trip_kwh for s in shelters},
        trip_to_h={s: trip_h for s in shelters},
        trip_back_h={s: trip_h for s in shelters},
        trip_to_km={s: trip_kwh / 0.15 for s in shelters},
        trip_back_km={s: trip_kwh / 0.15 for s in shelters},
    )


def battery(id: str, shelter_id: str, usable_kwh: float) -> StationaryBatterySpec:
    return StationaryBatterySpec(
        id=id,
        shelter_id=shelter_id,
        soc_min_kwh=2.0,
        soc_max_kwh=2.0 + usable_kwh,
        initial_soc_kwh=2.0 + usable_kwh,
        charge_max_kw=10.0,
        discharge_max_kw=10.0,
        charge_efficiency=1.0,
        discharge_efficiency=1.0,
    )


def problem(
    shelters, vehicles=(), batteries=(), steps: int = 12, chargers: int = 0, rotation_steps: int = 4
) -> BcpProblem:
    sites = (ChargingSiteSpec(site="depot", chargers=chargers, charge_kw=6.0, efficiency=1.0),) if chargers else ()
    return BcpProblem(
        start=START,
        step_minutes=60,
        steps=steps,
        shelters=tuple(shelters),
        vehicles=tuple(vehicles),
        batteries=tuple(batteries),
        charging_sites=sites,
        rotation_steps=rotation_steps,
        settings=BcpSolverSettings(time_limit_s=20.0, mip_gap=1e-6),
    )
