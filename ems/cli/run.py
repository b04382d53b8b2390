"""``ems run``: the live control loop, against the configured devices or the digital twin."""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import logging
import os
import signal
import sys
from pathlib import Path
from zoneinfo import ZoneInfo

import pandas as pd

from ems.cli.args import aware_datetime
from ems.cli.twin import add_protocol_options
from ems.config import load_portfolio

log = logging.getLogger(__name__)


def register(subparsers) -> None:
    parser = subparsers.add_parser("run", help="run the live control loop (or against the digital twin)")
    parser.add_argument("--config", required=True, type=Path)
    parser.add_argument(
        "--twin", action="store_true", help="start the digital twin and control it over the real protocols"
    )
    parser.add_argument(
        "--twin-process",
        action="store_true",
        help="control a twin that another process serves (`ems twin`): run on its simulated clock "
        "(--start, --speed, EMS_CLOCK_EPOCH) and its ports (--modbus-base-port)",
    )
    parser.add_argument(
        "--speed", type=float, default=1.0, help="with --twin or --twin-process: simulated seconds per real second"
    )
    parser.add_argument(
        "--start", type=aware_datetime, help="with --twin or --twin-process: simulated start time (default now)"
    )
    parser.add_argument("--duration-hours", type=float, help="stop after this much (simulated) time")
    parser.add_argument("--mqtt-host", help="override the config's broker host")
    parser.add_argument("--mqtt-port", type=int, help="override the config's broker port")
    parser.add_argument("--modbus-base-port", type=int, help="with --twin: first Modbus port of the twin")
    parser.add_argument("--store", type=Path, help="override storage.sqlite_path")
    add_protocol_options(parser)
    parser.add_argument("--inputs", choices=("forecast", "profiles"), default="forecast")
    parser.add_argument(
        "--nightly",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="run the nightly DR simulation at control.nightly_time (default: on live, off with --twin)",
    )
    parser.add_argument(
        "--bcp-state-dir",
        type=Path,
        default=Path("var/ems"),
        help="where `ems bcp activate` records BCP mode (default var/ems), read every re-plan",
    )
    parser.add_argument("--status-every-s", type=float, default=2.0, help="real seconds between status lines")
    parser.add_argument(
        "--http", metavar="HOST:PORT", help="serve the operators' console from this process (docs/console.md)"
    )
    parser.set_defaults(handler=run)


def own_stream(stream):
    """A text stream on a duplicate of ``stream``'s file descriptor.

    Pyomo's HiGHS interface redirects descriptors 1 and 2 (and swaps ``sys.stdout``) for the
    length of every solve, and the controller solves in worker threads: a status line or a log
    record written meanwhile would be swallowed, or written to the capture after it closed
    (``ValueError: I/O operation on closed file``), which ended ``ems run``. A duplicate keeps
    pointing at the terminal or the journal.
    """
    try:
        fd = stream.fileno()
    except (AttributeError, OSError, ValueError):
        return stream  # an in-process caller's stream without a descriptor (tests)
    return os.fdopen(
        os.dup(fd), "w", buffering=1, encoding=getattr(stream, "encoding", None) or "utf-8", errors="replace"
    )


def _own_log_streams() -> None:
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.StreamHandler) and handler.stream in (sys.stderr, sys.__stderr__):
            handler.setStream(own_stream(handler.stream))


def run(args: argparse.Namespace) -> int:
    portfolio = load_portfolio(args.config)  # a bad file stops here, before anything runs
    if args.twin and args.twin_process:
        print("ems run: --twin starts a twin in this process, --twin-process controls another one's: give one")
        return 2
    if not (args.twin or args.twin_process) and args.speed != 1.0:
        print("ems run: --speed needs --twin or --twin-process (live devices run in real time)")
        return 2
    if args.http:  # checked before anything runs
        from ems.web.server import missing_web_extra, parse_address

        try:
            args.http = parse_address(args.http)
        except ValueError as error:
            print(f"ems run: --http {error}", file=sys.stderr)
            return 2
        if missing_web_extra():
            print(
                f"ems run: --http needs the 'web' extra ({missing_web_extra()} is not installed): "
                "pip install 'arao-ems[web]'",
                file=sys.stderr,
            )
            return 2
        from ems.web.app import ConsoleSetupError, console_files

        try:
            args.http_secret = console_files(portfolio)[0]
        except ConsoleSetupError as error:
            print(f"ems run: --http: {error}", file=sys.stderr)
            return 2
    _own_log_streams()
    return asyncio.run(_main(args, portfolio))


