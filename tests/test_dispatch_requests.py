"""Request logs: the seeded generator, and clear errors for bad rows."""

from __future__ import annotations

import datetime as dt

import pytest

from dispatch.demand import HOURLY_SHARE, generate_requests
from dispatch.model import Point
from dispatch.requests_io import COLUMNS, RequestFileError, ServiceArea, read_requests

AREA = ServiceArea(Point(32.987, 130.433), 12.0)
HEADER = ",".join(COLUMNS)


def _write(tmp_path, lines: list[str]):
    path = tmp_path / "requests.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


def _read(path):
    return read_requests(path, AREA, "Asia/Tokyo", max_seats=4)


def test_generator_is_seeded_and_writes_a_valid_log(tmp_path):
    day = dt.date(2026, 4, 15)
    first = generate_requests(day, 300, seed=7)
    assert first.equals(generate_requests(day, 300, seed=7))
    assert not first.equals(generate_requests(day, 300, seed=8))
    assert list(first.columns) == list(COLUMNS)
    path = tmp_path / "log.csv"
    first.to_csv(path, index=False)
    log = _read(path)  # every generated row passes the checks: in the area, in order, 1..4 riders
    assert len(log.requests) == 300
    assert log.clock.date == day
    hours = [int(r.time_s // 3600) for r in log.requests]
    assert min(hours) >= min(HOURLY_SHARE) and max(hours) <= max(HOURLY_SHARE)
    morning = sum(8 <= h < 11 for h in hours) / 3
    afternoon = sum(15 <= h < 18 for h in hours) / 3
    assert morning > 1.5 * afternoon  # the older population's morning peak


def test_good_file_parses_to_service_day_seconds(tmp_path):
    path = _write(tmp_path, [HEADER, "a,2026-04-15T08:00:30+09:00,32.98,130.44,32.99,130.45,2"])
    (request,) = _read(path).requests
    assert request.time_s == 8 * 3600 + 30
    assert request.passengers == 2
    assert request.destination == Point(32.99, 130.45)


def test_unknown_column_is_named(tmp_path):
    path = _write(tmp_path, [HEADER + ",fare_yen", "a,2026-04-15T08:00:00+09:00,32.98,130.44,32.99,130.45,1,500"])
    with pytest.raises(RequestFileError, match=r"line 1: unknown column\(s\) fare_yen"):
        _read(path)


@pytest.mark.parametrize(
    ("row", "message"),
    [
        (
            "b,2026-04-15T07:59:00+09:00,32.98,130.44,32.99,130.45,1",
            r"line 3 \(request b\): time .* before the previous row",
        ),
        (
            "b,2026-04-15T08:05:00+09:00,33.20,130.44,32.99,130.45,1",
            r"line 3 \(request b\): origin \(33.2, 130.44\) is outside the service area",
        ),
        (
            "b,2026-04-15T08:05:00+09:00,32.98,130.44,32.99,129.90,1",
            r"line 3 \(request b\): destination .* outside the service area",
        ),
        (
            "b,2026-04-15T08:05:00+09:00,32.98,130.44,32.99,130.45,0",
            r"line 3 \(request b\): passengers is 0; a request needs at least 1",
        ),
        (
            "b,2026-04-15T08:05:00+09:00,32.98,130.44,32.99,130.45,7",
            r"line 3 \(request b\): passengers is 7, more than",
        ),
        ("b,2026-04-15T08:05:00,32.98,130.44,32.99,130.45,1", r"line 3 \(request b\): time .* has no UTC offset"),
        ("b,soon,32.98,130.44,32.99,130.45,1", r"line 3 \(request b\): time 'soon' is not an ISO 8601 time"),
        (
            "a,2026-04-15T08:05:00+09:00,32.98,130.44,32.99,130.45,1",
            r"line 3 \(request a\): request_id 'a' appears twice",
        ),
        (
            "b,2026-04-15T08:05:00+09:00,north,130.44,32.99,130.45,1",
            r"line 3 \(request b\): origin_lat 'north' is not a number",
        ),
    ],
)
def test_bad_row_error_names_file_line_and_request(tmp_path, row, message):
    path = _write(tmp_path, [HEADER, "a,2026-04-15T08:00:00+09:00,32.98,130.44,32.99,130.45,1", row])
    with pytest.raises(RequestFileError, match=message) as caught:
        _read(path)
    assert str(path) in str(caught.value)


def test_every_bad_row_is_reported_at_once(tmp_path):
    path = _write(
        tmp_path,
        [
            HEADER,
            "a,2026-04-15T08:00:00+09:00,32.98,130.44,32.99,130.45,0",
            "b,2026-04-15T08:01:00+09:00,40.0,130.44,32.99,130.45,1",
        ],
    )
    with pytest.raises(RequestFileError) as caught:
        _read(path)
    assert len(caught.value.problems) == 2
    assert "line 2 (request a)" in str(caught.value) and "line 3 (request b)" in str(caught.value)
