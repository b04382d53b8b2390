"""``ems bcp``: plan for an outage without touching anything (drill), resilience statistics,
and BCP mode as a logged operator action (activate, deactivate, status).

The drill is wired here, at the top floor: its state comes from a file, the controller's store
or a read-only snapshot of the digital twin, and the planner is handed numbers only, never a
driver, broker client or dispatcher link, so it cannot send a set-point or move a vehicle.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from pathlib import Path

from ems.cli.args import aware_datetime
from ems.config import ConfigError, load_portfolio, profile_values


def register(subparsers) -> None:
    parser = subparsers.add_parser("bcp", help="BCP mode: drills and resilience statistics for shelters in an outage")
    commands = parser.add_subparsers(dest="bcp_command", required=True, metavar="BCP_COMMAND")
    drill = commands.add_parser("drill", help="plan an outage on the configuration and the latest state; send nothing")
    drill.add_argument("--config", required=True, type=Path, help="portfolio TOML file")
    drill.add_argument("--outage", required=True, help="outage TOML file, or a spec 'start=...; hours=72; sites=a,b'")
    drill.add_argument(
        "--state",
        type=Path,
        help='JSON of the energy on board: {"soc_kwh": {id: kWh}}; wins over the store and the twin',
    )
    drill.add_argument(
        "--store",
        type=Path,
        help="the controller's store to take the latest state from (default: storage.sqlite_path, if it exists)",
    )
    drill.add_argument(
        "--as-of",
        type=aware_datetime,
        metavar="TIME",
        help="look for the store's latest state in the week before this time "
        "(default now; for a past twin run's store)",
    )
    drill.add_argument(
        "--no-store", action="store_true", help="start from the config's initial state of charge, not from the store"
    )
    drill.add_argument(
        "--out", type=Path, default=Path("out/bcp-drill"), help="report directory (default out/bcp-drill)"
    )
    drill.add_argument("--no-fleet", action="store_true", help="plan with the stationary batteries and PV only")
    drill.add_argument(
        "--progress",
        action="store_true",
        help="print a line 'progress K/N: step' as each step starts (for the console)",
    )
    drill.add_argument(
        "--twin",
        action="store_true",
        help="start the digital twin and take the energy on board from its devices, read over Modbus and MQTT",
    )
    drill.add_argument("--mqtt-host", help="with --twin: broker address (default: the config's)")
    drill.add_argument("--mqtt-port", type=int, help="with --twin: broker port (default: the config's)")
    drill.add_argument("--modbus-base-port", type=int, help="with --twin: first Modbus port of the twin")
    drill.set_defaults(handler=run_drill)
    res = commands.add_parser("resilience", help="hours survived per shelter for outages starting at every hour")
    res.add_argument("--config", required=True, type=Path, help="portfolio TOML file")
    res.add_argument(
        "--outage", required=True, help="outage file or spec: its sites, first start and pv_scale are used"
    )
    res.add_argument(
        "--durations", type=float, nargs="+", default=[24, 72, 168], help="outage lengths, hours (default 24 72 168)"
    )
    res.add_argument("--starts", type=int, default=24, help="number of start times (default 24: every hour of one day)")
    res.add_argument("--every-hours", type=float, default=1.0, help="hours between start times (default 1)")
    res.add_argument("--out", type=Path, default=Path("out/bcp-resilience"), help="output directory")
    res.set_defaults(handler=run_resilience)
    for name, text in (
        ("activate", "switch the controller into BCP mode for an outage (logged operator action)"),
        ("deactivate", "return the controller to normal operation (logged operator action)"),
        ("status", "show the BCP mode and its log"),
    ):
        command = commands.add_parser(name, help=text)
        command.add_argument(
            "--state-dir",
            type=Path,
            default=Path("var/ems"),
            help="where the mode and its log are kept (default var/ems)",
        )
        if name != "status":
            command.add_argument("--operator", required=True, help="who takes the action (kept in the log)")
            command.add_argument("--reason", default="", help="why (kept in the log)")
        if name == "activate":
            command.add_argument("--config", required=True, type=Path, help="portfolio TOML file")
            command.add_argument("--outage", required=True, help="outage TOML file or spec")
            command.add_argument(
                "--force",
                action="store_true",
                help="activate even an outage that has ended or starts more than a week ahead (the record says why)",
            )
        command.set_defaults(
            handler={"activate": run_activate, "deactivate": run_deactivate, "status": run_status}[name]
        )


def _now(portfolio_timezone: str = "Asia/Tokyo") -> dt.datetime:
    from zoneinfo import ZoneInfo

    return dt.datetime.now(ZoneInfo(portfolio_timezone))


def run_activate(args: argparse.Namespace) -> int:
    from ems.bcp.mode import BcpActivationRefused, BcpModeError, BcpModeStore

    inputs = _inputs(args)
    if inputs is None:
        return 2
    portfolio, _profiles, outage = inputs
    try:
        mode = BcpModeStore(args.state_dir).activate(
            outage, str(args.config), args.operator, _now(portfolio.portfolio.timezone), args.reason, force=args.force
        )
    except BcpActivationRefused as error:
        print(f"ems: {args.outage}: {error}", file=sys.stderr)
        return 2
    except BcpModeError as error:
        print(f"ems: {error}", file=sys.stderr)
        return 1
    if mode.forced:
        print(f"forced: {mode.forced}")
    print(
        f"BCP mode ACTIVE since {mode.since.isoformat()} by {mode.operator}: {outage.name}, "
        f"sites {', '.join(outage.sites)}"
    )
    print(f"recorded in {args.state_dir / 'bcp_mode.json'} and {args.state_dir / 'bcp_mode.log'}")
    return 0


def run_deactivate(args: argparse.Namespace) -> int:
    from ems.bcp.mode import BcpModeError, BcpModeStore

    try:
        mode = BcpModeStore(args.state_dir).deactivate(args.operator, _now(), args.reason)
    except BcpModeError as error:
        print(f"ems: {error}", file=sys.stderr)
        return 1
    print(f"BCP mode OFF since {mode.since.isoformat()} by {mode.operator}; normal operation")
    return 0


def run_status(args: argparse.Namespace) -> int:
    from ems.bcp.mode import BcpModeStore

    store = BcpModeStore(args.state_dir)
    mode = store.current()
    if mode is None:
        print("BCP mode: never activated here")
    else:
        state = "ACTIVE" if mode.active else "off"
        print(
            f"BCP mode: {state} since {mode.since.isoformat()} ({mode.operator})"
            + (f": {mode.outage.name}" if mode.outage else "")
        )
    for entry in store.log():
        print(f"  {entry['since']}  {entry['action']:<10} {entry['operator']}  {entry.get('reason', '')}")
    return 0


def state_from_store(
    path: Path, portfolio, lookback_days: int = 7, as_of: dt.datetime | None = None
) -> tuple[dict[str, float], str]:
    """The latest good state of charge in the controller's store: batteries and vehicles from
    their own telemetry; a vehicle without any, from its home charger's reading (the vehicle
    plugged there reports through it)."""
    from ems.store import Store, StoreError

    try:
        store = Store(path, create=False, readonly=True)
    except StoreError as error:
        raise ConfigError(path, [("(store)", str(error))]) from None
    since = (as_of or dt.datetime.now(dt.UTC)) - dt.timedelta(days=lookback_days)
    state: dict[str, float] = {}
    newest: dt.datetime | None = None
    try:
        sources = [(b.id, b.id, b.capacity_kwh) for b in portfolio.batteries] + [
            (v.id, v.id, v.battery_kwh) for v in portfolio.vehicles
        ]
        sources += [(v.id, v.home_charger, v.battery_kwh) for v in portfolio.vehicles if v.home_charger]
        for asset, device, capacity in sources:
            if asset in state:
                continue
            series = store.series(device, "soc_fraction", since)
            if series:
                time, fraction = series[-1]
                state[asset] = min(1.0, max(0.0, fraction)) * capacity
                newest = max(newest, time) if newest else time
    finally:
        store.close()
    if not state or newest is None:
        return {}, f"store {path}: no state of charge in the last {lookback_days} days; config initial_soc_fraction"
    return state, f"store {path}: {len(state)} batteries and vehicles, latest reading {newest.isoformat()}"


def read_state(path: Path | None, portfolio) -> dict[str, float]:
    """Energy on board per vehicle or battery id from a state file (see docs/bcp.md)."""
    if path is None:
        return {}
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(path, [("(file)", "no such file")]) from None
    except json.JSONDecodeError as error:
        raise ConfigError(path, [("(syntax)", str(error))]) from None
    values = raw.get("soc_kwh") if isinstance(raw, dict) else None
    if not isinstance(values, dict):
        raise ConfigError(path, [("soc_kwh", "expected an object {id: kWh}")])
    known = {v.id: v.battery_kwh for v in portfolio.vehicles} | {b.id: b.capacity_kwh for b in portfolio.batteries}
    problems = [(f"soc_kwh.{k}", "not a vehicle or battery id") for k in values if k not in known]
    problems += [
        (f"soc_kwh.{k}", f"must be a number between 0 and {known[k]} kWh")
        for k, x in values.items()
        if k in known and (not isinstance(x, (int, float)) or not 0 <= x <= known[k])
    ]
    if problems:
        raise ConfigError(path, problems)
    return {k: float(x) for k, x in values.items()}


def _inputs(args):
    from ems.bcp import OutageError, load_outage

    portfolio = load_portfolio(args.config)
    profiles = {name: profile_values(p, args.config) for name, p in portfolio.profiles.items()}
    try:
        outage = load_outage(args.outage)
        outage.check_against(portfolio, str(args.outage))
    except OutageError as error:
        print(f"ems: {error}", file=sys.stderr)
        return None
    return portfolio, profiles, outage


DRILL_STEPS = (
    "loading the portfolio and the outage",
    "reading the energy on board",
    "building the BCP problem",
    "solving the BCP problem",
    "writing the report",
)


def _step(args: argparse.Namespace, index: int) -> None:
    if getattr(args, "progress", False):
        print(f"progress {index + 1}/{len(DRILL_STEPS)}: {DRILL_STEPS[index]}", flush=True)


def run_drill(args: argparse.Namespace) -> int:
    from ems.bcp import bcp_problem_from_portfolio, plan_bcp
    from ems.bcp.report import write_report

    _step(args, 0)
    inputs = _inputs(args)
    if inputs is None:
        return 2
    portfolio, profiles, outage = inputs
    _step(args, 1)
    state: dict[str, float] = {}
    source = "config initial_soc_fraction"
    store_path = args.store or Path(portfolio.storage.sqlite_path)
    from_store = not args.twin and not args.no_store
    if from_store and store_path.is_file():
        state, source = state_from_store(store_path, portfolio, as_of=args.as_of)
    elif from_store and args.store is not None:
        raise ConfigError(args.store, [("(file)", "no such store")])
    if args.twin:
        from simulations.bcp_drill import twin_snapshot

        snapshot = twin_snapshot(portfolio, args.config, args.mqtt_host, args.mqtt_port, args.modbus_base_port)
        state = snapshot.soc_kwh
        source = f"digital twin: {len(snapshot.soc_kwh)} batteries and vehicles read over Modbus and MQTT"
    if args.state is not None:  # a state file, when given, wins
        state, source = state | read_state(args.state, portfolio), str(args.state)
    _step(args, 2)
    problem = bcp_problem_from_portfolio(portfolio, outage, profiles, state, include_fleet=not args.no_fleet)
    _step(args, 3)
    plan = plan_bcp(problem)
    _step(args, 4)
    title = f"BCP drill: {outage.name}, {portfolio.portfolio.name}"
    extra = {
        "drill": True,
        "outage": outage.model_dump(mode="json"),
        "state": source,
        "initial_soc_kwh": {k: round(v, 3) for k, v in state.items()},
    }
    summary = write_report(plan, args.out, title, portfolio.portfolio.timezone, extra)
    # what live BCP mode would publish to the dispatcher; a drill only writes it down
    reservation = plan.reservation(problem.start)
    (args.out / "reservation.json").write_text(reservation.model_dump_json(indent=2))
    print(render_summary(summary, title))
    print(
        f"wrote {args.out / 'report.html'}, {args.out / 'bcp.json'}, {args.out / 'supply.csv'}, "
        f"{args.out / 'reservation.json'} (drill: nothing was sent)"
    )
    return 0


def render_summary(summary: dict, title: str) -> str:
    lines = [title, "", f"{'shelter':<26}{'hours up':>10}{'bound h':>9}{'of bound':>10}{'served kWh':>12}", "-" * 67]
    for shelter, hours in summary["shelter_hours"].items():
        lines.append(
            f"{shelter:<26}{hours:>10.0f}{summary['upper_bound_hours'][shelter]:>9.0f}"
            f"{summary['hours_share_of_bound'][shelter] * 100:>9.0f}%"
            f"{summary['served_kwh_by_shelter'].get(shelter, 0.0):>12.1f}"
        )
    lines += [
        f"{'all together':<26}{summary['hours_all_up']:>10.0f}{summary['joint_upper_bound_hours']:>9.0f}",
        "(bound: energy on board + what the chargers can put back under the import limit + shelter PV and batteries)",
        "",
        f"critical energy served {summary['critical_energy_served_kwh']:.1f} of "
        f"{summary['critical_energy_demand_kwh']:.1f} kWh ({summary['served_share'] * 100:.1f} %)",
        f"vehicles called {len(summary['vehicles_assigned'])}: {', '.join(summary['vehicles_assigned']) or 'none'};"
        f" {summary['vehicle_km']:.1f} km",
        f"status {summary['solver_status']}  gap {summary['mip_gap']}  "
        f"build {summary['build_s']:.2f} s  solve {summary['solve_s']:.2f} s",
    ]
    return "\n".join(lines)


def run_resilience(args: argparse.Namespace) -> int:
    from ems.bcp.resilience import resilience_figure, survival_runs, survival_statistics

    inputs = _inputs(args)
    if inputs is None:
        return 2
    portfolio, profiles, outage = inputs
    starts = [outage.start + dt.timedelta(hours=args.every_hours * i) for i in range(args.starts)]
    runs = survival_runs(portfolio, profiles, outage.sites, starts, max(args.durations), outage.pv_scale)
    stats = survival_statistics(runs, args.durations)
    args.out.mkdir(parents=True, exist_ok=True)
    runs.to_csv(args.out / "runs.csv", index=False)
    stats.to_csv(args.out / "resilience.csv", index=False)
    (args.out / "resilience.json").write_text(json.dumps(stats.to_dict(orient="records"), indent=2))
    figure = resilience_figure(
        stats, runs, f"Shelter survival, {portfolio.portfolio.name}: outage of {', '.join(outage.sites)}"
    )
    figure.savefig(args.out / "resilience.png", dpi=110)
    print(stats.to_string(index=False))
    print(
        f"wrote {args.out / 'resilience.csv'}, {args.out / 'resilience.json'}, {args.out / 'resilience.png'}, "
        f"{args.out / 'runs.csv'}"
    )
    return 0