def status_line(controller, portfolio) -> str:
    now = controller.clock().astimezone(ZoneInfo(portfolio.portfolio.timezone))
    sites = []
    for grid in portfolio.grid_connections:
        reading = controller.state.reading(grid.id)
        value = "--" if reading is None or reading.power_kw is None else f"{reading.power_kw:+.0f}"
        sites.append(f"{grid.site}:{value}")
    fleet = controller.state.vehicle_soc_kwh()
    fleet_kwh = sum(fleet.values())
    figures = controller.figures
    cost = "--" if figures.plan_cost_yen is None else f"{figures.plan_cost_yen:,.0f}"
    health = controller.health
    if health.failing_since is not None:  # never the old plan's word while re-planning fails
        since = health.failing_since.astimezone(now.tzinfo)
        plan = f"re-plan failing since {since:%H:%M} ({health.reason[:120]})"
    else:
        plan = f"plan {figures.plan_status or '--'} {cost} yen solve {figures.solve_s:.2f} s"
    return (
        f"{now.isoformat(' ', 'minutes')} | grid kW {' '.join(sites)} | "
        f"fleet {fleet_kwh:.0f} kWh ({len(fleet)} reporting) | {plan} | missing {len(controller.state.missing())}"
    )


async def _main(args: argparse.Namespace, portfolio) -> int:
    from drivers.mqtt.credentials import CredentialsError
    from drivers.mqtt.presence import AlreadyRunning
    from drivers.sim.clock import ScaledClock
    from ems.control.controller import Controller
    from ems.devices import DeviceSet, controller_broker
    from ems.planning import make_plan
    from ems.scheduler import ControlScheduler
    from ems.store import Store

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)

    simulated = args.twin or args.twin_process
    clock = ScaledClock(args.start or dt.datetime.now(dt.UTC), args.speed if simulated else 1.0)
    # a store that is not ours, or not writable, stops here (exit 2) before anything runs; it is
    # created only once this process is known to be the only controller
    store_path = args.store or portfolio.storage.sqlite_path
    Store.preflight(store_path)
    http_socket = None
    if args.http:  # a port in use stops here, before devices are touched
        from ems.web.server import bind

        try:
            http_socket = bind(*args.http)
        except OSError as error:
            print(
                f"ems run: --http cannot listen on {args.http[0]}:{args.http[1]}: {error.strerror or error}",
                file=sys.stderr,
            )
            return 2
    twin_task = None
    if args.twin_process and args.modbus_base_port is not None:  # where the other process serves the twin
        portfolio = portfolio.model_copy(
            update={"twin": portfolio.twin.model_copy(update={"modbus_base_port": args.modbus_base_port})}
        )
    if args.twin:
        from simulations.twin import Twin, TwinOptions

        options = TwinOptions(
            mqtt_host=args.mqtt_host,
            mqtt_port=args.mqtt_port,
            modbus_base_port=args.modbus_base_port,
            speed=args.speed,
            start=clock.start,
            chargers=args.chargers,
            v2h=args.v2h,
        )
        twin = Twin(portfolio, args.config, options, clock=clock)
        portfolio = twin.portfolio  # with the twin's ports
        started = asyncio.Event()
        twin_stop = asyncio.Event()
        twin_task = asyncio.create_task(twin.run(twin_stop, on_started=started.set))
        waiting = asyncio.create_task(started.wait())
        await asyncio.wait({twin_task, waiting}, timeout=30, return_when=asyncio.FIRST_COMPLETED)
        if not started.is_set():
            waiting.cancel()
            reason = twin_task.exception() if twin_task.done() else "did not start within 30 s"
            print(f"ems run: the digital twin could not start: {reason}", file=sys.stderr)
            return 2
        print("digital twin serving:\n  " + "\n  ".join(twin.describe()), flush=True)

    from ems.devices import DeviceConfigError

    try:
        devices = DeviceSet(
            portfolio,
            controller_broker(portfolio, args.config, args.mqtt_host, args.mqtt_port),
            presence_role="controller",
            config_path=args.config,
        )
        await devices.open()
    # a second controller would take the first one's session over; a bad driver table, an OCPP
    # password file or port in use
    except (AlreadyRunning, CredentialsError, DeviceConfigError, OSError) as error:
        print(f"ems run: {error}", file=sys.stderr)
        if twin_task is not None:
            twin_stop.set()
            await twin_task
        return 2
    store = Store(store_path, mirror=portfolio.storage.influx is not None)
    fleet = None
    if devices.link is not None:  # the dispatcher's vehicle states and plans, on the controller's own connection
        from ems.control.fleetbus import FleetBus
        from ems.fleet.bounds import FleetBounds

        fleet = FleetBus(
            devices.link, {v.id for v in portfolio.vehicles}, clock.now, bounds=FleetBounds.from_portfolio(portfolio)
        )
    controller = Controller(
        portfolio,
        args.config,
        devices,
        store,
        clock.now,
        inputs=args.inputs,
        fleet=fleet,
        bcp=BcpSwitch(portfolio, args.config, args.bcp_state_dir),
    )
    if portfolio.market is not None:  # meter every 30-minute slot against the demand plan; steer to it if asked
        from ems.control.following import ControllerFollowing, PlanFollower

        controller.following = ControllerFollowing(
            PlanFollower(portfolio, portfolio.market.imbalance_price_yen_per_kwh, enabled=portfolio.market.follow_plan)
        )
    mode = store.get_state("mode", "live")
    store.record_event(
        clock.now(),
        "start",
        f"controller started in {mode} mode",
        {"twin": args.twin, "twin_process": args.twin_process, "speed": args.speed},
    )
    if controller.resume():
        await controller.poll()
        await controller.apply()  # no gap: the stored plan's set-points go out after the first poll

    async def day_ahead(day: dt.date) -> None:
        tomorrow = pd.Timestamp(day + dt.timedelta(days=1)).tz_localize(portfolio.portfolio.timezone)
        out = Path(portfolio.control.day_ahead_dir) / f"{tomorrow:%Y-%m-%d}"
        await asyncio.to_thread(make_plan, args.config, tomorrow, out, inputs=args.inputs, store=store)
        store.record_event(clock.now(), "day-ahead", f"day-ahead plan for {tomorrow:%Y-%m-%d} written to {out}")

    async def nightly(day: dt.date) -> None:
        from simulations.nightly import nightly_job  # above the scheduler's floor: handed in from here

        await asyncio.to_thread(
            nightly_job,
            args.config,
            portfolio.control.nightly_dir,
            clock.now(),
            **_ven_event_files(portfolio, args.config, clock.now()),
        )
        if portfolio.market is not None:
            _write_imbalance(store, portfolio, day)
        store.record_event(clock.now(), "nightly", f"nightly simulation written under {portfolio.control.nightly_dir}")

    run_nightly = args.nightly if args.nightly is not None else not simulated
    scheduler = ControlScheduler(
        controller,
        portfolio.control,
        store,
        speed=clock.speed,
        day_ahead=day_ahead,
        nightly=nightly if run_nightly else None,
        retention_days=portfolio.storage.retention_days,
    )
    try:
        await controller.cycle()
    except Exception as error:  # the first cycle is a job like the others: recorded, the scheduler retries
        log.exception("first control cycle failed")
        store.record_event(
            clock.now(),
            "job-failed",
            f"first control cycle failed: {type(error).__name__}: {error}",
            {"job": "cycle", "error": str(error)},
        )
    scheduler.start()
    web = None
    if http_socket is not None:  # the console in a thread; a re-plan request reaches the scheduler on this loop
        from ems.web.app import create_app
        from ems.web.server import ConsoleThread

        # its own connection: a long page query never holds the lock the control loop writes under
        app = create_app(
            portfolio,
            args.config,
            Store(store_path, create=False),
            clock=clock.now,
            bcp_state_dir=args.bcp_state_dir,
            secret=args.http_secret,
            replan_now=lambda: loop.call_soon_threadsafe(scheduler.take_replan_request),
        )
        web = ConsoleThread(app, http_socket).start()
        print(f"console on http://{args.http[0]}:{args.http[1]}/", flush=True)
    ven = await _start_ven(portfolio, args, store, clock, controller)
    sink_task = asyncio.create_task(_flush_influx(store, portfolio, stop)) if portfolio.storage.influx else None
    end = clock.now() + dt.timedelta(hours=args.duration_hours) if args.duration_hours else None
    console = own_stream(sys.stdout)  # status lines reach the terminal while a solve captures stdout
    try:
        while not stop.is_set() and (end is None or clock.now() < end):
            print(status_line(controller, portfolio), file=console, flush=True)
            try:
                await asyncio.wait_for(stop.wait(), args.status_every_s)
            except TimeoutError:
                pass
    finally:
        if web is not None:
            await asyncio.to_thread(web.stop)
            web.app.state.console.store.close()
        await scheduler.shutdown()
        if ven is not None:
            await ven.stop()
        await controller.shutdown()
        await devices.close()
        if sink_task is not None:
            stop.set()
            await sink_task
        if twin_task is not None:
            twin_stop.set()
            await twin_task
        store.close()
        print("stopped: devices left at their failsafe set-points", file=console, flush=True)
        if console is not sys.stdout:
            console.close()
    return 0


