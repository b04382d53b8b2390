"""The live dispatcher's own SQLite store: riders (received, promised, served, refused) and each
vehicle's engine state, so a restart resumes where the last committed batch left off.

A request is written when it is received (before its MQTT acknowledgement, so a crash before
that makes the broker deliver it again); a batch's routes and rider statuses are committed
before any rider is told of them, so no rider is promised a pickup the store does not hold.
"""

from __future__ import annotations

import dataclasses
import json
import sqlite3
import threading
from pathlib import Path

from dispatch.engine import RiderRecord, SimVehicle
from dispatch.model import Point, Reason, Rejection, Request, Stop, StopKind

SCHEMA = """
CREATE TABLE IF NOT EXISTS dispatch_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS dispatch_riders (
    request_id TEXT PRIMARY KEY, request TEXT NOT NULL, status TEXT NOT NULL, vehicle_id TEXT,
    pickup_eta_s REAL, pickup_s REAL, dropoff_s REAL, shared INTEGER NOT NULL DEFAULT 0,
    reason TEXT, message TEXT, announced TEXT);
CREATE TABLE IF NOT EXISTS dispatch_vehicles (vehicle_id TEXT PRIMARY KEY, state TEXT NOT NULL);
"""


def _stop_dict(stop: Stop | None) -> dict | None:
    if stop is None:
        return None
    data = dataclasses.asdict(stop)
    data["kind"] = stop.kind.value
    data["point"] = list(stop.point)
    for key in ("latest_s", "max_ride_s"):
        if data[key] == float("inf"):
            data[key] = None
    return data


def _stop(data: dict | None) -> Stop | None:
    if data is None:
        return None
    return Stop(
        StopKind(data["kind"]),
        Point(*data["point"]),
        data["request_id"],
        data["passengers"],
        float("inf") if data["latest_s"] is None else data["latest_s"],
        float("inf") if data["max_ride_s"] is None else data["max_ride_s"],
        data["picked_up_s"],
        data["place_id"],
    )


VEHICLE_FIELDS = (
    "ready_s",
    "soc_kwh",
    "plugged",
    "locked",
    "onboard",
    "idle_since_s",
    "at_shelter",
    "km",
    "empty_km",
    "passenger_km",
    "energy_kwh",
    "charging_stops",
    "max_load",
    "km_by_purpose",
)


def vehicle_state(vehicle: SimVehicle) -> str:
    data = {name: getattr(vehicle, name) for name in VEHICLE_FIELDS}
    data["position"] = list(vehicle.position)
    data["min_soc_kwh"] = None if vehicle.min_soc_kwh == float("inf") else vehicle.min_soc_kwh
    data["stops"] = [_stop_dict(s) for s in vehicle.stops]
    data["task"] = _stop_dict(vehicle.task)
    return json.dumps(data)


def restore_vehicle(vehicle: SimVehicle, text: str) -> None:
    """Put the stored state into ``vehicle`` (its leg restarts from the stored position)."""
    data = json.loads(text)
    for name in VEHICLE_FIELDS:
        setattr(vehicle, name, data[name])
    vehicle.position = Point(*data["position"])
    vehicle.min_soc_kwh = float("inf") if data["min_soc_kwh"] is None else data["min_soc_kwh"]
    vehicle.stops = [s for s in (_stop(d) for d in data["stops"]) if s is not None]
    vehicle.task = _stop(data["task"])
    vehicle.leg = None


def request_json(request: Request) -> str:
    return json.dumps(
        {
            "id": request.request_id,
            "time_s": request.time_s,
            "origin": list(request.origin),
            "destination": list(request.destination),
            "passengers": request.passengers,
        }
    )


def request_from_json(text: str) -> Request:
    data = json.loads(text)
    return Request(data["id"], data["time_s"], Point(*data["origin"]), Point(*data["destination"]), data["passengers"])


class DispatchStore:
    """One SQLite file; safe to call from the MQTT thread and the batch loop."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(SCHEMA)
        self._lock = threading.Lock()

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def meta(self, key: str) -> str | None:
        with self._lock:
            row = self._db.execute("SELECT value FROM dispatch_meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def set_meta(self, key: str, value: str) -> None:
        with self._lock:
            self._db.execute("INSERT OR REPLACE INTO dispatch_meta VALUES (?, ?)", (key, value))

    def receive(self, request: Request) -> bool:
        """Store a new request as received; False if its id is already known (a duplicate)."""
        with self._lock:
            cursor = self._db.execute(
                "INSERT OR IGNORE INTO dispatch_riders (request_id, request, status) VALUES (?, ?, 'received')",
                (request.request_id, request_json(request)),
            )
        return cursor.rowcount == 1

    def refuse(self, request_id: str, reason: str) -> bool:
        """Record a malformed request under its id; False if the id already holds a request."""
        with self._lock:
            cursor = self._db.execute(
                "INSERT OR IGNORE INTO dispatch_riders (request_id, request, status, reason, message, announced) "
                "VALUES (?, '{}', 'rejected', 'malformed', ?, 'rejected')",
                (request_id, reason),
            )
        return cursor.rowcount == 1

    def riders(self) -> list[sqlite3.Row]:
        with self._lock:
            self._db.row_factory = sqlite3.Row
            rows = self._db.execute("SELECT * FROM dispatch_riders").fetchall()
            self._db.row_factory = None
        return rows

    def vehicles(self) -> dict[str, str]:
        with self._lock:
            return dict(self._db.execute("SELECT vehicle_id, state FROM dispatch_vehicles").fetchall())

    def commit_batch(
        self,
        now_s: float | None,
        vehicles: dict[str, str],
        riders: dict[str, tuple[RiderRecord, str, float | None]],
        announced: dict[str, str],
    ) -> None:
        """Vehicles (their ``vehicle_state``; only those that changed need be given), riders (record,
        status, pickup ETA [s]) and what each rider has been told, at once; ``now_s`` is the batch's
        time (None for a quote between batches: a restart resumes at the batch after the last one)."""
        with self._lock:
            self._db.execute("BEGIN")
            try:
                self._db.executemany("INSERT OR REPLACE INTO dispatch_vehicles VALUES (?, ?)", list(vehicles.items()))
                self._db.executemany(
                    "UPDATE dispatch_riders SET status = ?, vehicle_id = ?, pickup_eta_s = ?, pickup_s = ?, "
                    "dropoff_s = ?, shared = ?, reason = ?, message = ?, announced = ? WHERE request_id = ?",
                    [
                        (
                            status,
                            r.vehicle_id or None,
                            eta,
                            r.pickup_s,
                            r.dropoff_s,
                            int(r.shared),
                            r.rejection.reason.value if r.rejection else None,
                            r.rejection.message if r.rejection else None,
                            announced.get(rid),
                            rid,
                        )
                        for rid, (r, status, eta) in riders.items()
                    ],
                )
                if now_s is not None:
                    self._db.execute("INSERT OR REPLACE INTO dispatch_meta VALUES ('last_step_s', ?)", (repr(now_s),))
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise


def restore_rider(row, router_leg) -> RiderRecord:
    """A rider's engine record from its stored row."""
    request = request_from_json(row["request"])
    record = RiderRecord(request, router_leg(request.origin, request.destination)[1])
    record.vehicle_id = row["vehicle_id"] or ""
    record.pickup_s = row["pickup_s"]
    record.dropoff_s = row["dropoff_s"]
    record.shared = bool(row["shared"])
    if row["status"] == "rejected" and row["reason"]:
        record.rejection = Rejection(request.request_id, Reason(row["reason"]), row["message"] or "")
    return record
