"""What a schedule leaves unserved, per site, and the message that names it.

A plan never breaks a physical limit: load the grid cannot carry (import limit, outage) and
storage cannot cover is left unserved at a high price (``unserved_load_yen``). This module
turns the unserved power of a schedule into figures and one readable sentence per site.
"""

from __future__ import annotations

from typing import cast

import numpy as np
import pandas as pd

from ems.optimise.evaluate import load_shed_kw
from ems.optimise.problem import Problem

MIN_REPORTED_KW = 1e-3


def load_shed_kwh_by_site(problem: Problem, power_kw: pd.DataFrame) -> dict[str, float]:
    """Per site, the energy of load left unserved over the horizon [kWh]."""
    return {site: float(shed.sum() * problem.grid.step_h) for site, shed in load_shed_kw(problem, power_kw).items()}


def _ranges(index: pd.DatetimeIndex, mask: np.ndarray, step: pd.Timedelta) -> list[str]:
    """Contiguous runs of ``mask`` as 'MM-DD HH:MM-HH:MM' (start of first step to end of last)."""
    runs, start = [], None
    for t, on in enumerate([*mask, False]):
        if on and start is None:
            start = t
        elif not on and start is not None:
            first, end = index[start], index[t - 1] + step
            runs.append(f"{first:%m-%d %H:%M}-{end:%H:%M}")
            start = None
    return runs


def unserved_message(problem: Problem, power_kw: pd.DataFrame) -> str:
    """One sentence per site that leaves load unserved, naming the hours and the binding limit;
    empty when every load is served."""
    step = pd.Timedelta(minutes=problem.grid.step_minutes)
    parts = []
    for site, shed in load_shed_kw(problem, power_kw).items():
        mask = shed > MIN_REPORTED_KW
        if not mask.any():
            continue
        grid = next(g for g in problem.grids if g.site == site)
        demand = sum((ld.demand_kw for ld in problem.loads if ld.site == site), np.zeros(problem.grid.steps))
        limit = (
            f"import limit {grid.import_limit_kw:g} kW of {grid.id}"
            if grid.available
            else f"no grid at {grid.id} (outage)"
        )
        storage = [b.id for b in problem.batteries if b.site == site]
        behind = f"storage {', '.join(storage)} exhausted" if storage else "no storage at the site"
        hours = ", ".join(_ranges(cast(pd.DatetimeIndex, power_kw.index), mask, step))
        parts.append(
            f"site {site!r}: {shed.sum() * problem.grid.step_h:.1f} kWh of load unserved ({hours}; demand up to "
            f"{demand[mask].max():.1f} kW against the {limit}, {behind})"
        )
    return "; ".join(parts)
