"""The drill report: ``bcp.json`` (figures), ``supply.csv`` (each shelter's supply step by step,
for charts drawn elsewhere, e.g. the console) and ``report.html`` (self-contained, PNGs inline)."""

from __future__ import annotations

import base64
import html
import io
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.dates
import matplotlib.pyplot as plt
from matplotlib.patches import Patch

from ems.bcp.plan import BcpPlan

SHELTER_COLOURS = ["tab:blue", "tab:orange", "tab:green", "tab:purple", "tab:brown", "tab:pink"]


def _png(fig) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def supply_figure(plan: BcpPlan, timezone: str):
    shelters = list(plan.demand_kw.columns)
    if not shelters:
        fig, ax = plt.subplots(figsize=(11, 1.2))
        ax.axis("off")
        ax.text(
            0.0, 0.5, "No shelter loses the grid in this outage: every critical load stays on the grid.", fontsize=11
        )
        return fig
    fig, axes = plt.subplots(len(shelters), 1, figsize=(11, 2.6 * max(1, len(shelters))), sharex=True, squeeze=False)
    names = {s.id: s.name for s in plan.problem.shelters}
    for ax, s in zip(axes[:, 0], shelters):
        index = plan.demand_kw.index.tz_convert(timezone)
        battery = plan.battery_kw[s].clip(lower=0).to_numpy()
        fleet = plan.vehicle_kw[s].clip(lower=0).to_numpy()
        pv_to_load = (plan.served_kw[s].to_numpy() - battery - fleet).clip(min=0)
        pv_stored = (plan.pv_kw[s].to_numpy() - pv_to_load).clip(min=0)  # into the battery or a plugged vehicle
        ax.stackplot(
            index,
            pv_to_load,
            battery,
            fleet,
            pv_stored,
            step="post",
            colors=["gold", "tab:green", "tab:blue", "khaki"],
            alpha=0.8,
            labels=["PV to the load", "stationary battery", "vehicles (V2H)", "PV stored for later"],
        )
        ax.step(index, plan.demand_kw[s], where="post", color="black", lw=1.5, label="critical load")
        unserved = (plan.demand_kw[s] - plan.served_kw[s]).clip(lower=0)
        ax.fill_between(
            index,
            plan.served_kw[s],
            plan.demand_kw[s],
            where=unserved > 1e-3,
            step="post",
            color="red",
            alpha=0.35,
            label="not served",
        )
        hours = plan.shelter_hours()[s]
        ax.set_title(f"{names[s]} ({s}): up {hours:.0f} h of {plan.duration_h:.0f} h", fontsize=10, loc="right")
        ax.set_ylabel("kW")
        ax.grid(alpha=0.3)
    axes[0, 0].legend(loc="lower left", bbox_to_anchor=(0.0, 1.12), fontsize=8, ncol=6, frameon=False)
    fig.autofmt_xdate()
    return fig


def fleet_figure(plan: BcpPlan, timezone: str):
    location = plan.vehicle_location
    vehicles = list(location.columns)
    shelters = list(plan.demand_kw.columns)
    colours = {s: SHELTER_COLOURS[i % len(SHELTER_COLOURS)] for i, s in enumerate(shelters)} | {
        "at charger": "lightgrey"
    }
    fig, (gantt, soc) = plt.subplots(
        2,
        1,
        figsize=(11, 3 + 0.35 * len(vehicles) + 3),
        sharex=True,
        gridspec_kw={"height_ratios": [max(2, 0.35 * len(vehicles)), 3]},
    )
    index = location.index.tz_convert(timezone)
    width = plan.problem.step_minutes / (24 * 60)
    for row, v in enumerate(vehicles):
        for t, place in enumerate(location[v]):
            if place:
                gantt.barh(row, width, left=matplotlib.dates.date2num(index[t]), color=colours[place], height=0.7)
    gantt.set_yticks(range(len(vehicles)), vehicles, fontsize=8)
    gantt.invert_yaxis()
    gantt.set_title("Where each vehicle is\n(blank: in the ride service, or driving)", fontsize=10, loc="left")
    gantt.legend(
        handles=[Patch(color=c, label=k) for k, c in colours.items()],
        fontsize=8,
        loc="lower right",
        bbox_to_anchor=(1.0, 1.0),
        ncol=4,
        frameon=False,
    )
    for v in plan.vehicles_assigned():
        series = plan.vehicle_soc_kwh[v]
        soc.plot(series.index.tz_convert(timezone), series.to_numpy(), marker=".", label=v)
    soc.set_ylabel("energy on board, kWh (block starts)")
    soc.set_title("Vehicles called to shelters: energy on board", fontsize=10, loc="left")
    soc.grid(alpha=0.3)
    if plan.vehicles_assigned():
        soc.legend(fontsize=8, ncol=6)
    fig.autofmt_xdate()
    return fig


