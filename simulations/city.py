"""A whole city day: the twin, the dispatcher, the controller and the feeder as separate
processes against one broker (``ems city``, docs/city.md).

Each process is the command a user would run (``ems twin``, ``ems dispatch serve``, ``ems run
--twin-process``, ``ems dispatch feed``), started with the same simulated start, speed and
clock epoch (``EMS_CLOCK_EPOCH``), so they read one simulated time. Without a broker address
``ems broker`` starts a private one with the shipped users and ACL. At ``bcp_at`` the operator's
switch is thrown with ``ems bcp activate``. At the end every process gets SIGTERM, its exit
code is checked, and the results are read back from what the processes left: the controller's
store, the twin's record, the dispatcher's messages on the bus (:mod:`simulations.city_report`).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO
from zoneinfo import ZoneInfo

STOP_TIMEOUT_S = 30.0
STARTUP_S = (
    40.0  # real seconds given to the processes to start (5-30 s each on a loaded machine) before simulated time begins
)
RECORDED_TOPICS = ("rides/+/status", "ems/reservations", "fleet/+/plan")


class CityError(ValueError):
    """A city run cannot start; the message names the option or file and the problem."""


@dataclass
class CityOptions:
    config: Path
    requests: Path
    speed: float
    hours: float
    out: Path
    mqtt_host: str | None = None
    mqtt_port: int | None = None
    start: dt.time | None = None  # local time of the service day; default the hour of the first request
    bcp_at: dt.time | None = None
    outage: str | None = None
    startup_s: float = STARTUP_S
    record_every_s: float = 60.0


@dataclass
class Process:
    name: str
    argv: list[str]
    log_path: Path
    popen: subprocess.Popen | None = None
    exit_code: int | None = None
    cpu_s: float | None = None  # user + system CPU time at the stop (Linux /proc)
    started_at: float = 0.0
    wall_s: float | None = None
    _log: IO[str] | None = field(default=None, repr=False)

    def start(self, env: dict[str, str]) -> None:
        self._log = self.log_path.open("w", encoding="utf-8")
        self.popen = subprocess.Popen(
            self.argv, stdout=self._log, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
        self.started_at = time.monotonic()

    def _cpu_s(self) -> float | None:
        if self.popen is None:
            return None
        try:
            fields = Path(f"/proc/{self.popen.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            return None
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    @property
    def returncode(self) -> int | None:
        """The exit code once it ended; None while running or never started."""
        return None if self.popen is None else self.popen.returncode

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def stop(self, timeout_s: float = STOP_TIMEOUT_S) -> int | None:
        """SIGTERM, then wait; SIGKILL only if it does not end (the exit code then says so)."""
        if self.popen is None:
            return None
        self.cpu_s = self._cpu_s()
        self.wall_s = time.monotonic() - self.started_at
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(5)
        self.exit_code = self.popen.returncode
        if self._log is not None:
            self._log.close()
        return self.exit_code

    def tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log_path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def free_port_block(count: int) -> int:
    """The first of ``count`` consecutive free ports, below the ephemeral range."""
    import random

    for _ in range(200):
        base = random.randint(20000, 30000 - count)
        sockets = []
        try:
            for port in range(base, base + count):
                s = socket.socket()
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                s.bind(("127.0.0.1", port))
                sockets.append(s)
            return base
        except OSError:
            continue
        finally:
            for s in sockets:
                s.close()
    raise CityError("no block of free ports for the twin's Modbus devices")


def wait_for_port(host: str, port: int, timeout_s: float, process: Process | None = None) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process is not None and not process.alive():
            raise CityError(f"{process.name} ended before it listened on {host}:{port}:\n{process.tail()}")
        with socket.socket() as s:
            if s.connect_ex((host, port)) == 0:
                return
        time.sleep(0.1)
    raise CityError(f"nothing listens on {host}:{port} after {timeout_s:.0f} s")


def wait_for_line(process: Process, text: str, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if text in process.tail(200):
            return
        if not process.alive():
            raise CityError(f"{process.name} ended during start-up (exit {process.returncode}):\n{process.tail()}")
        time.sleep(0.1)
    raise CityError(f"{process.name} did not say {text!r} within {timeout_s:.0f} s:\n{process.tail()}")


@dataclass
class Prepared:
    portfolio: object
    start: dt.datetime
    end: dt.datetime
    bcp_at: dt.datetime | None
    requests: int


def prepare(options: CityOptions) -> Prepared:
    """Check everything before anything starts; a bad option or file raises :class:`CityError`."""
    from dispatch.model import Point
    from dispatch.requests_io import RequestFileError, ServiceArea, read_requests
    from ems.bcp.outage import OutageError, load_outage
    from ems.config import ConfigError, load_portfolio

    if options.speed <= 0:
        raise CityError(f"--speed must be positive, not {options.speed}")
    if not 0 < options.hours <= 48:
        raise CityError(f"--hours must be more than 0 and at most 48, not {options.hours}")
    try:
        portfolio = load_portfolio(options.config)
    except ConfigError as error:
        raise CityError(str(error)) from None
    info = portfolio.portfolio
    try:
        log = read_requests(
            options.requests,
            ServiceArea(Point(info.latitude_deg, info.longitude_deg), info.service_area_km),
            info.timezone,
            max(v.seats for v in portfolio.vehicles),
        )
    except (RequestFileError, OSError) as error:
        raise CityError(f"--requests: {error}") from None
    if not log.requests:
        raise CityError(f"--requests {options.requests}: the log holds no request")
    zone = ZoneInfo(info.timezone)
    first = log.clock.to_datetime(log.requests[0].time_s)
    start_time = options.start or dt.time(first.hour)
    start = dt.datetime.combine(log.clock.date, start_time, tzinfo=zone)
    end = start + dt.timedelta(hours=options.hours)
    if not any(start <= log.clock.to_datetime(r.time_s) < end for r in log.requests):
        raise CityError(
            f"--requests {options.requests}: no request falls between {start:%H:%M} and {end:%H:%M} (--start, --hours)"
        )
    bcp_at = None
    if (options.bcp_at is None) != (options.outage is None):
        raise CityError("--bcp-at and --outage go together: the time of the operator's switch and the outage it is for")
    if options.bcp_at is not None and options.outage is not None:
        bcp_at = dt.datetime.combine(log.clock.date, options.bcp_at, tzinfo=zone)
        if not start < bcp_at < end:
            raise CityError(f"--bcp-at {options.bcp_at:%H:%M} is outside the simulated run {start:%H:%M}-{end:%H:%M}")
        try:
            outage = load_outage(options.outage)
            outage.check_against(portfolio, str(options.outage))
        except OutageError as error:
            raise CityError(f"--outage: {error}") from None
    return Prepared(portfolio, start, end, bcp_at, len(log.requests))


class BusRecorder:
    """Every answer to a rider, every reservation and every plan sending a taxi to a shelter
    heard on the broker, as JSON lines (what the dispatcher and the energy manager said; logged
    in as the read-only ``observer``)."""

    def __init__(self, options: CityOptions, host: str, port: int, path: Path):
        from drivers.mqtt.credentials import resolve_credentials
        from drivers.mqtt.link import BrokerSettings, MqttLink

        user, password = resolve_credentials(None, None, str(options.config.parent / "mosquitto/observer.credentials"))
        self.path = path
        self._file = path.open("w", encoding="utf-8")
        self._lock = threading.Lock()
        self.link = MqttLink(
            BrokerSettings(
                host=host, port=port, client_id=f"city-recorder-{os.getpid()}", username=user, password=password
            )
        )
        for topic in RECORDED_TOPICS:
            self.link.subscribe(topic, self._on_message)

    def _on_message(self, topic: str, payload: bytes) -> None:
        try:
            body = json.loads(payload) if payload else None
        except ValueError:
            body = {"unparsed": payload[:200].decode(errors="replace")}
        if topic.startswith("fleet/") and not _drives_to_shelter(body):
            return  # of the plans only those sending a taxi to a shelter are kept (its planned arrival)
        with self._lock:
            self._file.write(json.dumps({"received": time.time(), "topic": topic, "payload": body}) + "\n")

    def start(self) -> None:
        self.link.start()
        if not self.link.wait_connected(10):
            raise CityError(f"the bus recorder cannot connect: {self.link.last_error}")

    def stop(self) -> None:
        self.link.stop()
        with self._lock:
            self._file.close()


def _drives_to_shelter(plan) -> bool:
    return isinstance(plan, dict) and any(
        isinstance(s, dict) and s.get("kind") == "shelter" for s in plan.get("route", ())
    )


def _ems(*args: str) -> list[str]:
    return [sys.executable, "-m", "ems", *args]


def run_city(options: CityOptions, echo=print) -> dict:
    """Run the day; returns the summary also written to ``city.json``."""
    from drivers.sim.clock import EPOCH_ENV, ScaledClock
    from simulations.city_report import build_report

    prepared = prepare(options)
    out = options.out
    (out / "logs").mkdir(parents=True, exist_ok=True)
    for stale in ("ems.sqlite", "dispatch.sqlite", "bcp/bcp_mode.json", "bcp/bcp_mode.log", "dispatcher/kpis.json"):
        (out / stale).unlink(missing_ok=True)
    config = str(options.config)
    processes: list[Process] = []

    def process(name: str, argv: list[str]) -> Process:
        p = Process(name, argv, out / "logs" / f"{name}.log")
        processes.append(p)
        return p

    host = options.mqtt_host or "127.0.0.1"
    port = options.mqtt_port or free_port()
    broker = None
    if options.mqtt_host is None:
        broker = process("broker", _ems("broker", "--config", config, "--port", str(port)))
        broker.start(dict(os.environ))
        wait_for_port(host, port, 15, broker)
    epoch_s = time.time() + options.startup_s
    env = dict(os.environ, **{EPOCH_ENV: repr(epoch_s)})
    clock = ScaledClock(prepared.start, options.speed, epoch_s=epoch_s)
    common = ["--config", config, "--mqtt-host", host, "--mqtt-port", str(port)]
    timing = ["--start", prepared.start.isoformat(), "--speed", repr(options.speed)]
    modbus_base = free_port_block(64)
    twin = process(
        "twin",
        _ems(
            "twin",
            *common,
            *timing,
            "--modbus-base-port",
            str(modbus_base),
            "--record",
            str(out / "twin"),
            "--record-every-s",
            repr(options.record_every_s),
        ),
    )
    dispatch_timing = [*timing, "--epoch", repr(epoch_s)]
    credentials = options.config.parent / "mosquitto"
    dispatcher = process(
        "dispatcher",
        _ems(
            "dispatch",
            "serve",
            *common,
            *dispatch_timing,
            "--store",
            str(out / "dispatch.sqlite"),
            "--out",
            str(out / "dispatcher"),
            "--expected-requests",
            str(prepared.requests),
            "--credentials",
            str(credentials / "dispatcher.credentials"),
        ),
    )
    controller = process(
        "controller",
        _ems(
            "run",
            *common,
            *timing,
            "--twin-process",
            "--modbus-base-port",
            str(modbus_base),
            "--store",
            str(out / "ems.sqlite"),
            "--bcp-state-dir",
            str(out / "bcp"),
            "--inputs",
            "profiles",
            "--status-every-s",
            "5",
        ),
    )
    # the feeder gets the requests of the run's hours only, so it ends by itself once all are acknowledged
    in_run = out / "requests-in-run.csv"
    _requests_between(options.requests, prepared.start, prepared.end, in_run)
    feeder = process(
        "feeder",
        _ems(
            "dispatch",
            "feed",
            *common,
            *dispatch_timing,
            "--requests",
            str(in_run),
            "--credentials",
            str(credentials / "rider.credentials"),
        ),
    )
    recorder = BusRecorder(options, host, port, out / "bus.jsonl")
    codes: dict[str, int | None] = {}
    activation: dict | None = None
    try:
        recorder.start()
        twin.start(env)
        wait_for_line(twin, "serving", options.startup_s)
        dispatcher.start(env)
        controller.start(env)
        feeder.start(env)
        echo(
            f"city day {prepared.start:%Y-%m-%d %H:%M}-{prepared.end:%H:%M} at speed {options.speed:g}: "
            f"broker {host}:{port}, {prepared.requests} requests; logs under {out / 'logs'}"
        )
        bcp_pending = prepared.bcp_at
        while clock.now() < prepared.end:
            for p in (twin, dispatcher, controller):
                if not p.alive():
                    raise CityError(f"{p.name} ended during the run (exit {p.returncode}):\n{p.tail()}")
            if bcp_pending is not None and clock.now() >= bcp_pending:
                activation = _activate_bcp(options, out, clock.now(), echo)
                bcp_pending = None
            time.sleep(min(1.0, max(0.05, 30.0 / options.speed)))
    finally:
        # the feeder and the dispatcher first, then the controller (its last poll sees the fleet
        # parked), then the twin, which writes its record as it stops, and the broker last
        if feeder.popen is not None:  # its last request may be under way as the run ends
            try:
                feeder.popen.wait(10)
            except subprocess.TimeoutExpired:
                pass
        for p in (feeder, dispatcher, controller, twin):
            if p.popen is not None:
                codes[p.name] = p.stop()
                if p is dispatcher:
                    time.sleep(min(5.0, 120.0 / options.speed + 1.0))  # the controller polls the fleet as it stands
        recorder.stop()
        if broker is not None:
            codes["broker"] = broker.stop()
    failed = {name: code for name, code in codes.items() if code not in (0, None) and name != "broker"}
    usage = {
        p.name: {
            "cpu_s": round(p.cpu_s, 2),
            "wall_s": round(p.wall_s or 0.0, 2),
            "cpu_share": round(p.cpu_s / p.wall_s, 3) if p.wall_s else None,
        }
        for p in processes
        if p.cpu_s is not None
    }
    summary = build_report(prepared, options, out, codes, activation, usage)
    if failed:
        summary["failed_processes"] = failed
        (out / "city.json").write_text(json.dumps(summary, indent=1, default=str))
    return summary


def _requests_between(source: Path, start: dt.datetime, end: dt.datetime, target: Path) -> int:
    import csv

    with source.open(newline="", encoding="utf-8") as file:
        rows = list(csv.reader(file))
    header, body = rows[0], rows[1:]
    column = header.index("time")
    kept = [row for row in body if start <= dt.datetime.fromisoformat(row[column]) < end]
    with target.open("w", newline="", encoding="utf-8") as file:
        csv.writer(file).writerows([header, *kept])
    return len(kept)


def _activate_bcp(options: CityOptions, out: Path, now: dt.datetime, echo) -> dict:
    """The operator's switch, thrown as an operator does: ``ems bcp activate``."""
    argv = _ems(
        "bcp",
        "activate",
        "--state-dir",
        str(out / "bcp"),
        "--config",
        str(options.config),
        "--outage",
        str(options.outage),
        "--operator",
        "ems-city",
        "--reason",
        f"city drill at {now:%H:%M}",
        "--force",
    )
    result = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    answer = result.stdout.strip().splitlines()[-1] if result.stdout.strip() else result.stderr.strip()
    echo(f"{now:%H:%M} BCP mode switched on: {answer}")
    if result.returncode != 0:
        raise CityError(f"ems bcp activate failed (exit {result.returncode}): {result.stderr.strip()}")
    return {"time": now.isoformat(), "exit_code": result.returncode, "output": result.stdout.strip()}
