"""The VEN's side in the energy manager: what an OpenADR event asks of the portfolio, whether the
flexibility can deliver it (opt in or out), the event file it becomes, and the accepted events
as demand-response terms of the live plan.

An event is read from its first signal:

* ``LOAD_DISPATCH`` / ``delta`` (kW): a negative payload asks to cut net import by that much
  ("down"), a positive one to absorb it ("up");
* ``LOAD_DISPATCH`` / ``setpoint`` (kW): a net import to stay below;
* ``SIMPLE`` / ``level``: level n asks to cut ``n * simple_level_kw``.

The VEN opts in when :func:`ems.optimise.flexibility.solve_flexibility` finds that the portfolio
can hold the requested change against its current plan (the reference) over every interval,
to ``opt_in_fraction`` of the request. An accepted event is written as an event file in
``[openadr].events_dir`` (the format of ``config/events``, docs/nightly.md) and registered in
``accepted.json`` there with the reference it was measured against, which the live plan keeps
as the event's baseline.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from drivers.openadr.ven import ReceivedEvent
from ems.config.schema import Portfolio
from ems.optimise.problem import DrEventSpec, TimeGrid

log = logging.getLogger(__name__)

ACCEPTED_FILE = "accepted.json"
SIMPLE_LEVEL_KW = 10.0


@dataclass(frozen=True)
class Request:
    """What an event asks, per interval: direction, kW below/above the reference (or a target)."""

    direction: Literal["down", "up"]
    sites: tuple[str, ...]
    starts: tuple[pd.Timestamp, ...]
    minutes: tuple[int, ...]
    requested_kw: tuple[float | None, ...]
    target_kw: tuple[float | None, ...]
    problem: str = ""  # why the event cannot be taken part in at all; empty when it can


def read_request(event: ReceivedEvent, portfolio: Portfolio) -> Request:
    settings = portfolio.openadr
    known = tuple(s.id for s in portfolio.sites)
    sites = tuple(r for r in event.resource_ids if r in known) or (
        settings.sites if settings and settings.sites else known
    )
    unknown = [r for r in event.resource_ids if r not in known]
    starts = tuple(pd.Timestamp(i.start) for i in event.intervals)
    minutes = tuple(int(i.duration.total_seconds() // 60) for i in event.intervals)
    payloads = [i.payload for i in event.intervals]
    name, kind = event.signal_name.upper(), event.signal_type
    problem = ""
    requested: list[float | None] = [None] * len(payloads)
    target: list[float | None] = [None] * len(payloads)
    direction: Literal["down", "up"] = "down"
    if unknown:
        problem = f"targets unknown resources {unknown} (sites: {list(known)})"
    elif name == "LOAD_DISPATCH" and kind == "delta":
        direction = "down" if min(payloads) < 0 else "up"
        requested = [abs(p) for p in payloads]
        if any((p < 0) != (direction == "down") for p in payloads if p != 0):
            problem = "mixes cuts and absorption in one event"
    elif name == "LOAD_DISPATCH" and kind == "setpoint":
        target = list(payloads)
    elif name == "SIMPLE" and kind == "level":
        requested = [p * SIMPLE_LEVEL_KW for p in payloads]
    else:
        problem = f"signal {event.signal_name}/{event.signal_type} is not one this VEN can act on"
    step = portfolio.planning.step_minutes
    if not problem and (
        any(m % step for m in minutes) or any((s.minute * 60 + s.second) % (step * 60) for s in starts)
    ):
        problem = f"intervals are not on the plan's {step}-minute steps"
    return Request(direction, sites, starts, minutes, tuple(requested), tuple(target), problem)


def interval_steps(request: Request, grid: TimeGrid) -> list[np.ndarray]:
    """Per interval, the positions of the grid's steps it covers."""
    out = []
    for start, minutes in zip(request.starts, request.minutes):
        end = start + pd.Timedelta(minutes=minutes)
        out.append(np.flatnonzero((grid.index >= start) & (grid.index < end)))
    return out


def request_kw(request: Request, reference_kw: np.ndarray, steps: list[np.ndarray]) -> np.ndarray:
    """Power asked per step [kW] (a setpoint becomes its distance below the reference)."""
    asked = np.zeros(len(reference_kw))
    for k, positions in enumerate(steps):
        if request.requested_kw[k] is not None:
            asked[positions] = request.requested_kw[k]
        else:
            asked[positions] = np.clip(reference_kw[positions] - request.target_kw[k], 0, None)
    return asked


def event_file_text(
    event: ReceivedEvent, request: Request, price_yen_per_kwh: float, penalty_yen_per_kwh: float, asked_kw: list[float]
) -> str:
    """The event in the project's event-file format (docs/nightly.md), with its ISO start."""
    lines = [
        f"# Received over OpenADR 2.0b from the VTN at {event.received.isoformat()}; opted in.",
        "",
        "[event]",
        f'event_id = "{_safe_id(event.event_id)}"',
        f"modification_number = {event.modification_number}",
        f"market_context = {json.dumps(event.market_context)}",
        f'direction = "{request.direction}"',
        f"price_yen_per_kwh = {price_yen_per_kwh!r}",
        f"penalty_yen_per_kwh = {penalty_yen_per_kwh!r}",
        "",
        "[active_period]",
        f'start = "{request.starts[0].isoformat()}"',
        f"duration_minutes = {sum(request.minutes)}",
    ]
    for uid, (minutes, kw) in enumerate(zip(request.minutes, asked_kw)):
        lines += [
            "",
            "[[signal.intervals]]",
            f"uid = {uid}",
            f"duration_minutes = {minutes}",
            f"requested_kw = {round(kw, 3)!r}",
        ]
    lines += ["", "[targets]", "site_ids = [" + ", ".join(f'"{s}"' for s in request.sites) + "]", ""]
    return "\n".join(lines)


