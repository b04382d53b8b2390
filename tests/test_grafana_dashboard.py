"""The Grafana dashboard in deploy/grafana: every panel's query is run against a VictoriaMetrics
server fed by the controller's own InfluxDB mirror during a run on the digital twin, and the
series that come back are the values the store holds."""

from __future__ import annotations

import datetime as dt
import json
import math
import sqlite3
import urllib.parse
import urllib.request
from collections import defaultdict
from pathlib import Path

import pytest

from tests.console_fixtures import console_config, twin_store

REPO = Path(__file__).resolve().parent.parent
DASHBOARD = REPO / "deploy" / "grafana" / "ems-telemetry.json"


def panel_queries(dashboard: dict) -> dict[str, list[str]]:
    """Panel title -> its queries, with the dashboard's variables at their "All" values."""
    variables = {"$device": ".*", "${device}": ".*"}
    queries = {}
    for panel in dashboard["panels"]:
        exprs = []
        for target in panel["targets"]:
            expr = target["expr"]
            for name, value in variables.items():
                expr = expr.replace(name, value)
            assert "$" not in expr, f"{panel['title']}: unresolved variable in {expr}"
            exprs.append(expr)
        queries[panel["title"]] = exprs
    return queries


def query_range(url: str, expr: str, at_s: int) -> dict[tuple, float]:
    """One step of /api/v1/query_range at ``at_s``: {labels: value}."""
    params = urllib.parse.urlencode({"query": expr, "start": at_s, "end": at_s, "step": "1s"})
    body = json.loads(urllib.request.urlopen(f"{url}/api/v1/query_range?{params}", timeout=10).read())
    assert body["status"] == "success", body
    found = {}
    for series in body["data"]["result"]:
        labels = tuple(sorted((k, v) for k, v in series["metric"].items() if k != "__name__"))
        ((time_s, value),) = series["values"]
        assert int(time_s) == at_s
        found[labels] = float(value)
    return found


@pytest.fixture(scope="module")
def mirrored_run(tmp_path_factory, request):
    """A controller run on the twin whose store is mirrored into a VictoriaMetrics server."""
    from tests.conftest import Broker, free_port
    from tests.store_fixtures import BINARY, MetricsServer

    if not Path(BINARY).exists():
        pytest.fail("victoria-metrics is not installed: .ci/run installs the Debian package 'victoria-metrics'")
    directory = tmp_path_factory.mktemp("grafana")
    metrics = MetricsServer(directory / "vm")
    metrics.start()
    broker = Broker(free_port(), directory)
    broker.start()
    try:
        store = directory / "ems.sqlite"
        config = console_config(
            directory / "config", store, f'\n[storage.influx]\nurl = "{metrics.url}"\nflush_s = 0.5\ntimeout_s = 5\n'
        )
        twin_store(config, store, broker, hours=1.3, speed=240)  # longer than the energy panel's hour
        urllib.request.urlopen(f"{metrics.url}/internal/force_flush").read()
        yield metrics, store
    finally:
        broker.stop()
        metrics.stop()


def stored(store: Path, sql: str) -> list[tuple]:
    with sqlite3.connect(f"file:{store}?mode=ro", uri=True) as db:
        return db.execute(sql).fetchall()


