"""The market side: price forecast skill on a held-out period of the synthetic JEPX fixture,
imbalance per day with and without following the demand plan over a simulated week with
forecast errors, and the OpenADR VEN's event-to-plan latency against a local openleadr VTN."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import socket
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from ems.config import load_portfolio
from ems.control.prices import price_site
from ems.market.jepx import read_spot_csv
from forecasting.prices import backtest_prices
from simulations.imbalance import imbalance_comparison

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "config" / "arao.toml"
FIXTURE = ROOT / "tests" / "data" / "jepx" / "spot_summary_derived_2026.csv"
WEEK = [dt.date(2026, 4, 13) + dt.timedelta(days=k) for k in range(int(os.environ.get("MARKET_BENCH_DAYS", "7")))]
REPLAN_MINUTES = int(os.environ.get("MARKET_BENCH_REPLAN_MINUTES", "120"))


def _row(name: str, metric: str, value: float, unit: str = "1") -> dict:
    return {"name": name, "metric": metric, "value": float(value), "unit": unit}


def price_rows() -> list[dict]:
    days = read_spot_csv(FIXTURE, "kyushu").days
    site = price_site(load_portfolio(CONFIG))
    rows = []
    for lead in (1, 2):
        result = backtest_prices(days, site, held_out_days=14, lead=lead)
        name = f"price forecast fixture (synthetic) lead {lead}d, 14 held-out days"
        rows += [
            _row(name, "mae", result["mae_yen_per_kwh"], "yen/kWh"),
            _row(name, "skill_vs_last_week", result["skill_vs_last_week"]),
            _row(name, "skill_vs_yesterday", result["skill_vs_yesterday"]),
            _row(name, "p10_p90_coverage", result["p10_p90_coverage"]),
        ]
    return rows


def imbalance_rows() -> list[dict]:
    from simulations import imbalance

    imbalance.REPLAN_MINUTES = REPLAN_MINUTES
    result = imbalance_comparison(str(CONFIG), WEEK, seeds=[1], source="profiles")
    Path("out").mkdir(exist_ok=True)
    Path("out/bench_market_imbalance.json").write_text(json.dumps(result, indent=1))
    name = f"demand plan arao.toml {len(WEEK)} days, forecast-error seed 1, re-plan {REPLAN_MINUTES} min"
    return [
        _row(name, "imbalance_following", result["following_kwh_per_day"], "kWh/day"),
        _row(name, "imbalance_open_loop", result["open_loop_kwh_per_day"], "kWh/day"),
        _row(name, "imbalance_following_cost", result["following_yen_per_day"], "yen/day"),
        _row(name, "imbalance_open_loop_cost", result["open_loop_yen_per_day"], "yen/day"),
    ]


def latency_rows(events: int = 3) -> list[dict]:
    """From ``add_event`` on the VTN to the event being a term of the next plan's problem."""
    import openleadr

    from ems.control.ven_service import VenService
    from ems.planning import plan_inputs
    from ems.store import Store

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    work = Path(tempfile.mkdtemp(prefix="ven-bench-"))
    config = work / "arao.toml"
    config.write_text(
        CONFIG.read_text(encoding="utf-8")
        + f'\n[openadr]\nvtn_url = "http://127.0.0.1:{port}/OpenADR2/Simple/2.0b"\nven_name = "bench-ven"\n'
        f'events_dir = "{(work / "events").as_posix()}"\nreport_interval_s = 5.0\n',
        encoding="utf-8",
    )
    portfolio = load_portfolio(config)
    store = Store(work / "ems.sqlite")
    latencies, decide = [], []

    async def scenario():
        server = openleadr.OpenADRServer(
            vtn_id="BENCH-VTN",
            http_host="127.0.0.1",
            http_port=port,
            requested_poll_freq=dt.timedelta(seconds=1),
            show_fingerprint=False,
        )
        server.add_handler("on_create_party_registration", lambda info: ("bench-ven-id", "reg-1"))
        await server.run()
        service = VenService(portfolio, config, store, lambda: dt.datetime.now(dt.UTC), inputs="profiles")
        await service.start()
        try:
            for k in range(events):
                now = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=40 + 60 * k)
                start = now.replace(minute=30 * (now.minute // 30), second=0, microsecond=0)
                created = time.perf_counter()
                event_id = server.add_event(
                    ven_id="bench-ven-id",
                    signal_name="LOAD_DISPATCH",
                    signal_type="delta",
                    intervals=[{"dtstart": start, "duration": dt.timedelta(minutes=60), "signal_payload": -5.0}],
                )
                while event_id not in service.decisions:
                    await asyncio.sleep(0.05)
                plan_start = pd.Timestamp(dt.datetime.now(dt.UTC)).tz_convert("Asia/Tokyo").floor("30min")
                problem = (
                    await asyncio.to_thread(plan_inputs, config, plan_start, inputs="profiles", portfolio=portfolio)
                ).problem
                if any(e.id.startswith(event_id) for e in problem.dr_events):
                    latencies.append(time.perf_counter() - created)
                    decide.append(service.decisions[event_id]["decide_s"])
        finally:
            await service.stop()
            await server.stop()

    asyncio.run(scenario())
    name = "OpenADR VEN arao.toml, VTN poll 1 s"
    return [
        _row(name, "event_to_plan_median", float(np.median(latencies)), "s"),
        _row(name, "event_to_plan_max", float(np.max(latencies)), "s"),
        _row(name, "opt_decision_median", float(np.median(decide)), "s"),
        _row(name, "events_in_plan", len(latencies), "events"),
    ]


def run() -> list[dict]:
    return price_rows() + latency_rows() + imbalance_rows()