def _safe_id(event_id: str) -> str:
    cleaned = "".join(c if c.isalnum() or c in "_.-" else "-" for c in event_id)
    return cleaned if cleaned[:1].isalnum() else f"e{cleaned}"


# --- the accepted registry, read by the live plan ---------------------------------------------------


def record_accepted(
    events_dir: Path,
    event: ReceivedEvent,
    request: Request,
    reference_kw: np.ndarray,
    asked_kw: np.ndarray,
    grid: TimeGrid,
    price: float,
    penalty: float,
) -> Path:
    """Write the event file and add the event to ``accepted.json``; returns the event file."""
    events_dir.mkdir(parents=True, exist_ok=True)
    path = events_dir / f"{_safe_id(event.event_id)}.toml"
    steps = interval_steps(request, grid)
    per_interval = [float(asked_kw[s].mean()) if len(s) else 0.0 for s in steps]
    path.write_text(event_file_text(event, request, price, penalty, per_interval), encoding="utf-8")
    registry = read_accepted(events_dir)
    active = np.concatenate(steps) if steps else np.array([], dtype=int)
    registry[_safe_id(event.event_id)] = {
        "direction": request.direction,
        "sites": list(request.sites),
        "price_yen_per_kwh": price,
        "penalty_yen_per_kwh": penalty,
        "modification_number": event.modification_number,
        "steps": [
            {
                "start": grid.index[t].isoformat(),
                "minutes": grid.step_minutes,
                "baseline_kw": round(float(reference_kw[t]), 3),
                "requested_kw": round(float(asked_kw[t]), 3),
            }
            for t in sorted(active)
        ],
    }
    _write_registry(events_dir, registry)
    return path


def withdraw(events_dir: Path, event_id: str) -> bool:
    """Forget an event (cancelled, or opted out of after a modification); True if it was there."""
    registry = read_accepted(events_dir)
    key = _safe_id(event_id)
    if key not in registry:
        return False
    del registry[key]
    _write_registry(events_dir, registry)
    (events_dir / f"{key}.toml").unlink(missing_ok=True)
    return True


def _write_registry(events_dir: Path, registry: dict) -> None:
    temporary = events_dir / f".{ACCEPTED_FILE}.tmp"
    temporary.write_text(json.dumps(registry, indent=1), encoding="utf-8")
    temporary.replace(events_dir / ACCEPTED_FILE)  # a reader never sees half a file


def read_accepted(events_dir: Path) -> dict:
    path = Path(events_dir) / ACCEPTED_FILE
    if not path.exists():
        return {}
    return json.loads(path.read_text(encoding="utf-8"))


def accepted_dr_specs(events_dir: Path, grid: TimeGrid) -> tuple[DrEventSpec, ...]:
    """The accepted events' steps on ``grid`` as DR terms (each run of equal request one term)."""
    specs = []
    for event_id, record in sorted(read_accepted(events_dir).items()):
        baseline = np.zeros(grid.steps)
        asked = np.zeros(grid.steps)
        for step in record["steps"]:
            begin = pd.Timestamp(step["start"])
            mask = np.asarray((grid.index >= begin) & (grid.index < begin + pd.Timedelta(minutes=step["minutes"])))
            baseline[mask], asked[mask] = step["baseline_kw"], step["requested_kw"]
        t = 0
        while t < grid.steps:
            if asked[t] <= 0:
                t += 1
                continue
            end = t
            while end < grid.steps and asked[end] == asked[t]:
                end += 1
            active = np.zeros(grid.steps, dtype=bool)
            active[t:end] = True
            specs.append(
                DrEventSpec(
                    id=f"{event_id}/{t}",
                    direction=record["direction"],
                    sites=tuple(record["sites"]),
                    active=active,
                    baseline_kw=baseline.copy(),
                    requested_kw=float(asked[t]),
                    price_yen_per_kwh=record["price_yen_per_kwh"],
                    penalty_yen_per_kwh=record["penalty_yen_per_kwh"],
                )
            )
            t = end
    return tuple(specs)


def event_files_on(events_dir: Path, day: dt.date, timezone: str) -> list[Path]:
    """Accepted event files whose start falls on ``day`` (local), for the nightly simulation."""
    out = []
    for event_id, record in sorted(read_accepted(events_dir).items()):
        if record["steps"] and pd.Timestamp(record["steps"][0]["start"]).tz_convert(timezone).date() == day:
            path = Path(events_dir) / f"{event_id}.toml"
            if path.exists():
                out.append(path)
    return out


def horizon_hours_for(start: pd.Timestamp, request: Request) -> int:
    end = request.starts[-1] + pd.Timedelta(minutes=request.minutes[-1])
    return max(24, math.ceil((end - start) / pd.Timedelta(hours=1)) + 1)
