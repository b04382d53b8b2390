"""Reading and checking a request log (CSV).

Columns, exactly: ``request_id,time,origin_lat,origin_lon,dest_lat,dest_lon,passengers``.
``time`` is ISO 8601 with a UTC offset; rows are in time order; both ends lie inside the
service area (a square of side ``service_area_km`` around the portfolio's centre);
``passengers`` is a whole number from 1 to the largest vehicle's seats. Every problem is
reported with the file, the line and the request id.
"""

from __future__ import annotations

import csv
import datetime as dt
import math
from dataclasses import dataclass
from pathlib import Path

from dispatch.clock import ServiceClock
from dispatch.model import Point, Request

COLUMNS = ("request_id", "time", "origin_lat", "origin_lon", "dest_lat", "dest_lon", "passengers")
KM_PER_DEG_LAT = 111.32
MAX_REPORTED = 10


class RequestFileError(ValueError):
    """A request log is wrong; the message names the file, line and request of each problem."""

    def __init__(self, path: str | Path, problems: list[str]):
        self.problems = problems
        shown = problems[:MAX_REPORTED]
        more = f"\n  ... and {len(problems) - MAX_REPORTED} more" if len(problems) > MAX_REPORTED else ""
        if len(problems) == 1:  # the common case reads as one line
            super().__init__(f"{path}: invalid request log: {problems[0]}")
        else:
            super().__init__(f"{path}: invalid request log\n  " + "\n  ".join(shown) + more)


@dataclass(frozen=True)
class ServiceArea:
    """A square of side ``side_km`` centred on ``centre``."""

    centre: Point
    side_km: float

    def contains(self, point: Point) -> bool:
        half = self.side_km / 2
        d_lat_km = (point.lat - self.centre.lat) * KM_PER_DEG_LAT
        d_lon_km = (point.lon - self.centre.lon) * KM_PER_DEG_LAT * math.cos(math.radians(self.centre.lat))
        return abs(d_lat_km) <= half and abs(d_lon_km) <= half


@dataclass(frozen=True)
class RequestLog:
    requests: tuple[Request, ...]
    clock: ServiceClock


def read_requests(path: str | Path, area: ServiceArea, timezone: str, max_seats: int) -> RequestLog:
    """Parse and check ``path``; raise :class:`RequestFileError` listing every bad row."""
    path = Path(path)
    try:
        handle = path.open(newline="", encoding="utf-8")
    except FileNotFoundError:
        raise RequestFileError(path, ["no such file"]) from None
    except IsADirectoryError:
        raise RequestFileError(path, ["is a directory, not a request log"]) from None
    with handle:
        reader = csv.reader(handle)
        try:
            header = next(reader, None)
            if header is None:
                raise RequestFileError(path, ["the file is empty (expected a header row)"])
            _check_header(path, [h.strip() for h in header])
            rows = list(enumerate(reader, start=2))
        except UnicodeDecodeError as error:
            what = f"not UTF-8 text (undecodable byte 0x{error.object[error.start]:02x})"
            raise RequestFileError(path, [what]) from None
    problems: list[str] = []
    parsed: list[tuple[str, dt.datetime, Point, Point, int]] = []
    seen: set[str] = set()
    previous: dt.datetime | None = None
    for line, row in rows:
        if not any(cell.strip() for cell in row):
            continue
        where = f"line {line}" + (f" (request {row[0].strip()})" if row and row[0].strip() else "")
        result = _parse_row(row, area, max_seats)
        if isinstance(result, str):
            problems.append(f"{where}: {result}")
            continue
        request_id, moment, origin, destination, passengers = result
        if request_id in seen:
            problems.append(f"{where}: request_id {request_id!r} appears twice")
        seen.add(request_id)
        if previous is not None and moment < previous:
            problems.append(
                f"{where}: time {moment.isoformat()} is before the previous row's {previous.isoformat()} "
                "(rows must be in time order)"
            )
        previous = moment
        parsed.append(result)
    if problems:
        raise RequestFileError(path, problems)
    if not parsed:
        raise RequestFileError(path, ["no requests in the file"])
    first = parsed[0][1]
    clock = ServiceClock(first.astimezone(_zone(timezone)).date(), timezone)
    requests = tuple(Request(rid, clock.to_s(t), o, d, n) for rid, t, o, d, n in parsed)
    return RequestLog(requests, clock)


def _zone(name: str):
    from zoneinfo import ZoneInfo

    return ZoneInfo(name)


def _check_header(path: Path, header: list[str]) -> None:
    unknown = [h for h in header if h not in COLUMNS]
    missing = [c for c in COLUMNS if c not in header]
    problems = []
    if unknown:
        problems.append(f"line 1: unknown column(s) {', '.join(unknown)}")
    if missing:
        problems.append(f"line 1: missing column(s) {', '.join(missing)}")
    if not problems and header != list(COLUMNS):
        problems.append(f"line 1: columns must be in the order {','.join(COLUMNS)}")
    if problems:
        problems.append(f"expected header: {','.join(COLUMNS)}")
        raise RequestFileError(path, problems)


def _parse_row(row: list[str], area: ServiceArea, max_seats: int):
    """The parsed row, or a message saying what is wrong with it."""
    if len(row) != len(COLUMNS):
        return f"has {len(row)} fields, expected {len(COLUMNS)}"
    cells = dict(zip(COLUMNS, (c.strip() for c in row)))
    if not cells["request_id"]:
        return "request_id is empty"
    try:
        moment = dt.datetime.fromisoformat(cells["time"])
    except ValueError:
        return f"time {cells['time']!r} is not an ISO 8601 time"
    if moment.tzinfo is None or moment.utcoffset() is None:
        return f"time {cells['time']!r} has no UTC offset (write e.g. 2026-04-15T08:30:00+09:00)"
    coords = {}
    for key in ("origin_lat", "origin_lon", "dest_lat", "dest_lon"):
        try:
            coords[key] = float(cells[key])
        except ValueError:
            return f"{key} {cells[key]!r} is not a number"
        if not math.isfinite(coords[key]):
            return f"{key} {cells[key]!r} is not a finite number"
    origin = Point(coords["origin_lat"], coords["origin_lon"])
    destination = Point(coords["dest_lat"], coords["dest_lon"])
    for name, point in (("origin", origin), ("destination", destination)):
        if not area.contains(point):
            return (
                f"{name} ({point.lat}, {point.lon}) is outside the service area "
                f"({area.side_km:g} km square around {area.centre.lat}, {area.centre.lon})"
            )
    try:
        passengers = int(cells["passengers"])
    except ValueError:
        return f"passengers {cells['passengers']!r} is not a whole number"
    if passengers < 1:
        return f"passengers is {passengers}; a request needs at least 1"
    if passengers > max_seats:
        return f"passengers is {passengers}, more than any vehicle's {max_seats} seats"
    return cells["request_id"], moment, origin, destination, passengers
