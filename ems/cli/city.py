"""``ems city``: a whole city day, the twin, the dispatcher, the controller and the feeder as
separate processes on one broker, with ``city.json`` and ``report.html`` at the end (docs/city.md)."""

from __future__ import annotations

import argparse
import datetime as dt
import signal
import sys
from pathlib import Path


def _clock_time(text: str) -> dt.time:
    try:
        return dt.time.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a time of day HH:MM") from None


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "city", help="run a city day: twin, dispatcher, controller and feeder as separate processes"
    )
    parser.add_argument("--config", required=True, type=Path, help="portfolio TOML file")
    parser.add_argument("--requests", required=True, type=Path, help="request log (CSV, `ems dispatch generate`)")
    parser.add_argument("--speed", required=True, type=float, help="simulated seconds per real second")
    parser.add_argument("--hours", required=True, type=float, help="simulated hours to run")
    parser.add_argument(
        "--out", required=True, type=Path, help="output directory (city.json, report.html, stores, logs)"
    )
    parser.add_argument(
        "--start", type=_clock_time, help="local time the day starts, HH:MM (default: the hour of the first request)"
    )
    parser.add_argument("--mqtt-host", help="use this broker (default: start a private one with `ems broker`)")
    parser.add_argument("--mqtt-port", type=int, help="its port")
    parser.add_argument(
        "--bcp-at", type=_clock_time, help="switch BCP mode on at this local time, HH:MM (`ems bcp activate`)"
    )
    parser.add_argument("--outage", help="the outage the BCP switch is for (file or spec, docs/bcp.md)")
    parser.add_argument(
        "--startup-s", type=float, default=40.0, help="real seconds the processes get to start (default 40)"
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from simulations.city import CityError, CityOptions, run_city

    if (args.mqtt_host is None) != (args.mqtt_port is None):
        print("ems city: --mqtt-host and --mqtt-port go together", file=sys.stderr)
        return 2
    options = CityOptions(
        config=args.config,
        requests=args.requests,
        speed=args.speed,
        hours=args.hours,
        out=args.out,
        mqtt_host=args.mqtt_host,
        mqtt_port=args.mqtt_port,
        start=args.start,
        bcp_at=args.bcp_at,
        outage=args.outage,
        startup_s=args.startup_s,
    )

    def interrupted(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupted)  # stop the processes it started, as for Ctrl-C
    try:
        summary = run_city(options, echo=lambda line: print(line, flush=True))
    except CityError as error:
        print(f"ems city: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("ems city: interrupted; every process it started was stopped", file=sys.stderr)
        return 130
    riders, fleet = summary["riders"], summary["fleet_soc"]
    print(
        f"riders: {riders['served']} of {riders['requests']} served; fleet SoC stored vs twin: largest difference "
        f"{fleet['largest_difference_kwh']} kWh; {summary['replans']['count']} plans"
    )
    print(f"wrote {args.out / 'city.json'} and {args.out / 'report.html'}")
    if summary.get("failed_processes"):
        print(f"ems city: processes ended with errors: {summary['failed_processes']}", file=sys.stderr)
        return 1
    return 0
