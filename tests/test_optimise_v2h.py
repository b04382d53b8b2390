"""A taxi plugged in at a shelter's V2H point in an outage: which store serves the load first.

In BCP mode the shelter's battery holds all it can (its BCP reserve is its full charge, priced
per kWh and hour below it) and a called taxi's keep-energy is lifted once it is plugged in
there. So where the load needs energy the visiting taxi gives it first and the stationary
battery, which stays when the taxi rotates away, is drawn only for what the taxi cannot give;
where the sun alone carries the load the taxi is left alone (its energy would only displace PV,
which would then be curtailed)."""

from __future__ import annotations

import dataclasses

import pytest

from ems.optimise import solve
from tests.optimise_fixtures import battery, ev, grid_spec, load, problem, pv

STEPS = 4  # four hours: two of afternoon sun, two without


def test_the_visiting_taxi_serves_the_islanded_shelter_before_its_battery_and_never_instead_of_the_sun():
    islanded = dataclasses.replace(grid_spec(STEPS, 20.0, import_limit_kw=60.0), available=False)
    p = problem(
        STEPS,
        [islanded],
        terminal_value=15.0,
        loads=(load(STEPS, [5.0, 5.0, 8.0, 8.0]),),
        pvs=(pv(STEPS, [6.0, 6.0, 0.0, 0.0]),),
        batteries=(battery(capacity_kwh=20.0, power_kw=10.0, efficiency=1.0, initial_kwh=19.0, reserve_kwh=20.0),),
        evs=(ev(STEPS, [True] * STEPS, initial_kwh=30.0),),
    )
    schedule = solve(p)
    power = schedule.power_kw
    # with the sun: PV serves the load and fills the battery (the rest goes into the taxi rather
    # than be curtailed); the taxi gives nothing
    assert power["taxi"].iloc[:2].max() <= 1e-6
    assert power["bess"].iloc[0] == pytest.approx(-1.0, abs=1e-6)
    # without it: the taxi at its charger's 6 kW, the battery only the 2 kW beyond, nothing unserved
    assert power["taxi"].iloc[2:].tolist() == pytest.approx([6.0, 6.0], abs=1e-6)
    assert power["bess"].iloc[2:].tolist() == pytest.approx([2.0, 2.0], abs=1e-6)
    assert schedule.load_shed_kwh["site"] == pytest.approx(0.0, abs=1e-6)
