"""The OpenADR 2.0b VEN against an openleadr VTN started here on 127.0.0.1: registration, an
event that reaches the plan, opt responses that follow the flexibility, telemetry reports."""

from __future__ import annotations

import asyncio
import datetime as dt
import socket

import numpy as np
import pandas as pd
import pytest

openleadr = pytest.importorskip("openleadr")

from ems.cli import main  # noqa: E402
from ems.config import load_portfolio  # noqa: E402
from ems.control.ven_service import VenService  # noqa: E402
from ems.optimise import solve  # noqa: E402
from ems.optimise.flexibility import solve_flexibility  # noqa: E402
from ems.planning import plan_inputs  # noqa: E402
from ems.store import Store  # noqa: E402
from simulations.events import load_event  # noqa: E402
from tests.market_fixtures import write_market_portfolio  # noqa: E402

VEN_NAME, VEN_ID = "arao-ven", "ven-arao-1"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def openadr_section(port: int, events_dir) -> str:
    return (
        f'\n[openadr]\nvtn_url = "http://127.0.0.1:{port}/OpenADR2/Simple/2.0b"\nven_name = "{VEN_NAME}"\n'
        f'events_dir = "{events_dir.as_posix()}"\nprice_yen_per_kwh = 30.0\nreport_interval_s = 1.0\n'
    )


class Vtn:
    """An openleadr VTN that registers one VEN, records opt responses and report values."""

    def __init__(self, port: int):
        self.opts: dict[str, str] = {}
        self.reports: list[tuple[str, float]] = []
        self.server = openleadr.OpenADRServer(
            vtn_id="ARAO-TEST-VTN",
            http_host="127.0.0.1",
            http_port=port,
            requested_poll_freq=dt.timedelta(seconds=1),
            show_fingerprint=False,
        )
        self.server.add_handler("on_create_party_registration", self.register)
        self.server.add_handler("on_register_report", self.register_report)

    async def register(self, info):
        return (VEN_ID, "reg-1") if info["ven_name"] == VEN_NAME else False

    async def register_report(
        self, ven_id, resource_id, measurement, unit, scale, min_sampling_interval, max_sampling_interval
    ):
        async def on_update(data):
            self.reports += [(resource_id, float(value)) for _time, value in data]

        return on_update, dt.timedelta(seconds=1)

    def add_event(self, start: dt.datetime, minutes: int, payload: float, resource: str | None = None) -> str:
        async def on_opt(ven_id, event_id, opt_type):
            self.opts[event_id] = opt_type

        return self.server.add_event(
            ven_id=VEN_ID,
            signal_name="LOAD_DISPATCH",
            signal_type="delta",
            market_context="oadr://kyushu-negawatt",
            intervals=[{"dtstart": start, "duration": dt.timedelta(minutes=minutes), "signal_payload": payload}],
            targets_by_type={"resource_id": [resource]} if resource else {"ven_id": [VEN_ID]},
            callback=on_opt,
        )


async def wait_for(condition, timeout_s: float = 60.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("timed out")
        await asyncio.sleep(0.1)


def test_an_event_from_the_vtn_is_answered_by_the_flexibility_and_reaches_the_plan(tmp_path):
    port = free_port()
    events_dir = tmp_path / "var" / "events"
    config = write_market_portfolio(tmp_path / "site", extra=openadr_section(port, events_dir))
    portfolio = load_portfolio(config)
    store = Store(tmp_path / "site" / "ems.sqlite")
    # tomorrow 12:00 in the portfolio's zone: a fixed hour, so the test does not depend on when it
    # runs (at the evening peak the hall's battery is already at full discharge in the reference
    # plan, and a 1 kW cut in the event's second step is beyond the site)
    tokyo = dt.timezone(dt.timedelta(hours=9))
    start = (
        (dt.datetime.now(tokyo) + dt.timedelta(days=1))
        .replace(hour=12, minute=0, second=0, microsecond=0)
        .astimezone(dt.UTC)
    )
    telemetry = {"hall": 12.5, "depot": 3.25}

    async def scenario():
        vtn = Vtn(port)
        await vtn.server.run()
        service = VenService(
            portfolio, config, store, lambda: dt.datetime.now(dt.UTC), inputs="profiles", grid_power_kw=telemetry.get
        )
        try:
            await service.start()
            small = vtn.add_event(start, 60, -1.0, resource="hall")
            huge = vtn.add_event(start, 60, -500.0)
            await wait_for(lambda: small in vtn.opts and huge in vtn.opts)
            await wait_for(lambda: {"hall", "depot"} <= {r for r, _v in vtn.reports})
            return vtn, service, small, huge
        finally:
            await service.stop()
            await vtn.server.stop()

    vtn, service, small, huge = asyncio.run(scenario())
    assert service.ven.ven_id == VEN_ID
    assert vtn.opts == {small: "optIn", huge: "optOut"}
    assert "flexibility" in service.decisions[huge]["reason"]
    assert (("hall", 12.5) in vtn.reports) and (("depot", 3.25) in vtn.reports)

    # the accepted event is an event file of the project's format
    event = load_event(events_dir / f"{small}.toml")
    assert event.event.direction == "down" and event.targets.site_ids == ("hall",)
    assert pd.Timestamp(event.active_period.start) == pd.Timestamp(start)
    assert [i.requested_kw for i in event.signal.intervals] == [1.0]
    assert not (events_dir / f"{huge}.toml").exists()

    # and a term of the live plan, over the event's two steps, which the plan keeps
    plan_start = pd.Timestamp(start).tz_convert("Asia/Tokyo") - pd.Timedelta(hours=1)
    problem = plan_inputs(config, plan_start, horizon_hours=24, inputs="profiles", portfolio=portfolio).problem
    assert [e.requested_kw for e in problem.dr_events] == [1.0]
    active = np.flatnonzero(problem.dr_events[0].active)
    assert [problem.grid.index[t] for t in active] == [
        pd.Timestamp(start) + pd.Timedelta(minutes=30 * k) for k in range(2)
    ]
    schedule = solve(problem)
    hall = schedule.power_kw["hall_grid"].to_numpy()
    assert np.all(hall[active] <= problem.dr_events[0].baseline_kw[active] - 1.0 + 1e-6)

    # the huge request is beyond what the flexibility solve finds for the same window
    flex = solve_flexibility(problem, active, "down", sum(schedule.power_kw[g.id].to_numpy() for g in problem.grids))
    assert flex.flex_kw < 500.0


def test_ven_command_with_no_vtn_listening_exits_2(tmp_path, capsys):
    config = write_market_portfolio(tmp_path / "site", extra=openadr_section(free_port(), tmp_path / "events"))
    assert main(["dr", "ven", "--config", str(config), "--inputs", "profiles", "--duration-s", "1"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("ems dr ven: VTN http://127.0.0.1:") and "registration" in err
