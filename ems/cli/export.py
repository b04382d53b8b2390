"""``ems export``: telemetry, set-points, events or job runs from the store, as CSV or Parquet."""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path

import pandas as pd

from ems.cli.args import aware_datetime
from ems.config import load_portfolio


def register(subparsers) -> None:
    parser = subparsers.add_parser("export", help="export stored telemetry, set-points or events")
    parser.add_argument("--config", required=True, type=Path)
    parser.add_argument("--store", type=Path, help="the store to read (default: storage.sqlite_path); never created")
    parser.add_argument("--since", type=aware_datetime, help="ISO 8601 time with offset (inclusive)")
    parser.add_argument("--until", type=aware_datetime, help="ISO 8601 time with offset (exclusive)")
    parser.add_argument("--table", default="telemetry", choices=("telemetry", "setpoints", "events", "job_runs"))
    parser.add_argument("--format", default="csv", choices=("csv", "parquet"))
    parser.add_argument("--out", type=Path, help="output file (default: standard output for CSV)")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from ems.store import Store

    if args.format == "parquet":
        if args.out is None:
            print("ems export: --out is required for parquet", file=sys.stderr)
            return 2
        if importlib.util.find_spec("pyarrow") is None:  # an optional extra: say which before reading anything
            print("ems export: --format parquet needs pyarrow: pip install 'arao-ems[parquet]'", file=sys.stderr)
            return 2
    portfolio = load_portfolio(args.config)
    store = Store(args.store or portfolio.storage.sqlite_path, create=False, readonly=True)
    rows = store.rows(args.table, args.since, args.until)
    columns = next(rows)
    frame = pd.DataFrame(list(rows), columns=columns)
    time_column = "started_ms" if args.table == "job_runs" else "time_ms"
    frame.insert(0, "time", pd.to_datetime(frame.pop(time_column), unit="ms", utc=True))
    if args.format == "parquet":
        frame.to_parquet(args.out, index=False)
    elif args.out is None:
        frame.to_csv(sys.stdout, index=False)
    else:
        frame.to_csv(args.out, index=False)
    if args.out is not None:
        print(f"wrote {len(frame)} rows of {args.table} to {args.out}")
    return 0
