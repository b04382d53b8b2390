"""``ems prices``: import JEPX spot prices into the store, list what is stored, backtest the
price forecast on the stored history; ``ems imbalance``: the 30-minute balance ``ems run`` kept."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from pathlib import Path
from zoneinfo import ZoneInfo

from ems.config import load_portfolio
from ems.config.market import JEPX_AREAS


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "prices", help="JEPX spot prices: import a spot_summary file, list, backtest the forecast"
    )
    commands = parser.add_subparsers(dest="prices_command", required=True, metavar="ACTION")
    imp = commands.add_parser("import", help="import a JEPX spot_summary_YYYY.csv (Shift-JIS) into the store")
    imp.add_argument("--config", required=True, type=Path)
    imp.add_argument("file", type=Path, help="spot_summary_YYYY.csv as published by JEPX")
    imp.add_argument("--area", choices=JEPX_AREAS, help="price area (default: market.area, else kyushu)")
    imp.add_argument("--store", type=Path, help="override storage.sqlite_path")
    imp.set_defaults(handler=run_import)
    show = commands.add_parser("list", help="dates stored per area")
    show.add_argument("--config", required=True, type=Path)
    show.add_argument("--store", type=Path, help="override storage.sqlite_path")
    show.set_defaults(handler=run_list)
    test = commands.add_parser("backtest", help="score the price forecast on the last days of the stored history")
    test.add_argument("--config", required=True, type=Path)
    test.add_argument("--store", type=Path, help="override storage.sqlite_path")
    test.add_argument("--area", choices=JEPX_AREAS, help="price area (default: market.area, else kyushu)")
    test.add_argument("--days", type=int, default=14, help="held-out days at the end of the history (default 14)")
    test.add_argument(
        "--lead-days", type=int, default=1, choices=(1, 2), help="days from the last known date to the forecast date"
    )
    test.set_defaults(handler=run_backtest)
    balance = subparsers.add_parser(
        "imbalance", help="the demand plan's 30-minute balance kept by ems run: planned, metered, imbalance"
    )
    balance.add_argument("--config", required=True, type=Path)
    balance.add_argument("--date", type=dt.date.fromisoformat, help="local day (default: today)")
    balance.add_argument("--store", type=Path, help="override storage.sqlite_path")
    balance.set_defaults(handler=run_imbalance)


def _area(portfolio, given: str | None) -> str:
    return given or (portfolio.market.area if portfolio.market else "kyushu")


def run_import(args: argparse.Namespace) -> int:
    from ems.market.jepx import JepxFormatError, read_spot_csv
    from ems.store import Store
    from ems.store.prices import store_prices

    portfolio = load_portfolio(args.config)
    area = _area(portfolio, args.area)
    try:
        spot = read_spot_csv(args.file, area)
    except JepxFormatError as error:
        print(f"ems prices import: {error}", file=sys.stderr)
        return 2
    store = Store(args.store or portfolio.storage.sqlite_path)
    try:
        count = store_prices(store, area, spot.days, spot.source, dt.datetime.now(dt.UTC))
    finally:
        store.close()
    print(f"imported {count} dates of {area} prices ({spot.first} to {spot.last}) from {args.file}")
    return 0


def run_list(args: argparse.Namespace) -> int:
    from ems.store import Store
    from ems.store.prices import price_coverage

    portfolio = load_portfolio(args.config)
    store = Store(args.store or portfolio.storage.sqlite_path, create=False, readonly=True)
    try:
        rows = price_coverage(store)
    finally:
        store.close()
    if not rows:
        print("no prices stored (ems prices import --config C FILE)")
    for area, first, last, count in rows:
        print(f"{area:<10} {first} to {last}  {count} dates")
    return 0


def run_backtest(args: argparse.Namespace) -> int:
    from ems.control.prices import price_site
    from ems.store import Store
    from ems.store.prices import prices_between
    from forecasting.prices import PriceHistoryError, backtest_prices

    portfolio = load_portfolio(args.config)
    store = Store(args.store or portfolio.storage.sqlite_path, create=False, readonly=True)
    try:
        history = prices_between(store, _area(portfolio, args.area), dt.date(1900, 1, 1), dt.date(2999, 12, 31))
    finally:
        store.close()
    try:
        result = backtest_prices(history, price_site(portfolio), args.days, args.lead_days)
    except PriceHistoryError as error:
        print(f"ems prices backtest: {error}", file=sys.stderr)
        return 2
    print(json.dumps(result, indent=2))
    return 0


def day_bounds(day: dt.date, timezone: str) -> tuple[dt.datetime, dt.datetime]:
    start = dt.datetime.combine(day, dt.time(0), ZoneInfo(timezone))
    return start, start + dt.timedelta(days=1)


def run_imbalance(args: argparse.Namespace) -> int:
    from ems.store import Store
    from ems.store.prices import imbalance_summary, slot_balances

    portfolio = load_portfolio(args.config)
    zone = portfolio.portfolio.timezone
    day = args.date or dt.datetime.now(ZoneInfo(zone)).date()
    since, until = day_bounds(day, zone)
    store = Store(args.store or portfolio.storage.sqlite_path, create=False, readonly=True)
    try:
        rows = slot_balances(store, since, until, site="total")
        summary = imbalance_summary(store, since, until)
    finally:
        store.close()
    if not rows:
        print(f"no 30-minute balances recorded for {day} (ems run records them with [market])")
        return 0
    print(f"{'slot':>4} {'start':<6}{'planned kWh':>13}{'metered kWh':>13}{'imbalance kWh':>15}{'yen':>9}")
    for b in rows:
        local = b.slot_start.astimezone(since.tzinfo)
        print(
            f"{local.hour * 2 + local.minute // 30 + 1:>4} {local:%H:%M} {b.planned_kwh:>12.2f}{b.metered_kwh:>13.2f}"
            f"{b.imbalance_kwh:>+15.2f}{b.imbalance_yen:>9.0f}"
        )
    print(
        f"{summary['slots']} slots: |imbalance| {summary['imbalance_abs_kwh']:.2f} kWh, "
        f"{summary['imbalance_yen']:,.0f} yen"
    )
    return 0
