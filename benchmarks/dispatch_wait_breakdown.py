"""Where a replay's rider waits come from: one replay instrumented at every batch.

For each rider, at the batch that first assigns it:

- ``batch_s``: the batch delay (batch time less request time);
- ``nearest_free_s``: the drive to its pickup from the nearest *free* taxi (no rider on board or
  promised, in service, not charging because low), the best an immediate dispatch could do;
- ``assigned_direct_s``: the drive from the taxi finally picking it up, from where that taxi was
  at the batch, straight to the pickup; ``choice_s`` = this less ``nearest_free_s``;
- ``queued_s``: the rest of the wait, i.e. the time that taxi spent on other riders (or waiting)
  before the pickup; ``busy``: whether that taxi had riders on board or promised at the batch;
- ``free_to_station_km``: the mean distance of the free taxis from their nearest station (the
  forecast's k-median, as the station rebalancer places them);
- ``free_median_s``: the drive from the nearest of ``n_free`` points of the k-median with
  k = the number of free taxis (the free taxis placed at the best points they could hold).

Run: ``PYTHONPATH=. .venv/bin/python -m benchmarks.dispatch_wait_breakdown [variant] [seed]``
(variant from ``benchmarks.dispatch_vs_hindsight.VARIANTS``; default the stations on 10 s batches).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.dispatch_vs_hindsight import VARIANTS
from dispatch.assign import Policy
from dispatch.demand import DemandModel
from dispatch.fleet import _station_points
from dispatch.model import Request
from dispatch.router import StraightLineRouter
from dispatch.simulate import Simulation, kpis


class InstrumentedSimulation(Simulation):
    """A replay that records, at each batch, what the fleet looked like to each new request."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.at_batch: dict[str, dict] = {}

    def _assign(
        self, arrived: list[Request], now: float, policy: Policy | None = None, movable: set[str] | None = None
    ) -> None:
        views = {v.spec.vehicle_id: self._view(v, now) for v in self.vehicles.values()}
        free = [vid for vid, v in self.vehicles.items() if not v.stops and views[vid].available]
        busy = {vid for vid, v in self.vehicles.items() if v.stops}
        positions = {vid: (v.position, max(v.ready_s, now)) for vid, v in self.vehicles.items()}
        stations: tuple = ()
        free_points: tuple = ()
        if self.forecast is not None:
            hotspots = tuple(self.forecast.hotspots(now))
            router: Any = self.router  # a router instance is hashable (the memo's key); its Protocol does not say so
            stations = _station_points(hotspots, len(self.setup.vehicles), router)[0]
            if free:
                free_points = _station_points(hotspots, len(free), router)[0]
        to_station = [min(self.router.leg(positions[v][0], s)[0] for s in stations) for v in free] if stations else []
        super()._assign(arrived, now, policy, movable)
        for request in arrived:
            origin = request.origin
            nearest = min(
                (positions[v][1] - now + self.router.leg(positions[v][0], origin)[1] for v in free),
                default=float("nan"),
            )
            median = min((self.router.leg(p, origin)[1] for p in free_points), default=float("nan"))
            self.at_batch[request.request_id] = {
                "time_s": request.time_s,
                "batch_s": now - request.time_s,
                "nearest_free_s": nearest,
                "free_median_s": median,
                "n_free": len(free),
                "busy_ids": busy,
                "positions": positions,
                "now": now,
                "free_to_station_km": float(np.mean(to_station)) if to_station else float("nan"),
            }


