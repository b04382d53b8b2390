"""Run all benchmarks (or those named with --only) and write one JSON list of results."""

from __future__ import annotations

import argparse
import importlib
import json
import pkgutil
import sys
import time
from pathlib import Path

import benchmarks


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks")
    parser.add_argument("--out", default="out/bench.json")
    parser.add_argument("--only", nargs="*", help="module names without the bench_ prefix")
    args = parser.parse_args(argv)
    names = sorted(m.name for m in pkgutil.iter_modules(benchmarks.__path__) if m.name.startswith("bench_"))
    if args.only:
        names = [n for n in names if n.removeprefix("bench_") in args.only]
    rows: list[dict] = []
    for name in names:
        started = time.perf_counter()
        print(f"== {name}", flush=True)
        module = importlib.import_module(f"benchmarks.{name}")
        module_rows = module.run()
        rows.extend(module_rows)
        for row in module_rows:
            print(f"  {row['name']:<44} {row['metric']:<28} {row['value']:>14.4g} {row['unit']}")
        print(f"   ({time.perf_counter() - started:.1f} s)", flush=True)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    previous = json.loads(out.read_text()) if out.exists() and args.only else []
    kept = [r for r in previous if r["name"] not in {row["name"] for row in rows}]
    out.write_text(json.dumps(kept + rows, indent=2))
    print(f"wrote {len(rows)} results to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
