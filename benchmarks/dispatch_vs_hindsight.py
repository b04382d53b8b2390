"""The dispatcher against the hindsight plan (part (c) of ``bench_dispatch``).

Rows (``name``, ``metric``, ``value``, ``unit``) for out/bench.json, and a printed table of the
ratios. See docs/dispatch.md, "Against the hindsight plan".
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from benchmarks.dispatch_hindsight import Fleet, placement_bound, solve_hindsight, solve_pdp_relaxed
from dispatch.assign import Policy
from dispatch.demand import DemandModel
from dispatch.fleet import SHIFT_OVERRUN_S, fleet_from_portfolio
from dispatch.router import StraightLineRouter
from dispatch.simulate import Simulation, kpis
from ems.config import load_portfolio

# the rolling re-optimisation: every 30 s the riders not yet picked up are re-assigned (ILP) and a
# local search (relocate, exchange) moves them while the batch objective falls (dispatch/reoptimise.py)
REOPTIMISE: dict[str, float | str] = {"reoptimise": True, "reoptimise_interval_s": 30.0}
# the batch objective priced as the KPI targets price km against wait: 1.25 x the hindsight km per
# rider (4.8 km, 576 s of driving) against a 90 s mean wait, so a second of wait is worth 6.4 s of driving
KPI_WAIT_WEIGHT = 6.4

# station rebalancing on 10 s batches, stations priced on the next 450 s of demand
STATIONS_BATCH10: dict[str, float | str] = {
    "rebalance_method": "stations",
    "batch_interval_s": 10.0,
    "rebalance_window_s": 450.0,
}
# one idle taxi per station (a second one at a station moves on), repositioning from the drop-off on
ONE_PER_STATION: dict[str, float | str | bool] = {
    **STATIONS_BATCH10,
    "one_vehicle_per_station": True,
    "idle_rebalance_s": 0.0,
}
# one idle taxi per station, as many stations as free taxis (greedy k-median, nested in k)
FREE_STATIONS: dict[str, float | str | bool] = {
    **STATIONS_BATCH10,
    "one_vehicle_per_station": True,
    "station_count": "free",
}
# dispatcher variants tried on the reference log: (name, policy, settings changes)
VARIANTS: tuple[tuple[str, Policy, dict[str, float | str | bool]], ...] = (
    ("ilp", Policy.ILP, {}),
    ("ilp-horizon900", Policy.ILP, {"rebalance_horizon_s": 900.0}),
    ("ilp-horizon450", Policy.ILP, {"rebalance_horizon_s": 450.0}),
    ("ilp-batch10", Policy.ILP, {"batch_interval_s": 10.0}),
    ("ilp-batch10-horizon900", Policy.ILP, {"batch_interval_s": 10.0, "rebalance_horizon_s": 900.0}),
    ("ilp-to-depot", Policy.ILP, {"rebalance": False}),
    ("ilp-stay", Policy.ILP, {"idle_rebalance_s": 86400.0}),  # idle taxis wait where they are
    ("ilp-transport", Policy.ILP, {"rebalance_method": "transport"}),
    ("ilp-stations", Policy.ILP, {"rebalance_method": "stations"}),
    ("ilp-stations-batch10", Policy.ILP, STATIONS_BATCH10),
    ("insertion", Policy.INSERTION, {}),
    ("no-pooling", Policy.NO_POOLING, {}),
    ("no-pooling-stations-batch10", Policy.NO_POOLING, STATIONS_BATCH10),
    ("ilp-batch10-reoptimise", Policy.ILP, {"batch_interval_s": 10.0, **REOPTIMISE}),
    ("ilp-stations-batch10-reoptimise", Policy.ILP, {**STATIONS_BATCH10, **REOPTIMISE}),
    ("ilp-batch10-kpi-price", Policy.ILP, {"batch_interval_s": 10.0, "wait_weight": KPI_WAIT_WEIGHT}),
    ("ilp-stations-batch10-kpi-price", Policy.ILP, {**STATIONS_BATCH10, "wait_weight": KPI_WAIT_WEIGHT}),
    ("ilp-stations-batch10-wait2", Policy.ILP, {**STATIONS_BATCH10, "wait_weight": 2.0}),
    ("ilp-stations-batch10-wait1", Policy.ILP, {**STATIONS_BATCH10, "wait_weight": 1.0}),
    ("no-pooling-stations-batch10-wait1", Policy.NO_POOLING, {**STATIONS_BATCH10, "wait_weight": 1.0}),
    ("ilp-one-per-station", Policy.ILP, ONE_PER_STATION),
    ("no-pooling-one-per-station", Policy.NO_POOLING, ONE_PER_STATION),
    ("ilp-free-stations", Policy.ILP, FREE_STATIONS),
    ("no-pooling-free-stations", Policy.NO_POOLING, FREE_STATIONS),
)
# pooled variant -> its own no-pooling run (the pooling saving)
POOLING_PAIRS = (
    ("ilp", "no-pooling"),
    ("ilp-stations-batch10", "no-pooling-stations-batch10"),
    ("ilp-stations-batch10-reoptimise", "no-pooling-stations-batch10"),
    ("ilp-stations-batch10-wait1", "no-pooling-stations-batch10-wait1"),
    ("ilp-one-per-station", "no-pooling-one-per-station"),
    ("ilp-free-stations", "no-pooling-free-stations"),
)
# variants replayed on seeds 0-3 and the 800-request log, per rider served
PER_RIDER_VARIANTS = (
    "ilp",
    "ilp-stations-batch10",
    "ilp-stations-batch10-reoptimise",
    "ilp-one-per-station",
    "ilp-free-stations",
)
# variants whose mean wait is taken apart (benchmarks/dispatch_wait_breakdown.py)
BREAKDOWN_VARIANTS = ("ilp-stations-batch10", "ilp-one-per-station", "ilp-free-stations")
WAIT_WINDOWS = (None, 300.0, 180.0)  # hindsight plans: the rider limit, then tighter waits


def _setting(config: Path):
    portfolio = load_portfolio(config)
    return portfolio, portfolio.dispatch


def _fleet(setup, size: int, seats: int) -> Fleet:
    start, end = (
        min(s for v in setup.vehicles for s, _ in v.shifts),
        max(e for v in setup.vehicles for _, e in v.shifts),
    )
    return Fleet(size, seats, setup.depot, start, end, end + SHIFT_OVERRUN_S)


def _replay(setup, log, settings, policy) -> dict:
    router = StraightLineRouter(settings.speed_kmh, settings.detour_factor)
    return kpis(Simulation(setup, log.requests, router, settings, policy, DemandModel(len(log.requests))).run())


def _row(name: str, metric: str, value: float, unit: str = "") -> dict:
    return {"name": name, "metric": metric, "value": float(value), "unit": unit}


def hindsight_rows(out_dir: Path, config: Path | None = None) -> list[dict]:
    from benchmarks.bench_dispatch import CONFIG, _city_log

    config = config or CONFIG
    runtime_s = float(os.environ.get("DISPATCH_HINDSIGHT_S", "30"))
    portfolio, settings = _setting(config)
    router = StraightLineRouter(settings.speed_kmh, settings.detour_factor)
    seats = max(v.seats for v in portfolio.vehicles)
    rows: list[dict] = []
    summary: dict[str, object] = {}  # hindsight_summary.json

    log = _city_log(out_dir, portfolio)
    setup = fleet_from_portfolio(portfolio, log.clock.date)
    fleet = _fleet(setup, len(setup.vehicles), seats)
    bound = placement_bound(log.requests, len(setup.vehicles), router, settings.batch_interval_s)
    rows += [
        _row("dispatch_bound_placement", "mean_km_to_nearest", bound["mean_km"], "km"),
        _row("dispatch_bound_placement", "mean_wait_s", bound["mean_wait_s"], "s"),
    ]
    plans = {}
    for window in WAIT_WINDOWS:
        plan = solve_hindsight(log.requests, fleet, router, settings, window, True, runtime_s)
        plans[window] = plan
        name = f"dispatch_hindsight_wait{int(plan.wait_window_s)}"
        rows += [
            _row(name, "vehicle_km", plan.vehicle_km, "km"),
            _row(name, "mean_wait_s", plan.mean_wait_s, "s"),
            _row(name, "served_share", plan.served_share, "share"),
            _row(name, "violations", len(plan.violations)),
            _row(name, "solver_feasible", plan.solver_feasible),
        ]
    alone = solve_hindsight(log.requests, fleet, router, settings, None, False, runtime_s)
    # pooling in hindsight when waits are bounded too: no-pooling plans on the tighter windows
    hindsight_saving: dict[str, tuple[float, float]] = {
        "600": (alone.vehicle_km, 1 - plans[None].vehicle_km / alone.vehicle_km)
    }
    for window in WAIT_WINDOWS[1:]:
        alone_w = solve_hindsight(log.requests, fleet, router, settings, window, False, runtime_s)
        name = f"dispatch_hindsight_wait{int(window)}"
        saving = 1 - plans[window].vehicle_km / alone_w.vehicle_km
        rows += [
            _row(name, "no_pooling_vehicle_km", alone_w.vehicle_km, "km"),
            _row(name, "pooling_saving", saving, "share"),
        ]
        hindsight_saving[str(int(window))] = (alone_w.vehicle_km, saving)
    relaxed = solve_pdp_relaxed(log.requests, fleet, router, settings, runtime_s)
    for name, plan in (("dispatch_hindsight_no_pooling", alone), ("dispatch_hindsight_pdp_no_ride_limit", relaxed)):
        rows += [
            _row(name, "vehicle_km", plan.vehicle_km, "km"),
            _row(name, "mean_wait_s", plan.mean_wait_s, "s"),
            _row(name, "violations", len(plan.violations)),
        ]
    reference = plans[None]
    rows.append(
        _row("dispatch_hindsight_wait600", "pooling_saving", 1 - reference.vehicle_km / alone.vehicle_km, "share")
    )
    summary["hindsight"] = {str(w): (p.vehicle_km, p.mean_wait_s, len(p.violations)) for w, p in plans.items()}
    summary["hindsight_pooling_saving"] = hindsight_saving
    summary["hindsight_no_pooling"] = (alone.vehicle_km, alone.mean_wait_s, len(alone.violations))
    summary["pdp_no_ride_limit"] = (relaxed.vehicle_km, relaxed.mean_wait_s, len(relaxed.violations))
    summary["placement_bound_s"] = bound["mean_wait_s"]

    figures = {}
    for variant, policy, changes in VARIANTS:
        figures[variant] = _replay(setup, log, settings.model_copy(update=changes), policy)
    for variant, k in figures.items():
        name = f"dispatch_vs_hindsight_{variant}"
        rows += [
            _row(name, "km_ratio", k["vehicle_km"] / reference.vehicle_km, "x"),
            _row(name, "mean_wait_s", k["mean_wait_s"], "s"),
            _row(name, "wait_ratio_to_bound", k["mean_wait_s"] / bound["mean_wait_s"], "x"),
            _row(name, "served_share", k["served_share"], "share"),
        ]
        rows += [_row(name, key, value, "km") for key, value in k.items() if key.startswith("km_")]
    pooling_saving: dict[str, float] = {}
    for pooled, alone_variant in POOLING_PAIRS:
        saving = 1 - figures[pooled]["vehicle_km"] / figures[alone_variant]["vehicle_km"]
        rows.append(_row(f"dispatch_vs_hindsight_{pooled}", "pooling_saving_vs_own_no_pooling", saving, "share"))
        pooling_saving[pooled] = saving
    summary["pooling_saving"] = pooling_saving
    summary["variants"] = {
        v: {
            key: k[key]
            for key in (
                "vehicle_km",
                "mean_wait_s",
                "served_share",
                "km_with_riders",
                "km_to_pickup",
                "km_rebalancing",
                "km_to_charger",
                "km_to_depot",
            )
        }
        for v, k in figures.items()
    }

    rows += _breakdown_rows(setup, log, settings, summary)
    rows += _per_rider(out_dir, portfolio, settings, router, seats, runtime_s, summary)
    rows += _small_batteries(out_dir, config, summary)
    (out_dir / "hindsight_summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    _print_table(summary, reference.vehicle_km)
    return rows


BREAKDOWN_PARTS = (
    "batch_s",
    "assigned_direct_s",
    "queued_s",
    "nearest_free_s (riders with a free taxi)",
    "free_median_s",
    "mean_free_taxis",
    "busy_assigned",
    "busy_queued_s",
)


def _breakdown_rows(setup, log, settings, summary) -> list[dict]:
    """Each rider's wait taken apart on the reference log: batch delay, the assigned taxi's drive,
    time queued behind other riders; and the drive from the nearest free taxi against the drive
    from the k-median of the free taxis' count (``benchmarks.dispatch_wait_breakdown``)."""
    from benchmarks.dispatch_wait_breakdown import breakdown

    rows, parts = [], {}
    for variant, policy, changes in VARIANTS:
        if variant not in BREAKDOWN_VARIANTS:
            continue
        found = breakdown(setup, log, settings.model_copy(update=changes), policy)["summary"]
        parts[variant] = {key: found[key] for key in BREAKDOWN_PARTS}
        rows += [_row(f"dispatch_wait_breakdown_{variant}", key.split(" ")[0], found[key]) for key in BREAKDOWN_PARTS]
    summary["wait_breakdown"] = parts
    return rows


