"""The SQLite store: one file, WAL mode, a schema version, never overwritten silently.

Times are stored as UTC epoch milliseconds. Every record that an InfluxDB sink should mirror is
also queued, in the same transaction, as a line of line protocol in ``outbox``; the sink removes
lines only after the server has accepted them.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import sqlite3
import stat
import threading
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from ems.store.market_schema import MARKET_SCHEMA, MARKET_TABLES

SCHEMA_VERSION = 2
SQLITE_MAGIC = b"SQLite format 3\x00"

SCHEMA = (
    """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE telemetry (
    time_ms INTEGER NOT NULL, device TEXT NOT NULL, quantity TEXT NOT NULL,
    value REAL, quality TEXT NOT NULL);
CREATE INDEX telemetry_time ON telemetry (time_ms);
CREATE INDEX telemetry_device_time ON telemetry (device, time_ms);
CREATE TABLE setpoints (
    time_ms INTEGER NOT NULL, device TEXT NOT NULL, requested_kw REAL NOT NULL,
    written_kw REAL, status TEXT NOT NULL, reason TEXT NOT NULL DEFAULT '');
CREATE INDEX setpoints_time ON setpoints (time_ms);
CREATE TABLE plans (
    id INTEGER PRIMARY KEY AUTOINCREMENT, created_ms INTEGER NOT NULL, start_ms INTEGER NOT NULL,
    step_minutes INTEGER NOT NULL, kind TEXT NOT NULL, status TEXT NOT NULL, summary TEXT NOT NULL);
CREATE TABLE plan_points (
    plan_id INTEGER NOT NULL REFERENCES plans(id), time_ms INTEGER NOT NULL, asset TEXT NOT NULL,
    power_kw REAL NOT NULL, soc_kwh REAL);
CREATE INDEX plan_points_plan ON plan_points (plan_id, asset, time_ms);
CREATE TABLE events (
    time_ms INTEGER NOT NULL, kind TEXT NOT NULL, message TEXT NOT NULL, data TEXT NOT NULL DEFAULT '{}');
CREATE INDEX events_time ON events (time_ms);
CREATE TABLE state (key TEXT PRIMARY KEY, value TEXT NOT NULL, updated_ms INTEGER NOT NULL);
CREATE TABLE job_runs (
    job TEXT NOT NULL, started_ms INTEGER NOT NULL, duration_s REAL NOT NULL, ok INTEGER NOT NULL,
    error TEXT NOT NULL DEFAULT '');
