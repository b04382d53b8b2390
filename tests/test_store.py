"""The SQLite store and its InfluxDB mirror against a real server that speaks the v2 write API."""

from __future__ import annotations

import datetime as dt
import sqlite3
import subprocess
import sys

import pandas as pd
import pytest

from ems.store import SCHEMA_VERSION, Store, StoreError
from ems.store.influx import InfluxSink

T0 = dt.datetime(2026, 4, 15, 0, 0, tzinfo=dt.UTC)


def _telemetry(n: int, offset: int = 0):
    return [
        (T0 + dt.timedelta(seconds=i + offset), "city_hall_bess", "power_kw", float(i + offset), "good")
        for i in range(n)
    ]


def test_store_roundtrip_and_wal(tmp_path):
    store = Store(tmp_path / "ems.sqlite")
    assert store.record_telemetry(_telemetry(10)) == 10
    store.record_setpoint(T0, "city_hall_bess", 60.0, 50.0, "clamped", "above discharge_power_kw 50")
    plan_id = store.record_plan(
        T0,
        T0,
        30,
        "intraday",
        "optimal",
        {"cost_yen": 1.0},
        [(T0, "city_hall_bess", 5.0, 60.0), (T0 + dt.timedelta(minutes=30), "city_hall_bess", -5.0, 64.0)],
    )
    store.set_state("mode", "live", T0)
    store.close()
    again = Store(tmp_path / "ems.sqlite")
    assert again.count("telemetry") == 10
    assert again.get_state("mode") == "live"
    assert again.get_state("last_plan_id") == plan_id
    assert [p[2] for p in again.plan_points(plan_id)] == [5.0, -5.0]
    assert sqlite3.connect(tmp_path / "ems.sqlite").execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_a_file_that_is_not_sqlite_is_refused_and_left_alone(tmp_path):
    path = tmp_path / "ems.sqlite"
    path.write_bytes(b"operator notes, not a database\n" * 10)
    with pytest.raises(StoreError, match="not an SQLite database"):
        Store(path)
    assert path.read_bytes() == b"operator notes, not a database\n" * 10


def test_an_unknown_schema_version_is_refused(tmp_path):
    path = tmp_path / "ems.sqlite"
    Store(path).close()
    with sqlite3.connect(path) as db:
        db.execute("UPDATE meta SET value=? WHERE key='schema_version'", (str(SCHEMA_VERSION + 1),))
    with pytest.raises(StoreError, match=f"schema version {SCHEMA_VERSION + 1}"):
        Store(path)


def test_another_programs_database_is_refused(tmp_path):
    path = tmp_path / "other.sqlite"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE invoices (id INTEGER)")
    with pytest.raises(StoreError, match="another program"):
        Store(path)
    assert sqlite3.connect(path).execute("SELECT name FROM sqlite_master").fetchall() == [("invoices",)]


def test_naive_times_are_refused(tmp_path):
    store = Store(tmp_path / "ems.sqlite")
    with pytest.raises(ValueError, match="timezone-aware"):
        store.record_telemetry([(dt.datetime(2026, 1, 1), "x", "power_kw", 1.0, "good")])


def test_influx_mirror_backfills_in_order_after_an_outage(tmp_path, metrics_server):
    store = Store(tmp_path / "ems.sqlite", mirror=True)
    sink = InfluxSink(metrics_server.url, "ems", "ems", timeout_s=1.0)
    store.record_telemetry(_telemetry(50))
    assert sink.flush(store) == 50
    assert store.count("outbox") == 0

    metrics_server.stop()
    store.record_telemetry(_telemetry(70, offset=50))
    assert sink.flush(store) == 0  # server down: nothing leaves the outbox
    assert sink.down and store.count("outbox") == 70
    store.close()

    # both sides restart: a new process opens the same store, the server comes back
    metrics_server.start()
    reopened = Store(tmp_path / "ems.sqlite", mirror=True)
    assert InfluxSink(metrics_server.url, "ems", "ems").flush(reopened) == 70
    assert reopened.count("outbox") == 0
    assert metrics_server.values("telemetry_value") == [float(i) for i in range(120)]


def test_export_csv_and_parquet(tmp_path):
    config = tmp_path / "site.toml"
    store_path = tmp_path / "ems.sqlite"
    config.write_text(open("config/arao.toml").read() + f'\n[storage]\nsqlite_path = "{store_path}"\n')
    store = Store(store_path)
    store.record_telemetry(_telemetry(20))
    store.close()
    csv_out, parquet_out = tmp_path / "t.csv", tmp_path / "t.parquet"
    since = (T0 + dt.timedelta(seconds=5)).isoformat()
    until = (T0 + dt.timedelta(seconds=15)).isoformat()
    for fmt, out in (("csv", csv_out), ("parquet", parquet_out)):
        subprocess.run(
            [
                sys.executable,
                "-m",
                "ems",
                "export",
                "--config",
                str(config),
                "--since",
                since,
                "--until",
                until,
                "--format",
                fmt,
                "--out",
                str(out),
            ],
            check=True,
            capture_output=True,
        )
    frame = pd.read_csv(csv_out)
    assert frame["value"].tolist() == [float(i) for i in range(5, 15)]
    assert pd.read_parquet(parquet_out)["value"].tolist() == frame["value"].tolist()
    assert frame["time"].iloc[0].startswith("2026-04-15 00:00:05")