def _per_rider(out_dir, portfolio, settings, router, seats, runtime_s, summary) -> list[dict]:
    """Seeds 0-3 of the 200-request log and the 800-request log: km per rider served and wait,
    the dispatcher (default policy) over the hindsight plan, and the served shares."""
    from benchmarks.bench_dispatch import _city_log

    rows, per = [], {}
    for n_requests, seed in ((200, 0), (200, 1), (200, 2), (200, 3), (800, 0)):
        log = _city_log(out_dir, portfolio, n_requests, seed)
        setup = fleet_from_portfolio(portfolio, log.clock.date)
        plan = solve_hindsight(
            log.requests,
            _fleet(setup, len(setup.vehicles), seats),
            router,
            settings,
            None,
            True,
            runtime_s,
            all_required=n_requests <= 200,
        )
        hindsight_km_per_rider = plan.vehicle_km / max(plan.served, 1)
        own_alone = dict(POOLING_PAIRS)
        wanted = set(PER_RIDER_VARIANTS) | {own_alone[v] for v in PER_RIDER_VARIANTS}
        replays = {
            variant: _replay(setup, log, settings.model_copy(update=changes), policy)
            for variant, policy, changes in VARIANTS
            if variant in wanted
        }
        for variant in PER_RIDER_VARIANTS:
            k, alone = replays[variant], replays[own_alone[variant]]
            name = f"dispatch_vs_hindsight_{n_requests}req_seed{seed}" + ("" if variant == "ilp" else f"_{variant}")
            km_per_rider = k["vehicle_km"] / max(k["served"], 1)
            # per rider served: the pooled and the no-pooling replays may serve different shares
            saving = 1 - km_per_rider / (alone["vehicle_km"] / max(alone["served"], 1))
            rows.append(_row(name, "pooling_saving_per_rider_vs_own_no_pooling", saving, "share"))
            rows += [
                _row(name, "km_per_rider_ratio", km_per_rider / hindsight_km_per_rider, "x"),
                _row(name, "mean_wait_s", k["mean_wait_s"], "s"),
                _row(name, "hindsight_mean_wait_s", plan.mean_wait_s, "s"),
                _row(name, "served_share", k["served_share"], "share"),
                _row(name, "hindsight_served_share", plan.served_share, "share"),
                _row(name, "hindsight_violations", len(plan.violations)),
                _row(name, "hindsight_solver_feasible", plan.solver_feasible),
            ]
            per[name] = {
                "km_per_rider": km_per_rider,
                "hindsight_km_per_rider": hindsight_km_per_rider,
                "wait": k["mean_wait_s"],
                "hindsight_wait": plan.mean_wait_s,
                "served": k["served_share"],
                "hindsight_served": plan.served_share,
                "violations": len(plan.violations),
                "pooling_saving": saving,
                "vehicle_km": k["vehicle_km"],
                **{key: k[key] for key in k if key.startswith("km_")},
            }
    summary["per_rider"] = per
    return rows