def poll_instants(store: Path) -> list[int]:
    """Whole seconds just after three polls of the run (start, middle, end), each before the next poll."""
    times = [t for (t,) in stored(store, "SELECT DISTINCT time_ms FROM telemetry ORDER BY time_ms")]
    assert len(times) >= 5, "the run stored too few polls"
    chosen = []
    for index in (1, len(times) // 2, len(times) - 1):
        at_s = math.ceil(times[index] / 1000)
        if index + 1 == len(times) or times[index + 1] > at_s * 1000:
            chosen.append((times[index], at_s))
    assert chosen
    return chosen


def latest_by(store: Path, time_ms: int, quantity: str) -> dict[tuple, float]:
    rows = stored(
        store,
        f"SELECT device, quality, value FROM telemetry "
        f"WHERE time_ms={time_ms} AND quantity='{quantity}' AND value IS NOT NULL",
    )
    return {(("device", d), ("quality", q), ("quantity", quantity)): v for d, q, v in rows}


def test_the_dashboard_is_valid_grafana_json():
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["uid"] and dashboard["panels"]
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    assert all(p["datasource"]["type"] == "prometheus" for p in dashboard["panels"])
    assert {v["name"] for v in dashboard["templating"]["list"]} == {"datasource", "device"}


def test_every_panel_query_returns_what_the_store_holds(mirrored_run):
    metrics, store = mirrored_run
    queries = panel_queries(json.loads(DASHBOARD.read_text()))
    assert stored(store, "SELECT COUNT(*) FROM outbox") == [(0,)]  # the mirror sent everything
    for time_ms, at_s in poll_instants(store):
        when = dt.datetime.fromtimestamp(time_ms / 1000, dt.UTC).isoformat()

        power = latest_by(store, time_ms, "power_kw")
        assert len(power) >= 10, "the twin's devices answered"
        got = query_range(metrics.url, queries["Power per device (kW, + into the site's bus)"][0], at_s)
        assert got.keys() == power.keys(), when
        assert all(got[k] == pytest.approx(power[k], abs=1e-9) for k in power), when

        soc = latest_by(store, time_ms, "soc_fraction")
        assert soc, "batteries and chargers report a state of charge"
        got = query_range(metrics.url, queries["State of charge (%)"][0], at_s)
        assert got == pytest.approx({k: 100 * v for k, v in soc.items()}), when

        quality = defaultdict(int)
        for _device, (_q, flag), _quantity in power:
            quality[flag] += 1
        got = query_range(metrics.url, queries["Readings by quality (series)"][0], at_s)
        assert got == {(("quality", q),): float(n) for q, n in quality.items()}, when

        missing = stored(store, f"SELECT COUNT(*) FROM telemetry WHERE time_ms={time_ms} AND quantity='missing'")[0][0]
        got = query_range(metrics.url, queries["Devices not answering (count)"][0], at_s)
        assert list(got.values()) == [float(missing)], when


def test_setpoint_panels_show_the_written_and_clamped_values(mirrored_run):
    metrics, store = mirrored_run
    queries = panel_queries(json.loads(DASHBOARD.read_text()))
    rows = stored(
        store,
        "SELECT time_ms, device, requested_kw, written_kw, status FROM setpoints "
        "WHERE written_kw IS NOT NULL ORDER BY time_ms",
    )
    assert rows, "the controller wrote set-points to the twin"
    # the last write of each device, read just after the last write of the run
    last = {device: (requested, written, status) for _t, device, requested, written, status in rows}
    at_s = math.ceil(rows[-1][0] / 1000)
    requested_expr, written_expr = queries["Set-points: requested and written (kW)"]
    written = query_range(metrics.url, written_expr, at_s)
    requested = query_range(metrics.url, requested_expr, at_s)
    held = query_range(metrics.url, queries["Held back by the guard (requested - written, kW)"][0], at_s)
    for device, (want_requested, want_written, status) in last.items():
        key = (("device", device), ("status", status))
        assert written[key] == pytest.approx(want_written), device
        assert requested[key] == pytest.approx(want_requested), device
        assert held[key] == pytest.approx(want_requested - want_written, abs=1e-9), device


def test_energy_counter_panel_is_the_hourly_increase(mirrored_run):
    metrics, store = mirrored_run
    expr = panel_queries(json.loads(DASHBOARD.read_text()))["Energy counters, increase per hour (kWh)"][0]
    rows = stored(
        store,
        "SELECT time_ms, device, value FROM telemetry "
        "WHERE quantity='energy_kwh' AND value IS NOT NULL ORDER BY time_ms",
    )
    assert rows, "devices report lifetime energy counters"
    at_s = math.ceil(rows[-1][0] / 1000)
    got = query_range(metrics.url, expr, at_s)
    window_start_ms = (at_s - 3600) * 1000
    assert rows[0][0] <= window_start_ms, "the run is longer than the panel's hour"
    before, last = {}, {}
    for time_ms, device, value in rows:
        (before if time_ms <= window_start_ms else last)[device] = value
    for device, value in last.items():
        key = (("device", device), ("quality", "good"), ("quantity", "energy_kwh"))
        # the increase over the hour: from the last reading before it to the last one in it
        assert got[key] == pytest.approx(value - before[device], rel=1e-6, abs=1e-6), device
    assert got, "at least one counter series came back"
