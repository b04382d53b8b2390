"""``ems twin``: serve a portfolio's simulated devices over Modbus TCP and MQTT until stopped."""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import logging
import signal
import sys
from pathlib import Path

from ems.config import load_portfolio


def add_broker_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--mqtt-host", help="override [mqtt].host")
    parser.add_argument("--mqtt-port", type=int, help="override [mqtt].port")


def add_protocol_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--chargers",
        choices=("mqtt", "ocpp"),
        help="the twin's depot chargers speak MQTT or OCPP 1.6 (override [twin].chargers)",
    )
    parser.add_argument(
        "--v2h",
        choices=("mqtt", "echonet"),
        help="the twin's V2H points speak MQTT or ECHONET Lite (override [twin].v2h)",
    )


def with_protocols(portfolio, args: argparse.Namespace):
    """The portfolio with ``--chargers/--v2h`` applied to its ``[twin]`` section."""
    update = {k: v for k, v in (("chargers", args.chargers), ("v2h", args.v2h)) if v is not None}
    if not update:
        return portfolio
    return portfolio.model_copy(update={"twin": portfolio.twin.model_copy(update=update)})


def register(subparsers) -> None:
    parser = subparsers.add_parser("twin", help="serve the simulated devices (Modbus TCP and MQTT) until stopped")
    parser.add_argument("--config", required=True, type=Path, help="portfolio TOML file")
    add_broker_options(parser)
    parser.add_argument("--modbus-base-port", type=int, help="override [twin].modbus_base_port")
    parser.add_argument("--speed", type=float, help="simulated seconds per real second (override [twin].speed)")
    parser.add_argument("--start", type=dt.datetime.fromisoformat, help="simulated start, ISO 8601 with offset")
    parser.add_argument("--no-mqtt", action="store_true", help="serve only the Modbus devices")
    parser.add_argument(
        "--record",
        type=Path,
        help="write the twin's own record here: twin_vehicles.csv while it runs, twin_final.json when it stops",
    )
    parser.add_argument(
        "--record-every-s", type=float, default=300.0, help="simulated seconds between recorded rows (default 300)"
    )
    add_protocol_options(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from drivers.mqtt.credentials import CredentialsError
    from simulations.twin import Twin, TwinOptions

    logging.getLogger("pymodbus").setLevel(logging.CRITICAL)
    if args.start is not None and args.start.tzinfo is None:
        raise SystemExit("ems twin: --start needs a UTC offset, e.g. 2026-04-15T06:00:00+09:00")
    if args.record_every_s <= 0:
        raise SystemExit("ems twin: --record-every-s must be positive")
    portfolio = load_portfolio(args.config)
    options = TwinOptions(
        mqtt_host=args.mqtt_host,
        mqtt_port=args.mqtt_port,
        modbus_base_port=args.modbus_base_port,
        speed=args.speed,
        start=args.start,
        serve_mqtt=not args.no_mqtt,
        chargers=args.chargers,
        v2h=args.v2h,
        record_dir=args.record,
        record_every_s=args.record_every_s,
    )
    try:
        twin = Twin(portfolio, args.config, options)
    except CredentialsError as error:
        print(f"ems twin: {error}")
        return 2
    return asyncio.run(_serve(twin))


async def _serve(twin) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)

    def started() -> None:
        _announce(twin)

    from drivers.mqtt.presence import AlreadyRunning

    try:
        await twin.run(stop, on_started=started)
    except OSError as error:
        print(f"ems twin: cannot serve: {error}")
        return 1
    except AlreadyRunning as error:  # another twin serves this topic root on this broker
        print(f"ems twin: {error}", file=sys.stderr)
        return 2
    print("twin stopped")
    return 0


def _announce(twin) -> None:
    extra = twin.protocol_devices
    print(
        f"twin of {twin.portfolio.portfolio.name}: {len(twin.servers)} Modbus devices, "
        f"{len(twin.mqtt_devices)} MQTT devices, {len(extra.charge_points)} OCPP charge points, "
        f"{len(extra.nodes)} ECHONET Lite nodes"
    )
    print(f"clock starts {twin.clock.now().isoformat()} at speed {getattr(twin.clock, 'speed', 1.0)}")
    for line in twin.describe():
        print("  " + line)
    print("serving; stop with Ctrl-C", flush=True)
