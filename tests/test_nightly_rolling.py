"""The rolling day: physics of the realised powers, and perfect foresight as the limit."""

from __future__ import annotations

import datetime as dt

import numpy as np

from ems.optimise.evaluate import storage_soc_kwh
from ems.optimise.problem import TimeGrid
from simulations.day import day_grid, day_problem, load_inputs, quantiles_for
from simulations.forecast_errors import p50_series, sample_series
from simulations.rolling import rolling_day
from tests.nightly_fixtures import write_small_portfolio


def test_the_rolling_day_balances_every_site_and_never_beats_perfect_foresight(tmp_path):
    config = str(write_small_portfolio(tmp_path))
    portfolio, profiles = load_inputs(config)
    grid = day_grid(portfolio, dt.date(2026, 4, 15))
    actual = day_problem(
        portfolio, profiles, grid.start, sample_series(quantiles_for("profiles", config, grid), 11, 30)
    )

    def forecast_for(start):
        return p50_series(quantiles_for("profiles", config, TimeGrid(start=start, step_minutes=30, steps=48)))

    outcome, realised = rolling_day(portfolio, profiles, actual, forecast_for, replan_steps=12)
    assert outcome.replans == 4
    for g in actual.grids:
        at_site = [a.id for a in (*actual.pvs, *actual.loads, *actual.batteries) if a.site == g.site] + [g.id]
        evs = sum(np.where([s == g.site for s in e.charger_site], realised[e.id], 0.0) for e in actual.evs)
        assert np.abs(realised[at_site].sum(axis=1).to_numpy() + evs).max() < 1e-6
        assert realised[g.id].min() >= -g.export_limit_kw - 1e-6
    for b in actual.batteries:
        soc, _ = storage_soc_kwh(
            b.initial_soc_kwh, realised[b.id].to_numpy(), 0.5, b.charge_efficiency, b.discharge_efficiency
        )
        assert soc.min() >= b.soc_min_kwh - 1e-6 and soc.max() <= b.soc_max_kwh + 1e-6
    for pv in actual.pvs:
        assert np.all(realised[pv.id].to_numpy() <= pv.available_kw + 1e-9)
    # no controller beats the plan made with the actual day known (up to the MIP gap)
    assert outcome.rolling_objective_yen >= outcome.perfect_objective_yen * (1 - actual.settings.mip_gap) - 1e-6
    assert outcome.rule_objective_yen >= outcome.perfect_objective_yen * (1 - actual.settings.mip_gap) - 1e-6
