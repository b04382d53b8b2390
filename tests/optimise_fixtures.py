"""Small hand-made problems whose optimum can be worked out on paper."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ems.optimise import BatterySpec, EvSpec, GridSpec, LoadSpec, Problem, PvSpec, SolverSettings, TimeGrid

START = pd.Timestamp("2026-04-15 00:00", tz="Asia/Tokyo")


def time_grid(steps: int, step_minutes: int = 60) -> TimeGrid:
    return TimeGrid(start=START, step_minutes=step_minutes, steps=steps)


def grid_spec(
    steps: int,
    import_price,
    export_price=0.0,
    import_limit_kw=100.0,
    export_limit_kw=0.0,
    co2=0.0,
    carbon_price=0.0,
    site="site",
    exclusive=True,
    contract_demand_kw=None,
    demand_charge=0.0,
) -> GridSpec:
    return GridSpec(
        id=f"{site}_grid",
        site=site,
        import_limit_kw=import_limit_kw,
        export_limit_kw=export_limit_kw,
        exclusive_import_export=exclusive,
        import_price_yen_per_kwh=np.broadcast_to(np.asarray(import_price, dtype=float), (steps,)).copy(),
        export_price_yen_per_kwh=np.broadcast_to(np.asarray(export_price, dtype=float), (steps,)).copy(),
        co2_kg_per_kwh=np.broadcast_to(np.asarray(co2, dtype=float), (steps,)).copy(),
        carbon_price_yen_per_kg=carbon_price,
        contract_demand_kw=contract_demand_kw,
        demand_charge_yen_per_kw=demand_charge,
    )


def battery(
    capacity_kwh=10.0,
    power_kw=5.0,
    efficiency=0.9,
    initial_kwh=0.0,
    soc_min_kwh=0.0,
    site="site",
    reserve_kwh=0.0,
    degradation=0.0,
    battery_id="bess",
) -> BatterySpec:
    return BatterySpec(
        id=battery_id,
        site=site,
        capacity_kwh=capacity_kwh,
        soc_min_kwh=soc_min_kwh,
        soc_max_kwh=capacity_kwh,
        charge_max_kw=power_kw,
        discharge_max_kw=power_kw,
        charge_efficiency=efficiency,
        discharge_efficiency=efficiency,
        initial_soc_kwh=initial_kwh,
        degradation_yen_per_kwh=degradation,
        reserve_kwh=reserve_kwh,
    )


def load(steps: int, demand_kw, site="site", load_id="load") -> LoadSpec:
    return LoadSpec(load_id, site, np.broadcast_to(np.asarray(demand_kw, dtype=float), (steps,)).copy())


def pv(steps: int, available_kw, site="site", curtailable=True) -> PvSpec:
    return PvSpec("pv", site, np.broadcast_to(np.asarray(available_kw, dtype=float), (steps,)).copy(), curtailable)


def ev(
    steps: int,
    plugged,
    charge_kw=6.0,
    discharge_kw=6.0,
    initial_kwh=10.0,
    capacity_kwh=40.0,
    targets=(),
    drive_kwh=None,
    efficiency=1.0,
    site="site",
    ev_id="taxi",
) -> EvSpec:
    plugged = np.asarray(plugged, dtype=bool)
    return EvSpec(
        id=ev_id,
        capacity_kwh=capacity_kwh,
        soc_min_kwh=0.0,
        soc_max_kwh=capacity_kwh,
        initial_soc_kwh=initial_kwh,
        charger_id=tuple("c1" if p else None for p in plugged),
        charger_site=tuple(site if p else None for p in plugged),
        charge_max_kw=np.where(plugged, charge_kw, 0.0),
        discharge_max_kw=np.where(plugged, discharge_kw, 0.0),
        charge_efficiency=efficiency,
        discharge_efficiency=efficiency,
        drive_kwh=np.zeros(steps) if drive_kwh is None else np.asarray(drive_kwh, dtype=float),
        departure_targets=tuple(targets),
    )


def problem(steps: int, grids, step_minutes: int = 60, terminal_value=0.0, **assets) -> Problem:
    sites = tuple(sorted({g.site for g in grids}))
    return Problem(
        grid=time_grid(steps, step_minutes),
        sites=sites,
        grids=tuple(grids),
        settings=SolverSettings(terminal_value_yen_per_kwh=terminal_value),
        **assets,
    )


REFERENCE_CONFIG = "config/arao.toml"


def reference_problem(step_minutes: int | None = None, horizon_hours: int | None = None, start: pd.Timestamp = START):
    from ems.planning import plan_inputs

    return plan_inputs(REFERENCE_CONFIG, start, step_minutes, horizon_hours).problem


@pytest.fixture(scope="module")
def reference_schedule():
    """(problem, schedule) of the reference portfolio, 48 h at 30-minute steps."""
    from ems.optimise import solve

    p = reference_problem()
    return p, solve(p)
