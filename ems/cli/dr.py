"""``ems dr ven``: the OpenADR 2.0b VEN on its own (``ems run`` starts it too when ``[openadr]``
is set): registers with the VTN, opts in or out of each event by the portfolio's flexibility,
writes accepted events as event files for the live plan and the nightly simulation, and
reports the sites' grid power as the VTN asks."""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import signal
import sys
from pathlib import Path

from ems.config import load_portfolio


def register(subparsers) -> None:
    parser = subparsers.add_parser("dr", help="demand response over OpenADR 2.0b")
    commands = parser.add_subparsers(dest="dr_command", required=True, metavar="ACTION")
    ven = commands.add_parser("ven", help="run the VEN: receive events from the VTN, opt in or out, report telemetry")
    ven.add_argument("--config", required=True, type=Path)
    ven.add_argument(
        "--store", type=Path, help="override storage.sqlite_path (telemetry read from it, decisions recorded)"
    )
    ven.add_argument(
        "--inputs",
        choices=("forecast", "profiles"),
        default="forecast",
        help="PV and load of the reference plan events are measured against",
    )
    ven.add_argument("--duration-s", type=float, help="stop after this many seconds (default: until interrupted)")
    ven.set_defaults(handler=run_ven)


def run_ven(args: argparse.Namespace) -> int:
    portfolio = load_portfolio(args.config)
    if portfolio.openadr is None:
        print(f"ems dr ven: {args.config}: no [openadr] section (vtn_url, ven_name)", file=sys.stderr)
        return 2
    return asyncio.run(_serve(args, portfolio))


async def _serve(args: argparse.Namespace, portfolio) -> int:
    from drivers.openadr.ven import VenError
    from ems.control.ven_service import VenService
    from ems.store import Store

    store = Store(args.store or portfolio.storage.sqlite_path)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    service = VenService(portfolio, args.config, store, lambda: dt.datetime.now(dt.UTC), inputs=args.inputs)
    try:
        await service.start()
    except VenError as error:
        print(f"ems dr ven: {error}", file=sys.stderr)
        await service.stop()
        store.close()
        return 2
    print(
        f"VEN {portfolio.openadr.ven_name} registered with {portfolio.openadr.vtn_url} as {service.ven.ven_id}; "
        f"accepted events go to {portfolio.openadr.events_dir}",
        flush=True,
    )
    try:
        await asyncio.wait_for(stop.wait(), args.duration_s)
    except TimeoutError:
        pass
    finally:
        await service.stop()
        store.close()
    for event_id, decision in service.decisions.items():
        print(f"{event_id}: {'opt in' if decision['opt_in'] else 'opt out'} ({decision['reason']})")
    return 0
