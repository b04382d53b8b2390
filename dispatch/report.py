"""Writing a replay's results: ``kpis.json``, ``trips.csv``, ``fleet_plans.json`` and
``timeline.png`` (vehicle activity and state of charge)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from dispatch.clock import ServiceClock
from dispatch.simulate import SimulationResult, kpis

STATUS_COLOURS = {
    "on-trip": "tab:blue",
    "idle": "lightgrey",
    "to-charger": "tab:olive",
    "charging": "tab:green",
    "reserved-for-shelter": "tab:red",
}
KPI_ORDER = (
    "served_share",
    "mean_wait_s",
    "p95_wait_s",
    "mean_detour_ratio",
    "vehicle_km",
    "empty_km_share",
    "shared_ride_share",
    "mean_occupancy",
    "energy_kwh",
    "charging_stops",
    "reassigned_riders",
    "assign_ms_p50",
    "assign_ms_p95",
)


def write_outputs(result: SimulationResult, clock: ServiceClock, out_dir: str | Path) -> dict[str, float]:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    figures = kpis(result)
    (out / "kpis.json").write_text(json.dumps({"policy": result.policy, **figures}, indent=2) + "\n")
    _write_trips(result, clock, out / "trips.csv")
    plans = {vid: json.loads(plan.model_dump_json()) for vid, plan in result.plans.items()}
    (out / "fleet_plans.json").write_text(json.dumps(plans, indent=2) + "\n")
    states = {vid: json.loads(state.model_dump_json()) for vid, state in result.states.items()}
    (out / "fleet_states.json").write_text(json.dumps(states, indent=2) + "\n")
    plot_timeline(result, out / "timeline.png")
    return figures


def _iso(clock: ServiceClock, seconds: float | None) -> str:
    return "" if seconds is None else clock.to_datetime(round(seconds)).isoformat()


def _write_trips(result: SimulationResult, clock: ServiceClock, path: Path) -> None:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(
            [
                "request_id",
                "request_time",
                "passengers",
                "vehicle_id",
                "pickup_time",
                "dropoff_time",
                "wait_s",
                "ride_s",
                "direct_s",
                "shared",
                "rejected_reason",
            ]
        )
        for rider in result.riders.values():
            wait_s = ride_s = ""
            if rider.dropoff_s is not None and rider.pickup_s is not None:
                wait_s = f"{rider.pickup_s - rider.request.time_s:.0f}"
                ride_s = f"{rider.dropoff_s - rider.pickup_s:.0f}"
            writer.writerow(
                [
                    rider.request.request_id,
                    _iso(clock, rider.request.time_s),
                    rider.request.passengers,
                    rider.vehicle_id,
                    _iso(clock, rider.pickup_s),
                    _iso(clock, rider.dropoff_s),
                    wait_s,
                    ride_s,
                    f"{rider.direct_s:.0f}",
                    int(rider.shared),
                    rider.rejection.message if rider.rejection else "",
                ]
            )


def plot_timeline(result: SimulationResult, path: Path) -> None:
    vehicles = list(result.vehicles.values())
    fig, (ax_time, ax_soc) = plt.subplots(
        2,
        1,
        figsize=(12, 3 + 0.35 * len(vehicles)),
        sharex=True,
        gridspec_kw={"height_ratios": [max(2, len(vehicles) * 0.35), 2]},
    )
    for row, vehicle in enumerate(vehicles):
        timeline = vehicle.timeline
        for status, spans in _status_spans(timeline).items():
            ax_time.broken_barh(spans, (row - 0.4, 0.8), color=STATUS_COLOURS[status], linewidth=0)
        hours = [t / 3600 for t, *_ in timeline]
        ax_soc.plot(hours, [soc / vehicle.spec.battery_kwh * 100 for _, _, soc, _ in timeline], linewidth=0.8)
    ax_time.set_yticks(range(len(vehicles)), [v.spec.vehicle_id for v in vehicles], fontsize=7)
    handles = [plt.Rectangle((0, 0), 1, 1, color=c) for c in STATUS_COLOURS.values()]
    ax_time.legend(handles, STATUS_COLOURS, loc="upper right", fontsize=7, ncol=5)
    ax_time.set_title(f"Vehicle activity ({result.policy})")
    ax_soc.set_ylabel("state of charge [%]")
    ax_soc.set_xlabel("hour of the service day (local time)")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def _status_spans(timeline) -> dict[str, list[tuple[float, float]]]:
    """(start [h], length [h]) of each run of one status, by status."""
    spans: dict[str, list[tuple[float, float]]] = {}
    run_start, run_status = 0.0, None
    for t, status, _soc, _load in timeline + [(timeline[-1][0] if timeline else 0.0, None, 0.0, 0)]:
        if status != run_status:
            if run_status is not None:
                spans.setdefault(run_status, []).append((run_start / 3600, (t - run_start) / 3600))
            run_start, run_status = t, status
    return spans


def kpi_table(rows: dict[str, dict[str, float]]) -> str:
    """A plain-text table: one column per run (policy), one row per KPI."""
    names = list(rows)
    lines = [f"{'kpi':<20}" + "".join(f"{n:>14}" for n in names)]
    for key in KPI_ORDER:
        lines.append(f"{key:<20}" + "".join(f"{_fmt(rows[n].get(key)):>14}" for n in names))
    return "\n".join(lines)


def _fmt(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3f}" if abs(value) < 10 else f"{value:.1f}"
    return str(value)