async def _start_ven(portfolio, args, store, clock, controller):
    """With [openadr]: the VEN, reporting the controller's grid readings; None without it or when
    the VTN does not register it (the control loop goes on, the store says why)."""
    if portfolio.openadr is None:
        return None
    from drivers.openadr.ven import VenError
    from ems.control.ven_service import VenService

    def grid_power_kw(site: str):
        reading = controller.state.reading(next(g.id for g in portfolio.grid_connections if g.site == site))
        return None if reading is None else reading.power_kw

    ven = VenService(portfolio, args.config, store, clock.now, inputs=args.inputs, grid_power_kw=grid_power_kw)
    try:
        await ven.start()
    except VenError as error:
        store.record_event(clock.now(), "openadr", f"VEN not registered: {error}")
        print(f"ems run: OpenADR VEN not registered: {error}", file=sys.stderr, flush=True)
        await ven.stop()
        return None
    return ven


def _write_imbalance(store, portfolio, day: dt.date) -> None:
    """Beside the night's report: the 30-minute balance of the day that ended (``imbalance.json``)."""
    import json

    from ems.cli.prices import day_bounds
    from ems.store.prices import imbalance_summary, slot_balances

    since, until = day_bounds(day - dt.timedelta(days=1), portfolio.portfolio.timezone)
    night = Path(portfolio.control.nightly_dir) / (day + dt.timedelta(days=1)).isoformat()
    night.mkdir(parents=True, exist_ok=True)
    slots = [
        {
            "slot_start": b.slot_start.isoformat(),
            "planned_kwh": round(b.planned_kwh, 3),
            "metered_kwh": round(b.metered_kwh, 3),
            "imbalance_kwh": round(b.imbalance_kwh, 3),
            "imbalance_yen": round(b.imbalance_yen, 1),
        }
        for b in slot_balances(store, since, until, site="total")
    ]
    (night / "imbalance.json").write_text(
        json.dumps(
            {"day": str(day - dt.timedelta(days=1)), **imbalance_summary(store, since, until), "slots": slots}, indent=1
        )
    )


