"""The night's figures (``kpis.json``) and the operator's report (``report.html``): one
self-contained HTML file, plots embedded as base64 PNGs, no external assets."""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from ems.optimise.plot import plot_schedule
from simulations.day import kpis

KPI_LABELS = {
    "energy_cost_yen": ("Energy cost", "yen", "{:,.0f}"),
    "co2_kg": ("CO2", "kg", "{:,.0f}"),
    "local_pv_share": ("Consumption met by local PV", "%", "{:.1%}"),
    "peak_import_kw": ("Peak import (portfolio)", "kW", "{:,.1f}"),
}


def _percentiles(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    p10, p50, p90 = np.percentile(values, [10, 50, 90])
    return {"p10": round(float(p10), 2), "p50": round(float(p50), 2), "p90": round(float(p90), 2)}


def build_kpis(ctx, portfolio, plan, plan_problem, no_event, no_event_problem, sweep) -> dict:
    results = list(sweep.results.values())
    by_kind = {
        kind: [r for r in results if r["kind"] == kind]
        for kind in ("event", "sample", "unavailable", "flex", "rolling")
    }
    plan_kpis = kpis(plan, plan_problem)
    events = [_event_row(r) for r in by_kind["event"]]
    samples = by_kind["sample"]
    figures = {
        "portfolio": portfolio.portfolio.name,
        "date": ctx.date.isoformat(),
        "seed": ctx.seed,
        "plan": {"solver_status": plan.status} | plan_kpis,
        "plan_without_events": {"solver_status": no_event.status} | kpis(no_event, no_event_problem),
        "events": [e for e in events if e["shift_minutes"] == 0 and e["scale"] == 1.0],
        "event_variants": events,
        "scenario_spread": {
            "samples": len(samples),
            **{
                name: _percentiles([s["kpis"][name] for s in samples])
                for name in ("energy_cost_yen", "objective_yen", "co2_kg", "local_pv_share", "peak_import_kw")
            },
        },
        "unavailable": [
            {
                "device": r["device"],
                "energy_cost_yen": r["kpis"]["energy_cost_yen"],
                "objective_yen": r["kpis"]["objective_yen"],
                "extra_objective_yen": round(r["kpis"]["objective_yen"] - plan.objective_yen, 2),
                "dr_shortfall_kwh": r["dr_shortfall_kwh"],
            }
            for r in by_kind["unavailable"]
        ],
        "flexibility": _flexibility(by_kind["flex"], plan_problem.grid, portfolio.portfolio.timezone),
        "perfect_foresight": by_kind["rolling"][0] if by_kind["rolling"] else None,
        "sweep": {
            "scenarios": len(results),
            "run_now": len(sweep.computed),
            "workers": sweep.workers,
            "elapsed_s": round(sweep.elapsed_s, 2),
        },
    }
    return figures


def _event_row(r: dict) -> dict:
    s = r["scenario"]
    return {
        "event_id": r["event_id"],
        "base_event_id": r["base_event_id"],
        "direction": r["direction"],
        "start": r["start"],
        "duration_minutes": r["duration_minutes"],
        "shift_minutes": s["shift_minutes"],
        "scale": s["scale"],
        "value_yen": r["value_yen"],
        "dr_revenue_yen": r["dr_revenue_yen"],
        "dr_penalty_yen": r["dr_penalty_yen"],
        "vs_baseline": r["vs_baseline"],
        "vs_planning_baseline": r["vs_planning_baseline"],
        "vs_plan_without_event": r["vs_plan_without_event"],
        "baseline": r["baseline"],
        "series_kw": r["series_kw"],
        "status": r["status"],
    }


def _flexibility(rows: list[dict], grid, timezone: str) -> dict:
    times = grid.index.tz_convert(timezone)
    table: dict[str, dict[tuple, dict]] = {}
    for r in rows:
        key = "slots" if len(r["steps"]) == 1 else "blocks"
        entry = table.setdefault(key, {}).setdefault(tuple(r["steps"]), {})
        entry[r["direction"]] = r
    out = {}
    for key, entries in table.items():
        out[key] = [
            {
                "start": times[steps[0]].isoformat(),
                "end": (times[steps[-1]] + pd.Timedelta(minutes=grid.step_minutes)).isoformat(),
                **{f"{d}_kw": entries[steps][d]["flex_kw"] for d in ("down", "up") if d in entries[steps]},
                **{f"{d}_cost_yen": entries[steps][d]["cost_yen"] for d in ("down", "up") if d in entries[steps]},
                **{
                    f"{d}_cost_yen_per_kwh": entries[steps][d]["cost_yen_per_kwh"]
                    for d in ("down", "up")
                    if d in entries[steps]
                },
            }
            for steps in sorted(entries)
        ]
    return out


# --- plots -------------------------------------------------------------------------------------


def _png(fig) -> str:
    buffer = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buffer, format="png", dpi=100)
    plt.close(fig)
    return base64.b64encode(buffer.getvalue()).decode()