def _small_batteries(out_dir, config, summary) -> list[dict]:
    """The reference day on 30 kWh batteries starting at 35 %. The shipped low_soc_fraction (0.25,
    7.5 kWh) is below a 30 kWh taxi's floor (3 + 5 kWh) and is rejected by the validator, so this
    run uses 0.3. Replayed with the coverage and the station rebalancing."""
    import tomllib

    from benchmarks.bench_dispatch import _city_log
    from ems.config.load import parse_portfolio

    raw = tomllib.loads(Path(config).read_text())
    for vehicle in raw["vehicles"]:
        vehicle.update(battery_kwh=30.0, initial_soc_fraction=0.35)
    raw.setdefault("dispatch", {})["low_soc_fraction"] = 0.3
    portfolio = parse_portfolio(raw, config)
    log = _city_log(out_dir, portfolio)
    setup = fleet_from_portfolio(portfolio, log.clock.date)
    rows = []
    cases: tuple[tuple[str, dict[str, float | str]], ...] = (
        ("", {}),
        ("_stations", {"rebalance_method": "stations"}),
        ("_stations_batch10_reoptimise", {**STATIONS_BATCH10, **REOPTIMISE}),
    )
    for suffix, changes in cases:
        settings = portfolio.dispatch.model_copy(update=changes)
        k = _replay(setup, log, settings, Policy(settings.policy))
        name = "dispatch_city_30kwh" + suffix
        key = "battery_30kwh" + suffix
        summary[key] = {
            f: k[f]
            for f in (
                "served_share",
                "mean_wait_s",
                "vehicle_km",
                "vehicles_below_floor",
                "min_soc_above_floor_kwh",
                "idle_low_vehicle_h",
                "charging_stops",
            )
        }
        rows += [_row(name, f, value) for f, value in summary[key].items()]
    return rows


