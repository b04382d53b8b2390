"""``city.json`` and ``report.html`` of a city day, read from what the processes left behind:
the controller's store (``ems.sqlite``), the twin's record (``twin/``), the rider and fleet
messages heard on the broker (``bus.jsonl``). Definitions: docs/city.md.
"""

from __future__ import annotations

import datetime as dt
import html
import json
import sqlite3
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

FIRST_KWH = 1.0  # a shelter is "fed" once its V2H points have delivered this much since the switch
FEEDING_KW = 0.1  # a V2H point delivers more than this: the shelter is being fed


def _store_frame(path: Path, sql: str, params: tuple = ()) -> pd.DataFrame:
    if not path.exists():
        return pd.DataFrame()
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
        return pd.read_sql_query(sql, db, params=params)


def _bus(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def riders(bus: list[dict], requests: dict[str, pd.Timestamp]) -> dict:
    """Served share, waits and shared rides from the riders' status messages; ``requests`` are
    the request times of the log's requests that fell inside the run."""
    status: dict[str, dict] = {}
    for message in bus:
        topic, body = message["topic"], message["payload"] or {}
        if topic.startswith("rides/") and topic.endswith("/status") and isinstance(body, dict):
            status.setdefault(topic.split("/")[1], {})[str(body.get("status"))] = body
    waits = []
    on_board: dict[str, list[tuple[pd.Timestamp, pd.Timestamp, str]]] = {}
    for rider, states in status.items():
        picked, dropped = states.get("picked_up"), states.get("dropped_off")
        if picked is not None and rider in requests and "time" in picked:
            waits.append((pd.Timestamp(picked["time"]) - requests[rider]).total_seconds())
        if picked is not None and dropped is not None and picked.get("vehicle_id"):
            on_board.setdefault(picked["vehicle_id"], []).append(
                (pd.Timestamp(picked["time"]), pd.Timestamp(dropped["time"]), rider)
            )
    shared_riders: set[str] = set()  # riders on board together with another rider at some moment
    for rides in on_board.values():
        for a in rides:
            for b in rides:
                if a[2] != b[2] and a[0] < b[1] and b[0] < a[1]:
                    shared_riders.add(a[2])
    served = sum("dropped_off" in s for s in status.values())
    total = len(requests)
    shared = len(shared_riders)
    return {
        "requests": total,
        "accepted": sum("accepted" in s for s in status.values()),
        "rejected": sum("rejected" in s for s in status.values()),
        "served": served,
        "served_share": served / total if total else 0.0,
        "mean_wait_s": float(np.mean(waits)) if waits else None,
        "p95_wait_s": float(np.percentile(waits, 95)) if waits else None,
        "shared_rides": shared,
    }


def _integrate_kwh(series: pd.DataFrame) -> float:
    """Energy of a (time, value kW) series, left rectangles between readings."""
    if len(series) < 2:
        return 0.0
    hours = series["time"].diff().dt.total_seconds().shift(-1).fillna(0) / 3600.0
    return float((series["value"] * hours).sum())


def energy(portfolio, store: Path, start: dt.datetime, end: dt.datetime) -> dict:
    """Grid import, cost and CO2 of the run from the grid meters the controller stored."""
    grids = {g.id: g for g in portfolio.grid_connections}
    site_tariff = {s.id: s.tariff for s in portfolio.sites}
    frame = _store_frame(
        store,
        "SELECT time_ms, device, value FROM telemetry WHERE quantity='power_kw' AND quality='good' "
        "AND time_ms >= ? AND time_ms <= ?",
        (int(start.timestamp() * 1000), int(end.timestamp() * 1000)),
    )
    zone = ZoneInfo(portfolio.portfolio.timezone)
    if frame.empty:
        return {"import_kwh": 0.0, "export_kwh": 0.0, "cost_yen": 0.0, "co2_kg": 0.0, "import_peak_kw": None}
    frame["time"] = pd.to_datetime(frame["time_ms"], unit="ms", utc=True)
    grid = frame[frame["device"].isin(grids)].copy()
    cost = co2 = imported = exported = 0.0
    for device, rows in grid.groupby("device"):
        rows = rows.sort_values("time")
        tariff = portfolio.tariffs[site_tariff[grids[device].site]]
        hours = rows["time"].diff().dt.total_seconds().shift(-1).fillna(0) / 3600.0
        slots = rows["time"].dt.tz_convert(zone).map(lambda t: (t.hour * 60 + t.minute) // 30)
        imports = rows["value"].clip(lower=0) * hours
        exports = (-rows["value"]).clip(lower=0) * hours
        imported += float(imports.sum())
        exported += float(exports.sum())
        buy = slots.map(dict(enumerate(tariff.import_price_yen_per_kwh)))
        sell = slots.map(dict(enumerate(tariff.export_price_yen_per_kwh)))
        factor = slots.map(dict(enumerate(tariff.co2_kg_per_kwh)))
        cost += float((imports * buy).sum() - (exports * sell).sum())
        co2 += float((imports * factor).sum())
    # the portfolio's import at each poll: readings of one poll share a time to the second
    grid["second"] = grid["time"].dt.floor("s")
    total = grid.groupby("second")["value"].sum()
    return {
        "import_kwh": imported,
        "export_kwh": exported,
        "cost_yen": cost,
        "co2_kg": co2,
        "import_peak_kw": float(total.max()) if len(total) else None,
    }


def chargers(twin_dir: Path, bcp_at: dt.datetime | None, portfolio) -> tuple[dict, dict]:
    """Charging energy by site, V2H energy to shelters, and after the BCP switch the time to the
    first kWh and the hours fed at each shelter (from the twin's own record)."""
    path = twin_dir / "twin_chargers.csv"
    if not path.exists():
        return {}, {}
    frame = pd.read_csv(path).drop_duplicates(["time", "charger"], keep="last")
    frame["time"] = pd.to_datetime(frame["time"], utc=True)
    last = frame.sort_values("time").groupby("charger").last()
    charging = last.groupby("site")["charged_kwh"].sum().round(3).to_dict()
    v2h = last[last["v2h"] == 1].groupby("site")["discharged_kwh"].sum().round(3).to_dict()
    bcp: dict = {}
    if bcp_at is not None:
        shelters = {s.site: s.id for s in portfolio.shelters}
        at = pd.Timestamp(bcp_at).tz_convert("UTC")
        for site in sorted(shelters):
            rows = frame[(frame["site"] == site) & (frame["v2h"] == 1)]
            if rows.empty:
                continue
            by_time = (
                rows.groupby("time").agg(delivered=("discharged_kwh", "sum"), power=("power_kw", "sum")).sort_index()
            )
            before = by_time[by_time.index <= at]["delivered"]
            base = float(before.iloc[-1]) if len(before) else 0.0
            after = by_time[by_time.index > at]
            fed = after[after["delivered"] - base >= FIRST_KWH]
            step_h = after.index.to_series().diff().dt.total_seconds().fillna(0) / 3600.0
            bcp[shelters[site]] = {
                "site": site,
                "first_kwh_after_min": round((fed.index[0] - at).total_seconds() / 60.0, 1) if len(fed) else None,
                "delivered_kwh": round(float(after["delivered"].iloc[-1] - base), 3) if len(after) else 0.0,
                "hours_fed": round(float(step_h[after["power"] > FEEDING_KW].sum()), 2),
            }
    return {"charging_kwh_by_site": charging, "v2h_kwh_to_shelters": v2h}, bcp


def shelter_calls(bus: list[dict], twin_dir: Path, portfolio) -> list[dict]:
    """The taxis the energy manager called to shelters (``ems/reservations``), when from; when
    the dispatcher first planned each to arrive (the shelter stop's ``eta`` in its first plan
    with one); and when each plugged into a V2H point of its shelter (the twin's record)."""
    calls: dict[tuple[str, str], str] = {}
    planned: dict[str, str] = {}
    for message in bus:
        body = message["payload"]
        if message["topic"] == "ems/reservations" and isinstance(body, dict):
            for call in body.get("shelter_calls", ()):
                calls.setdefault((call["vehicle_id"], call["shelter_id"]), call["from_time"])
        elif message["topic"].startswith("fleet/") and isinstance(body, dict):
            stop = next((s for s in body.get("route", ()) if s.get("kind") == "shelter"), None)
            if stop is not None:
                planned.setdefault(str(body.get("vehicle_id")), stop["eta"])
    path = twin_dir / "twin_vehicles.csv"
    record = pd.read_csv(path, parse_dates=["time"]) if path.exists() else pd.DataFrame()
    path = twin_dir / "twin_chargers.csv"
    charger_record = pd.read_csv(path, parse_dates=["time"]) if path.exists() else pd.DataFrame()
    points = {s.id: set(s.v2h_points) for s in portfolio.shelters}
    out = []
    for (vehicle, shelter), from_time in sorted(calls.items()):
        arrived = None
        if not record.empty:
            rows = record[(record["vehicle"] == vehicle) & record["charger_id"].isin(points.get(shelter, set()))]
            arrived = rows["time"].min() if len(rows) else None
        feeding = _feeding_from(charger_record, vehicle, points.get(shelter, set()), arrived)
        out.append(
            {
                "vehicle": vehicle,
                "shelter": shelter,
                "from_time": from_time,
                "planned_arrival": planned.get(vehicle),
                "plugged_at": arrived.isoformat() if arrived is not None else None,
                "plugged_after_call_min": _minutes(arrived, from_time),
                "plugged_after_planned_arrival_min": _minutes(arrived, planned.get(vehicle)),
                "feeding_from": feeding.isoformat() if feeding is not None else None,
                "feeding_after_planned_arrival_min": _minutes(feeding, planned.get(vehicle)),
            }
        )
    return out


def _feeding_from(record: pd.DataFrame, vehicle: str, points: set[str], plugged_at) -> pd.Timestamp | None:
    """The first time the twin's charger record shows the vehicle delivering (more than
    ``FEEDING_KW``, its counter rising) at one of its shelter's V2H points, once plugged in
    there. The record has a row a simulated minute, so this is at most a minute after the flow
    began."""
    if record.empty or plugged_at is None:
        return None
    starts = []
    at_points = record[record["charger"].isin(points)].drop_duplicates(["time", "charger"], keep="last")
    for _charger, rows in at_points.sort_values("time").groupby("charger"):
        gained = rows["discharged_kwh"].diff()
        fed = rows[
            (rows["vehicle"] == vehicle) & (rows["time"] >= plugged_at) & (rows["power_kw"] > FEEDING_KW) & (gained > 0)
        ]
        if len(fed):
            starts.append(pd.Timestamp(fed["time"].iloc[0]))
    return min(starts) if starts else None


def _minutes(later, earlier) -> float | None:
    if later is None or earlier is None:
        return None
    return round((pd.Timestamp(later) - pd.Timestamp(earlier)).total_seconds() / 60.0, 1)


def fleet_soc(portfolio, store: Path, twin_dir: Path) -> dict:
    """Each taxi's last SoC the controller stored against the twin's own value at that moment."""
    batteries = {v.id: v.battery_kwh for v in portfolio.vehicles}
    stored = _store_frame(
        store, "SELECT device, time_ms, value FROM telemetry WHERE quantity='soc_fraction' AND quality='good'"
    )
    path = twin_dir / "twin_vehicles.csv"
    if stored.empty or not path.exists():
        return {"vehicles": {}, "largest_difference_kwh": None}
    twin = pd.read_csv(path)
    twin["time"] = pd.to_datetime(twin["time"], utc=True)
    out = {}
    for vehicle, rows in stored[stored["device"].isin(batteries)].groupby("device"):
        row = rows.sort_values("time_ms").iloc[-1]
        when = pd.Timestamp(int(row["time_ms"]), unit="ms", tz="UTC")
        own = twin[twin["vehicle"] == vehicle].set_index("time")["soc_kwh"].sort_index()
        if own.empty:
            continue
        seconds = (own.index - own.index[0]).total_seconds()
        twin_kwh = float(np.interp((when - own.index[0]).total_seconds(), seconds, own.values))
        stored_kwh = float(row["value"]) * batteries[vehicle]
        out[vehicle] = {
            "time": when.isoformat(),
            "stored_kwh": round(stored_kwh, 3),
            "twin_kwh": round(twin_kwh, 3),
            "difference_kwh": round(abs(stored_kwh - twin_kwh), 3),
        }
    largest = max((v["difference_kwh"] for v in out.values()), default=None)
    return {"vehicles": out, "largest_difference_kwh": largest}


def replans(store: Path) -> dict:
    plans = _store_frame(store, "SELECT created_ms, kind, status, summary FROM plans ORDER BY created_ms")
    if plans.empty:
        return {"count": 0, "solve_s_mean": None, "solve_s_max": None, "statuses": {}}
    solve = [json.loads(s).get("solve_s") for s in plans["summary"]]
    solve = [float(s) for s in solve if s is not None]
    return {
        "count": len(plans),
        "solve_s_mean": float(np.mean(solve)) if solve else None,
        "solve_s_max": float(np.max(solve)) if solve else None,
        "statuses": plans["status"].value_counts().to_dict(),
    }


def vehicle_km(twin_dir: Path) -> float | None:
    path = twin_dir / "twin_final.json"
    if not path.exists():
        return None
    return round(sum(v["odometer_km"] for v in json.loads(path.read_text())["vehicles"].values()), 3)


def build_report(
    prepared, options, out: Path, exit_codes: dict, activation: dict | None, usage: dict | None = None
) -> dict:
    portfolio = prepared.portfolio
    store, twin_dir = out / "ems.sqlite", out / "twin"
    bus = _bus(out / "bus.jsonl")
    log = pd.read_csv(options.requests, usecols=["request_id", "time"])
    times = pd.to_datetime(log["time"], utc=False).map(pd.Timestamp)
    inside = {str(r): t for r, t in zip(log["request_id"], times) if prepared.start <= t < prepared.end}
    charging, bcp = chargers(twin_dir, prepared.bcp_at, portfolio)
    summary = {
        "run": {
            "start": prepared.start.isoformat(),
            "end": prepared.end.isoformat(),
            "speed": options.speed,
            "requests_file": str(options.requests),
            "exit_codes": exit_codes,
            "processes": usage or {},
        },
        "riders": {**riders(bus, inside), "vehicle_km": vehicle_km(twin_dir)},
        "energy": {**energy(portfolio, store, prepared.start, prepared.end), **charging},
        "fleet_soc": fleet_soc(portfolio, store, twin_dir),
        "replans": replans(store),
    }
    kpis = out / "dispatcher" / "kpis.json"
    if kpis.exists():  # the dispatcher's own figures of the riders it received (the replay's definitions)
        summary["dispatcher_kpis"] = json.loads(kpis.read_text())
    if prepared.bcp_at is not None:
        summary["bcp"] = {
            "switched_at": prepared.bcp_at.isoformat(),
            "activation": activation,
            "replan_minutes": portfolio.control.replan_minutes,
            "shelter_calls": shelter_calls(bus, twin_dir, portfolio),
            "shelters": bcp,
        }
    (out / "city.json").write_text(json.dumps(summary, indent=1, default=str))
    (out / "report.html").write_text(render_html(summary, twin_dir), encoding="utf-8")
    return summary


def _soc_chart(twin_dir: Path) -> str:
    path = twin_dir / "twin_vehicles.csv"
    if not path.exists():
        return "<p>no twin record</p>"
    import matplotlib

    matplotlib.use("Agg")
    import base64
    import io

    import matplotlib.pyplot as plt

    frame = pd.read_csv(path, parse_dates=["time"])
    figure, axis = plt.subplots(figsize=(9, 3.5))
    for vehicle, rows in frame.groupby("vehicle"):
        axis.plot(rows["time"], rows["soc_kwh"], label=vehicle, linewidth=1)
    axis.set_ylabel("SoC [kWh]")
    axis.legend(fontsize=6, ncol=6)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    plt.close(figure)
    return f'<img alt="taxis SoC" src="data:image/png;base64,{base64.b64encode(buffer.getvalue()).decode()}">'


def _charging_chart(twin_dir: Path, bcp_at: str | None) -> str:
    """Charger power by site through the day (negative: into the taxis, positive: out of them)."""
    path = twin_dir / "twin_chargers.csv"
    if not path.exists():
        return "<p>no twin record</p>"
    import base64
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    frame = pd.read_csv(path, parse_dates=["time"]).drop_duplicates(["time", "charger"], keep="last")
    by_site = frame.groupby(["time", "site"])["power_kw"].sum().unstack("site").fillna(0.0)
    figure, axis = plt.subplots(figsize=(9, 3))
    for site in by_site.columns:
        axis.plot(by_site.index, by_site[site], label=site, linewidth=1)
    if bcp_at:
        axis.axvline(pd.Timestamp(bcp_at), color="red", linestyle="--", label="BCP switch")
    axis.set_ylabel("charger power [kW]\n(+ out of the taxis)")
    axis.legend(fontsize=7)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    plt.close(figure)
    return f'<img alt="charging by site" src="data:image/png;base64,{base64.b64encode(buffer.getvalue()).decode()}">'


def _table(rows: dict) -> str:
    cells = "".join(f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(_fmt(v))}</td></tr>" for k, v in rows.items())
    return f"<table>{cells}</table>"


def _fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:,.2f}"
    if isinstance(value, dict):
        return ", ".join(f"{k}: {_fmt(v)}" for k, v in value.items()) or "-"
    return "-" if value is None else str(value)


def render_html(summary: dict, twin_dir: Path) -> str:
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>City day</title>",
        "<style>body{font-family:sans-serif;max-width:960px;margin:auto}th{text-align:left;padding-right:1em}</style></head><body>",
        f"<h1>City day {html.escape(summary['run']['start'])} to {html.escape(summary['run']['end'])}</h1>",
        "<h2>Riders</h2>",
        _table(summary["riders"]),
        "<h2>Taxis' state of charge (the twin's record)</h2>",
        _soc_chart(twin_dir),
        "<h2>Energy</h2>",
        _table(summary["energy"]),
        "<h3>Charging at the depot and V2H at the shelters (the twin's chargers)</h3>",
        _charging_chart(twin_dir, summary.get("bcp", {}).get("switched_at")),
        "<h2>Fleet SoC: stored by the energy manager against the twin</h2>",
        _table({"largest difference [kWh]": summary["fleet_soc"]["largest_difference_kwh"]}),
        _table(
            {
                v: f"stored {x['stored_kwh']} kWh, twin {x['twin_kwh']} kWh"
                for v, x in summary["fleet_soc"]["vehicles"].items()
            }
        ),
        "<h2>Re-plans</h2>",
        _table(summary["replans"]),
    ]
    if "bcp" in summary:
        calls = {
            f"{c['vehicle']} to {c['shelter']}": f"called from {c['from_time']}, "
            f"planned to arrive {c['planned_arrival'] or '-'}, "
            f"plugged in {c['plugged_at'] or 'not yet'}"
            for c in summary["bcp"]["shelter_calls"]
        }
        parts += [
            "<h2>BCP switch</h2>",
            _table({"switched at": summary["bcp"]["switched_at"]}),
            _table(calls),
            _table({k: v for k, v in summary["bcp"]["shelters"].items()}),
        ]
        timing = {
            f"{c['vehicle']} to {c['shelter']}": f"plugged in {_fmt(c['plugged_after_planned_arrival_min'])} min "
            f"and feeding {_fmt(c.get('feeding_after_planned_arrival_min'))} min after its planned arrival"
            for c in summary["bcp"]["shelter_calls"]
        }
        called = {c["shelter"] for c in summary["bcp"]["shelter_calls"]}
        timing |= {
            shelter: "no taxi called to it by the BCP plan"
            for shelter in summary["bcp"]["shelters"]
            if shelter not in called
        }
        parts += ["<h3>Called taxis: from the planned arrival to feeding the shelter</h3>", _table(timing)]
    processes = summary["run"]["processes"]
    parts += [
        "<h2>Processes</h2>",
        _table(
            {
                name: f"exit {code}; CPU {_fmt(processes.get(name, {}))}"
                for name, code in summary["run"]["exit_codes"].items()
            }
        ),
        "</body></html>",
    ]
    return "\n".join(parts)