def _img(data: str, alt: str) -> str:
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def _flex_plot(flex: dict) -> str | None:
    if not flex:
        return None
    fig, (ax, ax_cost) = plt.subplots(2, 1, figsize=(11, 6.5), sharex=True, gridspec_kw={"height_ratios": [3, 1.4]})
    for key, style in (("slots", "bar"), ("blocks", "step")):
        rows = flex.get(key, [])
        if not rows:
            continue
        start = pd.to_datetime([r["start"] for r in rows])
        end = pd.to_datetime([r["end"] for r in rows])
        hours = np.array([t.hour + t.minute / 60 for t in start])
        width = np.array([(e - s).total_seconds() / 3600 for s, e in zip(start, end)])
        down = np.array([r.get("down_kw", 0.0) for r in rows])
        up = np.array([r.get("up_kw", 0.0) for r in rows])
        if style == "bar":
            ax.bar(
                hours, up, width=width, align="edge", color="#3969ac", alpha=0.8, label="absorb (up), per 30-min slot"
            )
            ax.bar(
                hours,
                -down,
                width=width,
                align="edge",
                color="#e73f74",
                alpha=0.8,
                label="shed (down), per 30-min slot",
            )
            for d, colour in (("down", "#e73f74"), ("up", "#3969ac")):
                cost = [r.get(f"{d}_cost_yen_per_kwh") for r in rows]
                ax_cost.plot(
                    hours + width / 2,
                    [np.nan if c is None else c for c in cost],
                    "o-",
                    ms=3,
                    color=colour,
                    label=f"{d}",
                )
        else:
            edges = np.append(hours, hours[-1] + width[-1])
            ax.stairs(up, edges, color="#1b3b6f", linewidth=2.2, label="absorb, held for the 3-hour block")
            ax.stairs(-down, edges, color="#8c1c44", linewidth=2.2, label="shed, held for the 3-hour block")
    ax.axhline(0, color="black", linewidth=0.7)
    ax.set_ylabel("kW against the plan\n(+ absorb more, - shed)")
    ax.legend(fontsize=8, loc="lower left", ncol=2)
    ax.set_title("Flexibility of the whole portfolio, tomorrow, with every constraint held")
    ax_cost.set_ylabel("cost [yen/kWh]")
    ax_cost.set_yscale("symlog", linthresh=100)
    if flex.get("slots"):
        ax_cost.legend(fontsize=8, loc="upper left")
    else:
        ax_cost.set_visible(False)
    ax_cost.set_xlabel("hour of the day (local)")
    ax_cost.set_xticks(range(0, 25, 3))
    return _png(fig)


