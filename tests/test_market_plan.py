"""Plans on prices by date: JEPX where published, the price forecast where not (said in
summary.json), the retailer's terms on top, the demand plan to submit, and the forecast's
backtest on the synthetic fixture."""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pandas as pd
import pytest

from ems.cli import main
from ems.config import load_portfolio
from ems.control.prices import market_day_prices, price_site
from ems.market.jepx import read_spot_csv
from ems.store import Store
from ems.store.prices import store_prices
from forecasting.prices import PriceHistoryError, backtest_prices, forecast_prices
from tests.market_fixtures import FIXTURE_LAST, SPOT_FIXTURE, write_market_portfolio

NOW = dt.datetime(2026, 4, 15, 12, tzinfo=dt.UTC)
ADDERS = 5.0 + 0.5 + 3.5  # wheeling + fees + surcharge of the test portfolio


@pytest.fixture(scope="module")
def fixture_days():
    return read_spot_csv(SPOT_FIXTURE, "kyushu").days


@pytest.fixture
def market_site(tmp_path, fixture_days):
    config = write_market_portfolio(tmp_path / "site")
    store = Store(tmp_path / "site" / "ems.sqlite")
    store_prices(store, "kyushu", fixture_days, SPOT_FIXTURE.name, NOW)
    store.close()
    return config


def test_a_48_hour_plan_uses_jepx_for_day_one_and_the_forecast_for_day_two(market_site, fixture_days, tmp_path):
    out = tmp_path / "plan"
    code = main(
        [
            "plan",
            "--config",
            str(market_site),
            "--date",
            str(FIXTURE_LAST),
            "--out",
            str(out),
            "--inputs",
            "profiles",
            "--horizon-hours",
            "48",
            "--no-plot",
        ]
    )
    assert code == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["prices"] == "jepx"
    assert summary["price_dates_published"] == [str(FIXTURE_LAST)]
    assert summary["price_dates_forecast"] == [str(FIXTURE_LAST + dt.timedelta(days=1))]
    slots = summary["price_forecast_slots"]
    assert len(slots) == 48 and slots[0] == "2026-04-16T00:00:00+09:00" and slots[-1] == "2026-04-16T23:30:00+09:00"
    portfolio = load_portfolio(market_site)
    prices = market_day_prices(portfolio, pd.Timestamp(FIXTURE_LAST).tz_localize("Asia/Tokyo"), 48)
    assert prices.import_yen_per_kwh[FIXTURE_LAST] == pytest.approx([p + ADDERS for p in fixture_days[FIXTURE_LAST]])
    assert prices.export_yen_per_kwh[FIXTURE_LAST] == pytest.approx(fixture_days[FIXTURE_LAST])


def test_the_demand_plan_is_the_schedule_grid_energy_per_slot(market_site, tmp_path):
    out = tmp_path / "plan"
    assert (
        main(
            [
                "plan",
                "--config",
                str(market_site),
                "--date",
                str(FIXTURE_LAST),
                "--out",
                str(out),
                "--inputs",
                "profiles",
                "--no-plot",
            ]
        )
        == 0
    )
    plan = pd.read_csv(out / "demand_plan.csv")
    assert list(plan.columns) == ["date", "slot", "start", "hall_kwh", "depot_kwh", "total_kwh"]
    assert plan["slot"].tolist() == list(range(1, 49)) and set(plan["date"]) == {str(FIXTURE_LAST)}
    assert np.allclose(plan["hall_kwh"] + plan["depot_kwh"], plan["total_kwh"], atol=2e-3)
    schedule = pd.read_csv(out / "schedule.csv")
    hall = schedule[schedule["asset"] == "hall_grid"]["power_kw"].to_numpy()
    assert np.allclose(plan["hall_kwh"], hall * 0.5, atol=1e-3)


