"""A PNG of a schedule: stacked power by kind, stored energy, prices. Output only: nothing in
the model imports this module."""

from __future__ import annotations

from pathlib import Path
from typing import cast

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pandas as pd

from ems.optimise.problem import Problem
from ems.optimise.registry import COMPONENTS
from ems.optimise.schedule import Schedule

KIND_COLOURS = {"grid": "#7f7f7f", "pv": "#f2b701", "battery": "#3969ac", "ev": "#11a579", "load": "#e73f74"}


OTHER_COLOURS = ("#7f3c8d", "#80ba5a", "#e68310", "#008695", "#cf1c90")


def power_by_kind(schedule: Schedule, problem: Problem) -> pd.DataFrame:
    kinds = {
        rows.asset_id: component.kind
        for component in COMPONENTS
        for rows in component.schedule_rows(problem, schedule.soc_kwh)
    }
    return schedule.power_kw.T.groupby(pd.Series(kinds)).sum().T


def _kind_colours(kinds) -> dict[str, str]:
    """The built-in kinds' colours, then one of the others for each further kind."""
    further = [k for k in kinds if k not in KIND_COLOURS]
    return {k: KIND_COLOURS[k] for k in KIND_COLOURS if k in kinds} | {
        k: OTHER_COLOURS[i % len(OTHER_COLOURS)] for i, k in enumerate(further)
    }


def plot_schedule(schedule: Schedule, problem: Problem, path: str | Path, timezone: str, title: str = "") -> Path:
    by_kind = power_by_kind(schedule, problem)
    index = cast(pd.DatetimeIndex, by_kind.index).tz_convert(timezone)
    fig, axes = plt.subplots(3, 1, figsize=(12, 10), sharex=True, gridspec_kw={"height_ratios": [3, 2, 1.3]})
    ax = axes[0]
    positive, negative = by_kind.clip(lower=0), by_kind.clip(upper=0)
    palette = _kind_colours(list(by_kind.columns))
    kinds, colours = list(palette), list(palette.values())
    ax.stackplot(
        index,
        [positive[k] for k in kinds],
        labels=[f"{k} (into bus)" for k in kinds],
        colors=colours,
        step="post",
        alpha=0.85,
    )
    ax.stackplot(index, [negative[k] for k in kinds], colors=colours, step="post", alpha=0.45)
    ax.axhline(0, color="black", linewidth=0.6)
    ax.set_ylabel("portfolio power [kW]\n(+ into bus, - drawn)")
    ax.legend(loc="upper left", ncol=5, fontsize=8)
    ax.set_title(title or "Schedule")
    ax = axes[1]
    for b in problem.batteries:
        ax.plot(index, schedule.soc_kwh[b.id], drawstyle="steps-post", label=b.id)
    if problem.evs:
        ax.plot(
            index,
            schedule.soc_kwh[[e.id for e in problem.evs]].sum(axis=1),
            drawstyle="steps-post",
            color=KIND_COLOURS["ev"],
            linewidth=2,
            label="EV fleet total",
        )
    ax.set_ylabel("stored energy [kWh]")
    ax.legend(loc="upper left", ncol=4, fontsize=8)
    ax = axes[2]
    grid = problem.grids[0]
    ax.plot(index, grid.import_price_yen_per_kwh, drawstyle="steps-post", label="import")
    ax.plot(index, grid.export_price_yen_per_kwh, drawstyle="steps-post", label="export")
    ax.set_ylabel("price [yen/kWh]")
    ax.legend(loc="upper left", fontsize=8)
    ax.set_xlabel(f"time ({timezone})")
    fig.autofmt_xdate()
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
