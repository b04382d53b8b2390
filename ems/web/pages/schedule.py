"""Schedule: 48 h of the last plan per site (stacked by kind) with the measured values, prices
and DR events; storage SoC; the vehicles; the set-point log; downloads; "re-plan now"."""

from __future__ import annotations

import csv
import datetime as dt
import io
import time
from collections import defaultdict
from pathlib import Path

from fastapi import APIRouter, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, Response

from ems.store.reads import latest_values, setpoint_log
from ems.web.assets import asset_index, iso, local_day
from ems.web.auth import Viewer
from ems.web.context import Console, console
from ems.web.i18n import LABELS
from ems.web.pages import NavItem, page
from ems.web.series_cache import bucketed_series

router = APIRouter()
NAV = NavItem("/schedule", "nav.schedule", order=20)
WINDOW_HOURS = 48
POWER_KINDS = ("grid", "pv", "load", "battery", "ev")
MEASURED_BUCKET_S = 300
SETPOINT_LOG_HOURS = 6
PRICE_CACHE_S = 300.0

LABELS.update(
    {
        "schedule.title": {"ja": "48時間の計画 (拠点別)", "en": "48 h plan per site"},
        "schedule.plan_of": {"ja": "計画", "en": "plan"},
        "schedule.soc": {"ja": "蓄電池の充電量", "en": "Storage state of charge"},
        "schedule.vehicles": {"ja": "車両", "en": "Vehicles"},
        "schedule.setpoints": {"ja": "出力指令の記録 (直近6時間)", "en": "Set-point log (last 6 h)"},
        "schedule.downloads": {"ja": "ダウンロード", "en": "Downloads"},
        "schedule.day_ahead": {"ja": "前日計画ファイル", "en": "Day-ahead files"},
        "col.vehicle": {"ja": "車両", "en": "vehicle"},
        "col.status": {"ja": "状態", "en": "status"},
        "col.soc": {"ja": "充電量", "en": "SoC"},
        "col.charger": {"ja": "充電器", "en": "charger"},
        "col.next_departure": {"ja": "次の出発", "en": "next departure"},
        "col.energy_needed": {"ja": "必要エネルギー", "en": "energy needed"},
        "col.reservation": {"ja": "確保 (BCP)", "en": "reservation (BCP)"},
        "col.time": {"ja": "時刻", "en": "time"},
        "col.device": {"ja": "機器", "en": "device"},
        "col.requested": {"ja": "要求", "en": "requested"},
        "col.written": {"ja": "書込み", "en": "written"},
        "col.reason": {"ja": "ガードの理由", "en": "guard's reason"},
        "status.plugged": {"ja": "接続中", "en": "plugged in"},
        "status.away": {"ja": "運行中", "en": "on duty"},
        "status.unknown": {"ja": "不明", "en": "unknown"},
        "kind.grid": {"ja": "系統", "en": "grid"},
        "kind.pv": {"ja": "太陽光", "en": "PV"},
        "kind.load": {"ja": "負荷", "en": "load"},
        "kind.battery": {"ja": "蓄電池", "en": "battery"},
        "kind.ev": {"ja": "EV", "en": "EV"},
    }
)


@page(router, "/schedule", "schedule.html")
def schedule(console: Console, request: Request) -> dict:
    now = console.now()
    zone = console.zone
    start = local_day(now, zone)
    end = start + dt.timedelta(hours=WINDOW_HOURS)
    assets = asset_index(console.portfolio)
    plan = console.store.last_plan()
    planned = _planned(console, plan, assets, start, end) if plan else {}
    measured = _measured(console, assets, start, now)
    prices = _prices(console, start)
    sites = []
    for site in console.portfolio.sites:
        sites.append(
            {
                "id": site.id,
                "name": site.name or site.id,
                "planned": planned.get(site.id, {}),
                "measured": measured.get(site.id, {}),
                "import_price": prices.get(site.id, []),
            }
        )
    return {
        "now": iso(now, zone),
        "start": iso(start, zone),
        "end": iso(end, zone),
        "plan": None
        if plan is None
        else {
            "id": plan["id"],
            "created": iso(plan["created"], zone),
            "status": plan["status"],
            "kind": plan["kind"],
            "start": iso(plan["start"], zone),
        },
        "sites": sites,
        "dr_events": _dr_events(console, zone),
        "storage": _storage(console, assets, start, end, now),
        "vehicles": vehicles(console, assets, now),
        "setpoints": [
            {**row, "time": iso(row["time"], zone)}
            for row in setpoint_log(console.store, now - dt.timedelta(hours=SETPOINT_LOG_HOURS), now, limit=300)
        ],
        "day_ahead_files": day_ahead_files(Path(console.portfolio.control.day_ahead_dir)),
    }


