"""The operators' console under a week of stored telemetry: latency (p50, p95) of every page and
its JSON API, and the memory of ``ems serve``.

The store comes from a real controller run on the digital twin (``ems run --twin``, one
simulated hour); its telemetry, set-points and events are laid back hour by hour over the week
before the run's end, so the console reads a week of the twin's own rows (what a store holds
seven days into operation). ``ems serve --at`` the run's end runs as its own process, with a
finished BCP drill and two nights of the nightly job; each URL is fetched ``REPEATS`` times by a
logged-in operator. Target: p95 < 300 ms for every page.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.harness import percentile

REPEATS = 20
WEEK_HOURS = 7 * 24
PAGES = ("/", "/schedule", "/fleet", "/devices", "/bcp", "/nightly", "/audit")
APIS = ("/healthz", "/api/", "/api/schedule", "/api/fleet", "/api/devices", "/api/bcp", "/api/nightly", "/api/audit")
PASSWORD = "bench-operator-password"
SPEC = "start=2026-04-15T09:00+09:00; hours=24; sites=shelter_north,shelter_central,shelter_south,city_hall"


def week_of_telemetry(store: Path) -> dict:
    """Lay the run's rows back hour by hour until they cover the week before its end."""
    with sqlite3.connect(store) as db:
        first, last = db.execute("SELECT MIN(time_ms), MAX(time_ms) FROM telemetry").fetchone()
        span_ms = last - first + 1
        copies = int(WEEK_HOURS * 3600_000 // span_ms)
        for table, columns in (
            ("telemetry", "device, quantity, value, quality"),
            ("setpoints", "device, requested_kw, written_kw, status, reason"),
        ):
            rows = db.execute(f"SELECT time_ms, {columns} FROM {table} WHERE time_ms >= ?", (first,)).fetchall()
            marks = ",".join("?" * (1 + columns.count(",") + 1))
            for k in range(1, copies + 1):
                db.executemany(f"INSERT INTO {table} VALUES ({marks})", [(t - k * span_ms, *rest) for t, *rest in rows])
        db.commit()
        telemetry = db.execute("SELECT COUNT(*) FROM telemetry").fetchone()[0]
        setpoints = db.execute("SELECT COUNT(*) FROM setpoints").fetchone()[0]
        oldest = db.execute("SELECT MIN(time_ms) FROM telemetry").fetchone()[0]
    return {
        "telemetry_rows": telemetry,
        "setpoint_rows": setpoints,
        "days": (last - oldest) / 86400_000,
        "store_mb": store.stat().st_size / 1e6,
    }


def _csrf_token(page: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', page)
    if match is None:
        raise RuntimeError("the console's page carries no csrf_token field")
    return match.group(1)


def rss_kb(pid: int) -> tuple[int, int]:
    """(current, peak) resident memory of a process, kB."""
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    return int(fields["VmRSS"].split()[0]), int(fields["VmHWM"].split()[0])


def run() -> list[dict]:
    import httpx

    from simulations.nightly import NightlyOptions, nightly_job
    from tests.conftest import Broker, free_port
    from tests.console_fixtures import console_config, ems_serve, twin_store
    from tests.nightly_fixtures import write_small_portfolio

    rows: list[dict] = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        store = work / "ems.sqlite"
        nights = work / "nightly"
        config = console_config(
            work / "config", store, f'\n[control]\nnightly_dir = "{nights}"\n\n[console]\nlocale = "en"\n'
        )
        broker = Broker(free_port(), work).start()
        try:
            twin_store(config, store, broker, start="2026-04-15T07:00+09:00", hours=1.0, speed=120)
        finally:
            broker.stop()
        with sqlite3.connect(store) as db:
            end = dt.datetime.fromtimestamp(
                db.execute("SELECT MAX(time_ms) FROM telemetry").fetchone()[0] / 1000 + 1, dt.UTC
            )
        size = week_of_telemetry(store)
        small = write_small_portfolio(work / "small")
        options = NightlyOptions(
            samples=3, flexibility="blocks", event_variants=False, unavailable=False, rolling=False, inputs="profiles"
        )
        for day in (14, 15):
            nightly_job(small, nights, dt.datetime(2026, 4, day, 12, tzinfo=dt.UTC), workers=1, options=options)
        subprocess.run(
            [
                sys.executable,
                "-m",
                "ems",
                "users",
                "add",
                "bench",
                "--role",
                "operator",
                "--config",
                str(config),
                "--password-env",
                "BENCH_PASSWORD",
            ],
            cwd=work,
            check=True,
            capture_output=True,
            env=os.environ | {"BENCH_PASSWORD": PASSWORD},
        )
        server = ems_serve(config, store, work, ("--at", end.isoformat()))
        try:
            with httpx.Client(base_url=server.url, timeout=60) as client:
                token = _csrf_token(client.get("/login").text)
                client.post(
                    "/login", data={"username": "bench", "password": PASSWORD, "csrf_token": token, "next": "/"}
                )
                token = _csrf_token(client.get("/bcp").text)
                job = client.post(
                    "/api/bcp/drills", data={"outage_spec": SPEC, "state": "store", "csrf_token": token}
                ).json()
                drill_started = time.perf_counter()
                while client.get(f"/api/bcp/drills/{job['id']}").json()["job"]["status"] == "running":
                    time.sleep(0.5)
                drill_s = time.perf_counter() - drill_started
                idle_kb, _ = rss_kb(server.process.pid)
                for path in (*PAGES, *APIS):
                    times = []
                    for _ in range(REPEATS):
                        started = time.perf_counter()
                        answer = client.get(path, headers={"accept": "text/html"} if path in PAGES else {})
                        times.append((time.perf_counter() - started) * 1000)
                        assert answer.status_code == 200, (path, answer.status_code, answer.text[:300])
                    name = f"console/page{path}" if path in PAGES else f"console/api{path.removeprefix('/api')}"
                    rows.append({"name": name, "metric": "latency_p95", "value": percentile(times, 0.95), "unit": "ms"})
                    rows.append({"name": name, "metric": "latency_p50", "value": percentile(times, 0.50), "unit": "ms"})
                    rows.append({"name": name, "metric": "bytes", "value": float(len(answer.content)), "unit": "B"})
                rss, peak = rss_kb(server.process.pid)
        finally:
            server.stop()
        shutil.rmtree(work / "out", ignore_errors=True)
    rows += [
        {"name": "console/serve", "metric": "rss_after_requests", "value": rss / 1024, "unit": "MB"},
        {"name": "console/serve", "metric": "rss_peak", "value": peak / 1024, "unit": "MB"},
        {"name": "console/serve", "metric": "rss_before_requests", "value": idle_kb / 1024, "unit": "MB"},
        {"name": "console/drill", "metric": "drill_24h_wall", "value": drill_s, "unit": "s"},
        {"name": "console/store", "metric": "telemetry_rows", "value": float(size["telemetry_rows"]), "unit": "rows"},
        {"name": "console/store", "metric": "days_of_telemetry", "value": size["days"], "unit": "d"},
        {"name": "console/store", "metric": "store_size", "value": size["store_mb"], "unit": "MB"},
    ]
    return rows


if __name__ == "__main__":
    for row in run():
        print(f"{row['name']:<32} {row['metric']:<22} {row['value']:>12.1f} {row['unit']}")
