"""``ems serve``: the operators' console (web pages and JSON API) on the controller's store."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ems.cli.args import aware_datetime
from ems.config import load_portfolio


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "serve", help="the operators' console: web pages and JSON API on the store (docs/console.md)"
    )
    parser.add_argument("--config", required=True, type=Path)
    parser.add_argument(
        "--store", type=Path, help="the controller's store (default: storage.sqlite_path); never created"
    )
    parser.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)"
    )
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--users", type=Path, help="the users file (default: console.users_file)")
    parser.add_argument(
        "--dispatch-store",
        type=Path,
        default=Path("out/dispatch/live.sqlite"),
        help="the live dispatcher's store, read for rides and positions (default out/dispatch/live.sqlite)",
    )
    parser.add_argument(
        "--bcp-state-dir",
        type=Path,
        default=Path("var/ems"),
        help="where `ems bcp activate` records BCP mode (as given to ems run; default var/ems)",
    )
    parser.add_argument(
        "--at",
        type=aware_datetime,
        metavar="TIME",
        help="show the store as at this time, running on from it (a store of a past twin run); default: the wall clock",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from ems.web.server import missing_web_extra

    missing = missing_web_extra()
    if missing:
        print(
            f"ems serve: the console needs the 'web' extra ({missing} is not installed): pip install 'arao-ems[web]'",
            file=sys.stderr,
        )
        return 2
    portfolio = load_portfolio(args.config)  # a bad file stops here, before anything runs
    from ems.store import Store
    from ems.web.app import ConsoleSetupError, console_files, create_app
    from ems.web.context import shifted_clock, utc_now
    from ems.web.server import bind, serve_forever

    store = Store(args.store or portfolio.storage.sqlite_path, create=False)  # audit entries and requests are written
    try:
        try:
            secret, users_path = console_files(portfolio, args.users)
        except ConsoleSetupError as error:
            print(f"ems serve: {error}", file=sys.stderr)
            return 2
        try:
            sock = bind(args.host, args.port)
        except OSError as error:
            print(f"ems serve: cannot listen on {args.host}:{args.port}: {error.strerror or error}", file=sys.stderr)
            return 2
        app = create_app(
            portfolio,
            args.config,
            store,
            users_path=users_path,
            secret=secret,
            dispatch_store=args.dispatch_store,
            bcp_state_dir=args.bcp_state_dir,
            clock=shifted_clock(args.at) if args.at else utc_now,
        )
        users = app.state.console.users
        print(f"console on http://{args.host}:{args.port}/ (store {store.path}, users {users.path})", flush=True)
        if not users.all():
            print(
                f"no users in {users.path} yet: ems users add NAME --role operator --config {args.config}", flush=True
            )
        serve_forever(app, sock)
    finally:
        store.close()
    return 0