CREATE TABLE outbox (id INTEGER PRIMARY KEY AUTOINCREMENT, line TEXT NOT NULL);
"""
    + MARKET_SCHEMA
)

TABLES = ("telemetry", "setpoints", "plans", "plan_points", "events", "state", "job_runs", "outbox", *MARKET_TABLES)
# version -> the statements that bring a file of that version to the next one
MIGRATIONS = {1: MARKET_SCHEMA}


class StoreError(RuntimeError):
    """The store file cannot be used as it is; the message names the file and the problem."""


def to_ms(time: dt.datetime) -> int:
    if time.tzinfo is None:
        raise ValueError(f"time {time!r} must be timezone-aware")
    return int(round(time.timestamp() * 1000))


def from_ms(time_ms: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(time_ms / 1000, tz=dt.UTC)


def finite_or_none(value: float | None) -> float | None:
    """NaN and infinity are never stored as values (a reading's quality says what happened)."""
    return value if value is None or math.isfinite(value) else None


def _escape_tag(value: str) -> str:
    return value.replace("\\", "\\\\").replace(",", "\\,").replace("=", "\\=").replace(" ", "\\ ")


def line_protocol(measurement: str, tags: dict[str, str], fields: dict[str, float | str], time_ms: int) -> str:
    tag_text = "".join(f",{k}={_escape_tag(str(v))}" for k, v in sorted(tags.items()) if v not in (None, ""))
    parts = []
    for key, value in fields.items():
        if value is None:
            continue
        if isinstance(value, str):
            parts.append(f'{key}="{value.replace(chr(34), chr(92) + chr(34))}"')
        elif math.isfinite(float(value)):  # line protocol has no NaN or infinity
            parts.append(f"{key}={float(value)!r}")
    return f"{measurement}{tag_text} {','.join(parts)} {time_ms}"


class Store:
    """A handle on one SQLite file. Thread-safe: APScheduler jobs share it."""

    def __init__(self, path: str | Path, mirror: bool = False, *, create: bool = True, readonly: bool = False):
        """Open the store at ``path``.

        Nothing is written to an existing file before it is proven to be this project's store
        of this schema version: it is first inspected through a read-only connection. A missing
        file is created only with ``create`` (the controller); readers pass ``create=False`` and
        ``readonly=True``. Any problem is a :class:`StoreError` naming the file.
        """
        self.path = Path(path)
        self.mirror = mirror  # queue time series for an InfluxDB sink
        self.readonly = readonly
        self._lock = threading.RLock()
        exists = self.path.exists() and self.path.stat().st_size > 0
        if not exists and (readonly or not create):
            raise StoreError(f"{self.path}: no such store (start `ems run` to create one, or give --store)")
        try:
            version = SCHEMA_VERSION
            if exists:
                version = self._inspect()
                if not readonly:
                    self._check_writable()
            else:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = self._connect()
            if not exists:
                self._create_schema()
            elif version < SCHEMA_VERSION:
                self._migrate(version)
        except sqlite3.DatabaseError as error:
            raise StoreError(f"{self.path}: {error}") from None
        except OSError as error:
            raise StoreError(f"{self.path}: {error.strerror or error}") from None

    @classmethod
    def preflight(cls, path: str | Path) -> None:
        """Check, reading only and creating nothing, that ``path`` can be opened for writing:
        absent (it will be created) or this program's writable store. Raises StoreError."""
        store = cls.__new__(cls)
        store.path = Path(path)
        if not store.path.exists() or store.path.stat().st_size == 0:
            return
        try:
            store._inspect()
            store._check_writable()
        except sqlite3.DatabaseError as error:
            raise StoreError(f"{store.path}: {error}") from None
        except OSError as error:
            raise StoreError(f"{store.path}: {error.strerror or error}") from None

    # --- opening -----------------------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        if self.readonly:
            db = sqlite3.connect(
                f"{self.path.resolve().as_uri()}?mode=ro", uri=True, check_same_thread=False, isolation_level=None
            )
            db.execute("PRAGMA query_only=ON")
            return db
        db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.execute("PRAGMA foreign_keys=ON")
        return db

    def _check_writable(self) -> None:
        mode = self.path.stat().st_mode
        # the write bits say what the operator intends, even for root, who ignores them
        if not mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH) or not os.access(self.path, os.W_OK):
            raise StoreError(f"{self.path}: read-only file (no write permission); the controller must write its store")
        if not os.access(self.path.parent, os.W_OK):
            raise StoreError(f"{self.path}: its directory is read-only; SQLite needs to write its journal beside it")

    def _inspect(self) -> int:
        """Prove, reading only, that the file is this program's store of this schema version, or
        of an older one a writer can migrate; returns the file's version."""
        with self.path.open("rb") as handle:
            head = handle.read(len(SQLITE_MAGIC))
        if head != SQLITE_MAGIC:
            raise StoreError(f"{self.path}: not an SQLite database (refusing to touch it)")
        probe = sqlite3.connect(f"{self.path.resolve().as_uri()}?mode=ro", uri=True)
        try:
            try:
                tables = {row[0] for row in probe.execute("SELECT name FROM sqlite_master WHERE type='table'")}
                version_row = (
                    probe.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
                    if "meta" in tables
                    else None
                )
            except sqlite3.DatabaseError as error:
                raise StoreError(
                    f"{self.path}: unreadable or corrupt SQLite file ({error}); refusing to touch it"
                ) from None
        finally:
            probe.close()
        if "meta" not in tables:
            raise StoreError(f"{self.path}: an SQLite file of another program (no 'meta' table); refusing to touch it")
        if version_row is None or not str(version_row[0]).isdigit():
            raise StoreError(f"{self.path}: no schema version recorded; refusing to touch it")
        version = int(version_row[0])
        migratable = version < SCHEMA_VERSION and all(v in MIGRATIONS for v in range(version, SCHEMA_VERSION))
        if migratable and getattr(self, "readonly", False):
            raise StoreError(
                f"{self.path}: schema version {version}; open it once for writing (ems run) to migrate it "
                f"to version {SCHEMA_VERSION}"
            )
        if version != SCHEMA_VERSION and not migratable:
            raise StoreError(f"{self.path}: schema version {version}, this program reads version {SCHEMA_VERSION}")
        missing = set(TABLES) - tables - (set(MARKET_TABLES) if migratable else set())
        if missing:
            raise StoreError(f"{self.path}: tables missing: {', '.join(sorted(missing))}")
        return version

    def _migrate(self, version: int) -> None:
        """Bring an older file up to this version, in one transaction (all or nothing)."""
        with self._transaction() as db:
            for step in range(version, SCHEMA_VERSION):
                for statement in MIGRATIONS[step].strip().split(";\n"):
                    if statement.strip():
                        db.execute(statement)
            db.execute("UPDATE meta SET value=? WHERE key='schema_version'", (str(SCHEMA_VERSION),))

    def _create_schema(self) -> None:
        with self._transaction() as db:
            for statement in SCHEMA.strip().split(";\n"):
                if statement.strip():
                    db.execute(statement)
            db.execute("INSERT INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))

    class _Transaction:
        def __init__(self, store: Store):
            self.store = store

        def __enter__(self) -> sqlite3.Connection:
            self.store._lock.acquire()
            self.store._db.execute("BEGIN IMMEDIATE")
            return self.store._db

        def __exit__(self, kind, value, trace) -> None:
            try:
                self.store._db.execute("ROLLBACK" if kind else "COMMIT")
            finally:
                self.store._lock.release()

    def _transaction(self) -> Store._Transaction:
        return Store._Transaction(self)

    def checkpoint(self) -> None:
        """Move the write-ahead log into the file (its size then tells what the store holds)."""
        with self._lock:
            self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # --- writing -----------------------------------------------------------------------------

    def record_telemetry(self, rows: Iterable[tuple[dt.datetime, str, str, float | None, str]]) -> int:
        """Rows of (time, device, quantity, value, quality); returns how many were stored."""
        stored = [
            (to_ms(t), device, quantity, finite_or_none(value), quality) for t, device, quantity, value, quality in rows
        ]
        with self._transaction() as db:
            db.executemany("INSERT INTO telemetry VALUES (?, ?, ?, ?, ?)", stored)
            if self.mirror:
                db.executemany(
                    "INSERT INTO outbox (line) VALUES (?)",
                    [
                        (line_protocol("telemetry", {"device": d, "quantity": q, "quality": ql}, {"value": v}, t),)
                        for t, d, q, v, ql in stored
                        if v is not None
                    ],
                )
        return len(stored)

    def record_setpoint(
        self,
        time: dt.datetime,
        device: str,
        requested_kw: float,
        written_kw: float | None,
        status: str,
        reason: str = "",
    ) -> None:
        with self._transaction() as db:
            db.execute(
                "INSERT INTO setpoints VALUES (?, ?, ?, ?, ?, ?)",
                (to_ms(time), device, requested_kw, written_kw, status, reason),
            )
            if self.mirror and written_kw is not None:
                db.execute(
                    "INSERT INTO outbox (line) VALUES (?)",
                    (
                        line_protocol(
                            "setpoint",
                            {"device": device, "status": status},
                            {"requested_kw": requested_kw, "written_kw": written_kw},
                            to_ms(time),
                        ),
                    ),
                )

    def record_plan(
        self,
        created: dt.datetime,
        start: dt.datetime,
        step_minutes: int,
        kind: str,
        status: str,
        summary: dict,
        points: Iterable[tuple[dt.datetime, str, float, float | None]],
    ) -> int:
        """Store a plan and its points (time, asset, power_kw, soc_kwh); returns its id."""
        with self._transaction() as db:
            cursor = db.execute(
                "INSERT INTO plans (created_ms, start_ms, step_minutes, kind, status, summary) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (to_ms(created), to_ms(start), step_minutes, kind, status, json.dumps(summary, default=str)),
            )
            plan_id = cursor.lastrowid
            if plan_id is None:  # sqlite3 sets it on every INSERT; None would be a driver fault
                raise RuntimeError("the store gave no id for the new plan")
            db.executemany(
                "INSERT INTO plan_points VALUES (?, ?, ?, ?, ?)",
                [(plan_id, to_ms(t), asset, power, soc) for t, asset, power, soc in points],
            )
            db.execute(
                "INSERT OR REPLACE INTO state VALUES ('last_plan_id', ?, ?)", (json.dumps(plan_id), to_ms(created))
            )
        return plan_id

    def record_event(self, time: dt.datetime, kind: str, message: str, data: dict | None = None) -> None:
        with self._transaction() as db:
            db.execute(
                "INSERT INTO events VALUES (?, ?, ?, ?)",
                (to_ms(time), kind, message, json.dumps(data or {}, default=str)),
            )

    def record_job_run(self, job: str, started: dt.datetime, duration_s: float, ok: bool, error: str = "") -> None:
        with self._transaction() as db:
            db.execute("INSERT INTO job_runs VALUES (?, ?, ?, ?, ?)", (job, to_ms(started), duration_s, int(ok), error))

    def set_state(self, key: str, value: Any, time: dt.datetime) -> None:
        with self._transaction() as db:
            db.execute(
                "INSERT OR REPLACE INTO state VALUES (?, ?, ?)", (key, json.dumps(value, default=str), to_ms(time))
            )

    # --- reading -----------------------------------------------------------------------------

    def get_state(self, key: str, default: Any = None) -> Any:
        with self._lock:
            row = self._db.execute("SELECT value FROM state WHERE key=?", (key,)).fetchone()
        return json.loads(row[0]) if row else default

    def plan_points(self, plan_id: int) -> list[tuple[dt.datetime, str, float, float | None]]:
        with self._lock:
            rows = self._db.execute(
                "SELECT time_ms, asset, power_kw, soc_kwh FROM plan_points WHERE plan_id=? ORDER BY asset, time_ms",
                (plan_id,),
            ).fetchall()
        return [(from_ms(t), asset, power, soc) for t, asset, power, soc in rows]

    def plan(self, plan_id: int) -> dict | None:
        with self._lock:
            row = self._db.execute(
                "SELECT id, created_ms, start_ms, step_minutes, kind, status, summary FROM plans WHERE id=?", (plan_id,)
            ).fetchone()
        if row is None:
            return None
        return {
            "id": row[0],
            "created": from_ms(row[1]),
            "start": from_ms(row[2]),
            "step_minutes": row[3],
            "kind": row[4],
            "status": row[5],
            "summary": json.loads(row[6]),
        }

    def rows(
        self, table: str, since: dt.datetime | None = None, until: dt.datetime | None = None
    ) -> Iterator[Sequence[Any]]:
        """The column names, then all rows of a time-indexed table in time order (for exports)."""
        if table not in ("telemetry", "setpoints", "events", "job_runs"):
            raise ValueError(f"cannot export table {table!r}")
        column = "started_ms" if table == "job_runs" else "time_ms"
        lo = to_ms(since) if since else -(2**62)
        hi = to_ms(until) if until else 2**62
        with self._lock:
            cursor = self._db.execute(
                f"SELECT * FROM {table} WHERE {column} >= ? AND {column} < ? ORDER BY {column}", (lo, hi)
            )
            names = [d[0] for d in cursor.description]
            rows = cursor.fetchall()
        yield names
        yield from rows

    def series(self, device: str, quantity: str, since: dt.datetime) -> list[tuple[dt.datetime, float]]:
        """Good values of one quantity of one device since ``since``, in time order."""
        with self._lock:
            rows = self._db.execute(
                "SELECT time_ms, value FROM telemetry WHERE device=? AND quantity=? AND time_ms >= ? "
                "AND quality='good' ORDER BY time_ms",
                (device, quantity, to_ms(since)),
            ).fetchall()
        return [(from_ms(t), v) for t, v in rows]

    def count(self, table: str) -> int:
        if table not in TABLES:
            raise ValueError(f"unknown table {table!r}")
        with self._lock:
            return int(self._db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])

    # --- retention ---------------------------------------------------------------------------

    def drop_before(self, before: dt.datetime) -> dict[str, int]:
        """Drop telemetry, set-points, job runs and plans older than ``before`` (the last plan is
        always kept, so a restart can resume it); events are kept. Returns rows dropped per table."""
        cut = to_ms(before)
        dropped = {}
        with self._transaction() as db:
            last_plan = db.execute("SELECT value FROM state WHERE key='last_plan_id'").fetchone()
            keep_plan = json.loads(last_plan[0]) if last_plan else -1
            old_plans = "SELECT id FROM plans WHERE created_ms < ? AND id != ?"
            dropped["plan_points"] = db.execute(
                f"DELETE FROM plan_points WHERE plan_id IN ({old_plans})", (cut, keep_plan)
            ).rowcount
            dropped["plans"] = db.execute(
                "DELETE FROM plans WHERE created_ms < ? AND id != ?", (cut, keep_plan)
            ).rowcount
            for table, column in (("telemetry", "time_ms"), ("setpoints", "time_ms"), ("job_runs", "started_ms")):
                dropped[table] = db.execute(f"DELETE FROM {table} WHERE {column} < ?", (cut,)).rowcount
        return dropped

    def latest_events(self, kinds: tuple[str, ...], limit: int = 1, since: dt.datetime | None = None) -> list[tuple]:
        """The newest events of the given kinds: (time, kind, message, data), newest first."""
        marks = ",".join("?" * len(kinds))
        lo = to_ms(since) if since else -(2**62)
        with self._lock:
            rows = self._db.execute(
                f"SELECT time_ms, kind, message, data FROM events WHERE kind IN ({marks}) AND time_ms >= ? "
                "ORDER BY time_ms DESC, rowid DESC LIMIT ?",
                (*kinds, lo, limit),
            ).fetchall()
        return [(from_ms(t), kind, message, json.loads(data)) for t, kind, message, data in rows]

    def count_events(self, kind: str, since: dt.datetime | None = None) -> int:
        lo = to_ms(since) if since else -(2**62)
        with self._lock:
            return int(
                self._db.execute("SELECT COUNT(*) FROM events WHERE kind=? AND time_ms >= ?", (kind, lo)).fetchone()[0]
            )

    def latest_telemetry(self) -> list[tuple[str, dt.datetime, str]]:
        """Per device: (device, time of its latest row, that row's quality).

        By index lookups (the devices by a skip-scan of the (device, time) index, then each
        device's newest row), never a scan of the table: a GROUP BY took seconds on a day of
        telemetry and grew with every poll.
        """
        with self._lock:
            devices = [
                row[0]
                for row in self._db.execute(
                    "WITH RECURSIVE d(device) AS (SELECT MIN(device) FROM telemetry UNION ALL "
                    "SELECT (SELECT MIN(device) FROM telemetry WHERE device > d.device) FROM d "
                    "WHERE d.device IS NOT NULL) "
                    "SELECT device FROM d WHERE device IS NOT NULL"
                )
            ]
            rows = [
                (
                    device,
                    *self._db.execute(
                        "SELECT time_ms, quality FROM telemetry WHERE device=? ORDER BY time_ms DESC LIMIT 1", (device,)
                    ).fetchone(),
                )
                for device in devices
            ]
        return [(device, from_ms(t), quality) for device, t, quality in rows]

    def last_good_time(self, device: str) -> dt.datetime | None:
        with self._lock:  # newest first along the (device, time) index: stops at the first good row
            row = self._db.execute(
                "SELECT time_ms FROM telemetry WHERE device=? AND quality='good' ORDER BY time_ms DESC LIMIT 1",
                (device,),
            ).fetchone()
        return from_ms(row[0]) if row else None

    def plan_times(self) -> list[dt.datetime]:
        """When each stored plan was made, oldest first."""
        with self._lock:
            rows = self._db.execute("SELECT created_ms FROM plans ORDER BY id").fetchall()
        return [from_ms(row[0]) for row in rows]

    def last_plan(self) -> dict | None:
        with self._lock:
            row = self._db.execute("SELECT MAX(id) FROM plans").fetchone()
        return self.plan(row[0]) if row and row[0] is not None else None

    # --- outbox (for the InfluxDB sink) ------------------------------------------------------

    def outbox_batch(self, limit: int) -> list[tuple[int, str]]:
        with self._lock:
            return self._db.execute("SELECT id, line FROM outbox ORDER BY id LIMIT ?", (limit,)).fetchall()

    def outbox_ack(self, last_id: int) -> None:
        with self._transaction() as db:
            db.execute("DELETE FROM outbox WHERE id <= ?", (last_id,))

    def outbox_reject(self, line_id: int, line: str, reason: str, time: dt.datetime) -> None:
        """Move a line the server refused for good out of the outbox, into an event (kept, not sent)."""
        with self._transaction() as db:
            db.execute("DELETE FROM outbox WHERE id = ?", (line_id,))
            db.execute(
                "INSERT INTO events VALUES (?, ?, ?, ?)",
                (
                    to_ms(time),
                    "outbox-rejected",
                    f"InfluxDB refused a line: {reason}",
                    json.dumps({"line": line, "reason": reason}),
                ),
            )
