"""``ems dispatch``: generate a request log, and replay one through the ride-pooling dispatcher.

    ems dispatch generate --config config/arao.toml --date 2026-04-15 --requests 200 --out requests.csv
    ems dispatch simulate --config config/arao.toml --requests requests.csv --out out/dispatch
    ems dispatch simulate ... --policy no-pooling      (or insertion; default: [dispatch] policy)
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
    simulate.add_argument("--policy", choices=["ilp", "insertion", "no-pooling"], default=None,
                          help="overrides [dispatch] policy (default ilp)")
    simulate.add_argument("--reservations", help="energy manager's Reservation (JSON) to honour")
    simulate.set_defaults(handler=_simulate)


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
        rid for rid, *c in frame[["request_id", "origin_lat", "origin_lon", "dest_lat", "dest_lon"]].itertuples(index=False)
        if not (area.contains(Point(c[0], c[1])) and area.contains(Point(c[2], c[3])))
    ]
    if outside:
        print(f"ems dispatch generate: {len(outside)} generated trips fall outside the service area of "
              f"{args.config}; enlarge portfolio.service_area_km", file=sys.stderr)
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
        reservation = Reservation.model_validate_json(Path(args.reservations).read_text()) if args.reservations else None
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
    print(f"replayed {len(log.requests)} requests of {log.clock.date} with {len(setup.vehicles)} vehicles, policy {args.policy}")
    print(kpi_table({args.policy: figures}))
    reasons = Counter(r.rejection.reason.value for r in result.riders.values() if r.rejection is not None)
    if reasons:
        print("rejected: " + ", ".join(f"{count} {reason}" for reason, count in reasons.most_common()))
    print(f"wrote {Path(args.out) / 'kpis.json'}, trips.csv, fleet_plans.json, fleet_states.json, timeline.png")
    return 0
