"""Control-loop benchmark: cycle latency over a simulated day against the twin (real Modbus and
MQTT on loopback), telemetry write throughput to SQLite and to an InfluxDB-compatible server
(VictoriaMetrics), the process's memory over a simulated week, and fault containment: re-plan
availability over a simulated week while a charger, a battery and the broker are taken away once
a day at seeded random times (share of 30-minute re-plan slots with a stored plan; target
100 %), and the InfluxDB outbox's drain rate after a one-hour outage of the server.

Latency is from the start of the telemetry snapshot to the last set-point written: for a cycle
with a re-plan (solve included) and for one without (set-points follow the current plan).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import shutil
import statistics
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

from benchmarks.harness import free_port, free_port_block, percentile, start_broker

CONFIG = Path(__file__).resolve().parent.parent / "config/arao.toml"
START = dt.datetime(2026, 4, 15, 0, 0, tzinfo=dt.timezone(dt.timedelta(hours=9)))


def _rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def _simulated_days(
    twin, portfolio, broker_port: int, store_path: Path, days: int, step_s: int, replan_every: int
):
    from ems.control.controller import Controller
    from ems.devices import DeviceSet, controller_broker
    from ems.store import Store

    clock = twin.clock
    served = twin.portfolio
    store = Store(store_path)
    devices = DeviceSet(served, controller_broker(served, CONFIG, "127.0.0.1", broker_port))
    await devices.open()
    controller = Controller(served, CONFIG, devices, store, clock.now, inputs="forecast", horizon_hours=24)
    with_plan: list[float] = []  # seconds per step
    without_plan: list[float] = []
    rss: list[float] = []
    steps = days * 86400 // step_s
    for step in range(steps):
        replan = step % replan_every == 0
        started = time.perf_counter()
        await controller.cycle(replan=replan)
        (with_plan if replan else without_plan).append(time.perf_counter() - started)
        clock.advance(step_s)
        deadline = time.monotonic() + 5
        while (twin.last_step is None or twin.last_step < clock.now()) and time.monotonic() < deadline:
            await asyncio.sleep(0.002)
        for device in twin.mqtt_devices.values():
            device.publish()
        await asyncio.sleep(0.05)
        if step % (86400 // step_s) == 0:
            rss.append(_rss_mib())
    rss.append(_rss_mib())
    await devices.close()
    store.close()
    return with_plan, without_plan, rss


def _twin_run(days: int, step_s: int, replan_every: int):
    from drivers.sim.clock import ManualClock
    from ems.config import load_portfolio
    from simulations.twin import Twin, TwinOptions, TwinThread

    with tempfile.TemporaryDirectory() as tmp:
        process, port = start_broker(Path(tmp))
        try:
            portfolio = load_portfolio(CONFIG)
            portfolio = portfolio.model_copy(
                update={"twin": portfolio.twin.model_copy(update={"step_s": 0.01, "publish_interval_s": 0.2})}
            )
            options = TwinOptions(mqtt_port=port, modbus_base_port=free_port_block(30))
            runner = TwinThread(Twin(portfolio, CONFIG, options, clock=ManualClock(START))).start()
            try:
                return asyncio.run(
                    _simulated_days(runner.twin, portfolio, port, Path(tmp) / "ems.sqlite", days, step_s, replan_every)
                )
            finally:
                runner.stop()
        finally:
            process.terminate()
            process.wait(5)


def _telemetry_rows(n: int, offset: int = 0):
    return [
        (START + dt.timedelta(seconds=i + offset), f"dev{i % 50:02d}", "power_kw", float(i), "good") for i in range(n)
    ]


def _sqlite_throughput(points: int = 200_000, batch: int = 1000) -> float:
    from ems.store import Store

    with tempfile.TemporaryDirectory() as tmp:
        store = Store(Path(tmp) / "t.sqlite")
        rows = _telemetry_rows(points)
        started = time.perf_counter()
        for i in range(0, points, batch):
            store.record_telemetry(rows[i : i + batch])
        elapsed = time.perf_counter() - started
        store.close()
    return points / elapsed


def _start_victoria_metrics(binary: str, data_dir: str, port: int) -> subprocess.Popen:
    """VictoriaMetrics (the InfluxDB-compatible server of the tests) on 127.0.0.1:port, once healthy."""
    server = subprocess.Popen(
        [
            binary,
            f"-storageDataPath={data_dir}/vm",
            f"-httpListenAddr=127.0.0.1:{port}",
            "-retentionPeriod=100y",
            "-loggerLevel=ERROR",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=0.5).read()
            break
        except OSError:
            time.sleep(0.1)
    return server


def _influx_throughput(points: int = 100_000) -> float | None:
    from ems.store import Store
    from ems.store.influx import InfluxSink

    binary = shutil.which("victoria-metrics")
    if binary is None:
        return None
    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        server = _start_victoria_metrics(binary, tmp, port)
        try:
            store = Store(Path(tmp) / "t.sqlite", mirror=True)
            rows = _telemetry_rows(points)
            for i in range(0, points, 5000):
                store.record_telemetry(rows[i : i + 5000])
            sink = InfluxSink(f"http://127.0.0.1:{port}", "ems", "ems", timeout_s=10)
            started = time.perf_counter()
            sent = sink.flush(store)
            elapsed = time.perf_counter() - started
            store.close()
            return sent / elapsed
        finally:
            server.terminate()
            server.wait(10)


WEEK_SLOTS = 7 * 48
SEED = 2026


def week_with_faults(slots: int = WEEK_SLOTS, seed: int = SEED) -> dict:
    from ems.store import Store
    from tests.conftest import Broker, free_port_block
    from tests.control_fixtures import SteppedRun, fast_twin_portfolio
    from tests.fault_injection import POLL_S, SLOT_S, draw_faults, fault_run, slots_without_plan

    with tempfile.TemporaryDirectory() as tmp:
        broker = Broker(free_port(), Path(tmp)).start()
        runners = []

        def twin_factory(config_path, broker_, *, clock=None, portfolio=None):
            from simulations.twin import Twin, TwinOptions, TwinThread

            options = TwinOptions(mqtt_host=broker_.host, mqtt_port=broker_.port, modbus_base_port=free_port_block(40))
            runner = TwinThread(Twin(portfolio, config_path, options, clock=clock)).start()
            runners.append(runner)
            return runner

        try:
            run = SteppedRun(
                twin_factory, broker, Path(tmp) / "ems.sqlite", portfolio=fast_twin_portfolio(), horizon_hours=12
            )
            faults = draw_faults(run.served, slots, seed)
            started = time.perf_counter()
            result = asyncio.run(fault_run(run, broker, slots, faults))
            elapsed = time.perf_counter() - started
            store = Store(Path(tmp) / "ems.sqlite", create=False, readonly=True)
            uncovered = slots_without_plan(store, result.slots)
            plans = [store.plan(i) for i in range(1, store.count("plans") + 1)]
            statuses = [p["status"] for p in plans if p is not None]
            lost = store.count_events("device-lost")
            polls = slots * (SLOT_S // POLL_S) + 1
            rows_per_poll = store.count("telemetry") / polls
            store.close()
            growth = store_growth_per_day(Path(tmp) / "ems.sqlite")
        finally:
            for runner in runners:
                runner.stop()
            broker.stop()
    return {
        "slots": len(result.slots),
        "covered": len(result.slots) - len(uncovered),
        "faults": len(faults),
        "fallback_plans": statuses.count("fallback"),
        "device_lost_events": lost,
        "elapsed_s": elapsed,
        "energy_error_kwh": abs(result.recorded_kwh - result.twin_net_kwh),
        "battery_net_kwh": result.twin_net_kwh,
        "rows_per_poll": rows_per_poll,
        "growth": growth,
    }


def outbox_drain_after_outage(per_poll: int, outage_s: float = 3600.0) -> dict | None:
    from ems.config import load_portfolio
    from ems.store import Store
    from ems.store.influx import InfluxSink

    binary = shutil.which("victoria-metrics")
    if binary is None:
        return None
    poll_s = load_portfolio(CONFIG).control.poll_s
    start = dt.datetime(2026, 4, 15, tzinfo=dt.UTC)
    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        store = Store(Path(tmp) / "ems.sqlite", mirror=True)
        sink = InfluxSink(f"http://127.0.0.1:{port}", "ems", "ems", timeout_s=10)
        polls = int(outage_s / poll_s)
        for k in range(polls):  # the server is away: every poll's lines wait in the outbox
            at = start + dt.timedelta(seconds=k * poll_s)
            store.record_telemetry([(at, f"dev{i:02d}", "power_kw", float(k + i), "good") for i in range(per_poll)])
            if k % 120 == 0:
                assert sink.flush(store) == 0 and sink.down
        backlog = store.count("outbox")
        server = _start_victoria_metrics(binary, tmp, port)
        try:
            started = time.perf_counter()
            sent = sink.flush(store)
            elapsed = time.perf_counter() - started
            left = store.count("outbox")
        finally:
            server.terminate()
            server.wait(10)
            store.close()
    return {
        "backlog_lines": backlog,
        "sent": sent,
        "left": left,
        "drain_s": elapsed,
        "lines_per_s": sent / elapsed,
        "lines_per_poll": per_poll,
        "poll_s": poll_s,
    }


def _over_horizon(points: list[tuple], horizon_hours: float) -> list[tuple]:
    """A plan's points repeated in time until they cover ``horizon_hours`` (the source may be shorter)."""
    times = sorted({t for t, *_rest in points})
    span = (times[-1] - times[0]) + (times[1] - times[0])
    copies = max(1, round(dt.timedelta(hours=horizon_hours) / span))
    return [(t + k * span, asset, power, soc) for k in range(copies) for t, asset, power, soc in points]