def supply_rows(plan: BcpPlan) -> list[dict]:
    """Long form of each shelter's supply: time (UTC, ISO), shelter, critical load, served, PV used,
    stationary battery and vehicles (net into the shelter's bus), kW."""
    rows = []
    for shelter in plan.demand_kw.columns:
        for time, demand, served, pv, battery, vehicle in zip(
            plan.demand_kw.index,
            plan.demand_kw[shelter],
            plan.served_kw[shelter],
            plan.pv_kw[shelter],
            plan.battery_kw[shelter],
            plan.vehicle_kw[shelter],
            strict=True,
        ):
            rows.append(
                {
                    "time": time.isoformat(),
                    "shelter": shelter,
                    "demand_kw": round(float(demand), 3),
                    "served_kw": round(float(served), 3),
                    "pv_kw": round(float(pv), 3),
                    "battery_kw": round(float(battery), 3),
                    "vehicle_kw": round(float(vehicle), 3),
                }
            )
    return rows


def write_supply_csv(plan: BcpPlan, path: Path) -> None:
    import csv

    with path.open("w", newline="", encoding="utf-8") as file:
        writer = csv.DictWriter(
            file, ["time", "shelter", "demand_kw", "served_kw", "pv_kw", "battery_kw", "vehicle_kw"]
        )
        writer.writeheader()
        writer.writerows(supply_rows(plan))


def write_report(plan: BcpPlan, out: Path, title: str, timezone: str, extra: dict | None = None) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    summary = plan.summary() | (extra or {})
    (out / "bcp.json").write_text(json.dumps(summary, indent=2, ensure_ascii=False))
    write_supply_csv(plan, out / "supply.csv")
    supply, fleet = _png(supply_figure(plan, timezone)), _png(fleet_figure(plan, timezone))
    (out / "report.html").write_text(render_html(summary, title, supply, fleet), encoding="utf-8")
    return summary


def _table(headers: list[str], rows: list[list]) -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def render_html(summary: dict, title: str, supply_png: str, fleet_png: str) -> str:
    names = summary.get("shelter_names", {})
    shelters = [
        [
            f"{names[s]} ({s})" if s in names else s,
            f"{h:.0f}",
            f"{summary['upper_bound_hours'][s]:.0f}",
            f"{summary['hours_share_of_bound'][s] * 100:.0f} %",
            f"{summary['served_kwh_by_shelter'].get(s, 0):.1f}",
        ]
        for s, h in summary["shelter_hours"].items()
    ]
    shelters.append(
        ["all shelters together", f"{summary['hours_all_up']:.0f}", f"{summary['joint_upper_bound_hours']:.0f}", "", ""]
    )
    visits = [
        [
            v["vehicle"],
            v["shelter"],
            v["arrive"][5:16].replace("T", " "),
            v["leave"][5:16].replace("T", " "),
            f"{v['delivered_kwh']:.1f}",
            f"{v['lowest_soc_kwh']:.1f}",
            f"{v['drive_back_floor_kwh']:.1f}",
        ]
        for v in summary["visits"]
    ]
    service = ", ".join(summary["vehicles_in_ride_service"]) or "none"
    visit_columns = [
        "vehicle",
        "shelter",
        "arrive",
        "leave",
        "delivered, kWh",
        "lowest on board, kWh",
        "floor (min + drive back), kWh",
    ]
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>body{{font-family:sans-serif;max-width:1100px;margin:2em auto;color:#222}}
table{{border-collapse:collapse;margin:1em 0}}
td,th{{border:1px solid #ccc;padding:3px 8px;text-align:right}}td:first-child{{text-align:left}}
th{{background:#f0f0f0}}.note{{color:#555;font-size:90%}}</style></head><body>
<h1>{html.escape(title)}</h1>
<p class="note">Drill: planned on the configuration and the latest state; no set-point was sent
and no vehicle was moved.</p>
<p><b>{summary["served_share"] * 100:.1f} %</b> of the critical energy served
({summary["critical_energy_served_kwh"]:.1f} of {summary["critical_energy_demand_kwh"]:.1f} kWh)
over {summary["duration_hours"]:.0f} h from {html.escape(summary["start"])}.
{len(summary["vehicles_assigned"])} vehicles called to shelters, {summary["vehicle_km"]:.1f} km driven;
in the ride service: {html.escape(service)}.</p>
<p class="note">Energy on board at the start:
{html.escape(str(summary.get("state", "config initial_soc_fraction")))}.</p>
<h2>Shelters</h2>
{_table(["shelter", "hours up", "upper bound, h", "of bound", "served, kWh"], shelters)}
<p class="note">Hours up: from the start of the outage until the first hour the critical load is not fully served.
Upper bound: the hours the energy allows (the fleet's energy on board above its floor, what the chargers
can put back under the grid-kept site's import limit, the shelter's PV and batteries), for a shelter that
had the fleet to itself and for all shelters together; no plan can do better (docs/bcp.md).</p>
<img alt="supply per shelter" src="data:image/png;base64,{supply_png}" width="100%">
<h2>Vehicles</h2>
{_table(visit_columns, visits)}
<img alt="fleet" src="data:image/png;base64,{fleet_png}" width="100%">
<p class="note">Solver: {html.escape(str(summary["solver_status"]))}, gap {summary["mip_gap"]},
build {summary["build_s"]:.2f} s, solve {summary["solve_s"]:.2f} s.</p>
</body></html>
"""
