"""``ems devices``: read every configured device once (and optionally write set-points first)."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
from pathlib import Path

from ems.config import load_portfolio


def register(subparsers) -> None:
    from ems.cli.twin import add_broker_options, add_protocol_options

    parser = subparsers.add_parser("devices", help="read every configured device once and print a table")
    parser.add_argument("--config", required=True, type=Path, help="portfolio TOML file")
    add_broker_options(parser)
    add_protocol_options(parser)
    parser.add_argument("--json", action="store_true", help="print a JSON list instead of a table")
    parser.add_argument("--only", nargs="+", metavar="DEVICE", help="read only these device ids")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="DEVICE=KW",
        help="write a power set-point [kW] (positive = discharge into the site) through the guard, then read",
    )
    parser.set_defaults(handler=run)


def _setpoints(items: list[str]) -> dict[str, float]:
    parsed = {}
    for item in items:
        device, sep, value = item.partition("=")
        try:
            parsed[device] = float(value)
        except ValueError:
            raise SystemExit(f"ems devices: --set {item!r}: expected DEVICE=KW, e.g. city_hall_bess=-20") from None
        if not sep or not device:
            raise SystemExit(f"ems devices: --set {item!r}: expected DEVICE=KW")
    return parsed


def run(args: argparse.Namespace) -> int:
    from drivers.mqtt.credentials import CredentialsError
    from ems.devices import controller_broker

    logging.getLogger("pymodbus").setLevel(logging.CRITICAL)
    from ems.cli.twin import with_protocols

    portfolio = with_protocols(load_portfolio(args.config), args)
    setpoints = _setpoints(args.set)
    try:
        broker = controller_broker(portfolio, args.config, args.mqtt_host, args.mqtt_port)
        # its own client id: reading the devices never takes the running controller's session over
        broker = broker.model_copy(update={"client_id": f"{broker.client_id}-devices-{os.getpid()}"})
    except CredentialsError as error:
        print(f"ems devices: {error}")
        return 2
    only = set(args.only) | set(setpoints) if args.only else None
    known = {
        a.id
        for t in ("grid_connections", "pv_arrays", "loads", "batteries", "shelters", "chargers", "vehicles")
        for a in getattr(portfolio, t)
    }
    unknown = sorted((set(args.only or ()) | set(setpoints)) - known)
    if unknown:
        print(f"ems devices: no such device in {args.config}: {', '.join(unknown)}")
        return 2
    from ems.devices import DeviceConfigError

    try:
        readings, problems = asyncio.run(_read(portfolio, broker, only, setpoints, args.config))
    except (DeviceConfigError, CredentialsError, OSError) as error:  # OSError: e.g. the OCPP port is taken
        print(f"ems devices: {args.config}: {error}")
        return 2
    rows = [r.as_dict() for r in readings]
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        print(_table(rows))
    for line in problems:
        print(line)
    return 1 if problems else 0


async def _read(portfolio, broker, only, setpoints, config_path=None):
    from drivers.api import DeviceUnavailable, NotWritable
    from ems.devices import DeviceSet
    from ems.guard import SetpointRefused

    devices = DeviceSet(portfolio, broker, only, config_path=config_path)
    problems = []
    await devices.open()
    try:
        for device, kw in setpoints.items():
            try:
                ack = await devices.write(device, kw)
                print(f"{device}: set-point {kw:g} kW -> applied {ack.applied_kw:g} kW")
            except (SetpointRefused, NotWritable, DeviceUnavailable) as error:
                problems.append(f"ems devices: {error}")
        if setpoints:
            await asyncio.sleep(0.3)  # let the devices publish the new state
        return await devices.read_all(), problems
    finally:
        await devices.close()


def _fmt(value, digits: int) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _table(rows: list[dict]) -> str:
    lines = [f"{'device':<24} {'power_kw':>9} {'soc':>6} {'quality':<12} note"]
    for r in rows:
        note = r["error"] or (f"plugged {r['vehicle_id']}" if r["plugged"] and r["vehicle_id"] else "")
        if r["plugged"] is False:
            note = "unplugged"
        lines.append(f"{r['device']:<24} {_fmt(r['power_kw'], 2):>9} {_fmt(r['soc'], 3):>6} {r['quality']:<12} {note}")
    return "\n".join(lines)