def _event_plot(event: dict, timezone: str, date: str) -> str:
    series = event["series_kw"]
    steps = len(series["net_import"])
    hours = np.arange(steps + 1) * 24 / steps
    fig, ax = plt.subplots(figsize=(11, 3.6))
    ax.stairs(
        series["baseline"],
        hours,
        color="#f2b701",
        linewidth=2,
        label=f"{event['baseline']['rule']} baseline (adjusted)",
    )
    ax.stairs(
        series["plan_without_event"],
        hours,
        color="#7f7f7f",
        linewidth=1.6,
        linestyle="--",
        label="plan without the event",
    )
    ax.stairs(series["net_import"], hours, color="#11a579", linewidth=2.2, label="plan with the event")
    start = pd.Timestamp(event["start"])
    begin = start.hour + start.minute / 60
    ax.axvspan(begin, begin + event["duration_minutes"] / 60, color="#e73f74", alpha=0.12, label="event")
    ax.set_xlim(0, 24)
    ax.set_xticks(range(0, 25, 3))
    ax.set_ylabel("net import of the event's sites [kW]")
    ax.set_xlabel(f"hour of {date} ({timezone})")
    ax.set_title(f"{event['event_id']}: {event['direction']} event")
    ax.legend(fontsize=8, loc="upper left", ncol=2)
    return _png(fig)


