"""Following the 30-minute demand plan: the slot meter, the correction, the recorded balance,
and the imbalance with and without following on the same day and forecast-error sample."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from ems.config import load_portfolio
from ems.control.following import PlanFollower, Steerable, distribute_offset, needed_grid_kw
from ems.store import Store
from ems.store.prices import imbalance_summary, record_slot_balances, slot_balances
from tests.market_fixtures import write_market_portfolio

T0 = dt.datetime(2026, 4, 15, 3, 0, tzinfo=dt.UTC)  # 12:00 in Japan, a slot boundary


@pytest.fixture
def portfolio(tmp_path):
    return load_portfolio(write_market_portfolio(tmp_path / "site"))


def flat_plan(kw: dict[str, float], start=T0, steps=4) -> pd.DataFrame:
    index = pd.date_range(start, periods=steps, freq="30min")
    return pd.DataFrame({grid: [value] * steps for grid, value in kw.items()}, index=index)


def test_needed_power_and_the_split_over_devices():
    assert needed_grid_kw(10.0, 4.0, 0.25) == pytest.approx(24.0)
    assert needed_grid_kw(10.0, 4.0, 0.0) == pytest.approx(6.0 / (2 / 60))  # never divides by zero
    devices = [Steerable("bess", 0.0, -15.0, 10.0), Steerable("car", -6.0, -6.0, 0.0)]
    assert distribute_offset(12.0, devices) == ({"bess": 10.0, "car": -4.0}, 0.0)
    assert distribute_offset(20.0, devices) == ({"bess": 10.0, "car": 0.0}, 4.0)


def test_a_slot_is_steered_to_its_plan_and_recorded(portfolio, tmp_path):
    """The site draws 30 kW; the plan says 10 kWh (20 kW) this slot: the battery makes up the rest."""
    follower = PlanFollower(portfolio, 25.0)
    follower.update_plan(flat_plan({"hall_grid": 20.0, "depot_grid": 2.0}), 30, T0 - dt.timedelta(hours=2))
    base = {"hall": 30.0, "depot": 2.0}
    battery = 0.0
    closed = []
    for minute in range(0, 31):
        now = T0 + dt.timedelta(minutes=minute)
        grid = {"hall": base["hall"] - battery, "depot": base["depot"]}
        closed += follower.observe(now, grid)
        setpoints = follower.correct(now, grid, {"hall": [Steerable("hall_bess", 0.0, -15.0, 15.0)]})
        battery = setpoints.get("hall_bess", battery)
    hall = next(b for b in closed if b.site == "hall")
    total = next(b for b in closed if b.site == "total")
    assert hall.planned_kwh == pytest.approx(10.0)
    assert abs(hall.imbalance_kwh) < 0.3  # against 5 kWh without the battery
    assert total.planned_kwh == pytest.approx(11.0) and total.imbalance_yen == pytest.approx(
        abs(total.imbalance_kwh) * 25.0
    )
    store = Store(tmp_path / "s.sqlite")
    record_slot_balances(store, closed)
    assert [b.site for b in slot_balances(store, T0)] == ["depot", "hall", "total"]
    summary = imbalance_summary(store, T0)
    assert summary["slots"] == 1 and summary["imbalance_abs_kwh"] == pytest.approx(abs(total.imbalance_kwh), abs=1e-3)


def test_without_following_the_same_slot_keeps_its_error(portfolio):
    follower = PlanFollower(portfolio, 25.0, enabled=False)
    follower.update_plan(flat_plan({"hall_grid": 20.0, "depot_grid": 2.0}), 30, T0 - dt.timedelta(hours=2))
    closed = []
    for minute in range(0, 31):
        now = T0 + dt.timedelta(minutes=minute)
        closed += follower.observe(now, {"hall": 30.0, "depot": 2.0})
        assert (
            follower.correct(now, {"hall": 30.0, "depot": 2.0}, {"hall": [Steerable("hall_bess", 0.0, -15.0, 15.0)]})
            == {}
        )
    hall = next(b for b in closed if b.site == "hall")
    assert hall.imbalance_kwh == pytest.approx(5.0) and not hall.following


def test_partial_slots_and_gate_closure(portfolio):
    follower = PlanFollower(portfolio, 25.0)
    follower.update_plan(flat_plan({"hall_grid": 20.0, "depot_grid": 2.0}), 30, T0 - dt.timedelta(hours=2))
    # a re-plan 10 minutes before the first slot: that slot's gate has closed, later ones move
    follower.update_plan(flat_plan({"hall_grid": 40.0, "depot_grid": 2.0}), 30, T0 - dt.timedelta(minutes=10))
    assert follower.planned_kwh[T0]["hall"] == pytest.approx(10.0)
    assert follower.planned_kwh[T0 + dt.timedelta(minutes=90)]["hall"] == pytest.approx(20.0)
    # started mid-slot: that slot is not recorded; a meter gap spoils the next one
    closed = follower.observe(T0 + dt.timedelta(minutes=10), {"hall": 20.0, "depot": 2.0})
    closed += follower.observe(T0 + dt.timedelta(minutes=30), {"hall": 20.0, "depot": None})
    closed += follower.observe(T0 + dt.timedelta(minutes=60), {"hall": 20.0, "depot": 2.0})
    closed += follower.observe(T0 + dt.timedelta(minutes=90), {"hall": 20.0, "depot": 2.0})
    recorded = {(b.slot_start, b.site) for b in closed}
    assert (T0, "hall") not in recorded and (T0 + dt.timedelta(minutes=30), "depot") not in recorded
    assert (T0 + dt.timedelta(minutes=30), "hall") in recorded and (T0 + dt.timedelta(minutes=60), "depot") in recorded


def test_following_cuts_the_imbalance_of_a_day_with_forecast_errors(tmp_path):
    from simulations.imbalance import imbalance_day

    config = str(write_market_portfolio(tmp_path / "site"))
    day = dt.date(2026, 4, 15)
    following = imbalance_day(config, day, seed=3, follow=True, replan_minutes=480)
    open_loop = imbalance_day(config, day, seed=3, follow=False, replan_minutes=480)
    assert following["replans"] == open_loop["replans"] == 3
    assert open_loop["imbalance_abs_kwh"] > 5.0
    assert following["imbalance_abs_kwh"] < 0.5 * open_loop["imbalance_abs_kwh"]


def test_the_live_loop_steers_a_slot_to_the_plan_on_the_twin(twin_factory, mosquitto, tmp_path):
    """The city hall's load runs 25 % above its profile (the plan's forecast): the controller's
    battery makes up the difference within the slot and the store keeps the slot's balance."""
    import asyncio

    from ems.config.market import MarketSettings
    from ems.control.following import ControllerFollowing
    from tests.control_fixtures import SteppedRun, fast_twin_portfolio

    portfolio = _patient(fast_twin_portfolio()).model_copy(
        update={"market": MarketSettings(imbalance_price_yen_per_kwh=30.0)}
    )
    run = SteppedRun(twin_factory, mosquitto, tmp_path / "ems.sqlite", portfolio=portfolio)

    async def hour():
        controller = await run.open_controller()
        controller.following = ControllerFollowing(PlanFollower(run.served, 30.0))
        load = run.twin.physics["city_hall_load"]
        await controller.cycle(replan=True)
        load.peak_kw *= 1.25
        extra_kwh = 0.0
        for _ in range(15):
            await run.advance(120)
            extra_kwh += -load.power_kw * 0.2 * 120 / 3600  # the 25 % above the profile, this step
            await controller.poll()
            await controller.apply()
        balances = slot_balances(run.store, run.clock.now() - dt.timedelta(hours=2))
        await run.close_controller()
        return balances, extra_kwh

    balances, extra_kwh = asyncio.run(hour())
    hall = [b for b in balances if b.site == "city_hall"]
    assert len(hall) == 1 and hall[0].following, balances  # the 06:00 slot, closed at its end
    assert extra_kwh > 4.0  # what the site drew above its plan over the slot
    assert abs(hall[0].imbalance_kwh) < 0.1 * extra_kwh, (hall[0], extra_kwh)
    assert {b.site for b in balances} >= {"city_hall", "total"}