def _planned(console: Console, plan: dict, assets, start, end) -> dict:
    """Per site and kind: [time, kW] of the plan (vehicles summed as 'ev')."""
    sums: dict[str, dict[str, dict[dt.datetime, float]]] = defaultdict(lambda: defaultdict(lambda: defaultdict(float)))
    for time_point, asset, power_kw, _soc in console.store.plan_points(plan["id"]):
        info = assets.get(asset)
        if info is None or not start <= time_point < end:
            continue
        kind = "ev" if info.kind in ("vehicle", "charger") else info.kind
        sums[info.site][kind][time_point] += power_kw
    return {
        site: {
            kind: [[iso(t, console.zone), round(v, 3)] for t, v in sorted(values.items())]
            for kind, values in kinds.items()
        }
        for site, kinds in sums.items()
    }


def _measured(console: Console, assets, start, now) -> dict:
    """Per site and kind: measured [time, kW] in 5-minute means (chargers stand for their vehicles)."""
    devices = [a.id for a in assets.values() if a.kind in ("grid", "pv", "load", "battery", "charger")]
    series = bucketed_series(
        console.extras, console.store, devices, "power_kw", start, now + dt.timedelta(seconds=1), MEASURED_BUCKET_S
    )
    sums: dict[str, dict[str, dict[dt.datetime, float]]] = defaultdict(lambda: defaultdict(lambda: defaultdict(float)))
    for device, values in series.items():
        info = assets[device]
        kind = "ev" if info.kind == "charger" else info.kind
        for time_point, value in values:
            sums[info.site][kind][time_point] += value
    return {
        site: {
            kind: [[iso(t, console.zone), round(v, 3)] for t, v in sorted(values.items())]
            for kind, values in kinds.items()
        }
        for site, kinds in sums.items()
    }


