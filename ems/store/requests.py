"""Requests to the running controller recorded in its store by another process (the console).

A re-plan request is the ``replan_request`` state row ``{"id", "user", "time"}``; its id only
grows. The controller's scheduler remembers the id it last acted on and re-plans when a larger
one appears (checked at every poll), so a request made while no controller runs is not acted
on later by surprise: a controller starts from the id it finds.
"""

from __future__ import annotations

import datetime as dt

REPLAN_REQUEST = "replan_request"


def request_replan(store, user: str, now: dt.datetime) -> int:
    """Record that ``user`` asks for a re-plan now; returns the request's id."""
    current = store.get_state(REPLAN_REQUEST) or {}
    request_id = int(current.get("id", 0)) + 1
    store.set_state(REPLAN_REQUEST, {"id": request_id, "user": user, "time": now.isoformat()}, now)
    return request_id


def latest_replan_request(store) -> dict:
    """The newest request (``{"id": 0}`` when there was none)."""
    return store.get_state(REPLAN_REQUEST) or {"id": 0}