def store_growth_per_day(source: Path, hours: float = 1.0) -> dict:
    """Store growth at the reference portfolio's own rates (poll every ``control.poll_s``, re-plan
    every ``control.replan_minutes``): the rows of a real poll, a real plan and the set-points per
    re-plan, taken from a controller's store (``source``, the week run's), written at those rates
    for ``hours`` into a fresh store; its size, scaled to a day."""
    from ems.config import load_portfolio
    from ems.store import Store

    reference = load_portfolio(CONFIG)
    control = reference.control
    poll_s, replan_s = control.poll_s, control.replan_minutes * 60
    real = Store(source, create=False, readonly=True)
    newest = max(time for _device, time, _quality in real.latest_telemetry())
    poll_rows = [row[1:] for row in list(real.rows("telemetry", since=newest))[1:]]  # device, quantity, value, quality
    plan = real.last_plan()
    if plan is None:
        raise RuntimeError(f"{source}: the store holds no plan to copy the rates from")
    points = _over_horizon(real.plan_points(plan["id"]), reference.planning.horizon_hours)
    setpoints_per_plan = real.count("setpoints") / max(1, real.count("plans"))
    real.close()
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(Path(tmp) / "ems.sqlite")
        store.checkpoint()
        size_before = (Path(tmp) / "ems.sqlite").stat().st_size
        polls, plans, setpoints = int(hours * 3600 / poll_s), 0, 0
        for k in range(polls):
            at = START + dt.timedelta(seconds=k * poll_s)
            store.record_telemetry(
                [(at, device, quantity, value, quality) for device, quantity, value, quality in poll_rows]
            )
            if k * poll_s % replan_s == 0:
                shift = at - points[0][0]
                store.record_plan(
                    at,
                    at,
                    30,
                    "intraday",
                    plan["status"],
                    plan["summary"],
                    [(t + shift, a, p, q) for t, a, p, q in points],
                )
                plans += 1
                while setpoints < plans * setpoints_per_plan:
                    store.record_setpoint(
                        at, "city_hall_bess", 10.0, 10.0, "plan", "ratings: charge 50.0 kW, discharge 50.0 kW"
                    )
                    setpoints += 1
        store.checkpoint()
        grown = (Path(tmp) / "ems.sqlite").stat().st_size - size_before
        store.close()
    scale = 24 / hours
    return {
        "mib_per_day": grown * scale / 2**20,
        "telemetry_rows_per_day": polls * len(poll_rows) * scale,
        "plan_point_rows_per_day": plans * len(points) * scale,
        "setpoint_rows_per_day": setpoints * scale,
        "poll_s": poll_s,
        "replan_minutes": control.replan_minutes,
    }


