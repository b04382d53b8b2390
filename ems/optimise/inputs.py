"""Assemble a :class:`Problem` from a portfolio, a start time and the series that feed it.

Pure: profile values, forecasts, fleet plans and initial states are passed in; nothing is read
here. Half-hourly values (tariffs, profiles) map onto any step length by averaging the slots a
step covers, so energy is the same at 5, 15, 30 or 60-minute steps.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
from collections.abc import Mapping

import numpy as np
import pandas as pd

from ems.config.schema import Portfolio, Shelter, Tariff
from ems.fleet import Reservation, VehiclePlan, plans_from_duties
from ems.market.tariff import DayPrices
from ems.optimise.components.base import PortfolioInputs
from ems.optimise.problem import (
    DrEventSpec,
    EvSpec,
    GridSpec,
    Problem,
    ProblemError,
    SolverSettings,
    TimeGrid,
)
from ems.optimise.registry import COMPONENTS, component_of

SLOT_MINUTES = 30


def slot_series(values: tuple[float, ...] | np.ndarray, grid: TimeGrid, timezone: str) -> np.ndarray:
    """Map 48 half-hourly values (slot 0 at 00:00 local) onto the grid, averaging per step."""
    values = np.asarray(values, dtype=float)
    minutes = pd.date_range(grid.start, periods=grid.steps * grid.step_minutes // 5, freq="5min").tz_convert(timezone)
    slot = (minutes.hour * 60 + minutes.minute) // SLOT_MINUTES
    per_5min = values[slot]
    return per_5min.reshape(grid.steps, grid.step_minutes // 5).mean(axis=1)


def shelter_critical_kw(
    shelter: Shelter, profile: tuple[float, ...] | np.ndarray, grid: TimeGrid, timezone: str
) -> np.ndarray:
    """A shelter's critical load on the grid: ``critical_load_kw`` x its profile (peak 1.0), what
    it draws in an outage, for the BCP drill and the live islanded plan alike."""
    return shelter.critical_load_kw * slot_series(profile, grid, timezone)


def dated_slot_series(days: Mapping[dt.date, tuple[float, ...]], grid: TimeGrid, timezone: str) -> np.ndarray:
    """Map 48 half-hourly values per local date onto the grid (each step averages its slots);
    every date the grid touches must be in ``days``."""
    minutes = pd.date_range(grid.start, periods=grid.steps * grid.step_minutes // 5, freq="5min").tz_convert(timezone)
    slot = (minutes.hour * 60 + minutes.minute) // SLOT_MINUTES
    dates = minutes.date
    missing = sorted(set(dates) - set(days))
    if missing:
        raise ProblemError(f"no prices for {', '.join(map(str, missing))}")
    per_5min = np.array([days[d][s] for d, s in zip(dates, slot)], dtype=float)
    return per_5min.reshape(grid.steps, grid.step_minutes // 5).mean(axis=1)


def _with_day_prices(
    grids: tuple[GridSpec, ...], prices: DayPrices, grid: TimeGrid, timezone: str
) -> tuple[GridSpec, ...]:
    """Prices by date (spot plus the retailer's terms) in place of the fixed tariff's."""
    imports = dated_slot_series(prices.import_yen_per_kwh, grid, timezone)
    exports = dated_slot_series(prices.export_yen_per_kwh, grid, timezone)
    return tuple(
        dataclasses.replace(g, import_price_yen_per_kwh=imports, export_price_yen_per_kwh=exports) for g in grids
    )


def _grid_spec(connection, tariff: Tariff, grid: TimeGrid, timezone: str) -> GridSpec:
    return GridSpec(
        id=connection.id,
        site=connection.site,
        import_limit_kw=connection.import_limit_kw,
        export_limit_kw=connection.export_limit_kw,
        exclusive_import_export=connection.exclusive_import_export,
        import_price_yen_per_kwh=slot_series(tariff.import_price_yen_per_kwh, grid, timezone),
        export_price_yen_per_kwh=slot_series(tariff.export_price_yen_per_kwh, grid, timezone),
        co2_kg_per_kwh=slot_series(tariff.co2_kg_per_kwh, grid, timezone),
        carbon_price_yen_per_kg=tariff.carbon_price_yen_per_kg,
        contract_demand_kw=connection.contract_demand_kw,
        demand_charge_yen_per_kw=tariff.demand_charge_yen_per_kw_month * tariff.demand_charge_months,
    )


def _step_of(time: pd.Timestamp, grid: TimeGrid, rounding) -> int:
    offset_steps = (time - grid.start) / pd.Timedelta(minutes=grid.step_minutes)
    return int(rounding(offset_steps - 1e-9 if rounding is math.ceil else offset_steps + 1e-9))


def ev_spec(
    vehicle,
    plan: VehiclePlan,
    chargers: Mapping,
    sites: Mapping[str, str],
    grid: TimeGrid,
    initial_soc_kwh: float,
    keep_energy_kwh: float = 0.0,
) -> EvSpec:
    """Turn a vehicle's charging windows into per-step charger, limits, driving energy and targets.

    A vehicle counts as plugged in for the whole steps inside a window (plug-in rounded up,
    plug-out rounded down); the trip after a window uses its energy evenly over the steps until
    the next window.
    """
    steps = grid.steps
    charger_id: list[str | None] = [None] * steps
    charge_max = np.zeros(steps)
    discharge_max = np.zeros(steps)
    drive = np.zeros(steps)
    targets = []
    windows = plan.windows
    efficiency = None
    for k, window in enumerate(windows):
        charger = chargers.get(window.charger_id)
        if charger is None:
            raise ProblemError(f"{vehicle.id}: plan names unknown charger {window.charger_id!r}")
        efficiency = efficiency or charger.efficiency
        first = max(0, _step_of(pd.Timestamp(window.plug_in), grid, math.ceil))
        last = min(steps, _step_of(pd.Timestamp(window.plug_out), grid, math.floor))
        for t in range(first, last):
            charger_id[t] = charger.id
            charge_max[t] = charger.charge_power_kw
            discharge_max[t] = charger.discharge_power_kw if vehicle.v2g_allowed else 0.0
        departure = _step_of(pd.Timestamp(window.plug_out), grid, math.floor)
        if 0 < departure < steps:
            targets.append(
                (departure, min(window.departure_energy_kwh, vehicle.battery_kwh * vehicle.soc_max_fraction))
            )
        if k + 1 < len(windows) and window.trip_energy_kwh > 0:
            away_from = _step_of(pd.Timestamp(window.plug_out), grid, math.floor)
            away_to = _step_of(pd.Timestamp(windows[k + 1].plug_in), grid, math.ceil)
            span = max(1, away_to - away_from)
            for t in range(max(0, away_from), min(steps, away_to)):
                if charger_id[t] is None:
                    drive[t] += window.trip_energy_kwh / span
    return EvSpec(
        id=vehicle.id,
        capacity_kwh=vehicle.battery_kwh,
        soc_min_kwh=vehicle.battery_kwh * vehicle.soc_min_fraction,
        soc_max_kwh=vehicle.battery_kwh * vehicle.soc_max_fraction,
        initial_soc_kwh=initial_soc_kwh,
        charger_id=tuple(charger_id),
        charger_site=tuple(sites[c] if c else None for c in charger_id),
        charge_max_kw=charge_max,
        discharge_max_kw=discharge_max,
        charge_efficiency=efficiency or 0.95,
        discharge_efficiency=efficiency or 0.95,
        drive_kwh=drive,
        departure_targets=tuple(targets),
        keep_energy_kwh=keep_energy_kwh,
    )


def problem_from_portfolio(
    portfolio: Portfolio,
    start: pd.Timestamp,
    profiles: Mapping[str, tuple[float, ...]],
    *,
    forecasts_kw: Mapping[str, np.ndarray] | None = None,
    plans: Mapping[str, VehiclePlan] | None = None,
    initial_soc_kwh: Mapping[str, float] | None = None,
    reservation: Reservation | None = None,
    dr_events: tuple[DrEventSpec, ...] = (),
    horizon_hours: int | None = None,
    step_minutes: int | None = None,
    unavailable: frozenset[str] = frozenset(),
    day_prices: DayPrices | None = None,
) -> Problem:
    """The planning problem for ``portfolio`` from ``start``.

    ``profiles``: the 48 values of each named profile. ``forecasts_kw``: per PV array or load
    id, a series on the grid that replaces its profile (PV available output, load demand).
    ``unavailable``: ids of devices left out (no power), e.g. ones that stopped answering.
    ``day_prices``: import and export prices by date, replacing the tariffs' fixed day.
    """
    planning = portfolio.planning
    step = step_minutes if step_minutes is not None else planning.step_minutes
    hours = horizon_hours if horizon_hours is not None else planning.horizon_hours
    grid = TimeGrid(start=pd.Timestamp(start), step_minutes=step, steps=hours * 60 // step)
    zone = portfolio.portfolio.timezone
    forecasts_kw = forecasts_kw or {}
    initial_soc_kwh = initial_soc_kwh or {}

    def series(asset_id: str, profile: str, scale: float) -> np.ndarray:
        if asset_id in forecasts_kw:
            return np.asarray(forecasts_kw[asset_id], dtype=float)
        return slot_series(profiles[profile], grid, zone) * scale

    site_tariff = {s.id: portfolio.tariffs[s.tariff] for s in portfolio.sites}
    grids = tuple(_grid_spec(g, site_tariff[g.site], grid, zone) for g in portfolio.grid_connections)
    if day_prices is not None:
        grids = _with_day_prices(grids, day_prices, grid, zone)
    further = PortfolioInputs(
        portfolio=portfolio,
        grid=grid,
        timezone=zone,
        series=series,
        initial_soc_kwh=initial_soc_kwh,
        unavailable=unavailable,
    )
    pvs = component_of("pv").specs_from_portfolio(further)
    loads = component_of("load").specs_from_portfolio(further)
    batteries = component_of("battery").specs_from_portfolio(further)
    plans = (
        plans
        if plans is not None
        else plans_from_duties(portfolio, grid.start.to_pydatetime(), grid.end.to_pydatetime())
    )
    chargers = {c.id: c for c in portfolio.chargers if c.id not in unavailable}
    charger_sites = {c.id: c.site for c in portfolio.chargers}
    keep = reservation.keep_energy_kwh if reservation else {}
    evs = tuple(
        ev_spec(
            v,
            plans[v.id],
            chargers,
            charger_sites,
            grid,
            initial_soc_kwh.get(v.id, v.battery_kwh * v.initial_soc_fraction),
            keep.get(v.id, 0.0),
        )
        for v in portfolio.vehicles
        if v.id in plans and v.id not in unavailable
    )
    mean_import = float(np.mean([g.import_price_yen_per_kwh.mean() for g in grids]))
    settings = SolverSettings(
        time_limit_s=planning.time_limit_s,
        mip_gap=planning.mip_gap,
        ev_shortfall_penalty_yen_per_kwh=planning.ev_shortfall_penalty_yen_per_kwh,
        bcp_shortfall_penalty_yen_per_kwh=planning.bcp_shortfall_penalty_yen_per_kwh,
        drive_shortfall_penalty_yen_per_kwh=planning.drive_shortfall_penalty_yen_per_kwh,
        unserved_load_yen_per_kwh=planning.unserved_load_yen_per_kwh,
        throughput_epsilon_yen_per_kwh=planning.throughput_epsilon_yen_per_kwh,
        terminal_value_yen_per_kwh=(
            planning.terminal_value_yen_per_kwh
            if planning.terminal_value_yen_per_kwh is not None
            else 0.9 * mean_import
        ),
    )
    # further kinds' specs travel in Problem.assets
    assets = tuple(spec for c in COMPONENTS if c.spec_type is not None for spec in c.specs_from_portfolio(further))
    return Problem(
        grid=grid,
        sites=tuple(s.id for s in portfolio.sites),
        grids=grids,
        pvs=pvs,
        loads=loads,
        batteries=batteries,
        evs=evs,
        dr_events=dr_events,
        settings=settings,
        assets=assets,
    ).validate()