def test_the_plan_follows_the_stored_price_of_its_date(market_site, fixture_days, tmp_path):
    """Metamorphic: make the evening of one date dear in the store, and the batteries move their
    discharge there on that date's plan."""
    day = FIXTURE_LAST
    discharge = {}
    for label, bump in (("as published", 0.0), ("dear evening", 30.0)):
        prices = list(fixture_days[day])
        prices[34:40] = [p + bump for p in prices[34:40]]
        store = Store(tmp_path / "site" / "ems.sqlite")
        store_prices(store, "kyushu", {day: tuple(prices)}, "test", NOW)
        store.close()
        out = tmp_path / label
        assert (
            main(
                [
                    "plan",
                    "--config",
                    str(market_site),
                    "--date",
                    str(day),
                    "--out",
                    str(out),
                    "--inputs",
                    "profiles",
                    "--no-plot",
                ]
            )
            == 0
        )
        schedule = pd.read_csv(out / "schedule.csv")
        battery = schedule[schedule["asset"].isin(["hall_bess", "depot_bess"])].pivot(
            index="time", columns="asset", values="power_kw"
        )
        discharge[label] = battery.to_numpy()[34:40].clip(min=0).sum() * 0.5
    assert discharge["dear evening"] > discharge["as published"] + 5.0


def test_planning_without_any_stored_prices_exits_2(tmp_path, capsys):
    config = write_market_portfolio(tmp_path / "empty")
    code = main(
        [
            "plan",
            "--config",
            str(config),
            "--date",
            "2026-04-16",
            "--out",
            str(tmp_path / "p"),
            "--inputs",
            "profiles",
            "--no-plot",
        ]
    )
    assert code == 2
    assert "import a JEPX spot file first" in capsys.readouterr().err


def test_price_forecast_knows_holidays_and_the_midday_solar_drop(fixture_days, tmp_path):
    site = price_site(load_portfolio(write_market_portfolio(tmp_path / "s")))
    holiday = dt.date(2026, 4, 29)  # Showa Day, a Wednesday
    # the fixture ends on the 15th: a week later (weekdays kept), the holiday is 7 days ahead
    shifted = {d + dt.timedelta(days=7): v for d, v in fixture_days.items()}
    assert holiday == max(shifted) + dt.timedelta(days=7)
    with_calendar = forecast_prices(shifted, [holiday], site)
    no_calendar = forecast_prices(shifted, [holiday], dataclass_replace(site, holiday_country=None))
    daytime = slice(16, 34)
    assert with_calendar.p50[holiday][daytime].mean() < no_calendar.p50[holiday][daytime].mean() - 0.3
    day = FIXTURE_LAST + dt.timedelta(days=1)
    sunny = forecast_prices(fixture_days, [day], site, {day: np.full(48, 0.0) + _clear(site, day)})
    cloudy = forecast_prices(fixture_days, [day], site, {day: 0.2 * _clear(site, day)})
    assert sunny.p50[day][22:28].mean() < cloudy.p50[day][22:28].mean() - 1.0
    assert np.all(sunny.p10[day] <= sunny.p50[day]) and np.all(sunny.p50[day] <= sunny.p90[day])


def test_backtest_on_held_out_days_beats_both_naive_forecasts(fixture_days, tmp_path):
    site = price_site(load_portfolio(write_market_portfolio(tmp_path / "s")))
    result = backtest_prices(fixture_days, site, held_out_days=10)
    assert result["days"] == 10
    assert result["skill_vs_last_week"] > 0.1 and result["skill_vs_yesterday"] > 0.1
    assert 0.6 <= result["p10_p90_coverage"] <= 0.95


def test_too_little_history_is_a_clear_error(fixture_days, tmp_path):
    site = price_site(load_portfolio(write_market_portfolio(tmp_path / "s")))
    few = dict(list(sorted(fixture_days.items()))[-10:])
    with pytest.raises(PriceHistoryError, match="complete days of price history"):
        forecast_prices(few, [FIXTURE_LAST + dt.timedelta(days=1)], site)


def _clear(site, day):
    from forecasting.prices import solar_kw_per_kwp

    return solar_kw_per_kwp(pd.DatetimeIndex([pd.Timestamp(day)]), site)[0] / site.clear_sky_index


def dataclass_replace(obj, **changes):
    import dataclasses

    return dataclasses.replace(obj, **changes)
