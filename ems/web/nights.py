"""The nightly DR simulations as the console shows them: read from the folders the nightly job
writes (``control.nightly_dir/<date>/kpis.json``, docs/nightly.md), never recomputed here.

For each night: the plan's KPIs with the spread over forecast-error samples (P10/P50/P90), the
events against their settlement baseline and against the plan without them, the flexibility
the operator can offer slot by slot and per 3-hour block, and what changed since the night
before (the previous folder with a ``kpis.json``).
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

PLAN_KPIS = (
    "energy_cost_yen",
    "objective_yen",
    "co2_kg",
    "local_pv_share",
    "peak_import_kw",
    "grid_import_kwh",
    "grid_export_kwh",
    "pv_kwh",
    "consumption_kwh",
)
SPREAD_KPIS = ("energy_cost_yen", "objective_yen", "co2_kg", "local_pv_share", "peak_import_kw")


class NightMissing(LookupError):
    """No night of that date under the nightly directory."""


def _is_date(name: str) -> bool:
    try:
        dt.date.fromisoformat(name)
    except ValueError:
        return False
    return True


def night_dates(root: Path) -> list[str]:
    """Dates (YYYY-MM-DD) of the finished nights under ``root``, newest first."""
    if not root.is_dir():
        return []
    return sorted((p.name for p in root.iterdir() if _is_date(p.name) and (p / "kpis.json").is_file()), reverse=True)


def read_kpis(root: Path, date: str) -> dict:
    if not _is_date(date):
        raise NightMissing(f"{date!r} is not a date YYYY-MM-DD")
    path = root / date / "kpis.json"
    if not path.is_file():
        raise NightMissing(f"no nightly simulation for {date} under {root}")
    return json.loads(path.read_text(encoding="utf-8"))


def flexibility_totals(kpis: dict) -> dict[str, float]:
    """The offer in one line per direction: kWh over the day's 3-hour blocks (slots if no blocks)."""
    flexibility = kpis.get("flexibility") or {}
    rows = flexibility.get("blocks") or flexibility.get("slots") or []
    totals = {}
    for direction in ("down", "up"):
        hours = [
            (dt.datetime.fromisoformat(r["end"]) - dt.datetime.fromisoformat(r["start"])).total_seconds() / 3600
            for r in rows
        ]
        totals[f"{direction}_kwh"] = round(
            sum(r.get(f"{direction}_kw", 0.0) * h for r, h in zip(rows, hours, strict=True)), 2
        )
    return totals


def event_rows(kpis: dict) -> list[dict]:
    """Each event as given (no shifted or resized variant) with its two comparisons."""
    rows = []
    for event in kpis.get("events", []):
        rows.append(
            {
                "event_id": event["event_id"],
                "direction": event["direction"],
                "start": event["start"],
                "duration_minutes": event["duration_minutes"],
                "value_yen": event["value_yen"],
                "dr_revenue_yen": event["dr_revenue_yen"],
                "dr_penalty_yen": event["dr_penalty_yen"],
                "vs_baseline": event["vs_baseline"],
                "vs_plan_without_event": event["vs_plan_without_event"],
                "status": event["status"],
            }
        )
    return rows


def summary_row(date: str, kpis: dict) -> dict:
    plan = kpis.get("plan", {})
    return {
        "date": date,
        "portfolio": kpis.get("portfolio", ""),
        "solver_status": plan.get("solver_status", ""),
        "energy_cost_yen": plan.get("energy_cost_yen"),
        "objective_yen": plan.get("objective_yen"),
        "peak_import_kw": plan.get("peak_import_kw"),
        "events": len(kpis.get("events", [])),
        "scenarios": (kpis.get("sweep") or {}).get("scenarios", 0),
        **flexibility_totals(kpis),
    }


def list_nights(root: Path) -> list[dict]:
    return [summary_row(date, read_kpis(root, date)) for date in night_dates(root)]


def changes(current: dict, previous: dict) -> list[dict]:
    """What moved between two nights: the plan's KPIs, each event's value and the offer."""
    rows: list[dict[str, object]] = []

    def add(what: str, before, after) -> None:
        if isinstance(before, (int, float)) and isinstance(after, (int, float)):
            rows.append({"what": what, "previous": before, "this": after, "change": round(after - before, 3)})
        elif before != after:
            rows.append({"what": what, "previous": before, "this": after, "change": None})

    for name in PLAN_KPIS:
        add(f"plan {name}", previous.get("plan", {}).get(name), current.get("plan", {}).get(name))
    before_events = {e["event_id"]: e for e in previous.get("events", [])}
    after_events = {e["event_id"]: e for e in current.get("events", [])}
    for event_id in sorted(before_events.keys() | after_events.keys()):
        before, after = before_events.get(event_id), after_events.get(event_id)
        if before is None or after is None:
            add(
                f"event {event_id}", "absent" if before is None else "present", "absent" if after is None else "present"
            )
        else:
            add(f"event {event_id} value_yen", before["value_yen"], after["value_yen"])
    for key, value in flexibility_totals(current).items():
        add(f"flexibility {key}", flexibility_totals(previous)[key], value)
    return rows


def night_view(root: Path, date: str) -> dict:
    """Everything the night's page shows, as JSON-ready data."""
    kpis = read_kpis(root, date)
    dates = night_dates(root)
    older = [d for d in dates if d < date]
    previous = older[0] if older else None
    spread = kpis.get("scenario_spread") or {}
    return {
        "date": date,
        "portfolio": kpis.get("portfolio", ""),
        "plan": kpis.get("plan", {}),
        "plan_without_events": kpis.get("plan_without_events", {}),
        "spread": {"samples": spread.get("samples", 0), **{k: spread[k] for k in SPREAD_KPIS if spread.get(k)}},
        "events": event_rows(kpis),
        "flexibility": kpis.get("flexibility") or {},
        "flexibility_totals": flexibility_totals(kpis),
        "unavailable": kpis.get("unavailable", []),
        "previous": previous,
        "changes": changes(kpis, read_kpis(root, previous)) if previous else [],
        "report": (root / date / "report.html").is_file(),
    }