def _ven_event_files(portfolio, config_path: Path, now: dt.datetime) -> dict:
    """The nightly simulation's events: the config's own and the VEN's accepted ones of that day."""
    if portfolio.openadr is None:
        return {}
    from ems.control.ven import event_files_on
    from simulations.nightly import default_event_files, night_date

    day = night_date(now, portfolio.portfolio.timezone)
    return {
        "event_files": default_event_files(Path(config_path))
        + event_files_on(Path(portfolio.openadr.events_dir), day, portfolio.portfolio.timezone)
    }


class BcpSwitch:
    """The operator's BCP switch (``ems bcp activate``) and the BCP planner, for the controller."""

    def __init__(self, portfolio, config_path: Path, state_dir: Path):
        from ems.bcp.mode import BcpModeStore

        self.portfolio, self.config_path = portfolio, config_path
        self.modes = BcpModeStore(state_dir)

    def current(self):
        return self.modes.current()

    def reservation(self, outage, soc_kwh: dict, now: dt.datetime):
        from ems.bcp import bcp_problem_from_portfolio, plan_bcp
        from ems.config import profile_values

        profiles = {name: profile_values(p, self.config_path) for name, p in self.portfolio.profiles.items()}
        plan = plan_bcp(bcp_problem_from_portfolio(self.portfolio, outage, profiles, soc_kwh))
        return plan.reservation(pd.Timestamp(now))


async def _flush_influx(store, portfolio, stop: asyncio.Event) -> None:
    from ems.store.influx import InfluxSink

    sink = InfluxSink.from_settings(portfolio.storage.influx)
    while not stop.is_set():
        await asyncio.to_thread(sink.flush, store)
        try:
            await asyncio.wait_for(stop.wait(), portfolio.storage.influx.flush_s)
        except TimeoutError:
            pass
    await asyncio.to_thread(sink.flush, store)
    sink.close()