def _spread_plot(samples: list[dict], plan_cost: float) -> str | None:
    if not samples:
        return None
    costs = np.array([s["kpis"]["energy_cost_yen"] for s in samples])
    fig, ax = plt.subplots(figsize=(8, 3.2))
    ax.hist(costs, bins=min(20, max(5, len(costs) // 2)), color="#7f7f7f", alpha=0.7)
    for q, style in zip(np.percentile(costs, [10, 50, 90]), (":", "-", ":")):
        ax.axvline(q, color="black", linestyle=style, linewidth=1.2)
    ax.axvline(plan_cost, color="#11a579", linewidth=2, label="tomorrow's plan (P50 forecast)")
    ax.set_xlabel("energy cost of the day [yen] (dotted: P10 and P90, solid: P50)")
    ax.set_ylabel("samples")
    ax.legend(fontsize=8)
    return _png(fig)


# --- HTML --------------------------------------------------------------------------------------

STYLE = """
body { font-family: system-ui, -apple-system, 'Segoe UI', sans-serif; margin: 2em auto; max-width: 1150px; color: #222;
       line-height: 1.45; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; }
h2 { border-bottom: 2px solid #ddd; padding-bottom: 0.2em; margin-top: 1.8em; }
.sub { color: #666; } table { border-collapse: collapse; margin: 0.6em 0; font-size: 0.92em; }
th, td { border: 1px solid #ddd; padding: 0.3em 0.6em; text-align: right; } th { background: #f4f4f4; }
td:first-child, th:first-child { text-align: left; } img { max-width: 100%; border: 1px solid #eee; }
.cards { display: flex; gap: 1em; flex-wrap: wrap; }
.card { border: 1px solid #ddd; border-radius: 6px; padding: 0.7em 1.1em; min-width: 190px; }
.card .v { font-size: 1.6em; font-weight: 600; } .card .l { color: #555; font-size: 0.9em; }
.good { color: #11803d; } .bad { color: #b3261e; }
.note { color: #555; font-size: 0.9em; }
"""


def _table(headers: list[str], rows: list[list]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _yen(value: float | None) -> str:
    return "-" if value is None else f"{round(value):,d}"  # an int: never "-0"


def _one_decimal(value: float) -> str:
    return f"{round(value, 1) + 0.0:,.1f}"  # + 0.0 turns -0.0 into 0.0


def _kpi_cards(plan: dict, spread: dict) -> str:
    cards = []
    for key, (label, unit, fmt) in KPI_LABELS.items():
        value = fmt.format(plan[key])
        extra = ""
        if spread.get(key):
            band = spread[key]
            extra = (
                f"<div class='l'>P10 {fmt.format(band['p10'])} / P50 {fmt.format(band['p50'])} "
                f"/ P90 {fmt.format(band['p90'])}</div>"
            )
        unit_text = "" if unit == "%" else f" {unit}"
        cards.append(
            f"<div class='card'><div class='l'>{label}</div><div class='v'>{value}{unit_text}</div>{extra}</div>"
        )
    return f"<div class='cards'>{''.join(cards)}</div>"


def _events_section(figures: dict, timezone: str) -> str:
    if not figures["events"]:
        return "<h2>Demand-response events</h2><p>No event files were given for tomorrow.</p>"
    parts = [
        "<h2>Demand-response events</h2>",
        "<p class='note'>Value = objective without the event minus objective with it (revenue, penalty and the extra "
        "energy cost included); positive means the event earns money. Delivered energy is settled against the "
        "guideline's baseline (High 4 of 5 on weekdays, High 2 of 3 on weekends and holidays; Low for up events) "
        "with the same-day adjustment read from the day's own values with the event, per site; it is also "
        "shown against the plan without the event. Each event is also run 2 h "
        "earlier and later and at half and 1.5 times its size (the @ variants). An event settled at 0 kWh asks for "
        "power the portfolio does not have then: compare with the flexibility curve below.</p>",
    ]
    rows = []
    for e in figures["event_variants"]:
        h, p = e["vs_baseline"], e["vs_plan_without_event"]
        start = pd.Timestamp(e["start"]).tz_convert(timezone)
        rows.append(
            [
                html.escape(e["event_id"]),
                e["direction"],
                f"{start:%H:%M}",
                f"{e['duration_minutes'] / 60:g} h",
                _one_decimal(h["requested_kwh"]),
                _one_decimal(h["settled_kwh"]),
                _one_decimal(h["delivered_kwh"]),
                _one_decimal(p["delivered_kwh"]),
                _yen(e["dr_revenue_yen"]),
                _yen(e["dr_penalty_yen"]),
                f"<span class='{'good' if e['value_yen'] >= 0 else 'bad'}'>{_yen(e['value_yen'])}</span>",
            ]
        )
    parts.append(
        _table(
            [
                "event (variant)",
                "dir.",
                "start",
                "length",
                "requested kWh",
                "settled kWh (baseline)",
                "delivered kWh vs baseline",
                "delivered kWh vs plan without event",
                "revenue yen",
                "penalty yen",
                "value yen",
            ],
            rows,
        )
    )
    for e in figures["events"]:
        parts.append(_img(_event_plot(e, timezone, figures["date"]), e["event_id"]))
        details = e["baseline"]
        sites = "; ".join(
            f"{html.escape(c)}: days {', '.join(p['like_days'])}, adjustment {p['adjustment_kw']:+.1f} kW "
            f"(raw {p['raw_adjustment_kw']:+.1f}, cap {p['cap_kw']:.1f})"
            for c, p in details["customers"].items()
        )
        parts.append(f"<p class='note'>{details['rule']} for {html.escape(e['event_id'])}, per site: {sites}.</p>")
    return "".join(parts)


def _flex_section(flex: dict) -> str:
    parts = [
        "<h2>Flexibility</h2>",
        "<p class='note'>For each 30-minute slot (bars) and each 3-hour block (lines): the most "
        "power the whole portfolio can shed or absorb against tomorrow's plan without events, with every limit, EV "
        "departure target and BCP reserve held; and what it costs (extra objective per kWh). Absorbing above the "
        "contract demand pays the demand charge, which is why some up-flexibility is dear.</p>",
    ]
    plot = _flex_plot(flex)
    if plot:
        parts.append(_img(plot, "flexibility curve"))
    blocks = flex.get("blocks", [])
    if blocks:
        rows = [
            [
                f"{pd.Timestamp(b['start']):%H:%M}-{pd.Timestamp(b['end']):%H:%M}",
                _one_decimal(b.get("down_kw", 0)),
                _yen(b.get("down_cost_yen")),
                _one_decimal(b.get("up_kw", 0)),
                _yen(b.get("up_cost_yen")),
            ]
            for b in blocks
        ]
        parts.append(_table(["3-hour block", "shed kW", "cost yen", "absorb kW", "cost yen"], rows))
    if not flex:
        parts.append("<p>Not computed in this run.</p>")
    return "".join(parts)


def _foresight_section(pf: dict | None) -> str:
    if not pf:
        return ""
    rows = [
        ["rule-based baseline", _yen(pf["rule_objective_yen"]), _yen(pf["rule_cost_yen"])],
        [
            f"rolling plan on forecasts (re-planned {pf['replans']} times)",
            _yen(pf["rolling_objective_yen"]),
            _yen(pf["rolling_cost_yen"]),
        ],
        [
            "perfect foresight (actual day known in advance)",
            _yen(pf["perfect_objective_yen"]),
            _yen(pf["perfect_cost_yen"]),
        ],
    ]
    return (
        "<h2>How close the rolling plan comes to perfect foresight</h2>"
        "<p class='note'>One forecast-error sample plays the actual day. The rolling plan re-plans on the P50 "
        "forecast and its set-points meet the actual PV and load; perfect foresight is the same day solved with "
        "the actual data known in advance, the limit no controller can beat. Objective includes the value of "
        "energy left in storage.</p>"
        + _table(["", "objective yen", "energy and demand cost yen"], rows)
        + f"<p>The rolling plan captures <b>{pf['captured_savings']:.1%}</b> of the perfect-foresight saving over the "
        "rule-based baseline "
        f"({pf['captured_savings_without_demand_charge']:.1%} with demand charges left out: the baseline's new "
        "peaks otherwise dominate the saving).</p>"
    )


def write_report(path: Path, figures: dict, ctx, portfolio, plan, plan_problem, sweep) -> Path:
    zone = portfolio.portfolio.timezone
    plan_png = path.parent / "plan" / "plan.png"
    plot_schedule(plan, plan_problem, plan_png, zone, title=f"Tomorrow's plan, {figures['date']} (events included)")
    plan_img = base64.b64encode(plan_png.read_bytes()).decode()
    samples = [r for r in sweep.results.values() if r["kind"] == "sample"]
    spread = figures["scenario_spread"]
    unavailable_rows = [
        [
            html.escape(u["device"]),
            _yen(u["energy_cost_yen"]),
            _yen(u["extra_objective_yen"]),
            _one_decimal(u["dr_shortfall_kwh"]),
        ]
        for u in figures["unavailable"]
    ]
    spread_png = _spread_plot(samples, figures["plan"]["energy_cost_yen"])
    body = [
        f"<h1>Nightly simulation: {html.escape(figures['portfolio'])}</h1>",
        f"<p class='sub'>Day simulated: <b>{figures['date']}</b> ({zone}). "
        f"{figures['sweep']['scenarios']} scenarios, seed {figures['seed']}. "
        f" Plan status: {figures['plan']['solver_status']}.</p>",
        "<h2>Tomorrow at a glance</h2>",
        _kpi_cards(figures["plan"], spread),
        f"<p class='note'>Figures of tomorrow's plan with its events on the P50 forecast; P10/P50/P90 over "
        f"{spread['samples']} forecast-error samples. Without events the plan would cost "
        f"{_yen(figures['plan_without_events']['energy_cost_yen'])} yen.</p>",
        "<h2>Tomorrow's plan</h2>",
        _img(plan_img, "tomorrow's plan"),
        _events_section(figures, zone),
        _flex_section(figures["flexibility"]),
        "<h2>Scenario spread</h2>",
        _img(spread_png, "cost spread") if spread_png else "<p>No forecast-error samples in this run.</p>",
        _table(
            ["", "P10", "P50", "P90"],
            [
                [label, *(fmt.format(spread[k][q]) if spread.get(k) else "-" for q in ("p10", "p50", "p90"))]
                for k, (label, _u, fmt) in KPI_LABELS.items()
            ],
        )
        if samples
        else "",
        (
            "<h3>A device unavailable all day</h3><p class='note'>Each battery out in turn, events included. "
            "Differences within the solver's MIP gap (0.5 % of the objective) are noise.</p>"
            + _table(["device out", "energy cost yen", "extra objective yen", "DR shortfall kWh"], unavailable_rows)
        )
        if unavailable_rows
        else "",
        _foresight_section(figures["perfect_foresight"]),
        "<p class='note'>Figures in kpis.json; tomorrow's schedule in plan/schedule.csv; "
        "each scenario in scenarios/.</p>",
    ]
    document = (
        f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>Nightly simulation {figures['date']}</title><style>{STYLE}</style></head>"
        f"<body>{''.join(body)}</body></html>"
    )
    path.write_text(document, encoding="utf-8")
    return path
