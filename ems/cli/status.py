"""``ems status``: what the controller is doing, read from its store (running or stopped).

Read-only: the store is opened without write access and never created. Every time is shown in
the portfolio's time zone with its offset.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
from pathlib import Path
from zoneinfo import ZoneInfo

from ems.config import load_portfolio

STALE_POLLS = 3  # a device whose latest row is this many poll intervals behind the newest is stale


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "status", help="the controller's state from its store: plan, failures, devices, outbox"
    )
    parser.add_argument("--config", required=True, type=Path)
    parser.add_argument("--store", type=Path, help="the store to read (default: storage.sqlite_path); never created")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from ems.store import Store

    portfolio = load_portfolio(args.config)
    path = args.store or Path(portfolio.storage.sqlite_path)
    store = Store(path, create=False, readonly=True)
    try:
        report = controller_status(store, portfolio, dt.datetime.now(dt.UTC))
    finally:
        store.close()
    print(json.dumps(report, indent=2) if args.json else render(report))
    return 0


def controller_status(store, portfolio, now: dt.datetime) -> dict:
    """Everything ``ems status`` shows, as plain data (times ISO 8601 in the portfolio's zone)."""
    zone = ZoneInfo(portfolio.portfolio.timezone)

    def local(time: dt.datetime | None) -> str | None:
        return time.astimezone(zone).isoformat(timespec="seconds") if time else None

    plan = store.last_plan()
    last_plan = None
    if plan is not None:
        summary = plan["summary"]
        fallback = summary.get("message") if plan["status"] == "fallback" else None
        last_plan = {
            "id": plan["id"],
            "time": local(plan["created"]),
            "status": plan["status"],
            "objective_yen": summary.get("objective_yen"),
            "solve_s": summary.get("solve_s"),
            "fallback_reason": fallback,
        }
    failures = store.latest_events(("replan-failed",), limit=1000, since=plan["created"] if plan else None)
    if plan is not None:
        failures = [f for f in failures if f[0] > plan["created"]]
    replan = {
        "failures_since_last_plan": len(failures),
        "failing_since": local(failures[-1][0]) if failures else None,
        "last_reason": failures[0][3].get("reason") if failures else None,
    }
    degraded = store.latest_events(("replan-degraded", "plan-input"), limit=1)  # recorded once per episode
    if degraded:
        replan["last_degraded"] = {"time": local(degraded[0][0]), "message": degraded[0][2]}
    bcp = store.latest_events(("bcp-mode",), limit=1)
    foreign = store.latest_events(("foreign_write",), limit=1)
    started = store.latest_events(("start", "shutdown"), limit=1)
    return {
        "store": str(store.path),
        "now": local(now),
        "controller": {"last": started[0][1] if started else None, "time": local(started[0][0]) if started else None},
        "last_plan": last_plan,
        "replan": replan,
        "devices": _devices(store, portfolio, local),
        "bcp_mode": {
            "active": bool(bcp) and bcp[0][2].startswith("BCP mode on"),
            "since": local(bcp[0][0]) if bcp else None,
            "message": bcp[0][2] if bcp else None,
        },
        "outbox": {"backlog_lines": store.count("outbox"), "rejected_lines": store.count_events("outbox-rejected")},
        "last_foreign_write": (
            {"time": local(foreign[0][0]), "message": foreign[0][2], **foreign[0][3]} if foreign else None
        ),
        "imbalance_today": _imbalance_today(store, now, zone),
    }


def _imbalance_today(store, now: dt.datetime, zone) -> dict:
    """The demand plan's 30-minute balance since local midnight (docs/market.md)."""
    from ems.store.prices import imbalance_summary

    return imbalance_summary(store, dt.datetime.combine(now.astimezone(zone).date(), dt.time(0), zone))


def _devices(store, portfolio, local) -> list[dict]:
    """Devices whose latest reading is not good, or that fell behind the others (stale)."""
    latest = store.latest_telemetry()
    if not latest:
        return []
    newest = max(time for _d, time, _q in latest)
    behind = dt.timedelta(seconds=STALE_POLLS * portfolio.control.poll_s)
    found = []
    for device, time, quality in sorted(latest):
        state = quality if quality != "good" else ("stale" if newest - time > behind else None)
        if state is None:
            continue
        good = store.last_good_time(device)
        found.append(
            {
                "device": device,
                "state": state,
                "since": local(good) if good else None,
                "last_reading": local(time),
                "never_good": good is None,
            }
        )
    return found


def render(report: dict) -> str:
    lines = [f"store {report['store']} at {report['now']}"]
    controller = report["controller"]
    if controller["last"]:
        lines.append(f"controller: last {controller['last']} at {controller['time']}")
    plan = report["last_plan"]
    if plan is None:
        lines.append("last plan: none")
    else:
        objective = "--" if plan["objective_yen"] is None else f"{plan['objective_yen']:,.0f} yen"
        text = (
            f"last plan: #{plan['id']} at {plan['time']}, {plan['status']}, objective {objective}, "
            f"solve {plan['solve_s'] or 0:.2f} s"
        )
        lines.append(text + (f", fallback: {plan['fallback_reason']}" if plan["fallback_reason"] else ""))
    replan = report["replan"]
    if replan["failures_since_last_plan"]:
        lines.append(
            f"re-plan failing since {replan['failing_since']}: {replan['failures_since_last_plan']} failure(s), "
            f"last: {replan['last_reason']}"
        )
    else:
        lines.append("re-plan: no failure since the last plan")
    if "last_degraded" in replan:
        lines.append(f"degraded inputs at {replan['last_degraded']['time']}: {replan['last_degraded']['message']}")
    devices = report["devices"]
    lines.append(f"devices missing or stale: {len(devices)}")
    for device in devices:
        since = device["since"] or "never good"
        lines.append(f"  {device['device']}: {device['state']} since {since} (last reading {device['last_reading']})")
    bcp = report["bcp_mode"]
    lines.append(f"BCP mode: {'ACTIVE since ' + bcp['since'] if bcp['active'] else 'off'}")
    outbox = report["outbox"]
    lines.append(
        f"outbox: {outbox['backlog_lines']} line(s) waiting, "
        f"{outbox['rejected_lines']} refused by the server and kept aside"
    )
    foreign = report["last_foreign_write"]
    lines.append(
        f"last foreign write: {foreign['time']}: {foreign['message']}" if foreign else "last foreign write: none"
    )
    balance = report["imbalance_today"]
    if balance["slots"]:
        lines.append(
            f"demand plan today: {balance['slots']} slot(s), planned {balance['planned_kwh']:,.1f} kWh, metered "
            f"{balance['metered_kwh']:,.1f} kWh, |imbalance| {balance['imbalance_abs_kwh']:,.2f} kWh "
            f"({balance['imbalance_yen']:,.0f} yen)"
        )
    return "\n".join(lines)
