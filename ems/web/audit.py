"""The audit log: every console action with its user, as ``audit`` events in the store.

Events are never dropped by retention, so the log lives as long as the store. Each entry's data
holds ``user``, ``role``, ``action``, ``outcome`` (``done``, ``refused``, ``failed``) and the
action's own details; the message is one readable line.
"""

from __future__ import annotations

from typing import Any

KIND = "audit"


def record(
    console, user: str | None, role: str | None, action: str, outcome: str = "done", message: str = "", **details: Any
) -> None:
    """Write one audit entry now (UTC in the store)."""
    who = user or "anonymous"
    text = f"{who}: {action} {outcome}" + (f": {message}" if message else "")
    console.store.record_event(
        console.now(), KIND, text, {"user": user, "role": role, "action": action, "outcome": outcome, **details}
    )


def entries(console, limit: int = 50) -> list[dict]:
    """The newest entries first, times in the portfolio's zone."""
    rows = console.store.latest_events((KIND,), limit=limit)
    return [
        {"time": console.local(time).isoformat(timespec="seconds"), "message": message, **data}
        for time, _kind, message, data in rows
    ]
