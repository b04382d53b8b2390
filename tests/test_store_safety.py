"""The store touches nothing that is not its own, refuses what it cannot use (exit 2, naming the
file), never stores NaN, and its InfluxDB mirror moves a refused line aside and sends the rest."""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import sqlite3
import subprocess
import sys

import pytest

from drivers.api import Quality
from drivers.modbus.connection import encode
from drivers.modbus.vendor import VendorMapDevice
from drivers.sim.modbus_server import ModbusDeviceServer, RegisterStore
from ems.store import SCHEMA_VERSION, Store, StoreError
from ems.store.influx import InfluxSink
from tests.conftest import free_port

T0 = dt.datetime(2026, 4, 15, 0, 0, tzinfo=dt.UTC)
CONFIG = "config/arao.toml"


def _ems(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ems", *args], capture_output=True, text=True, timeout=120)


def _ems_here(capsys, *args: str) -> tuple[int, str]:
    """The command line in this process (the same ``main`` the ``ems`` script calls): (exit code, stderr)."""
    from ems.cli import main

    capsys.readouterr()
    code = main(list(args))
    return code, capsys.readouterr().err


def _digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _fingerprint(path) -> tuple[str, list[str]]:
    """The file's bytes and every file beside it (a WAL or journal would show up here)."""
    return _digest(path), sorted(p.name for p in path.parent.iterdir())


def _foreign(path) -> None:
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE invoices (id INTEGER, amount_yen REAL)")
        db.execute("INSERT INTO invoices VALUES (1, 1200.0)")
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "delete"


def test_another_programs_sqlite_file_is_refused_without_a_single_byte_changed(tmp_path, capsys):
    path = tmp_path / "accounts.sqlite"
    _foreign(path)
    before = _fingerprint(path)
    with pytest.raises(StoreError, match="another program"):
        Store(path)
    assert _fingerprint(path) == before
    result = _ems("run", "--config", CONFIG, "--store", str(path))  # the process, as an operator starts it
    assert result.returncode == 2, result.stderr[-500:]
    assert str(path) in result.stderr and "another program" in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    for command in ("status", "export"):
        code, err = _ems_here(capsys, command, "--config", CONFIG, "--store", str(path))
        assert code == 2 and str(path) in err and "another program" in err
    assert _fingerprint(path) == before
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "delete"


def test_corrupt_readonly_and_other_version_stores_exit_2_naming_the_file(tmp_path, capsys):
    corrupt = tmp_path / "corrupt.sqlite"
    Store(corrupt).close()
    data = bytearray(corrupt.read_bytes())
    data[16:100] = b"\xff" * 84  # the header after the magic: page size and the rest, garbage
    corrupt.write_bytes(bytes(data))
    readonly = tmp_path / "readonly.sqlite"
    Store(readonly).close()
    readonly.chmod(0o444)
    newer = tmp_path / "newer.sqlite"
    Store(newer).close()
    with sqlite3.connect(newer) as db:
        db.execute("UPDATE meta SET value=? WHERE key='schema_version'", (str(SCHEMA_VERSION + 1),))
    cases = {corrupt: "corrupt", readonly: "read-only", newer: f"schema version {SCHEMA_VERSION + 1}"}
    for path, what in cases.items():
        before = _digest(path)
        code, err = _ems_here(capsys, "run", "--config", CONFIG, "--store", str(path))
        assert code == 2 and str(path) in err and what in err, err
        assert _digest(path) == before
    # a reader of a read-only store is fine: it writes nothing
    assert _ems_here(capsys, "status", "--config", CONFIG, "--store", str(readonly))[0] == 0


def test_export_and_status_without_a_store_exit_2_and_create_nothing(tmp_path, capsys):
    path = tmp_path / "nowhere" / "ems.sqlite"
    for command in ("export", "status"):
        code, err = _ems_here(capsys, command, "--config", CONFIG, "--store", str(path))
        assert code == 2 and "no such store" in err and str(path) in err
    assert not path.parent.exists()


def test_a_nan_float_register_is_out_of_range_and_never_stored_as_a_value(tmp_path):
    import asyncio

    registers = RegisterStore(100, 4)
    registers.set(100, encode(float("nan"), "float32"))
    registers.set(102, encode(12.5, "float32"))
    points = {"power_kw": {"address": 100, "type": "float32"}, "energy_kwh": {"address": 102, "type": "float32"}}

    async def read():
        port = free_port()
        server = ModbusDeviceServer("vendor-meter", registers, port=port)
        await server.start()
        try:
            device = VendorMapDevice(
                VendorMapDevice.Settings(name="vendor-meter", host="127.0.0.1", port=port, timeout_s=1.0, points=points)
            )
            return await device.read()
        finally:
            await server.stop()

    reading = asyncio.run(read())
    assert reading.quality is Quality.OUT_OF_RANGE
    assert "vendor-meter" in reading.error and "power_kw" in reading.error and "not a finite number" in reading.error
    store = Store(tmp_path / "ems.sqlite", mirror=True)
    store.record_telemetry(
        [
            (T0, reading.device, name, getattr(reading, name), reading.quality.value)
            for name in ("power_kw", "energy_kwh")
        ]
    )
    rows = list(store.rows("telemetry"))[1:]
    assert [(r[2], r[3], r[4]) for r in rows] == [
        ("power_kw", None, "out-of-range"),
        ("energy_kwh", 12.5, "out-of-range"),
    ]
    lines = [line for _id, line in store.outbox_batch(10)]
    assert len(lines) == 1 and "nan" not in lines[0].lower() and "value=12.5" in lines[0]


@pytest.fixture
def strict_metrics_server(tmp_path):
    """VictoriaMetrics answering 400 to a request whose line is longer than 1000 bytes."""
    from tests.store_fixtures import BINARY, MetricsServer

    if not os.path.exists(BINARY):
        pytest.fail("victoria-metrics is not installed: .ci/run installs the Debian package 'victoria-metrics'")
    server = MetricsServer(tmp_path / "vm", extra_args=("-influx.maxLineSize=1000",))
    server.start()
    yield server
    server.stop()


def test_a_line_the_server_refuses_is_moved_aside_and_the_rest_is_sent(tmp_path, strict_metrics_server):
    store = Store(tmp_path / "ems.sqlite", mirror=True)
    store.record_telemetry(
        [(T0 + dt.timedelta(seconds=i), "city_hall_bess", "power_kw", float(i), "good") for i in range(6)]
    )
    store.record_telemetry(
        [(T0 + dt.timedelta(seconds=7), "x" * 1500, "power_kw", 7.0, "good")]
    )  # a line the server refuses
    store.record_telemetry(
        [(T0 + dt.timedelta(seconds=10 + i), "city_hall_bess", "power_kw", float(10 + i), "good") for i in range(4)]
    )
    # one line a request: VictoriaMetrics itself drops a refused line inside a larger request (answering 204)
    sink = InfluxSink(strict_metrics_server.url, "ems", "ems", batch=1)
    sent = sink.flush(store)
    assert sent == 10 and store.count("outbox") == 0 and not sink.down
    rejected = store.latest_events(("outbox-rejected",), limit=10)
    assert len(rejected) == 1 and rejected[0][3]["line"].startswith("telemetry,device=xxxx")
    assert rejected[0][3]["reason"].startswith("HTTP 400") and "too long line" in rejected[0][3]["reason"]
    assert strict_metrics_server.values("telemetry_value") == [float(i) for i in range(6)] + [
        float(10 + i) for i in range(4)
    ]
    sink.close()


def test_a_server_that_is_away_keeps_every_line(tmp_path):
    store = Store(tmp_path / "ems.sqlite", mirror=True)
    store.record_telemetry([(T0, "city_hall_bess", "power_kw", 1.0, "good")])
    sink = InfluxSink(f"http://127.0.0.1:{free_port()}", "ems", "ems", timeout_s=0.5)
    assert sink.flush(store) == 0 and sink.down and store.count("outbox") == 1
    assert store.count_events("outbox-rejected") == 0


def test_retention_drops_old_rows_and_keeps_the_last_plan_and_events(tmp_path):
    store = Store(tmp_path / "ems.sqlite")
    old, new = T0 - dt.timedelta(days=100), T0
    store.record_telemetry(
        [(old, "city_hall_bess", "power_kw", 1.0, "good"), (new, "city_hall_bess", "power_kw", 2.0, "good")]
    )
    first = store.record_plan(old, old, 30, "intraday", "optimal", {}, [(old, "city_hall_bess", 1.0, None)])
    older_kept = store.record_plan(
        old + dt.timedelta(minutes=5), old, 30, "intraday", "optimal", {}, [(old, "city_hall_bess", 2.0, None)]
    )
    store.record_event(old, "start", "controller started")
    dropped = store.drop_before(T0 - dt.timedelta(days=90))
    assert dropped["telemetry"] == 1 and dropped["plans"] == 1 and dropped["plan_points"] == 1
    assert [r[3] for r in list(store.rows("telemetry"))[1:]] == [2.0]
    assert store.plan(first) is None and store.plan(older_kept) is not None  # the last plan stays for a restart
    assert store.count("events") == 1
