"""``ems plan``: the day-ahead schedule of a portfolio, written as CSV, JSON and a PNG."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

from ems.cli.args import horizon_hours, one_line_errors, plan_date
from ems.config import load_portfolio
from ems.planning import make_plan


def _price_store(portfolio, override: Path | None):
    """The store prices are read from, with [market] only (a plan without it needs none)."""
    if portfolio.market is None:
        return None
    from ems.store import Store, StoreError

    path = Path(override or portfolio.storage.sqlite_path)
    if not path.exists():
        raise StoreError(f"{path}: no price store: import a JEPX spot file first (ems prices import)")
    return Store(path, create=False, readonly=True)


def register(subparsers) -> None:
    parser = one_line_errors(subparsers.add_parser("plan", help="plan a day (schedule.csv, summary.json, plan.png)"))
    parser.add_argument("--config", required=True, type=Path, help="portfolio TOML file")
    parser.add_argument("--date", required=True, type=plan_date, help="first day planned, YYYY-MM-DD (local)")
    parser.add_argument("--out", required=True, type=Path, help="output directory")
    parser.add_argument("--step-minutes", type=int, choices=(5, 10, 15, 30, 60), help="override planning.step_minutes")
    parser.add_argument("--horizon-hours", type=horizon_hours, help="override planning.horizon_hours (1 to 168)")
    parser.add_argument(
        "--inputs",
        choices=("forecast", "profiles"),
        default="forecast",
        help="PV and load from the forecasters (default) or from the config's fixed profiles",
    )
    parser.add_argument("--no-plot", action="store_true", help="skip the PNG")
    parser.add_argument(
        "--store", type=Path, help="with [market]: the store holding the prices (default storage.sqlite_path)"
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    portfolio = load_portfolio(args.config)
    if args.out.exists() and not args.out.is_dir():
        print(f"ems plan: --out {args.out}: exists and is not a directory", file=sys.stderr)
        return 2
    start = pd.Timestamp(args.date).tz_localize(portfolio.portfolio.timezone)
    from forecasting.prices import PriceHistoryError

    store = _price_store(portfolio, args.store)
    try:
        schedule, problem, summary = make_plan(
            args.config,
            start,
            args.out,
            step_minutes=args.step_minutes,
            horizon_hours=args.horizon_hours,
            inputs=args.inputs,
            plot=not args.no_plot,
            portfolio=portfolio,
            store=store,
        )
    except PriceHistoryError as error:
        print(f"ems plan: no prices for the plan: {error}", file=sys.stderr)
        return 2
    finally:
        if store is not None:
            store.close()
    print(render_table(schedule, problem, summary))
    if schedule.message:  # load left unserved, or why the rule-based fallback stood in
        print(f"ems plan: warning: {schedule.message}", file=sys.stderr)
    if summary.get("price_dates_forecast"):
        print(
            f"prices: JEPX for {', '.join(summary['price_dates_published']) or 'no date'}; "
            f"forecast for {', '.join(summary['price_dates_forecast'])}"
        )
    print(
        f"wrote {args.out / 'schedule.csv'}, {args.out / 'summary.json'}, {args.out / 'demand_plan.csv'}"
        + ("" if args.no_plot else f", {args.out / 'plan.png'}")
    )
    return 0


def _site_row(schedule, problem, site: str) -> tuple:
    dt_h = problem.grid.step_h
    power = schedule.power_kw
    grid = next(g for g in problem.grids if g.site == site)
    net = power[grid.id]
    pv = sum((power[p.id] for p in problem.pvs if p.site == site), pd.Series(0.0, index=power.index))
    storage = [b.id for b in problem.batteries if b.site == site]
    battery_kwh = float(power[storage].clip(lower=0).sum().sum() * dt_h) if storage else 0.0
    ev_kwh = sum(
        float(-power[e.id].where([s == site for s in e.charger_site], 0.0).clip(upper=0).sum() * dt_h)
        for e in problem.evs
    )
    return (
        site,
        net.clip(lower=0).sum() * dt_h,
        abs(net.clip(upper=0).sum()) * dt_h,
        pv.sum() * dt_h,
        battery_kwh,
        ev_kwh,
        net.max(),
        schedule.load_shed_kwh.get(site, 0.0),
    )


def render_table(schedule, problem, summary: dict) -> str:
    rows = [_site_row(schedule, problem, site) for site in problem.sites]
    header = (
        f"{'site':<18}{'import kWh':>12}{'export kWh':>12}{'PV kWh':>10}{'batt out kWh':>14}{'EV in kWh':>11}"
        f"{'peak kW':>9}{'unserved kWh':>14}"
    )
    lines = [header, "-" * len(header)]
    lines += [
        f"{r[0]:<18}{r[1]:>12.1f}{r[2]:>12.1f}{r[3]:>10.1f}{r[4]:>14.1f}{r[5]:>11.1f}{r[6]:>9.1f}{r[7]:>14.1f}"
        for r in rows
    ]
    hours = problem.grid.steps * problem.grid.step_h
    energy, baseline_energy = summary["energy_cost_yen"], summary["baseline_energy_cost_yen"]
    demand, baseline_demand = summary["demand_charge_yen"], summary["baseline_demand_charge_yen"]
    lines += [
        "",
        f"status {summary['solver_status']}  gap {summary['mip_gap']}  "
        f"build {summary['build_s']:.2f} s  solve {summary['solve_s']:.2f} s",
        f"energy cost {energy:,.0f} yen over {hours:g} h (energy, CO2 price, degradation; rule-based baseline "
        f"{baseline_energy:,.0f} yen, saving {baseline_energy - energy:,.0f} yen)",
        f"  stored energy at the end {summary['stored_energy_change_kwh']:+,.1f} kWh (baseline "
        f"{summary['baseline_stored_energy_change_kwh']:+,.1f} kWh): "
        "the energy cost does not value it, the objective does",
        f"demand charge {demand:,.0f} yen (baseline {baseline_demand:,.0f} yen): a new peak above the contract demand, "
        f"billed for all the months the tariff says, not for these {hours:g} h alone",
        f"total {energy + demand:,.0f} yen (baseline {baseline_energy + baseline_demand:,.0f} yen, saving "
        f"{baseline_energy + baseline_demand - energy - demand:,.0f} yen, "
        f"of which {baseline_demand - demand:,.0f} yen demand charge)",
        f"CO2 {summary['co2_kg']:,.1f} kg (baseline {summary['baseline_co2_kg']:,.1f} kg)  "
        f"objective {summary['objective_yen']:,.0f} yen",
        f"EV target shortfall {summary['ev_target_shortfall_kwh']:.1f} kWh  "
        f"BCP reserve shortfall {summary['bcp_shortfall_kwh_h']:.1f} kWh*h"
        f"  unserved load {summary['load_shed_total_kwh']:.1f} kWh",
    ]
    return "\n".join(lines)
