"""Riders' requests as the live dispatcher reads them: every refusal names the field."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from dispatch.clock import ServiceClock
from dispatch.model import Point
from dispatch.requests_io import ServiceArea
from ems.dispatching.messages import RequestRefused, parse_request

DAY = ServiceClock(dt.date(2026, 4, 15))
AREA = ServiceArea(Point(32.99, 130.44), 10.0)
GOOD = {
    "id": "r-1",
    "time": "2026-04-15T08:00:00+09:00",
    "origin": {"lat": 32.99, "lon": 130.44},
    "destination": {"lat": 32.98, "lon": 130.45},
    "passengers": 2,
}


def _parse(**changes):
    body = {**GOOD, **changes}
    return parse_request(json.dumps({k: v for k, v in body.items() if v is not None}).encode(), AREA, 4, DAY)


def test_a_good_request_becomes_the_engines_request():
    request = _parse()
    assert (request.request_id, request.time_s, request.passengers) == ("r-1", 8 * 3600.0, 2)
    assert request.destination == Point(32.98, 130.45)
    booked = _parse(earliest_pickup="2026-04-15T09:30:00+09:00")
    assert booked.time_s == 9.5 * 3600.0  # a booked ride enters the batch at its pickup time


@pytest.mark.parametrize(
    ("changes", "request_id", "words"),
    [
        ({"destination": None}, "r-1", "field destination: Field required"),
        ({"passengers": 0}, "r-1", "field passengers"),
        ({"passengers": 5}, "r-1", "more than any vehicle's 4 seats"),
        ({"origin": {"lat": 33.5, "lon": 130.44}}, "r-1", "field origin: (33.5, 130.44) is outside the service area"),
        ({"time": "2026-04-15T08:00:00"}, "r-1", "field time"),
        ({"time": "2026-04-16T08:00:00+09:00"}, "r-1", "not on the service day 2026-04-15"),
        ({"id": "a/b"}, None, "field id"),
        ({"origin": {"lat": float("nan"), "lon": 1}}, "r-1", "field origin.lat: Input should be a finite number"),
    ],
)
def test_a_bad_request_is_refused_naming_the_field(changes, request_id, words):
    with pytest.raises(RequestRefused) as refused:
        _parse(**changes)
    assert words in refused.value.reason and refused.value.request_id == request_id


def test_unreadable_and_oversized_payloads_are_refused_without_an_id():
    for payload in (b"not json", b"[1, 2]", b"{" + b" " * 5000 + b"}"):
        with pytest.raises(RequestRefused) as refused:
            parse_request(payload, AREA, 4, DAY)
        assert refused.value.request_id is None
