"""A FIT-like tariff on a small two-site case: the reference portfolio's city hall (PV, load,
battery) and taxi depot (PV, load, twelve taxis), with every kWh exported paid a flat feed-in
price of 20 yen/kWh: at or above the effective import price in two thirds of the steps (the
night and midday hours). There the grid needs its import/export binary, since buying and
selling at once would otherwise pay."""

from __future__ import annotations

import dataclasses

import numpy as np

FEED_IN_YEN_PER_KWH = 20.0
SITES = ("city_hall", "taxi_depot")


def fit_like(problem, feed_in_yen_per_kwh: float = FEED_IN_YEN_PER_KWH, sites: tuple[str, ...] = SITES):
    """``problem`` cut down to ``sites``, exports paid ``feed_in_yen_per_kwh`` in every step."""
    keep = set(sites)
    grids = tuple(
        dataclasses.replace(g, export_price_yen_per_kwh=np.full(problem.grid.steps, feed_in_yen_per_kwh))
        for g in problem.grids
        if g.site in keep
    )
    evs = tuple(ev for ev in problem.evs if set(ev.charger_site) - {None} <= keep)
    return dataclasses.replace(
        problem,
        sites=tuple(s for s in problem.sites if s in keep),
        grids=grids,
        pvs=tuple(p for p in problem.pvs if p.site in keep),
        loads=tuple(ld for ld in problem.loads if ld.site in keep),
        batteries=tuple(b for b in problem.batteries if b.site in keep),
        evs=evs,
        dr_events=tuple(e for e in problem.dr_events if set(e.sites) <= keep),
    )


def fit_like_problem():
    """The reference day (30-minute steps, 48 h) with the FIT-like tariff."""
    from benchmarks.bench_schedule import reference_problem

    return fit_like(reference_problem())
