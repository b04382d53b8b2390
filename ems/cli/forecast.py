"""``ems forecast``: backtest the forecasters on real data, list the shipped datasets, and write
the portfolio's forecast. See docs/forecasting.md."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path

import pandas as pd

from ems.config import load_portfolio

DEFAULT_CONFIG = "config/arao.toml"


def register(subparsers) -> None:
    parser = subparsers.add_parser("forecast", help="PV and load forecasts: backtests and portfolio forecast")
    commands = parser.add_subparsers(dest="forecast_command", required=True, metavar="SUBCOMMAND")

    backtest = commands.add_parser("backtest", help="roll a forecaster over history and score it by lead time")
    backtest.add_argument("--kind", choices=("pv", "load"), required=True)
    backtest.add_argument(
        "--data",
        action="append",
        metavar="FILE",
        help="TMY3 file, time,value CSV, or a shipped name (see 'ems forecast datasets'); repeatable "
        "(default: pvlib:723170TYA.CSV, Greensboro NC, for pv; pmdarima:taylor for load)",
    )
    backtest.add_argument("--horizon", default="48h", help="forecast horizon, e.g. 48h (default)")
    backtest.add_argument(
        "--origin-every", default="1h", help="time between forecast issue times, e.g. 1h (default), 6h"
    )
    backtest.add_argument("--config", default=DEFAULT_CONFIG, help="portfolio file (PV: the array modelled)")
    backtest.add_argument("--asset", help="PV: the array modelled (default: the first); load: its peak_kw checks units")
    backtest.add_argument("--tz", help="zone of CSV times without offset (default: the portfolio's)")
    backtest.add_argument("--json", metavar="FILE", help="write the score table as a JSON list")
    backtest.add_argument(
        "--plot", metavar="FILE", help="PNG of forecast against actual (default out/forecast-<kind>-<dataset>.png)"
    )
    backtest.add_argument("--quantiles-out", metavar="FILE", help="write the fitted P10/P90 residual table as JSON")
    backtest.add_argument(
        "--by-hour", action="store_true", help="also print MAE and band coverage by local hour of day"
    )
    backtest.set_defaults(handler=_backtest)

    datasets = commands.add_parser("datasets", help="list the real datasets shipped in installed packages")
    datasets.set_defaults(handler=_datasets)

    portfolio = commands.add_parser("portfolio", help="forecast every PV array and load of a portfolio")
    portfolio.add_argument("--config", default=DEFAULT_CONFIG)
    portfolio.add_argument("--start", required=True, help="local date or ISO time, e.g. 2026-04-15")
    portfolio.add_argument("--horizon", default="48h")
    portfolio.add_argument("--step-minutes", type=int, help="default: the config's planning step")
    portfolio.add_argument("--weather", metavar="FILE", help="weather forecast CSV (GHI or cloud cover by hour)")
    portfolio.add_argument(
        "--history",
        action="append",
        default=[],
        metavar="ASSET=FILE",
        help="measured kW of one asset (time,value CSV); repeatable",
    )
    portfolio.add_argument("--out", metavar="FILE", help="CSV in long form (default: print a summary only)")
    portfolio.set_defaults(handler=_portfolio)


def _horizon(text: str) -> pd.Timedelta:
    try:
        horizon = pd.Timedelta(text)
    except ValueError:
        raise SystemExit(f"ems forecast: --horizon {text!r} is not a duration such as 48h") from None
    if horizon <= pd.Timedelta(0):
        raise SystemExit("ems forecast: --horizon must be positive")
    return horizon


def _origin_every(text: str) -> pd.Timedelta:
    """Raise ValueError naming the flag unless ``text`` is a whole number of hours dividing 24."""
    try:
        every = pd.Timedelta(text)
    except ValueError:
        raise ValueError(f"--origin-every {text!r} is not a duration such as 1h") from None
    hours = every / pd.Timedelta(hours=1)
    if hours < 1 or hours != int(hours) or 24 % int(hours):
        raise ValueError(f"--origin-every {text!r} must be a whole number of hours dividing 24 (1h, 2h, 3h, 6h, ...)")
    return every


def _backtest(args: argparse.Namespace) -> int:
    from forecasting.backtest import day_ahead_skills, run_backtest
    from forecasting.datasets import DEFAULT_DATA, load_data, pv_data
    from forecasting.loaders import DataFileError
    from forecasting.plot import plot_backtest
    from forecasting.settings import load_settings, pv_settings

    portfolio = load_portfolio(args.config)
    tz = args.tz or portfolio.portfolio.timezone
    horizon = _horizon(args.horizon)
    try:
        origin_every = _origin_every(args.origin_every)
    except ValueError as error:
        print(f"ems forecast backtest: {error}", file=sys.stderr)
        return 2
    settings = portfolio.forecasting
    tables, results = [], []
    args.data = args.data or [DEFAULT_DATA[args.kind]]
    for data in args.data:
        try:
            if args.kind == "pv":
                dataset = pv_data(data, _array_spec(portfolio, args.asset), horizon, tz, pv_settings(settings))
            else:
                dataset = load_data(data, horizon, tz, load_settings(settings), _load_peak_kw(portfolio, args.asset))
            spec = replace(dataset.spec, origin_every=origin_every)
            result = run_backtest(dataset.name, dataset.actual_kw, dataset.forecaster, spec, dataset.scale)
        except (DataFileError, ValueError) as error:
            print(f"ems forecast backtest: {error}", file=sys.stderr)
            return 2
        table = result.table()
        tables.append(table)
        results.append(result)
        _print_table(dataset.name, dataset.note, table, result.coverage_held_out, result.coverage_by_hour)
        if args.by_hour:
            from forecasting.backtest import hour_table

            print("by local hour of day (all leads): MAE [kW] and P10-P90 coverage of held-out actuals")
            print(hour_table(result.rows, result.coverage_by_hour).to_string(float_format=lambda v: f"{v:,.3f}"))
        default_plot = Path("out") / f"forecast-{args.kind}-{_slug(dataset.name)}.png"
        plot = Path(args.plot) if args.plot and len(args.data) == 1 else default_plot
        plot_backtest(result.rows, f"{args.kind.upper()} {dataset.name}", plot)
        print(f"plot: {plot}\n")
    combined = pd.concat(tables, ignore_index=True)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(combined.to_dict(orient="records"), indent=2))
        print(f"table: {args.json}")
    if args.quantiles_out:
        q, result = results[-1].quantiles, results[-1]
        Path(args.quantiles_out).write_text(
            json.dumps(
                {
                    "lead_h": q.lead_h,
                    "q10": q.q10,
                    "q90": q.q90,
                    "hour_q10": q.hour_q10,
                    "hour_q90": q.hour_q90,
                    "coverage_held_out": result.coverage_held_out,
                    "coverage_by_hour": {str(h): c for h, c in result.coverage_by_hour.items()},
                },
                indent=2,
            )
        )
        print(f"quantiles: {args.quantiles_out}")
    day_ahead = day_ahead_skills(combined)
    beaten = bool(((day_ahead["skill_vs_persistence"] > 0) & (day_ahead["skill_vs_seasonal_naive"] > 0)).all())
    print(
        f"day-ahead (lead > 12 h): model beats persistence and seasonal naive everywhere: {'yes' if beaten else 'no'}"
    )
    return 0


def _array_spec(portfolio, asset: str | None):
    from forecasting.datasets import ArraySpec

    arrays = {a.id: a for a in portfolio.pv_arrays}
    if not arrays:
        raise ValueError("the portfolio has no PV array to model")
    if asset is not None and asset not in arrays:
        raise ValueError(f"--asset {asset!r} is not a PV array id (known: {', '.join(arrays)})")
    array = arrays[asset] if asset else next(iter(arrays.values()))
    site = next(s for s in portfolio.sites if s.id == array.site)
    return ArraySpec.of(array, site)


def _load_peak_kw(portfolio, asset: str | None) -> float | None:
    if asset is None:
        return None
    loads = {load.id: load for load in portfolio.loads}
    if asset not in loads:
        raise ValueError(f"--asset {asset!r} is not a load id (known: {', '.join(loads)})")
    return loads[asset].peak_kw


def _print_table(name: str, note: str, table: pd.DataFrame, coverage: float, by_hour: dict[int, float]) -> None:
    print(f"== {name}: {note}")
    wide = table.pivot(index="lead_h", columns="model", values="mae")
    model = table[table["model"] == "model"].set_index("lead_h")
    shown = pd.DataFrame(
        {
            "mae_kw": model["mae"],
            "rmse_kw": model["rmse"],
            "nmae": model["nmae"],
            "mae_persist_kw": wide["persistence"],
            "mae_snaive_kw": wide["seasonal_naive"],
            "skill_vs_persist": model["skill_vs_persistence"],
            "skill_vs_snaive": model["skill_vs_seasonal_naive"],
        }
    )
    print(shown.to_string(float_format=lambda v: f"{v:,.3f}" if abs(v) < 100 else f"{v:,.0f}"))
    print(f"P10-P90 coverage of held-out actuals (two-fold, alternate weeks): {coverage:.1%}")
    print("  by local hour of day: " + "  ".join(f"{h:02d}h {c:.0%}" for h, c in sorted(by_hour.items())))


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in name).strip("-").lower()


def _datasets(args: argparse.Namespace) -> int:
    from forecasting.datasets import SHIPPED

    for name, what in SHIPPED.items():
        print(f"{name:<22} {what}")
    return 0


def _portfolio(args: argparse.Namespace) -> int:
    from forecasting import portfolio_forecast
    from forecasting.loaders import DataFileError, read_config_profiles, read_power_csv, read_weather_forecast

    portfolio = load_portfolio(args.config)
    tz = portfolio.portfolio.timezone
    step_minutes = args.step_minutes or portfolio.planning.step_minutes
    start = pd.Timestamp(args.start)
    start = start.tz_localize(tz) if start.tzinfo is None else start
    steps = int(_horizon(args.horizon) / pd.Timedelta(minutes=step_minutes))
    try:
        weather = read_weather_forecast(args.weather, tz) if args.weather else None
        history = {}
        for item in args.history:
            asset, _, path = item.partition("=")
            if not path:
                raise ValueError(f"--history {item!r}: expected ASSET=FILE")
            history[asset] = read_power_csv(path, tz)
        profiles = read_config_profiles(portfolio, args.config)
        forecast = portfolio_forecast(
            portfolio, start, steps, step_minutes, history=history, weather=weather, profiles=profiles
        )
    except (DataFileError, ValueError) as error:
        print(f"ems forecast portfolio: {error}", file=sys.stderr)
        return 2
    long = forecast.to_long()
    step_h = step_minutes / 60.0
    summary = long.groupby(["asset", "kind", "source"], sort=False)[["p10_kw", "p50_kw", "p90_kw"]].sum() * step_h
    summary.columns = ["sum_p10_kwh", "sum_p50_kwh", "sum_p90_kwh"]  # sums of step quantiles
    print(f"forecast from {forecast.index[0]} for {args.horizon} in {step_minutes}-minute steps")
    print(summary.round(1).to_string())
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        long.assign(time=long["time"].map(lambda t: t.isoformat())).to_csv(args.out, index=False, float_format="%.3f")
        print(f"wrote {args.out}")
    return 0