def test_ems_imbalance_lists_the_recorded_slots_of_a_day(portfolio, tmp_path, capsys):
    from ems.cli import main
    from ems.store.prices import SlotBalance

    store = Store(tmp_path / "site" / "ems.sqlite")
    record_slot_balances(
        store,
        [
            SlotBalance(T0, "total", 11.0, 12.5, 37.5, True),
            SlotBalance(T0 + dt.timedelta(minutes=30), "total", 11.0, 10.0, 25.0, True),
        ],
    )
    store.close()
    assert main(["imbalance", "--config", str(tmp_path / "site" / "small.toml"), "--date", "2026-04-15"]) == 0
    out = capsys.readouterr().out
    assert "  25 12:00        11.00        12.50          +1.50       38" in out
    assert "2 slots: |imbalance| 2.50 kWh, 62 yen" in out


def _patient(portfolio):
    """Device timeouts of 5 s: a slot with a missed reading is (rightly) not recorded, and a
    busy test machine must not make one."""
    update = {}
    for table in ("grid_connections", "pv_arrays", "loads", "batteries", "chargers", "shelters"):
        assets = getattr(portfolio, table)
        update[table] = tuple(
            a.model_copy(update={"driver": a.driver.model_copy(update={"timeout_s": 5.0})})
            if hasattr(a.driver, "timeout_s")
            else a
            for a in assets
        )
    update["vehicles"] = tuple(
        v.model_copy(update={"driver": v.driver.model_copy(update={"timeout_s": 5.0})})
        if hasattr(v.driver, "timeout_s")
        else v
        for v in portfolio.vehicles
    )
    return portfolio.model_copy(update=update)


def test_ems_status_shows_todays_demand_plan_balance(portfolio, tmp_path, capsys):
    from ems.cli import main
    from ems.control.following import _slot_start
    from ems.store.prices import SlotBalance

    slot = _slot_start(dt.datetime.now(dt.UTC))
    store = Store(tmp_path / "site" / "ems.sqlite")
    record_slot_balances(store, [SlotBalance(slot, "total", 11.0, 12.5, 37.5, True)])
    store.close()
    assert main(["status", "--config", str(tmp_path / "site" / "small.toml")]) == 0
    out = capsys.readouterr().out
    assert "demand plan today: 1 slot(s), planned 11.0 kWh, metered 12.5 kWh, |imbalance| 1.50 kWh (38 yen)" in out