def _prices(console: Console, start: dt.datetime) -> dict[str, list]:
    """Per site: [slot start, import yen/kWh] over the window (the market's prices by date when
    configured, else the site's tariff). Cached a few minutes: a forecast may be behind it."""
    cache = console.extras.setdefault("schedule_prices", {})
    key = start.isoformat()
    hit = cache.get(key)
    if hit and time.monotonic() - hit[0] < PRICE_CACHE_S:
        return hit[1]
    days = [start.date() + dt.timedelta(days=n) for n in range(WINDOW_HOURS // 24)]
    by_date = None
    if console.portfolio.market is not None:
        import pandas as pd

        from ems.control.prices import live_day_prices

        found = live_day_prices(console.portfolio, pd.Timestamp(start), WINDOW_HOURS, console.store)
        by_date = found.import_yen_per_kwh if found is not None else None
    out = {}
    for site in console.portfolio.sites:
        tariff = console.portfolio.tariffs[site.tariff]
        rows = []
        for day in days:
            values = by_date.get(day) if by_date else None
            values = values or tariff.import_price_yen_per_kwh
            midnight = dt.datetime.combine(day, dt.time(0), console.zone)
            rows += [
                [iso(midnight + dt.timedelta(minutes=30 * n), console.zone), round(float(v), 3)]
                for n, v in enumerate(values)
            ]
        out[site.id] = rows
    cache.clear()
    cache[key] = (time.monotonic(), out)
    return out


def _dr_events(console: Console, zone) -> list[dict]:
    """Demand-response events the VEN accepted (``[openadr] events_dir``), as bands."""
    if console.portfolio.openadr is None:
        return []
    from ems.control.ven import read_accepted

    events = []
    for event_id, record in sorted(read_accepted(Path(console.portfolio.openadr.events_dir)).items()):
        steps = record.get("steps") or []
        if not steps:
            continue
        first = dt.datetime.fromisoformat(steps[0]["start"])
        last = dt.datetime.fromisoformat(steps[-1]["start"]) + dt.timedelta(minutes=steps[-1]["minutes"])
        events.append(
            {
                "id": event_id,
                "direction": record["direction"],
                "sites": record["sites"],
                "start": iso(first, zone),
                "end": iso(last, zone),
                "requested_kw": max(s["requested_kw"] for s in steps),
            }
        )
    return events


def _storage(console: Console, assets, start, end, now) -> dict:
    """Each battery's state of charge [kWh]: measured (5-minute means) and as the day-ahead plans
    of the window's dates planned it (their ``schedule.csv``; intraday plans store no SoC)."""
    batteries = {a.id: a for a in assets.values() if a.kind == "battery"}
    series = bucketed_series(
        console.extras,
        console.store,
        list(batteries),
        "soc_fraction",
        start,
        now + dt.timedelta(seconds=1),
        MEASURED_BUCKET_S,
    )
    planned = _day_ahead_soc(Path(console.portfolio.control.day_ahead_dir), set(batteries), start, end)
    return {
        device: {
            "capacity_kwh": info.capacity_kwh,
            "measured": [
                [iso(t, console.zone), round(v * (info.capacity_kwh or 0), 2)] for t, v in series.get(device, [])
            ],
            "day_ahead": [[iso(t, console.zone), v] for t, v in planned.get(device, [])],
        }
        for device, info in sorted(batteries.items())
    }


def _day_ahead_soc(directory: Path, devices: set[str], start: dt.datetime, end: dt.datetime) -> dict[str, list]:
    found: dict[str, list] = defaultdict(list)
    day = start.date()
    while dt.datetime.combine(day, dt.time(0), start.tzinfo) < end:
        path = directory / day.isoformat() / "schedule.csv"
        day += dt.timedelta(days=1)
        if not path.is_file():
            continue
        with path.open(newline="") as handle:
            for row in csv.DictReader(handle):
                if row.get("asset") in devices and row.get("soc_kwh"):
                    time_point = dt.datetime.fromisoformat(row["time"])
                    if start <= time_point < end:
                        found[row["asset"]].append((time_point, round(float(row["soc_kwh"]), 2)))
    return found


def vehicles(console: Console, assets, now: dt.datetime) -> list[dict]:
    """Each vehicle: measured SoC, its home charger and whether it reports plugged in, its next
    departure and the energy it must hold then (from its duties), BCP reservation when active."""
    from ems.fleet.duties import plans_from_duties

    latest = latest_values(
        console.store,
        [v.id for v in console.portfolio.vehicles]
        + [v.home_charger for v in console.portfolio.vehicles if v.home_charger],
    )
    plans = plans_from_duties(console.portfolio, now, now + dt.timedelta(hours=WINDOW_HOURS))
    rows = []
    for vehicle in console.portfolio.vehicles:
        soc = latest.get(vehicle.id, {}).get("soc_fraction")
        charger = vehicle.home_charger
        # a charger reports a SoC only with a vehicle plugged in (its newest poll tells)
        plugged = "soc_fraction" in latest[charger] if charger is not None and charger in latest else None
        upcoming = [w for w in plans[vehicle.id].windows if w.plug_out > now]
        window = upcoming[0] if upcoming else None
        rows.append(
            {
                "vehicle": vehicle.id,
                "status": "plugged" if plugged else ("away" if plugged is False else "unknown"),
                "soc_kwh": None if soc is None or soc[1] is None else round(soc[1] * vehicle.battery_kwh, 1),
                "soc_fraction": None if soc is None else soc[1],
                "soc_quality": None if soc is None else soc[2],
                "soc_time": None if soc is None else iso(soc[0], console.zone),
                "battery_kwh": vehicle.battery_kwh,
                "charger": charger,
                "next_departure": iso(window.plug_out, console.zone) if window else None,
                "energy_needed_kwh": round(window.departure_energy_kwh, 1) if window else None,
                "reservation_kwh": None,
            }
        )
    return rows


def day_ahead_files(directory: Path, days: int = 7) -> list[dict]:
    """The newest day-ahead folders and their files (for download)."""
    if not directory.is_dir():
        return []
    folders = sorted((p for p in directory.iterdir() if p.is_dir()), reverse=True)[:days]
    return [
        {"date": folder.name, "files": sorted(f.name for f in folder.iterdir() if f.is_file())} for folder in folders
    ]


@router.get("/schedule.csv")
async def schedule_csv(request: Request, user: Viewer):
    """The last plan in the long form of ``schedule.csv`` (local times)."""
    state = console(request)
    text = await run_in_threadpool(_plan_csv, state)
    return Response(
        text,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="schedule.csv"'},
    )


def _plan_csv(state: Console) -> str:
    plan = state.store.last_plan()
    if plan is None:
        raise HTTPException(404, "no plan stored yet")
    assets = asset_index(state.portfolio)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["time", "site", "asset", "kind", "power_kw", "soc_kwh"])
    for time_point, asset, power_kw, soc_kwh in sorted(state.store.plan_points(plan["id"]), key=lambda r: (r[0], r[1])):
        info = assets.get(asset)
        writer.writerow(
            [
                iso(time_point, state.zone),
                info.site if info else "",
                asset,
                info.kind if info else "",
                f"{power_kw:.4f}",
                "" if soc_kwh is None else f"{soc_kwh:.4f}",
            ]
        )
    return out.getvalue()


@router.get("/files/day-ahead/{day}/{name}")
async def day_ahead_file(request: Request, day: str, name: str, user: Viewer):
    """One file of a day-ahead folder; nothing outside ``control.day_ahead_dir`` is reachable."""
    root = Path(console(request).portfolio.control.day_ahead_dir).resolve()
    try:
        dt.date.fromisoformat(day)
    except ValueError:
        raise HTTPException(404, "no such day") from None
    path = (root / day / name).resolve()
    if path.parent != root / day or not path.is_file():
        raise HTTPException(404, "no such file")
    return FileResponse(path, filename=name)
