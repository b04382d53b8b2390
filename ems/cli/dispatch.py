"""``ems dispatch``: generate a request log, replay one through the ride-pooling dispatcher, run the
dispatcher live on MQTT, and feed a request log to it in simulated time.

    ems dispatch generate --config config/arao.toml --date 2026-04-15 --requests 200 --out requests.csv
    ems dispatch simulate --config config/arao.toml --requests requests.csv --out out/dispatch
    ems dispatch simulate ... --policy no-pooling      (or insertion; default: [dispatch] policy)
    ems dispatch serve --config config/arao.toml --credentials config/mosquitto/dispatcher.credentials
    ems dispatch feed --config config/arao.toml --requests requests.csv --speed 60 \\
        --credentials config/mosquitto/rider.credentials
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from collections import Counter
from pathlib import Path

from ems.config import load_portfolio


def register(subparsers) -> None:
    parser = subparsers.add_parser("dispatch", help="ride-pooling dispatcher: generate requests, replay a day")
    commands = parser.add_subparsers(dest="dispatch_command", required=True, metavar="ACTION")

    generate = commands.add_parser("generate", help="write a realistic, seeded request log for the city")
    generate.add_argument("--config", required=True, help="portfolio file (TOML)")
    generate.add_argument("--date", required=True, type=dt.date.fromisoformat, help="service day, YYYY-MM-DD")
    generate.add_argument("--requests", required=True, type=int, help="number of requests")
    generate.add_argument("--seed", type=int, default=0)
    generate.add_argument("--out", required=True, help="CSV file to write")
    generate.set_defaults(handler=_generate)

    simulate = commands.add_parser("simulate", help="replay a request log and write KPIs, trips and a timeline")
    simulate.add_argument("--config", required=True, help="portfolio file (TOML)")
    simulate.add_argument("--requests", required=True, help="request log (CSV)")
    simulate.add_argument("--out", required=True, help="output directory")
    simulate.add_argument(
        "--policy",
        choices=["ilp", "insertion", "no-pooling"],
        default=None,
        help="overrides [dispatch] policy (default ilp)",
    )
    simulate.add_argument("--reservations", help="energy manager's Reservation (JSON) to honour")
    simulate.set_defaults(handler=_simulate)

    serve = commands.add_parser(
        "serve", help="the live dispatcher: riders' requests on MQTT, the fleet contract published"
    )
    _live_options(serve)
    serve.add_argument(
        "--store", default="out/dispatch/live.sqlite", help="SQLite store of riders and routes (resumed on restart)"
    )
    serve.add_argument("--client-id", help="MQTT client id (default dispatcher-<[twin] topic_root>)")
    serve.add_argument("--hours", type=float, help="stop after this many simulated hours (default: run until stopped)")
    serve.add_argument(
        "--expected-requests",
        type=float,
        default=200.0,
        help="requests expected in the day: the demand forecast behind charging and rebalancing",
    )
    serve.add_argument(
        "--policy",
        choices=["ilp", "insertion", "no-pooling"],
        default=None,
        help="overrides [dispatch] policy (default ilp)",
    )
    serve.add_argument("--out", help="on stopping, write the riders' and fleet's KPIs of the run (kpis.json) here")
    serve.set_defaults(handler=_serve)

    feed = commands.add_parser("feed", help="publish a request log on rides/request in simulated time")
    _live_options(feed)
    feed.add_argument("--requests", required=True, help="request log (CSV, as for simulate)")
    feed.add_argument("--client-id", default="ride-feeder", help="MQTT client id")
    feed.add_argument(
        "--lead-s",
        type=float,
        default=0.5,
        help="send each request this many real seconds before its time (the dispatcher holds it until then)",
    )
    feed.set_defaults(handler=_feed)


def _generate(args: argparse.Namespace) -> int:
    from dispatch.demand import generate_requests
    from dispatch.model import Point

    portfolio = load_portfolio(args.config)
    if args.requests < 1:
        print("ems dispatch generate: --requests must be at least 1", file=sys.stderr)
        return 2
    frame = generate_requests(args.date, args.requests, portfolio.portfolio.timezone, args.seed)
    area = _area(portfolio)
    outside = [
        rid
        for rid, *c in frame[["request_id", "origin_lat", "origin_lon", "dest_lat", "dest_lon"]].itertuples(index=False)
        if not (area.contains(Point(c[0], c[1])) and area.contains(Point(c[2], c[3])))
    ]
    if outside:
        print(
            f"ems dispatch generate: {len(outside)} generated trips fall outside the service area of "
            f"{args.config}; enlarge portfolio.service_area_km",
            file=sys.stderr,
        )
        return 2
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(out, index=False)
    hours = frame["time"].str.slice(11, 13).value_counts().sort_index()
    print(f"wrote {len(frame)} requests for {args.date} to {out}")
    print("requests per hour: " + ", ".join(f"{h}h {n}" for h, n in hours.items()))
    return 0


def _area(portfolio):
    from dispatch.model import Point
    from dispatch.requests_io import ServiceArea

    info = portfolio.portfolio
    return ServiceArea(Point(info.latitude_deg, info.longitude_deg), info.service_area_km)


def _simulate(args: argparse.Namespace) -> int:
    from dispatch.assign import Policy
    from dispatch.demand import DemandModel
    from dispatch.fleet import fleet_from_portfolio
    from dispatch.report import kpi_table, write_outputs
    from dispatch.requests_io import RequestFileError, read_requests
    from dispatch.router import RouterError, make_router
    from dispatch.simulate import Simulation
    from ems.fleet import Reservation

    portfolio = load_portfolio(args.config)
    settings = portfolio.dispatch
    max_seats = max((v.seats for v in portfolio.vehicles), default=0)
    if max_seats == 0:
        print(f"ems dispatch simulate: {args.config} has no vehicles", file=sys.stderr)
        return 2
    try:
        log = read_requests(args.requests, _area(portfolio), portfolio.portfolio.timezone, max_seats)
        graph_file = settings.road_graph_file
        if graph_file is not None and not Path(graph_file).is_absolute():
            graph_file = str(Path(args.config).parent / graph_file)
        router = make_router(settings.speed_kmh, settings.detour_factor, graph_file)
        reservation = (
            Reservation.model_validate_json(Path(args.reservations).read_text()) if args.reservations else None
        )
    except (RequestFileError, RouterError) as error:
        print(f"ems dispatch simulate: {error}", file=sys.stderr)
        return 2
    except (OSError, ValueError) as error:
        print(f"ems dispatch simulate: {args.reservations}: {error}", file=sys.stderr)
        return 2
    setup = fleet_from_portfolio(portfolio, log.clock.date)
    forecast = DemandModel(len(log.requests))
    args.policy = args.policy or settings.policy
    simulation = Simulation(setup, log.requests, router, settings, Policy(args.policy), forecast, reservation)
    result = simulation.run()
    figures = write_outputs(result, log.clock, args.out)
    print(
        f"replayed {len(log.requests)} requests of {log.clock.date} with {len(setup.vehicles)} vehicles, "
        f"policy {args.policy}"
    )
    print(kpi_table({args.policy: figures}))
    reasons = Counter(r.rejection.reason.value for r in result.riders.values() if r.rejection is not None)
    if reasons:
        print("rejected: " + ", ".join(f"{count} {reason}" for reason, count in reasons.most_common()))
    print(f"wrote {Path(args.out) / 'kpis.json'}, trips.csv, fleet_plans.json, fleet_states.json, timeline.png")
    return 0


def _live_options(parser) -> None:
    from ems.cli.args import aware_datetime

    parser.add_argument("--config", required=True, help="portfolio file (TOML)")
    parser.add_argument("--mqtt-host", help="broker host (default [mqtt].host)")
    parser.add_argument("--mqtt-port", type=int, help="broker port (default [mqtt].port)")
    parser.add_argument("--credentials", help="'user:password' file of this client's broker user")
    parser.add_argument("--speed", type=float, default=1.0, help="simulated seconds per real second")
    parser.add_argument(
        "--start", type=aware_datetime, help="simulated time at --epoch (default: now; feed: the first request)"
    )
    parser.add_argument(
        "--epoch",
        type=float,
        help="Unix time [s] at which the simulated clock reads --start "
        "(default: this process's start); give every process of one run the same",
    )


def _clock(args, default_start: dt.datetime):
    from ems.dispatching.clock import SharedClock

    if args.speed <= 0:
        raise SystemExit(f"ems dispatch {args.dispatch_command}: --speed must be positive")
    return SharedClock(args.start or default_start, args.speed, args.epoch)


def _router(portfolio, config: str):
    from dispatch.router import make_router

    settings = portfolio.dispatch
    graph_file = settings.road_graph_file
    if graph_file is not None and not Path(graph_file).is_absolute():
        graph_file = str(Path(config).parent / graph_file)
    return make_router(settings.speed_kmh, settings.detour_factor, graph_file)


def _serve(args: argparse.Namespace) -> int:
    from dispatch.assign import Policy
    from dispatch.router import RouterError
    from drivers.mqtt.credentials import CredentialsError
    from drivers.mqtt.link import MqttLink
    from drivers.mqtt.presence import AlreadyRunning, check_absent, presence_wills
    from ems.dispatching.serve import broker_settings, stop_on_signals
    from ems.dispatching.service import DispatchService
    from ems.dispatching.store import DispatchStore

    portfolio = load_portfolio(args.config)
    if not portfolio.vehicles:
        print(f"ems dispatch serve: {args.config} has no vehicles", file=sys.stderr)
        return 2
    client_id = args.client_id or f"dispatcher-{portfolio.twin.topic_root.replace('/', '-')}"
    try:
        router = _router(portfolio, args.config)
        settings = broker_settings(
            portfolio, client_id, args.mqtt_host, args.mqtt_port, args.credentials, persistent=True
        )
        check_absent(settings.model_copy(update={"clean_session": True}))
    except (RouterError, CredentialsError, AlreadyRunning) as error:
        print(f"ems dispatch serve: {error}", file=sys.stderr)
        return 2
    clock = _clock(args, dt.datetime.now(dt.UTC))
    will, birth = presence_wills(client_id, "dispatcher")
    link = MqttLink(settings, will=will, birth=birth)
    store = DispatchStore(args.store)
    policy = Policy(args.policy or portfolio.dispatch.policy)
    service = DispatchService(portfolio, link, store, clock, router, args.expected_requests, policy)
    until_s = service.next_s + args.hours * 3600.0 if args.hours else None
    stop = stop_on_signals()
    link.start()
    if not link.wait_connected(10.0):
        print(
            f"ems dispatch serve: broker {settings.host}:{settings.port} not reachable yet "
            f"({link.last_error or 'no answer'}); retrying",
            file=sys.stderr,
        )
    print(
        f"dispatcher {client_id}: {len(service.engine.vehicles)} vehicles, policy {policy.value}, "
        f"batch {portfolio.dispatch.batch_interval_s:g} s, clock {clock.now().isoformat(timespec='seconds')} "
        f"at speed {clock.speed:g}, store {args.store}",
        flush=True,
    )
    try:
        service.run(stop, until_s)
    finally:
        link.stop()
        store.close()
    if args.out:
        _write_live_kpis(service, Path(args.out))
    c = service.counters
    print(
        f"dispatcher stopped: {c.batches} batches, {c.received} requests received, {c.refused} refused, "
        f"{c.duplicates} duplicates",
        flush=True,
    )
    return 0


def _write_live_kpis(service, out: Path) -> None:
    """The replay's KPI definitions over the riders this service has received (kpis.json)."""
    import json

    from dispatch.fleet import floor_kwh
    from dispatch.simulate import SimulationResult, kpis

    engine = service.engine
    now = service.next_s - service.settings.batch_interval_s
    result = SimulationResult(
        engine.riders,
        engine.vehicles,
        engine.assign_ms,
        engine._plans(now),
        engine._states(now),
        now,
        engine.policy.value,
        engine.reassignments,
        {v: floor_kwh(x.spec, engine.reservation) for v, x in engine.vehicles.items()},
    )
    figures = kpis(result) if engine.riders else {"requests": 0}
    out.mkdir(parents=True, exist_ok=True)
    (out / "kpis.json").write_text(json.dumps({"policy": engine.policy.value, **figures}, indent=2) + "\n")
    print(f"wrote {out / 'kpis.json'}", flush=True)


