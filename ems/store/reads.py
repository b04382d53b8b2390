"""Read queries over the store that the operators' console needs (latest values per device,
set-point log, time series of several devices), kept beside the store's own methods.

Every function takes an open :class:`ems.store.Store` and returns plain rows with UTC times.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict

from ems.store.sqlite import Store, from_ms, to_ms


def latest_values(store: Store) -> dict[str, dict[str, tuple[dt.datetime, float | None, str]]]:
    """Per device and quantity: (time, value, quality) of its newest row."""
    query = ("SELECT t.device, t.quantity, t.time_ms, t.value, t.quality FROM telemetry t JOIN "
             "(SELECT device, quantity, MAX(time_ms) AS newest FROM telemetry GROUP BY device, quantity) m "
             "ON t.device = m.device AND t.quantity = m.quantity AND t.time_ms = m.newest")
    with store._lock:
        rows = store._db.execute(query).fetchall()
    found: dict[str, dict[str, tuple[dt.datetime, float | None, str]]] = defaultdict(dict)
    for device, quantity, time_ms, value, quality in rows:
        found[device][quantity] = (from_ms(time_ms), value, quality)
    return dict(found)


def latest_setpoints(store: Store) -> dict[str, dict]:
    """Per device: its newest set-point row (time, requested_kw, written_kw, status, reason)."""
    query = ("SELECT s.device, s.time_ms, s.requested_kw, s.written_kw, s.status, s.reason FROM setpoints s JOIN "
             "(SELECT device, MAX(rowid) AS newest FROM setpoints GROUP BY device) m ON s.rowid = m.newest")
    with store._lock:
        rows = store._db.execute(query).fetchall()
    return {device: {"time": from_ms(t), "requested_kw": requested, "written_kw": written, "status": status, "reason": reason}
            for device, t, requested, written, status, reason in rows}


def setpoint_log(store: Store, since: dt.datetime, until: dt.datetime | None = None, limit: int = 500) -> list[dict]:
    """Set-point rows from ``since`` (newest first, at most ``limit``), with the guard's reasons."""
    hi = to_ms(until) if until else 2**62
    with store._lock:
        rows = store._db.execute("SELECT time_ms, device, requested_kw, written_kw, status, reason FROM setpoints "
                                 "WHERE time_ms >= ? AND time_ms < ? ORDER BY time_ms DESC, rowid DESC LIMIT ?",
                                 (to_ms(since), hi, limit)).fetchall()
    return [{"time": from_ms(t), "device": device, "requested_kw": requested, "written_kw": written, "status": status,
             "reason": reason} for t, device, requested, written, status, reason in rows]


def series_of(store: Store, devices: list[str], quantity: str, since: dt.datetime, until: dt.datetime,
              bucket_s: int = 300) -> dict[str, list[tuple[dt.datetime, float]]]:
    """Good values of ``quantity`` for ``devices``, averaged per ``bucket_s`` (a week stays small)."""
    if not devices:
        return {}
    marks = ",".join("?" * len(devices))
    bucket_ms = bucket_s * 1000
    with store._lock:
        rows = store._db.execute(
            f"SELECT device, (time_ms / ?) * ? AS bucket, AVG(value) FROM telemetry WHERE device IN ({marks}) AND quantity = ? "
            "AND quality = 'good' AND value IS NOT NULL AND time_ms >= ? AND time_ms < ? GROUP BY device, bucket ORDER BY bucket",
            (bucket_ms, bucket_ms, *devices, quantity, to_ms(since), to_ms(until))).fetchall()
    found: dict[str, list[tuple[dt.datetime, float]]] = defaultdict(list)
    for device, bucket, value in rows:
        found[device].append((from_ms(bucket), value))
    return dict(found)


def events_of(store: Store, kinds: tuple[str, ...], since: dt.datetime, limit: int = 200) -> list[tuple]:
    """Events of the given kinds from ``since``, newest first: (time, kind, message, data)."""
    return store.latest_events(kinds, limit=limit, since=since)
