"""The console's pages and their JSON, on a store filled by a real twin run (tests/web_fixtures.py).

Each figure a page shows is checked against the store or the files it comes from, or against
physics (every site's plan balances), never against numbers written into the test.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from collections import defaultdict
from zoneinfo import ZoneInfo

import pytest

from ems.config import load_portfolio
from ems.store.reads import setpoint_log
from tests.conftest import REPO
from tests.web_fixtures import CONFIG

PAGES = ["/", "/schedule", "/fleet", "/devices", "/audit"]
ZONE = ZoneInfo("Asia/Tokyo")


@pytest.fixture(scope="module")
def portfolio():
    return load_portfolio(CONFIG)


@pytest.mark.parametrize("path", PAGES)
def test_every_page_and_its_json_need_a_login_then_answer(console, path):
    api = "/api" + (path if path != "/" else "/")
    assert console.get(api).status_code == 401
    assert console.get(path, headers={"accept": "text/html"}, follow_redirects=False).status_code == 303
    console.login("taro")
    page = console.get(path, headers={"accept": "text/html"})
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert console.get(api).status_code == 200


def test_now_shows_the_stored_plan_the_gate_and_the_baseline_figures(console, web_run):
    console.login("taro")
    now = console.get("/api/").json()
    plan = console.store.last_plan()
    assert now["last_plan"]["id"] == plan["id"] and now["last_plan"]["status"] == plan["status"]
    assert now["last_plan"]["gap"] == plan["summary"]["mip_gap"]
    local = web_run.end.astimezone(ZONE)
    gate = dt.datetime.combine(local.date(), dt.time(10), ZONE)
    gate += dt.timedelta(days=1) if local >= gate else dt.timedelta(0)
    assert now["gate"]["seconds_left"] == int((gate - local).total_seconds())
    summary = json.loads((web_run.day_ahead_dir / "2026-04-16" / "summary.json").read_text())
    energy, total = now["kpi"]["energy_only"], now["kpi"]["with_demand_charge"]
    assert energy["saving_yen"] == pytest.approx(
        summary["baseline_energy_cost_yen"] - summary["energy_cost_yen"], abs=0.01
    )
    assert total["saving_yen"] == pytest.approx(
        summary["baseline_energy_cost_yen"]
        + summary["baseline_demand_charge_yen"]
        - summary["energy_cost_yen"]
        - summary["demand_charge_yen"],
        abs=0.01,
    )
    assert not now["bcp_mode"]["active"]


def test_now_shows_who_switched_bcp_mode_on_for_which_outage(console, web_run, tmp_path):
    from ems.bcp.mode import BcpModeStore
    from ems.bcp.outage import load_outage

    console.login("taro")
    assert console.get("/api/").json()["bcp_mode"]["switch"] is None
    outage = load_outage(REPO / "config" / "outages" / "typhoon-72h.toml")
    BcpModeStore(tmp_path / "bcp").activate(
        outage, str(CONFIG), "hanako", outage.start, reason="typhoon drill", force=True
    )
    switch = console.get("/api/").json()["bcp_mode"]["switch"]
    assert switch["active"] and switch["operator"] == "hanako" and switch["outage"]["name"] == outage.name
    banner = console.get("/", headers={"accept": "text/html"}).text
    assert "hanako" in banner and outage.name in banner and "bcp-on" in banner


def test_schedule_plan_balances_at_every_site_and_matches_the_stored_points(console, portfolio):
    console.login("taro")
    data = console.get("/api/schedule").json()
    plan_id = console.store.last_plan()["id"]
    assert data["plan"]["id"] == plan_id
    window = (dt.datetime.fromisoformat(data["start"]), dt.datetime.fromisoformat(data["end"]))
    stored_abs = sum(abs(p) for t, _a, p, _s in console.store.plan_points(plan_id) if window[0] <= t < window[1])
    shown_abs = 0.0
    for site in data["sites"]:
        by_time = defaultdict(float)
        for rows in site["planned"].values():
            for time, power in rows:
                by_time[time] += power
                shown_abs += abs(power)
        # generator view: at every site and step the powers sum to zero
        assert by_time and max(abs(v) for v in by_time.values()) < 0.05, site["id"]
    window_end = dt.datetime.fromisoformat(data["end"])
    assert all(
        dt.datetime.fromisoformat(t) < window_end
        for s in data["sites"]
        for rows in s["planned"].values()
        for t, _ in rows
    )
    # vehicles are summed per site, so the shown magnitudes can only be at most the stored ones
    assert 0.9 * stored_abs <= shown_abs <= stored_abs + 0.5


def test_schedule_measured_values_come_from_the_store_and_stop_at_now(console):
    console.login("taro")
    data = console.get("/api/schedule").json()
    now = dt.datetime.fromisoformat(data["now"])
    city = next(s for s in data["sites"] if s["id"] == "city_hall")
    measured = city["measured"]["grid"]
    assert measured and all(dt.datetime.fromisoformat(t) <= now for t, _ in measured)
    values = [
        v for _t, v in console.store.series("city_hall_grid", "power_kw", dt.datetime.fromisoformat(data["start"]))
    ]
    assert min(values) - 1e-6 <= min(v for _t, v in measured) <= max(v for _t, v in measured) <= max(values) + 1e-6


def test_schedule_prices_are_the_sites_tariff_slot_by_slot(console, portfolio):
    console.login("taro")
    data = console.get("/api/schedule").json()
    for site in data["sites"]:
        prices = site["import_price"]
        assert len(prices) == 96  # two days of 48 slots
        tariff = portfolio.tariffs[next(s.tariff for s in portfolio.sites if s.id == site["id"])]
        assert [p for _t, p in prices[:48]] == pytest.approx(list(tariff.import_price_yen_per_kwh))
        assert dt.datetime.fromisoformat(prices[20][0]).astimezone(ZONE).strftime("%H:%M") == "10:00"


def test_vehicles_table_reads_the_stored_soc_and_the_duties(console, portfolio):
    console.login("taro")
    rows = {v["vehicle"]: v for v in console.get("/api/schedule").json()["vehicles"]}
    assert set(rows) == {v.id for v in portfolio.vehicles}
    for vehicle in portfolio.vehicles:
        series = console.store.series(vehicle.id, "soc_fraction", dt.datetime(2026, 4, 14, tzinfo=dt.UTC))
        assert rows[vehicle.id]["soc_kwh"] == pytest.approx(series[-1][1] * vehicle.battery_kwh, abs=0.05)
        assert rows[vehicle.id]["charger"] == vehicle.home_charger
        assert rows[vehicle.id]["next_departure"] is not None and rows[vehicle.id]["energy_needed_kwh"] > 0
        assert rows[vehicle.id]["status"] in ("plugged", "away")


def test_setpoint_log_shows_the_stored_rows_with_the_guards_reasons(console, web_run):
    console.login("taro")
    rows = console.get("/api/schedule").json()["setpoints"]
    stored = setpoint_log(console.store, web_run.end - dt.timedelta(hours=6), web_run.end, limit=300)
    assert len(rows) == len(stored) > 0
    assert [(r["device"], r["status"], r["reason"]) for r in rows] == [
        (r["device"], r["status"], r["reason"]) for r in stored
    ]
    assert any("ratings" in r["reason"] for r in rows)


def test_schedule_csv_is_the_last_plan_in_long_form(console):
    console.login("taro")
    answer = console.get("/schedule.csv")
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(answer.text)))
    points = console.store.plan_points(console.store.last_plan()["id"])
    assert len(rows) == len(points)
    assert list(rows[0]) == ["time", "site", "asset", "kind", "power_kw", "soc_kwh"]
    assert sum(float(r["power_kw"]) for r in rows) == pytest.approx(sum(p for _t, _a, p, _s in points), abs=0.01)
    assert rows[0]["time"].endswith("+09:00")


def test_day_ahead_files_download_and_nothing_else(console, web_run):
    console.login("taro")
    listed = console.get("/api/schedule").json()["day_ahead_files"]
    assert listed == [
        {"date": "2026-04-16", "files": sorted(p.name for p in (web_run.day_ahead_dir / "2026-04-16").iterdir())}
    ]
    summary = console.get("/files/day-ahead/2026-04-16/summary.json")
    assert summary.status_code == 200 and summary.json() == json.loads(
        (web_run.day_ahead_dir / "2026-04-16" / "summary.json").read_text()
    )
    for path in (
        "/files/day-ahead/2026-04-16/..%2F..%2Fems.sqlite",
        "/files/day-ahead/..%2F..%2F/x",
        "/files/day-ahead/2026-04-16/nope.csv",
    ):
        assert console.get(path).status_code == 404, path
    console.cookies.clear()
    assert console.get("/files/day-ahead/2026-04-16/summary.json").status_code == 401


def test_fleet_places_every_vehicle_and_draws_each_soc_through_the_day(console, portfolio):
    console.login("taro")
    data = console.get("/api/fleet").json()
    size = data["map"]["size"]
    assert {v["id"] for v in data["map"]["vehicles"]} == {v.id for v in portfolio.vehicles}
    assert all(-100 <= s["x"] <= size + 100 and -100 <= s["y"] <= size + 100 for s in data["map"]["sites"])
    north = next(s for s in data["map"]["sites"] if s["id"] == "shelter_north")
    south = next(s for s in data["map"]["sites"] if s["id"] == "shelter_south")
    assert north["y"] < south["y"]  # north is up
    assert set(data["soc"]) == {v.id for v in portfolio.vehicles}
    assert data["rides"]["available"] is False  # no dispatcher store beside this run
    page = console.get("/fleet", headers={"accept": "text/html"})
    assert page.text.count('class="vehicle ') == len(portfolio.vehicles)


def test_devices_lists_every_device_with_its_reading_and_last_setpoint(console, portfolio):
    console.login("taro")
    rows = {d["device"]: d for d in console.get("/api/devices").json()["devices"]}
    configured = [
        a.id
        for group in (
            portfolio.grid_connections,
            portfolio.pv_arrays,
            portfolio.loads,
            portfolio.batteries,
            portfolio.chargers,
            portfolio.vehicles,
        )
        for a in group
    ]
    assert set(rows) == set(configured)
    battery = rows["city_hall_bess"]
    stored = [r for r in list(console.store.rows("setpoints"))[1:] if r[1] == "city_hall_bess"][-1]
    assert (
        battery["last_setpoint"]["requested_kw"] == pytest.approx(stored[2])
        and battery["last_setpoint"]["status"] == stored[4]
    )
    assert battery["protocol"] == "sim" and battery["readings"]["soc_fraction"] is not None
    assert rows["city_hall_grid"]["quality"] == "good"


def test_labels_are_japanese_by_default_and_switch_to_english(console):
    console.login("hanako")
    assert "今すぐ再計画" in console.get("/schedule", headers={"accept": "text/html"}).text
    switched = console.get("/lang/en?next=/schedule", follow_redirects=False)
    assert switched.status_code == 303 and switched.headers["location"] == "/schedule"
    page = console.get("/schedule", headers={"accept": "text/html"}).text
    assert "Re-plan now" in page and 'lang="en"' in page
    assert console.get("/lang/en?next=//evil.example", follow_redirects=False).headers["location"] == "/"


def test_only_an_operator_sees_the_replan_button(console):
    console.login("taro")
    assert 'id="replan-now"' not in console.get("/schedule", headers={"accept": "text/html"}).text
    console.cookies.clear()
    console.login("hanako")
    assert 'id="replan-now"' in console.get("/schedule", headers={"accept": "text/html"}).text


def test_static_files_are_served_from_the_package_with_print_css(console):
    for name in ("htmx.min.js", "echarts.min.js", "console.js", "charts.js"):
        assert console.get(f"/static/{name}").status_code == 200, name
    assert "size: A4" in console.get("/static/console.css").text


def test_text_from_the_store_is_escaped(console):
    from ems.web import audit

    console.login("hanako")
    audit.record(console.app.state.console, "hanako", "operator", "<script>alert(1)</script>", "done")
    page = console.get("/audit", headers={"accept": "text/html"}).text
    assert "<script>alert(1)</script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page


@pytest.mark.parametrize("path", ["/", "/devices"])
def test_now_and_devices_refresh_themselves(console, path):
    console.login("taro")
    page = console.get(path, headers={"accept": "text/html", "HX-Request": "true"}).text
    assert f'<main hx-get="{path}" hx-trigger="every 30s" hx-select="main"' in page


def test_storage_shows_measured_soc_and_the_day_ahead_plans_soc(console, web_run, portfolio):
    console.login("taro")
    data = console.get("/api/schedule").json()
    storage, end = data["storage"], dt.datetime.fromisoformat(data["end"])
    assert set(storage) == {b.id for b in portfolio.batteries}
    capacity = {b.id: b.capacity_kwh for b in portfolio.batteries}
    rows = list(csv.DictReader((web_run.day_ahead_dir / "2026-04-16" / "schedule.csv").open()))
    for battery, shown in storage.items():
        planned = [
            (r["time"], float(r["soc_kwh"]))
            for r in rows
            if r["asset"] == battery and dt.datetime.fromisoformat(r["time"]) < end
        ]  # the 48 h window only
        assert len(planned) == 48
        assert [(t, v) for t, v in shown["day_ahead"]] == [(t, pytest.approx(v, abs=0.01)) for t, v in planned]
        assert shown["measured"] and all(0 <= v <= capacity[battery] for _t, v in shown["measured"])
