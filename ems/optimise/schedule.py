"""The optimiser's output: per asset and step, power and (for storage) energy, with the
objective's terms and the solver's figures. Written out as ``schedule.csv`` (long form) and
``summary.json`` (docs/architecture.md, Contracts).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

import numpy as np
import pandas as pd

from ems.optimise.problem import Problem
from ems.optimise.registry import COMPONENTS
from ems.optimise.report import PlanReport

SCHEDULE_COLUMNS = ["time", "site", "asset", "kind", "power_kw", "soc_kwh"]


@dataclass
class Schedule:
    """``power_kw``: index time (step start), one column per asset, positive into the site bus.
    ``soc_kwh``: one column per storage asset, the energy held at the END of each step."""

    power_kw: pd.DataFrame
    soc_kwh: pd.DataFrame
    status: str
    objective_terms: dict[str, float] = field(default_factory=dict)
    mip_gap: float | None = None
    build_s: float = 0.0
    solve_s: float = 0.0
    message: str = ""
    report: PlanReport = field(default_factory=PlanReport)  # energy, CO2, shortfalls, solver figures
    load_shed_kwh: dict[str, float] = field(default_factory=dict)  # per site, load left unserved [kWh]

    @property
    def objective_yen(self) -> float:
        return float(sum(self.objective_terms.values()))

    @property
    def cost_yen(self) -> float:
        """Money paid for energy and demand: what an invoice would show."""
        return self.objective_terms.get("energy_cost_yen", 0.0) + self.objective_terms.get("demand_charge_yen", 0.0)

    @property
    def energy_cost_yen(self) -> float:
        """What the horizon's energy costs: bought minus sold, the CO2 price and battery
        degradation. The demand charge is apart: a new peak is billed for months, not for the
        hours of one plan."""
        return sum(
            self.objective_terms.get(term, 0.0) for term in ("energy_cost_yen", "carbon_cost_yen", "degradation_yen")
        )

    @property
    def demand_charge_yen(self) -> float:
        """The charge for a new peak above the contract demand, all its billed months [yen]."""
        return self.objective_terms.get("demand_charge_yen", 0.0)

    def long_frame(self, problem: Problem, timezone: str | None = None) -> pd.DataFrame:
        """Long form with columns ``time,site,asset,kind,power_kw,soc_kwh``."""
        index = cast(pd.DatetimeIndex, self.power_kw.index)
        times = index.tz_convert(timezone) if timezone else index
        iso = [t.isoformat() for t in times]
        frames = []
        for component in COMPONENTS:
            for rows in component.schedule_rows(problem, self.soc_kwh):
                frames.append(
                    pd.DataFrame(
                        {
                            "time": iso,
                            "site": rows.site,
                            "asset": rows.asset_id,
                            "kind": rows.kind,
                            "power_kw": self.power_kw[rows.asset_id].to_numpy().round(4),
                            "soc_kwh": rows.soc_kwh.round(4)
                            if rows.soc_kwh is not None
                            else np.full(len(index), np.nan),
                        }
                    )
                )
        return pd.concat(frames, ignore_index=True)[SCHEDULE_COLUMNS]

    def summary(self) -> dict:
        return {
            "objective_yen": round(self.objective_yen, 2),
            "cost_yen": round(self.cost_yen, 2),
            "energy_cost_yen": round(self.energy_cost_yen, 2),
            "demand_charge_yen": round(self.demand_charge_yen, 2),
            "load_shed_kwh": {site: round(kwh, 3) for site, kwh in self.load_shed_kwh.items()},
            "co2_kg": round(self.report.co2_kg, 3),
            "solver_status": self.status,
            "mip_gap": self.mip_gap,
            "solve_s": round(self.solve_s, 4),
            "build_s": round(self.build_s, 4),
            "message": self.message,
            "objective_terms_yen": {k: round(v, 2) for k, v in self.objective_terms.items()},
            **{k: round(v, 3) for k, v in self.report.as_dict().items() if k != "co2_kg"},
        }


def stored_energy_change_kwh(schedule: Schedule, problem: Problem) -> float:
    """Energy held in batteries and vehicles at the horizon's end minus at its start [kWh]
    (vehicles' driving included): what a short plan leaves for later."""
    initial = sum(b.initial_soc_kwh for b in problem.batteries) + sum(v.initial_soc_kwh for v in problem.evs)
    return float(schedule.soc_kwh.iloc[-1].sum() - initial) if len(schedule.soc_kwh.columns) else 0.0


def write_schedule(
    schedule: Schedule,
    problem: Problem,
    out_dir: str | Path,
    extra_summary: dict | None = None,
    timezone: str | None = None,
) -> dict:
    """Write ``schedule.csv`` and ``summary.json`` into ``out_dir``; return the summary."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    schedule.long_frame(problem, timezone).to_csv(out / "schedule.csv", index=False, float_format="%.4f")
    summary = schedule.summary() | (extra_summary or {})
    (out / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
    return summary
