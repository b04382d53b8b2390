"""The console in a real headless Chromium (Playwright, Debian's chromium) against ``ems serve``
running as its own process on the store of a real twin run: log in, the schedule chart drawn
with data, a BCP drill from the form to its result, BCP mode on and off with the typed
confirmation. Each page is saved as a screenshot under out/console/."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

from tests.console_fixtures import REPO, console_config, ems_serve

SHOTS = REPO / "out" / "console"
PASSWORD = "operator-password-1"
SPEC_12H = (
    "start=2026-09-15T14:00+09:00; hours=12; sites=shelter_north,shelter_central,shelter_south,city_hall; pv_scale=0.3"
)

# How much of a chart's canvas is painted: pixels that are not blank (transparent or white).
PAINTED_SHARE = """el => {
  const canvas = el.querySelector('canvas');
  if (!canvas) return 0;
  const data = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
  let painted = 0;
  for (let i = 0; i < data.length; i += 4) {
    if (data[i + 3] > 0 && !(data[i] > 245 && data[i + 1] > 245 && data[i + 2] > 245)) painted++;
  }
  return painted / (data.length / 4);
}"""

# The points of each series ECharts holds for a chart (what it drew from).
SERIES_POINTS = """el => {
  const chart = echarts.getInstanceByDom(el);
  if (!chart) return [];
  return chart.getOption().series.map(s => ({name: s.name, points: (s.data || []).filter(
      v => v !== null && v !== undefined && !(Array.isArray(v) && (v[1] === null || v[1] === undefined))).length}));
}"""


@pytest.fixture(scope="module")
def served(web_run, nights, tmp_path_factory):
    """``ems serve --at`` the end of the twin run, with an operator and the nights, as a process."""
    workdir = tmp_path_factory.mktemp("served")
    store = workdir / "ems.sqlite"
    shutil.copy(web_run.store, store)
    config = console_config(
        workdir / "config",
        store,
        f'\n[control]\nnightly_dir = "{nights}"\nday_ahead_dir = "{web_run.day_ahead_dir}"\n'
        '\n[console]\nlocale = "en"\n',
    )
    added = subprocess.run(
        [
            sys.executable,
            "-m",
            "ems",
            "users",
            "add",
            "hanako",
            "--role",
            "operator",
            "--config",
            str(config),
            "--password-env",
            "CONSOLE_PASSWORD",
        ],
        cwd=workdir,
        capture_output=True,
        text=True,
        env=os.environ | {"CONSOLE_PASSWORD": PASSWORD},
        timeout=60,
    )
    assert added.returncode == 0, added.stderr
    server = ems_serve(config, store, workdir, ("--at", web_run.end.isoformat()))
    SHOTS.mkdir(parents=True, exist_ok=True)
    yield server, workdir
    server.stop()
    for drill in (workdir / "out" / "drills").glob("*"):
        assert (drill / "job.json").is_file()


@pytest.fixture
def page(chromium, served):
    server, _workdir = served
    context = chromium.new_context(viewport={"width": 1280, "height": 900}, base_url=server.url, locale="en-GB")
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))  # any script error fails the test
    page.on(
        "console",
        lambda message: (
            errors.append(message.text)
            if message.type == "error" and not message.text.startswith("Failed to load resource")
            else None
        ),
    )
    failed: list[str] = []  # a wrong password's 401 is expected; the browser's own favicon request is not ours
    page.on(
        "response",
        lambda response: (
            failed.append(f"{response.status} {response.url}")
            if response.status >= 400 and not response.url.endswith(("/favicon.ico", "/login"))
            else None
        ),
    )
    yield page
    context.close()
    assert errors == [], f"errors in the browser: {errors}"
    assert failed == [], f"requests that failed: {failed}"


def login(page) -> None:
    page.goto("/login")
    page.fill("input[name=username]", "hanako")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(lambda url: "/login" not in url)


def shot(page, name: str) -> None:
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def test_log_in_and_see_the_schedule_drawn_with_data(page):
    page.goto("/schedule")
    assert "/login" in page.url  # not logged in: sent to the login form
    page.fill("input[name=username]", "hanako")
    page.fill("input[name=password]", "wrong password")
    page.click("button[type=submit]")
    assert page.locator("[role=alert]").is_visible()
    login(page)
    shot(page, "now")
    page.goto("/schedule")
    charts = page.locator("[data-chart=sitePower]")
    charts.first.wait_for()
    page.wait_for_selector("[data-chart=sitePower][data-drawn=true]")
    assert charts.count() >= 3  # one per site
    for index in range(charts.count()):
        chart = charts.nth(index)
        series = chart.evaluate(SERIES_POINTS)
        assert sum(s["points"] for s in series) > 48, (index, series)  # the plan's steps, not an empty frame
        assert chart.evaluate(PAINTED_SHARE) > 0.02, index  # and they are on the canvas
    soc = page.locator("[data-chart=storageSoc]")
    assert sum(s["points"] for s in soc.evaluate(SERIES_POINTS)) > 0
    shot(page, "schedule")
    for name in ("fleet", "devices", "nightly", "audit"):
        page.goto(f"/{name}")
        page.wait_for_load_state("networkidle")
        for chart in page.locator("[data-chart]").all():
            chart.wait_for()
        shot(page, name)


def test_nightly_page_draws_the_flexibility_curve(page):
    login(page)
    page.goto("/nightly")
    chart = page.locator("[data-chart=night-flexibility]")
    page.wait_for_selector("[data-chart=night-flexibility][data-drawn=true]")
    series = {s["name"]: s["points"] for s in chart.evaluate(SERIES_POINTS)}
    assert series == {"down": 8, "up": 8}  # eight 3-hour blocks in each direction
    assert chart.evaluate(PAINTED_SHARE) > 0.01
    assert page.locator("table.changes tr").count() > 1  # what changed since the previous night
    shot(page, "nightly")


def test_run_a_drill_and_see_its_result(page):
    login(page)
    page.goto("/bcp")
    page.fill("input[name=outage_spec]", SPEC_12H)
    page.check("input[name=state][value=store]")
    page.click("#run-drill")
    progress = page.locator("#drill [data-status=running]")
    progress.wait_for(timeout=15_000)  # the job answers at once and polls its progress
    assert progress.locator("progress").count() == 1
    page.wait_for_selector("#drill [data-status=done]", timeout=300_000)
    result = page.locator("#drill [data-status=done]")
    assert result.locator("table.shelters tr").count() == 5  # header, three shelters, all together
    assert result.locator("table.visits tr").count() > 1
    page.wait_for_selector("#drill [data-chart=bcp-supply][data-drawn=true]")
    supply = result.locator("[data-chart=bcp-supply]")
    series = supply.evaluate(SERIES_POINTS)
    # 3 shelters x (PV, battery, vehicles, load), each the 12 hourly steps of the outage
    assert len(series) == 3 * 4 and all(s["points"] == 12 for s in series)
    assert supply.evaluate(PAINTED_SHARE) > 0.02
    shot(page, "bcp-drill")


def test_bcp_mode_on_and_off_with_the_confirmation(page, served):
    _server, workdir = served
    login(page)
    page.goto("/bcp")
    panel = page.locator("#mode-panel")
    assert panel.locator("[data-bcp=off]").is_visible()
    panel.locator("input[name=outage_spec]").fill(
        "start=2026-04-15T09:00+09:00; hours=24; sites=shelter_north,shelter_south"
    )
    panel.locator("input[name=reason]").fill("typhoon warning, drill of the switch")
    panel.locator("input[name=confirm]").fill("yes")  # not the portfolio's name nor BCP
    panel.locator("button[type=submit]").click()
    page.locator("#mode-panel [role=alert]").wait_for()
    assert "confirm" in page.locator("#mode-panel [role=alert]").inner_text()
    assert not (workdir / "var" / "ems" / "bcp_mode.json").exists()  # refused: nothing recorded

    page.goto("/bcp")
    panel = page.locator("#mode-panel")
    panel.locator("input[name=outage_spec]").fill(
        "start=2026-04-15T09:00+09:00; hours=24; sites=shelter_north,shelter_south"
    )
    panel.locator("input[name=reason]").fill("typhoon warning, drill of the switch")
    panel.locator("input[name=confirm]").fill("BCP")
    panel.locator("button[type=submit]").click()
    page.locator("#mode-panel [data-bcp=on]").wait_for()
    assert (workdir / "var" / "ems" / "bcp_mode.json").is_file()
    shot(page, "bcp-mode-on")
    page.goto("/")
    assert page.locator(".banner.bcp-on").is_visible()  # the Now page reads the same record
    shot(page, "now-bcp-on")

    page.goto("/bcp")
    panel = page.locator("#mode-panel")
    panel.locator("input[name=reason]").fill("grid restored")
    panel.locator("input[name=confirm]").fill("BCP")
    panel.locator("button[type=submit]").click()
    page.locator("#mode-panel [data-bcp=off]").wait_for()
    log = page.locator("#mode-panel table.mode-log").inner_text()
    assert "activate" in log and "deactivate" in log and "grid restored" in log
    shot(page, "bcp")
    page.goto("/audit")
    text = page.locator("main").inner_text()
    assert "bcp-activate" in text and "bcp-deactivate" in text
    shot(page, "audit")
