"""``ems simulate nightly``: tomorrow's DR simulations, scenario sweep and operator report."""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from pathlib import Path


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "simulate", help="run simulations (nightly: DR events, flexibility, scenarios, report)"
    )
    modes = parser.add_subparsers(dest="mode", required=True, metavar="MODE")
    nightly = modes.add_parser("nightly", help="simulate a day: report.html and kpis.json in --out")
    nightly.add_argument("--config", required=True, type=Path, help="portfolio TOML file")
    nightly.add_argument("--date", required=True, type=dt.date.fromisoformat, help="day simulated, YYYY-MM-DD (local)")
    nightly.add_argument("--out", required=True, type=Path, help="output directory (rerun into it to resume)")
    nightly.add_argument(
        "--events", type=Path, nargs="*", help="DR event files (default: events/*.toml next to the config)"
    )
    nightly.add_argument(
        "--history",
        type=Path,
        help="CSV time,value[,site][,dr_event] of measured net import [kW] (dr_event=1: a past DR day)",
    )
    nightly.add_argument(
        "--dr-days",
        type=_dates,
        default=(),
        metavar="DATE,...",
        help="past DR days (YYYY-MM-DD, comma-separated): never taken as like days",
    )
    nightly.add_argument("--scheduler", help="Dask scheduler address, e.g. tcp://HOST:8786 (default: local processes)")
    nightly.add_argument(
        "--workers", type=int, help="local worker processes (default: all cores; 1 runs in this process)"
    )
    nightly.add_argument(
        "--inputs",
        choices=("forecast", "profiles"),
        default="forecast",
        help="PV and load bands from the forecasters (default) or from the config's profiles",
    )
    nightly.add_argument("--samples", type=int, default=20, help="forecast-error samples (default 20)")
    nightly.add_argument("--seed", type=int, default=0, help="seed of the night's samples (default 0)")
    nightly.add_argument(
        "--flexibility",
        choices=("all", "blocks", "none"),
        default="all",
        help="flexibility per 30-min slot and 3-h block (all), blocks only, or none",
    )
    nightly.add_argument(
        "--no-variants", action="store_true", help="run each event only as given (no shifted or resized variants)"
    )
    nightly.add_argument("--no-rolling", action="store_true", help="skip the rolling-plan versus perfect-foresight day")
    nightly.add_argument("--quiet", action="store_true", help="no progress bar")
    nightly.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from simulations.baselines import HistoryError
    from simulations.events import EventFileError
    from simulations.nightly import NightlyOptions, run_nightly

    options = NightlyOptions(
        samples=args.samples,
        seed=args.seed,
        flexibility=args.flexibility,
        event_variants=not args.no_variants,
        rolling=not args.no_rolling,
        inputs=args.inputs,
        dr_days=args.dr_days,
    )
    try:
        figures = run_nightly(
            args.config,
            args.date,
            args.out,
            event_files=args.events,
            history_csv=args.history,
            scheduler=args.scheduler,
            workers=args.workers,
            options=options,
            progress=not args.quiet,
        )
    except (EventFileError, HistoryError) as error:
        print(f"ems: {error}", file=sys.stderr)
        return 2
    print(summary_text(figures))
    print(f"wrote {args.out / 'report.html'}, {args.out / 'kpis.json'}")
    return 0


def summary_text(figures: dict) -> str:
    plan, spread = figures["plan"], figures["scenario_spread"]
    sweep = figures["sweep"]
    workers = f"{sweep['workers']} worker{'s' if sweep['workers'] != 1 else ''}"
    ran = (
        f"{sweep['run_now']} run now on {workers} in {sweep['elapsed_s']:.0f} s"
        if sweep["run_now"]
        else "all read back from an earlier run"
    )
    lines = [
        f"{figures['portfolio']}: {figures['date']}  ({sweep['scenarios']} scenarios, {ran})",
        f"plan: cost {plan['energy_cost_yen']:,.0f} yen  CO2 {plan['co2_kg']:,.0f} kg  "
        f"local PV {plan['local_pv_share']:.1%}  peak import {plan['peak_import_kw']:,.1f} kW",
    ]
    if spread.get("energy_cost_yen"):
        c = spread["energy_cost_yen"]
        lines.append(
            f"cost over {spread['samples']} forecast-error samples: "
            f"P10 {c['p10']:,.0f}  P50 {c['p50']:,.0f}  P90 {c['p90']:,.0f} yen"
        )
    for e in figures["events"]:
        h, p = e["vs_baseline"], e["vs_plan_without_event"]
        lines.append(
            f"event {e['event_id']}: requested {h['requested_kwh']:.0f} kWh, delivered {_kwh(h['delivered_kwh'])} kWh "
            f"vs {e['baseline']['rule']} (adjustment {e['baseline']['adjustment_kw']:+.1f} kW), "
            f"{_kwh(p['delivered_kwh'])} kWh vs plan without event; value {e['value_yen']:,.0f} yen"
        )
    pf = figures.get("perfect_foresight")
    if pf:
        lines.append(
            f"rolling plan {pf['rolling_objective_yen']:,.0f} yen "
            f"vs perfect foresight {pf['perfect_objective_yen']:,.0f} yen "
            f"(rule-based {pf['rule_objective_yen']:,.0f}): captures {pf['captured_savings']:.1%} of the saving"
        )
    return "\n".join(lines)


def _dates(text: str) -> tuple[dt.date, ...]:
    try:
        return tuple(dt.date.fromisoformat(part.strip()) for part in text.split(",") if part.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected dates YYYY-MM-DD separated by commas") from None


def _kwh(value: float) -> str:
    return f"{round(value, 1) + 0.0:.1f}"  # + 0.0 turns -0.0 into 0.0
