"""DR event files: the format, its errors, and a hand-checkable delivery."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ems.optimise import BatterySpec, GridSpec, LoadSpec, Problem, SolverSettings, TimeGrid, solve
from simulations.events import EventFileError, check_event, delivered, dr_specs, load_event, parse_event, requested_kw

START = pd.Timestamp("2026-04-15 00:00", tz="Asia/Tokyo")

VALID = """
[event]
event_id = "ev-1"
direction = "down"
price_yen_per_kwh = 40.0
penalty_yen_per_kwh = 10.0

[active_period]
start = "00:00"
duration_minutes = 30

[[signal.intervals]]
uid = 0
duration_minutes = 30
requested_kw = 5.0

[targets]
site_ids = ["site"]
"""


def one_slot_problem(events=()) -> Problem:
    """One site, one 30-minute slot: a 10 kW load, a battery, grid at 20 yen/kWh. Stored energy
    is worth 20 yen/kWh at the end: with 95 % efficiency each way, neither charging nor
    discharging pays by itself, so the battery moves only what the event pays for."""
    grid = TimeGrid(start=START, step_minutes=30, steps=1)
    return Problem(
        grid=grid,
        sites=("site",),
        grids=(GridSpec("site_grid", "site", 100.0, 0.0, True, np.array([20.0]), np.array([0.0]), np.array([0.0])),),
        loads=(LoadSpec("load", "site", np.array([10.0])),),
        batteries=(
            BatterySpec(
                "bess",
                "site",
                capacity_kwh=20.0,
                soc_min_kwh=0.0,
                soc_max_kwh=20.0,
                charge_max_kw=20.0,
                discharge_max_kw=20.0,
                charge_efficiency=0.95,
                discharge_efficiency=0.95,
                initial_soc_kwh=10.0,
            ),
        ),
        dr_events=tuple(events),
        settings=SolverSettings(terminal_value_yen_per_kwh=20.0),
    )


def test_one_battery_one_slot_delivers_exactly_the_requested_kw(tmp_path):
    path = tmp_path / "ev.toml"
    path.write_text(VALID)
    event = load_event(path)
    base = one_slot_problem()
    check_event(event, base.sites, base.grid, str(path))
    baseline = np.array([10.0])  # the load: the battery idles without the event
    without = solve(base)
    assert without.power_kw["bess"].iat[0] == pytest.approx(0.0, abs=1e-6)
    schedule = solve(one_slot_problem(dr_specs(event, base.grid, baseline)))
    net = schedule.power_kw["site_grid"].to_numpy()
    assert net[0] == pytest.approx(5.0, abs=1e-6)
    assert schedule.power_kw["bess"].iat[0] == pytest.approx(5.0, abs=1e-6)
    figures = delivered(event, base.grid, net, baseline)
    assert figures["requested_kwh"] == pytest.approx(2.5)
    assert figures["settled_kwh"] == pytest.approx(2.5, abs=1e-6)
    assert figures["shortfall_kwh"] == pytest.approx(0.0, abs=1e-6)
    assert -schedule.objective_terms["dr_revenue_yen"] == pytest.approx(40.0 * 2.5, abs=1e-4)


def test_a_target_power_asks_for_the_distance_from_the_baseline():
    raw = VALID.replace("requested_kw = 5.0", "target_kw = 7.0")
    event = parse_event(__import__("tomllib").loads(raw))
    grid = TimeGrid(start=START, step_minutes=30, steps=2)
    assert list(requested_kw(event, grid, np.array([10.0, 10.0]))) == [3.0, 0.0]
    assert list(requested_kw(event, grid, np.array([6.0, 10.0]))) == [0.0, 0.0]


@pytest.mark.parametrize(
    "edit, key",
    [
        (lambda s: s.replace('direction = "down"\n', ""), "event.direction"),
        (lambda s: s.replace('direction = "down"', 'direction = "sideways"'), "event.direction"),
        (lambda s: s.replace("price_yen_per_kwh = 40.0", "price_yen_per_kwh = -1.0"), "event.price_yen_per_kwh"),
        (lambda s: s.replace('start = "00:00"', 'start = "25:00"'), "active_period.start"),
        (lambda s: s.replace('start = "00:00"', 'start = "2026-04-15T00:00:00"'), "active_period.start"),
        (lambda s: s.replace("requested_kw = 5.0", "requested_kw = 5.0\ntarget_kw = 3.0"), "signal.intervals[0]"),
        (lambda s: s.replace("requested_kw = 5.0", ""), "signal.intervals[0]"),
        (lambda s: s.replace("requested_kw = 5.0", "requested_kw = -5.0"), "signal.intervals[0].requested_kw"),
        (
            lambda s: s.replace("requested_kw = 5.0", "requested_kw = 5.0\nrequested_kwh = 1.0"),
            "signal.intervals[0].requested_kwh",
        ),
        (lambda s: s.replace("uid = 0\nduration_minutes = 30", "uid = 0\nduration_minutes = 60"), "signal.intervals"),
        (lambda s: s.replace('site_ids = ["site"]', "site_ids = []"), "targets.site_ids"),
        (lambda s: s.replace("[targets]", "[target]"), "targets"),
        (lambda s: s.replace("[event]", "[event"), "(syntax)"),
    ],
)
def test_malformed_event_files_are_rejected_naming_the_field(tmp_path, edit, key):
    path = tmp_path / "bad.toml"
    path.write_text(edit(VALID))
    with pytest.raises(EventFileError) as error:
        load_event(path)
    assert error.value.key == key
    assert f"{path}: {key}:" in str(error.value)


def test_one_mistake_gives_one_message_and_two_give_two(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text(VALID.replace("requested_kw = 5.0", "requested_kw = -5.0"))
    with pytest.raises(EventFileError) as error:
        load_event(path)
    assert [key for key, _ in error.value.problems] == ["signal.intervals[0].requested_kw"]
    path.write_text(
        VALID.replace("requested_kw = 5.0", "requested_kw = -5.0").replace('direction = "down"', 'direction = "across"')
    )
    with pytest.raises(EventFileError) as error:
        load_event(path)
    assert sorted(key for key, _ in error.value.problems) == ["event.direction", "signal.intervals[0].requested_kw"]


@pytest.mark.parametrize(
    "edit, key",
    [
        (lambda s: s.replace('site_ids = ["site"]', 'site_ids = ["nowhere"]'), "targets.site_ids"),
        (lambda s: s.replace('start = "00:00"', 'start = "00:10"'), "active_period.start"),
        (
            lambda s: (
                s.replace('start = "00:00"', 'start = "23:30"')
                .replace("= 30\nrequested", "= 60\nrequested")
                .replace("duration_minutes = 30\n\n", "duration_minutes = 60\n\n")
            ),
            "active_period",
        ),
    ],
)
def test_events_that_do_not_fit_the_portfolio_or_the_day_are_rejected(tmp_path, edit, key):
    path = tmp_path / "bad.toml"
    path.write_text(edit(VALID))
    event = load_event(path)
    grid = TimeGrid(start=START, step_minutes=30, steps=48)
    with pytest.raises(EventFileError) as error:
        check_event(event, ("site",), grid, str(path))
    assert error.value.key == key


def test_the_example_event_files_parse_and_fit_the_reference_portfolio():
    from pathlib import Path

    from ems.config import load_portfolio

    portfolio = load_portfolio("config/arao.toml")
    grid = TimeGrid(start=START, step_minutes=30, steps=48)
    files = sorted(Path("config/events").glob("*.toml"))
    assert files
    for path in files:
        check_event(load_event(path), tuple(s.id for s in portfolio.sites), grid, str(path))
    evening = load_event("config/events/evening-down.toml")
    assert evening.event.direction == "down"
    assert evening.signal.intervals[0].requested_kw == 50.0
    assert set(evening.targets.site_ids) == {"city_hall", "cultural_centre"}
    assert evening.start_on(START) == START + pd.Timedelta(hours=17)
