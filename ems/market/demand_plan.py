"""The balancing group's 30-minute demand plan: planned net import per slot, by site and in
total [kWh], slots numbered 1-48 from 00:00 local, as a retailer submits it to the grid operator.

Positive: energy drawn from the grid; negative: net export in that slot.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

SLOT = pd.Timedelta(minutes=30)


def slot_energy_kwh(power_kw: pd.DataFrame, step_minutes: int, timezone: str) -> pd.DataFrame:
    """Energy per 30-minute slot of each column of a plan's power [kW] on steps of ``step_minutes``
    (each step's power is held over the step; a 60-minute step gives two slots)."""
    fine = power_kw.copy()
    fine.index = pd.DatetimeIndex(fine.index).tz_convert(timezone)
    end = fine.index[-1] + pd.Timedelta(minutes=step_minutes)
    five = fine.reindex(pd.date_range(fine.index[0], end, freq="5min", inclusive="left"), method="ffill")
    return five.resample("30min").sum() * (5 / 60)


def demand_plan_frame(grid_power_kw: pd.DataFrame, step_minutes: int, timezone: str) -> pd.DataFrame:
    """``grid_power_kw``: one column per site, net import [kW]. Returns the demand plan table
    (date, slot, start, one ``<site>_kwh`` column per site, total_kwh)."""
    energy = slot_energy_kwh(grid_power_kw, step_minutes, timezone)
    table = pd.DataFrame(
        {
            "date": [t.date().isoformat() for t in energy.index],
            "slot": [t.hour * 2 + t.minute // 30 + 1 for t in energy.index],
            "start": [t.isoformat() for t in energy.index],
        }
    )
    for site in grid_power_kw.columns:
        table[f"{site}_kwh"] = energy[site].to_numpy().round(3)
    table["total_kwh"] = energy.sum(axis=1).to_numpy().round(3)
    return table


def write_demand_plan(table: pd.DataFrame, out_dir: str | Path) -> Path:
    path = Path(out_dir) / "demand_plan.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(path, index=False)
    return path


def read_demand_plan(path: str | Path) -> pd.DataFrame:
    """A written plan back, indexed by slot start (tz-aware)."""
    table = pd.read_csv(path)
    table.index = pd.DatetimeIndex(pd.to_datetime(table["start"], utc=True))
    return table