def _print_table(summary: dict, reference_km: float) -> None:
    print("  dispatcher against the hindsight plan (200 requests, seed 0, 12 taxis)")
    print(
        f"    hindsight (PyVRP, every limit checked): {reference_km:.1f} km; placement bound on wait "
        f"{summary['placement_bound_s']:.1f} s"
    )
    for window, (alone_km, saving) in summary["hindsight_pooling_saving"].items():
        print(f"    hindsight pooling saving, waits up to {window} s: {saving:.1%} (no pooling {alone_km:.1f} km)")
    print(
        f"    {'variant':<36}{'km':>8}{'km ratio':>9}{'wait s':>8}{'served':>8}"
        f"{'riders':>8}{'pickup':>8}{'rebal':>7}{'charge':>7}{'depot':>7}"
    )
    for variant, k in sorted(summary["variants"].items(), key=lambda item: item[1]["vehicle_km"]):
        print(
            f"    {variant:<36}{k['vehicle_km']:>8.1f}{k['vehicle_km'] / reference_km:>9.2f}{k['mean_wait_s']:>8.1f}"
            f"{k['served_share']:>8.1%}{k['km_with_riders']:>8.1f}{k['km_to_pickup']:>8.1f}"
            f"{k['km_rebalancing']:>7.1f}{k['km_to_charger']:>7.1f}{k['km_to_depot']:>7.1f}"
        )
    for pooled, saving in summary["pooling_saving"].items():
        print(f"    pooling saving of {pooled} against its own no-pooling run: {saving:.1%}")
    print(f"    {'log':<52}{'km/rider ratio':>15}{'wait s':>8}{'served':>8}{'hindsight served':>18}{'pooling':>9}")
    for name, figures in summary["per_rider"].items():
        print(
            f"    {name.removeprefix('dispatch_vs_hindsight_'):<52}"
            f"{figures['km_per_rider'] / figures['hindsight_km_per_rider']:>15.2f}{figures['wait']:>8.1f}"
            f"{figures['served']:>8.1%}{figures['hindsight_served']:>18.1%}{figures['pooling_saving']:>9.1%}"
        )
    print(
        f"    {'wait taken apart [s]':<36}{'batch':>7}{'drive':>7}{'queued':>8}{'nearest free':>14}"
        f"{'free k-median':>15}{'free taxis':>12}"
    )
    for variant, parts in summary["wait_breakdown"].items():
        print(
            f"    {variant:<36}{parts['batch_s']:>7.1f}{parts['assigned_direct_s']:>7.1f}{parts['queued_s']:>8.1f}"
            f"{parts['nearest_free_s (riders with a free taxi)']:>14.1f}{parts['free_median_s']:>15.1f}"
            f"{parts['mean_free_taxis']:>12.2f}"
        )
    for key, k in summary.items():
        if key.startswith("battery_30kwh"):
            print(
                f"    {key}: served {k['served_share']:.1%}, wait {k['mean_wait_s']:.1f} s, {k['vehicle_km']:.1f} km, "
                f"{k['vehicles_below_floor']} below floor (margin {k['min_soc_above_floor_kwh']:.2f} kWh), "
                f"{k['idle_low_vehicle_h']:.1f} h idle nearly empty, {k['charging_stops']} plug-ins"
            )
