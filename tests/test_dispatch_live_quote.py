"""Quotes between batches (``[dispatch] quote_interval_s``): the live service answers a request at
the next quote, not the next batch, and still serves the riders as the replay of the same log
does (real ``ems dispatch serve`` and ``feed`` on a real Mosquitto)."""

from __future__ import annotations

import datetime as dt
import math

import pytest

from dispatch.assign import Policy
from dispatch.demand import DemandModel
from dispatch.fleet import fleet_from_portfolio
from dispatch.model import Point
from dispatch.requests_io import ServiceArea, read_requests
from dispatch.router import make_router
from dispatch.simulate import Simulation, kpis
from ems.config import load_portfolio
from tests.conftest import SHIPPED_MOSQUITTO
from tests.dispatch_live_fixtures import (
    CONFIG,
    FINAL,
    LiveRun,
    Rider,
    live_figures,
    persistent_broker,
    stop,
    wait_until,
    write_log,
)

QUOTE_S = 5.0


def _quote_config(path):
    text = CONFIG.read_text().replace('"mosquitto/', f'"{SHIPPED_MOSQUITTO}/')
    assert "[dispatch]" not in text
    path.write_text(text + f"\n[dispatch]\nquote_interval_s = {QUOTE_S}\n")
    return path


def test_quotes_answer_before_the_batch_and_serve_as_the_replay(tmp_path):
    config = _quote_config(tmp_path / "arao_quote.toml")
    requests = write_log(tmp_path / "requests.csv", 40)
    portfolio = load_portfolio(config)
    info, settings = portfolio.portfolio, portfolio.dispatch
    assert settings.quote_interval_s == QUOTE_S
    log = read_requests(
        requests,
        ServiceArea(Point(info.latitude_deg, info.longitude_deg), info.service_area_km),
        info.timezone,
        max(v.seats for v in portfolio.vehicles),
    )
    replay = kpis(
        Simulation(
            fleet_from_portfolio(portfolio, log.clock.date),
            log.requests,
            make_router(settings.speed_kmh, settings.detour_factor, None),
            settings,
            Policy(settings.policy),
            DemandModel(len(log.requests)),
        ).run()
    )

    broker = persistent_broker(tmp_path)
    live = LiveRun(broker, tmp_path, speed=200.0, epoch=0.0)
    rider = Rider(broker)
    serve = live.start_serving("--config", str(config), "--expected-requests", "40")
    try:
        feeder = live.feed(requests)
        assert feeder.wait(120) == 0, live.log_text("feed")
        assert wait_until(
            lambda: all(rider.final().get(r.request_id, {}).get("status") in FINAL for r in log.requests), 240
        )
    finally:
        assert stop(serve) == 0, live.log_text()[-3000:]
        rider.close()
        broker.stop()

    # answered at a quote: before the batch boundary the request would have waited for
    batch_s = settings.batch_interval_s
    early = 0
    for request in log.requests:
        first = rider.messages[request.request_id][0]
        answered_s = log.clock.to_s(dt.datetime.fromisoformat(first["time"]))
        early += answered_s < math.ceil(request.time_s / batch_s) * batch_s
    assert early >= 0.8 * len(log.requests), early
    assert "quotes since the last batch" in live.log_text()
    served_share, mean_wait_s = live_figures(rider, log)
    assert served_share == pytest.approx(replay["served_share"], rel=0.10)
    assert mean_wait_s == pytest.approx(replay["mean_wait_s"], rel=0.10)