def breakdown(setup, log, settings, policy) -> dict:
    """The replay's KPIs and the mean of every part of the wait (see the module docstring)."""
    router = StraightLineRouter(settings.speed_kmh, settings.detour_factor)
    sim = InstrumentedSimulation(setup, log.requests, router, settings, policy, DemandModel(len(log.requests)))
    result = sim.run()
    rows = []
    for rider_id, record in result.riders.items():
        seen = sim.at_batch.get(rider_id)
        if seen is None or record.pickup_s is None:
            continue
        wait = record.pickup_s - record.request.time_s
        position, ready = seen["positions"][record.vehicle_id]
        direct = ready - seen["now"] + router.leg(position, record.request.origin)[1]
        rows.append(
            {
                "wait_s": wait,
                "batch_s": seen["batch_s"],
                "nearest_free_s": seen["nearest_free_s"],
                "assigned_direct_s": direct,
                "queued_s": wait - seen["batch_s"] - direct,
                "busy": record.vehicle_id in seen["busy_ids"],
                "n_free": seen["n_free"],
                "free_to_station_km": seen["free_to_station_km"],
                "free_median_s": seen["free_median_s"],
                "shared": record.shared,
            }
        )
    return {"kpis": kpis(result), "riders": rows, "summary": summarise(rows)}


def summarise(rows: list[dict]) -> dict:
    def mean(key, subset=None):
        values = [r[key] for r in (rows if subset is None else subset) if not np.isnan(r[key])]
        return float(np.mean(values)) if values else float("nan")

    with_free = [r for r in rows if r["n_free"] > 0]
    busy = [r for r in rows if r["busy"]]
    free = [r for r in rows if not r["busy"]]
    return {
        "riders": len(rows),
        "mean_wait_s": mean("wait_s"),
        "batch_s": mean("batch_s"),
        "assigned_direct_s": mean("assigned_direct_s"),
        "queued_s": mean("queued_s"),
        "nearest_free_s (riders with a free taxi)": mean("nearest_free_s", with_free),
        "choice_s (assigned direct - nearest free)": float(
            np.mean([r["assigned_direct_s"] - r["nearest_free_s"] for r in with_free])
        )
        if with_free
        else float("nan"),
        "riders_without_free_taxi": len(rows) - len(with_free),
        "mean_free_taxis": mean("n_free"),
        "free_to_station_km": mean("free_to_station_km"),
        "free_median_s": mean("free_median_s", with_free),
        "busy_assigned": len(busy),
        "busy_wait_s": mean("wait_s", busy),
        "busy_queued_s": mean("queued_s", busy),
        "busy_direct_s": mean("assigned_direct_s", busy),
        "busy_nearest_free_s": mean("nearest_free_s", busy),
        "free_assigned": len(free),
        "free_wait_s": mean("wait_s", free),
        "free_direct_s": mean("assigned_direct_s", free),
        "free_nearest_free_s": mean("nearest_free_s", free),
        "queued_share_of_wait": sum(r["queued_s"] for r in rows) / max(sum(r["wait_s"] for r in rows), 1e-9),
        "wait_over_180s": sum(r["wait_s"] > 180 for r in rows),
    }


def main(argv: list[str]) -> None:
    from benchmarks.bench_dispatch import CONFIG, _city_log
    from dispatch.fleet import fleet_from_portfolio
    from ems.config import load_portfolio

    variant = argv[0] if argv else "ilp-stations-batch10"
    seed = int(argv[1]) if len(argv) > 1 else 0
    portfolio = load_portfolio(CONFIG)
    out = Path("out/wait_breakdown")
    out.mkdir(parents=True, exist_ok=True)
    log = _city_log(out, portfolio, 200, seed)
    setup = fleet_from_portfolio(portfolio, log.clock.date)
    policy, changes = next((p, c) for name, p, c in VARIANTS if name == variant)
    found = breakdown(setup, log, portfolio.dispatch.model_copy(update=changes), policy)
    k = found["kpis"]
    print(variant, seed, f"km {k['vehicle_km']:.1f} wait {k['mean_wait_s']:.1f} served {k['served_share']:.3f}")
    print(json.dumps(found["summary"], indent=1))
    (out / f"{variant}_seed{seed}.json").write_text(json.dumps(found["riders"], indent=0))


if __name__ == "__main__":
    main(sys.argv[1:])