def fault_rows() -> list[dict]:
    """Re-plan availability over a week with faults, then the outbox's drain after a 1-hour outage."""
    rows = []
    week = week_with_faults()
    name = "control/replan-week-with-faults"
    rows.append(
        {"name": name, "metric": "replan_availability", "value": 100.0 * week["covered"] / week["slots"], "unit": "%"}
    )
    for metric, key, unit in (
        ("slots", "slots", "count"),
        ("faults_injected", "faults", "count"),
        ("fallback_plans", "fallback_plans", "count"),
        ("device_lost_events", "device_lost_events", "count"),
        ("energy_error", "energy_error_kwh", "kWh"),
        ("battery_net_energy", "battery_net_kwh", "kWh"),
        ("telemetry_rows_per_poll", "rows_per_poll", "rows"),
        ("wall_time", "elapsed_s", "s"),
    ):
        rows.append({"name": name, "metric": metric, "value": week[key], "unit": unit})
    drain = outbox_drain_after_outage(round(week["rows_per_poll"]))
    if drain is not None:
        name = "control/outbox-after-1h-influx-outage"
        for metric, key, unit in (
            ("backlog_lines", "backlog_lines", "lines"),
            ("drain_rate", "lines_per_s", "lines/s"),
            ("drain_time", "drain_s", "s"),
            ("lines_left", "left", "lines"),
        ):
            rows.append({"name": name, "metric": metric, "value": drain[key], "unit": unit})
    growth = week["growth"]
    for metric, key, unit in (
        ("growth", "mib_per_day", "MiB/day"),
        ("telemetry_rows", "telemetry_rows_per_day", "rows/day"),
        ("plan_point_rows", "plan_point_rows_per_day", "rows/day"),
        ("setpoint_rows", "setpoint_rows_per_day", "rows/day"),
    ):
        rows.append({"name": "control/store-at-reference-rates", "metric": metric, "value": growth[key], "unit": unit})
    return rows