def _feed(args: argparse.Namespace) -> int:
    from dispatch.requests_io import RequestFileError, read_requests
    from drivers.mqtt.credentials import CredentialsError
    from drivers.mqtt.link import MqttLink
    from ems.dispatching.feed import feed
    from ems.dispatching.serve import broker_settings, stop_on_signals

    portfolio = load_portfolio(args.config)
    max_seats = max((v.seats for v in portfolio.vehicles), default=0)
    try:
        log = read_requests(args.requests, _area(portfolio), portfolio.portfolio.timezone, max_seats)
        settings = broker_settings(
            portfolio, args.client_id, args.mqtt_host, args.mqtt_port, args.credentials, persistent=True
        )
    except (RequestFileError, CredentialsError) as error:
        print(f"ems dispatch feed: {error}", file=sys.stderr)
        return 2
    clock = _clock(args, log.clock.to_datetime(log.requests[0].time_s))
    link = MqttLink(settings)
    stop = stop_on_signals()
    link.start()
    if not link.wait_connected(10.0):
        print(
            f"ems dispatch feed: broker {settings.host}:{settings.port} not reachable yet "
            f"({link.last_error or 'no answer'}); requests are kept and sent on connection",
            file=sys.stderr,
        )
    print(
        f"feeding {len(log.requests)} requests of {log.clock.date} from {clock.now().isoformat(timespec='seconds')} "
        f"at speed {clock.speed:g}",
        flush=True,
    )
    try:
        published, acknowledged = feed(log, link, clock, stop, lead_real_s=max(0.0, args.lead_s))
    finally:
        link.stop()
    print(f"published {published} requests, {acknowledged} acknowledged by the broker", flush=True)
    return 0 if acknowledged == published == len(log.requests) else 1
