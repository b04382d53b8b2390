"""Read queries over the store that the operators' console needs (latest values per device,
set-point log, time series of several devices), kept beside the store's own methods.

Every function takes an open :class:`ems.store.Store` and returns plain rows with UTC times.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict

from ems.store.sqlite import Store, from_ms, to_ms


def latest_values(store: Store, devices: list[str]) -> dict[str, dict[str, tuple[dt.datetime, float | None, str]]]:
    """Per device: the rows of its newest poll, by quantity: (time, value, quality).

    Two index lookups per device (never a scan of the table), so a week of telemetry costs what
    an hour does. A quantity the newest poll did not report (a charger with no vehicle reports
    no SoC) is absent.
    """
    found: dict[str, dict[str, tuple[dt.datetime, float | None, str]]] = {}
    with store._lock:
        for device in devices:
            rows = store._db.execute(
                "SELECT time_ms, quantity, value, quality FROM telemetry WHERE device = ? AND time_ms = "
                "(SELECT MAX(time_ms) FROM telemetry WHERE device = ?)",
                (device, device),
            ).fetchall()
            if rows:
                found[device] = {quantity: (from_ms(t), value, quality) for t, quantity, value, quality in rows}
    return found


def latest_setpoints(store: Store, devices: list[str], scan_limit: int = 200_000) -> dict[str, dict]:
    """Per device of ``devices``: its newest set-point row (time, requested_kw, written_kw, status,
    reason). Read newest first along the time index until every device is found (or
    ``scan_limit`` rows: a device never written to does not make it read the whole table)."""
    wanted = set(devices)
    found: dict[str, dict] = {}
    with store._lock:
        cursor = store._db.execute(
            "SELECT device, time_ms, requested_kw, written_kw, status, reason FROM setpoints "
            "ORDER BY time_ms DESC, rowid DESC LIMIT ?",
            (scan_limit,),
        )
        for device, t, requested, written, status, reason in cursor:
            if device in wanted and device not in found:
                found[device] = {
                    "time": from_ms(t),
                    "requested_kw": requested,
                    "written_kw": written,
                    "status": status,
                    "reason": reason,
                }
                if len(found) == len(wanted):
                    break
    return found


def setpoint_log(store: Store, since: dt.datetime, until: dt.datetime | None = None, limit: int = 500) -> list[dict]:
    """Set-point rows from ``since`` (newest first, at most ``limit``), with the guard's reasons."""
    hi = to_ms(until) if until else 2**62
    with store._lock:
        rows = store._db.execute(
            "SELECT time_ms, device, requested_kw, written_kw, status, reason FROM setpoints "
            "WHERE time_ms >= ? AND time_ms < ? ORDER BY time_ms DESC, rowid DESC LIMIT ?",
            (to_ms(since), hi, limit),
        ).fetchall()
    return [
        {
            "time": from_ms(t),
            "device": device,
            "requested_kw": requested,
            "written_kw": written,
            "status": status,
            "reason": reason,
        }
        for t, device, requested, written, status, reason in rows
    ]


def series_of(
    store: Store, devices: list[str], quantity: str, since: dt.datetime, until: dt.datetime, bucket_s: int = 300
) -> dict[str, list[tuple[dt.datetime, float]]]:
    """Good values of ``quantity`` for ``devices``, averaged per ``bucket_s`` (a week stays small)."""
    if not devices:
        return {}
    marks = ",".join("?" * len(devices))
    bucket_ms = bucket_s * 1000
    with store._lock:
        rows = store._db.execute(
            f"SELECT device, (time_ms / ?) * ? AS bucket, AVG(value) FROM telemetry "
            f"WHERE device IN ({marks}) AND quantity = ? AND quality = 'good' AND value IS NOT NULL "
            "AND time_ms >= ? AND time_ms < ? GROUP BY device, bucket ORDER BY bucket",
            (bucket_ms, bucket_ms, *devices, quantity, to_ms(since), to_ms(until)),
        ).fetchall()
    found: dict[str, list[tuple[dt.datetime, float]]] = defaultdict(list)
    for device, bucket, value in rows:
        found[device].append((from_ms(bucket), value))
    return dict(found)


def events_of(store: Store, kinds: tuple[str, ...], since: dt.datetime, limit: int = 200) -> list[tuple]:
    """Events of the given kinds from ``since``, newest first: (time, kind, message, data)."""
    return store.latest_events(kinds, limit=limit, since=since)