def run() -> list[dict]:
    rows = []
    with_plan, without_plan, _rss = _twin_run(days=1, step_s=600, replan_every=3)
    for label, values in (("with re-plan", with_plan), ("set-points only", without_plan)):
        rows.append(
            {
                "name": f"control/cycle-{label.replace(' ', '-')}",
                "metric": "latency_median",
                "value": statistics.median(values) * 1000,
                "unit": "ms",
            }
        )
        rows.append(
            {
                "name": f"control/cycle-{label.replace(' ', '-')}",
                "metric": "latency_p95",
                "value": percentile(values, 0.95) * 1000,
                "unit": "ms",
            }
        )
        rows.append(
            {
                "name": f"control/cycle-{label.replace(' ', '-')}",
                "metric": "cycles",
                "value": len(values),
                "unit": "count",
            }
        )
    rows.append(
        {
            "name": "control/telemetry-sqlite",
            "metric": "write_throughput",
            "value": _sqlite_throughput(),
            "unit": "points/s",
        }
    )
    influx = _influx_throughput()
    if influx is not None:
        rows.append(
            {"name": "control/telemetry-influx-v2", "metric": "write_throughput", "value": influx, "unit": "points/s"}
        )
    _w, _wo, rss = _twin_run(days=7, step_s=3600, replan_every=1)
    rows.append(
        {
            "name": "control/week",
            "metric": "rss_after_day_1",
            "value": rss[1] if len(rss) > 1 else rss[0],
            "unit": "MiB",
        }
    )
    rows.append({"name": "control/week", "metric": "rss_after_day_7", "value": rss[-1], "unit": "MiB"})
    rows.append(
        {
            "name": "control/week",
            "metric": "rss_growth_day_1_to_7",
            "value": rss[-1] - (rss[1] if len(rss) > 1 else rss[0]),
            "unit": "MiB",
        }
    )
    rows += fault_rows()
    return rows
