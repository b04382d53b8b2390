"""The live dispatcher under load: request-to-answer latency of ``ems dispatch serve`` in real time.

A fleet of ``N`` four-seat taxis is derived from the reference portfolio (its twelve taxis
copied, one depot charger each; written under ``out/``). For each load point a private Mosquitto
with the shipped users and ACL and ``ems dispatch serve --speed 1`` run as real processes. The
benchmark plays the twin (``RouteTwin``, as the ``twin`` user): the taxis start spread over the
area, drive the routes the dispatcher publishes on ``fleet/<v>/plan`` on the dispatcher's own
travel model (``simulations.twin_routes``, ``dispatch.motion``) and report position, SoC and plug
state every 5 s (100 messages/s at 500 taxis). Riders' requests come as the ``rider`` user on
``rides/request`` (Poisson arrivals at the load's rate, origins and destinations inside the
service area); each is timed from its publication to its first ``accepted`` or ``rejected`` on
``rides/<id>/status``. The latency includes the wait for the step that answers it: the next
quote (``[dispatch] quote_interval_s``) or, without quotes, the next batch (``batch_interval_s``,
30 s); ``after_batch`` is the part after that step's boundary (the assignment, the store's
commit, the publications). The dispatcher logs each batch's CPU time and its quotes' CPU time;
the benchmark reports them (``batch_cpu_*``, ``quote_cpu_per_quote``), less sensitive to a
loaded machine than the latencies.

``DISPATCH_LIVE_MINUTES`` real minutes of requests per load point (default 2);
``DISPATCH_LIVE_POINTS`` the load points as ``vehicles:requests_per_h[:batch_interval_s[:quote_interval_s]]``,
comma-separated (default ``500:2000,500:5000,500:10000,500:20000,1000:10000``; an empty field keeps the
default); ``DISPATCH_LIVE_QUOTE_S`` the quote interval of points that give none (default 1; ``none``:
requests wait for the batch). Points run in order and stop after the first one that falls over (less
than 90 % answered, or p95 above two batch intervals).
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from benchmarks.harness import percentile

REPO = Path(__file__).resolve().parent.parent
REFERENCE = REPO / "config" / "arao.toml"
MOSQUITTO_DIR = REPO / "config" / "mosquitto"
START = dt.datetime(2026, 4, 15, 10, 0, tzinfo=dt.timezone(dt.timedelta(hours=9)))
TELEMETRY_PERIOD_S = 5.0
BOOT_S = 45.0
DRAIN_S = 75.0
WARMUP_S = 60.0  # telemetry only before the first request: the first batches see the fleet settle
TWIN = ("twin", "twin-example-only")
RIDER = ("rider", "rider-example-only")
TEMPLATE_FIELDS = ("battery_kwh", "consumption_kwh_per_km", "v2g_allowed", "initial_soc_fraction")


def scaled_portfolio(n_vehicles: int, path: Path, dispatch: dict[str, float] | None = None) -> Path:
    """The reference portfolio with ``n_vehicles`` taxis (copies of its twelve) and one depot charger
    each; ``dispatch`` keys set in its ``[dispatch]`` table when given."""
    import tomllib

    text = REFERENCE.read_text().replace('"mosquitto/', f'"{MOSQUITTO_DIR}/')
    raw = tomllib.loads(text)
    templates = raw["vehicles"]
    extra = []
    for i in range(len(templates), n_vehicles):
        template = templates[i % len(templates)]
        extra.append(f'[[chargers]]\nid = "depot_c{i + 1:03d}"\nsite = "taxi_depot"\ncharge_power_kw = 6.0\n')
        fields = "\n".join(f"{key} = {json.dumps(template[key])}" for key in TEMPLATE_FIELDS)
        extra.append(f'[[vehicles]]\nid = "taxi-{i + 1:03d}"\n{fields}\nhome_charger = "depot_c{i + 1:03d}"\n')
    if dispatch:
        assert "[dispatch]" not in text, "the reference portfolio has a [dispatch] table: set the keys in it"
        extra.append("[dispatch]\n" + "".join(f"{key} = {value}\n" for key, value in dispatch.items()))
    path.write_text(text + "\n" + "\n".join(extra))
    return path


def _listening_client(port: int, client_id: str, user: tuple[str, str], topic: str, on_message) -> mqtt.Client:
    """A client of the private broker as ``user``, subscribed to ``topic`` (QoS 1, again after a
    reconnect), its network loop running."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id)
    client.username_pw_set(*user)
    client.on_message = on_message
    client.on_connect = lambda c, *a: c.subscribe(topic, 1)
    client.connect("127.0.0.1", port)
    client.loop_start()
    return client


class Rider:
    """Publishes requests and notes the real time of each one's publication and first answer."""

    def __init__(self, port: int) -> None:
        self.sent: dict[str, float] = {}
        self.answered: dict[str, tuple[float, str]] = {}
        self.reasons: dict[str, int] = {}
        self.lock = threading.Lock()
        self.client = _listening_client(port, "bench-rider", RIDER, "rides/+/status", self._on_message)

    def _on_message(self, client, userdata, message) -> None:
        arrived = time.time()
        body = json.loads(message.payload)
        if body.get("status") in ("accepted", "rejected"):
            with self.lock:
                if body["id"] not in self.answered and body["status"] == "rejected":
                    reason = f"{body.get('reason')}: {body.get('message', '')}"[:120]
                    self.reasons[reason] = self.reasons.get(reason, 0) + 1
                self.answered.setdefault(body["id"], (arrived, body["status"]))

    def request(self, request_id: str, body: dict) -> None:
        with self.lock:
            self.sent[request_id] = time.time()
        self.client.publish("rides/request", json.dumps(body), qos=1)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


class RouteTwin:
    """The taxis as the twin drives them: each follows the route of its last ``fleet/<v>/plan``
    (``simulations.twin_routes.RouteFollower`` on ``dispatch.motion``, the engine's own travel
    model), loses the energy of every km, plugs in where the route names a charger, and reports
    its position, SoC and plug state every 5 s, spread evenly over the period. The taxis start
    unplugged at ``positions``, spread over the area."""

    def __init__(self, port: int, config: Path, positions: np.ndarray, clock) -> None:
        from dispatch.router import make_router
        from drivers.sim.physics import SimEv
        from ems.config import load_portfolio
        from simulations.twin_routes import RouteFollower

        portfolio = load_portfolio(config)
        settings = portfolio.dispatch
        router = make_router(settings.speed_kmh, settings.detour_factor, None)
        self.clock = clock
        self.chargers = {c.id for c in portfolio.chargers}
        self.followers: dict[str, RouteFollower] = {}
        for vehicle, (lat, lon) in zip(portfolio.vehicles, positions, strict=True):
            ev = SimEv(
                vehicle.id, vehicle.battery_kwh, vehicle.initial_soc_fraction * vehicle.battery_kwh, position=(lat, lon)
            )
            self.followers[vehicle.id] = RouteFollower(ev, router, vehicle.consumption_kwh_per_km, settings.dwell_s)
        self.plans = 0
        self.lock = threading.Lock()
        self.client = _listening_client(port, "bench-twin", TWIN, "fleet/+/plan", self._on_plan)

    def _on_plan(self, client, userdata, message) -> None:
        from ems.fleet import VehiclePlan

        follower = self.followers.get(message.topic.split("/")[1])
        if follower is None:
            return
        plan = VehiclePlan.model_validate_json(message.payload)
        with self.lock:
            if follower.plan_issued is None or plan.issued >= follower.plan_issued:
                follower.follow(plan, self.clock())
                self.plans += 1

    def report(self, stop: threading.Event) -> None:
        gap_s = TELEMETRY_PERIOD_S / len(self.followers)
        next_s = time.monotonic()
        try:
            while not stop.is_set():
                with self.lock:  # the chargers held, once a round (each taxi has its own)
                    held = {f.vehicle.charger_id for f in self.followers.values() if f.vehicle.charger_id is not None}
                for vehicle_id, follower in self.followers.items():
                    now = self.clock()
                    with self.lock:
                        follower.step(now, held - {follower.vehicle.charger_id}, self.chargers)
                        ev = follower.vehicle
                        lat, lon = ev.position or (None, None)
                        body = {
                            "time": now.isoformat(),
                            "soc": round(ev.soc_fraction, 4),
                            "plugged": ev.charger_id is not None,
                            "charger_id": ev.charger_id,
                            "lat": lat,
                            "lon": lon,
                        }
                    self.client.publish(f"arao/{vehicle_id}/telemetry", json.dumps(body), qos=1)
                    next_s += gap_s
                    time.sleep(max(0.0, next_s - time.monotonic()))
                    if stop.is_set():
                        break
        finally:
            self.client.loop_stop()
            self.client.disconnect()


def _points_in_area(rng: np.random.Generator, centre: tuple[float, float], radius_km: float, n: int) -> np.ndarray:
    distance_km = radius_km * np.sqrt(rng.uniform(0, 1, n))
    angle = rng.uniform(0, 2 * math.pi, n)
    lat = centre[0] + distance_km * np.sin(angle) / 111.195
    lon = centre[1] + distance_km * np.cos(angle) / (111.195 * math.cos(math.radians(centre[0])))
    return np.column_stack([lat, lon])


def _cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


def load_point(
    work: Path,
    n_vehicles: int,
    requests_per_h: float,
    minutes: float,
    batch_interval_s: float | None = None,
    quote_interval_s: float | None = None,
    seed: int = 0,
) -> dict:
    import tomllib

    from tests.conftest import SHIPPED_MOSQUITTO, Broker, free_port

    label = f"{n_vehicles}veh_{int(requests_per_h)}rph" + (f"_batch{batch_interval_s:g}s" if batch_interval_s else "")
    label += f"_quote{quote_interval_s:g}s" if quote_interval_s else ""
    dispatch = {"batch_interval_s": batch_interval_s, "quote_interval_s": quote_interval_s}
    config = scaled_portfolio(
        n_vehicles, work / f"arao_{label}.toml", {k: v for k, v in dispatch.items() if v is not None}
    )
    raw = tomllib.loads(config.read_text())
    centre = (raw["portfolio"]["latitude_deg"], raw["portfolio"]["longitude_deg"])
    radius_km = 0.45 * raw["portfolio"]["service_area_km"]  # a disc inside the service square
    interval_s = float(raw.get("dispatch", {}).get("batch_interval_s", 30.0))
    answer_s = float(raw.get("dispatch", {}).get("quote_interval_s", interval_s))  # the step that answers a request
    rng = np.random.default_rng(seed)
    vehicles = [v["id"] for v in raw["vehicles"]]
    positions = _points_in_area(rng, centre, radius_km, len(vehicles))

    broker = Broker(free_port(), work, SHIPPED_MOSQUITTO / "passwd", SHIPPED_MOSQUITTO / "acl").start()
    epoch = time.time() + BOOT_S

    def clock() -> dt.datetime:
        return START + dt.timedelta(seconds=time.time() - epoch)

    log_path = work / f"serve_{label}.log"
    serve = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "ems",
            "--log-level",
            "INFO",
            "dispatch",
            "serve",
            "--config",
            str(config),
            "--mqtt-port",
            str(broker.port),
            "--credentials",
            str(MOSQUITTO_DIR / "dispatcher.credentials"),
            "--store",
            str(work / f"live_{label}.sqlite"),
            "--speed",
            "1",
            "--start",
            START.isoformat(),
            "--epoch",
            repr(epoch),
            "--expected-requests",
            str(requests_per_h * 10),
        ],
        stdout=log_path.open("wb"),
        stderr=subprocess.STDOUT,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"},
    )
    stop = threading.Event()
    twin = RouteTwin(broker.port, config, positions, clock)
    reporting = threading.Thread(target=twin.report, args=(stop,), daemon=True)
    rider = None
    try:
        while "connected" not in log_path.read_text(errors="replace") and serve.poll() is None and time.time() < epoch:
            time.sleep(0.2)
        if serve.poll() is not None or time.time() >= epoch:
            raise RuntimeError(f"the dispatcher did not connect: {log_path.read_text(errors='replace')[-2000:]}")
        reporting.start()
        rider = Rider(broker.port)
        time.sleep(max(0.0, epoch + WARMUP_S - time.time()))
        cpu_before, wall_before = _cpu_s(serve.pid), time.time()
        sent_at = epoch + WARMUP_S
        end = sent_at + minutes * 60
        i = 0
        while True:
            sent_at += rng.exponential(3600.0 / requests_per_h)
            if sent_at >= end:
                break
            time.sleep(max(0.0, sent_at - time.time()))
            (origin,) = _points_in_area(rng, centre, radius_km, 1)
            (destination,) = _points_in_area(rng, centre, radius_km, 1)
            rider.request(
                f"bench-{i}",
                {
                    "id": f"bench-{i}",
                    "time": clock().isoformat(),
                    "origin": {"lat": origin[0], "lon": origin[1]},
                    "destination": {"lat": destination[0], "lon": destination[1]},
                    "passengers": int(rng.choice([1, 1, 1, 2])),
                },
            )
            i += 1
        deadline = time.time() + DRAIN_S
        while len(rider.answered) < len(rider.sent) and time.time() < deadline:
            time.sleep(0.2)
        cpu_share = (_cpu_s(serve.pid) - cpu_before) / (time.time() - wall_before)
        alive = serve.poll() is None
    finally:
        stop.set()
        if rider is not None:
            rider.close()
        _stop(serve)
        broker.stop()
    latencies, after_batch, rejected = [], [], 0
    for request_id, sent in rider.sent.items():
        if request_id not in rider.answered:
            continue
        answered, status = rider.answered[request_id]
        rejected += status == "rejected"
        latencies.append(answered - sent)
        boundary = epoch + math.ceil((sent - epoch) / answer_s) * answer_s
        after_batch.append(answered - boundary)
    batch_cpu_ms, quote_cpu_ms, quotes = [], 0.0, 0
    for line in log_path.read_text(errors="replace").splitlines():
        found = re.search(r"CPU (\d+) ms \(and (\d+) quotes since the last batch, CPU (\d+) ms\)", line)
        if (
            found
            and " at " in line
            and line.split(" at ")[1][:8] >= (START + dt.timedelta(seconds=WARMUP_S)).strftime("%H:%M:%S")
        ):
            batch_cpu_ms.append(float(found[1]))
            quotes += int(found[2])
            quote_cpu_ms += float(found[3])
    vehicles_moved = sum(f.vehicle.odometer_km > 0 for f in twin.followers.values())
    return {
        "label": label,
        "batch_cpu_ms": batch_cpu_ms,
        "quotes": quotes,
        "quote_cpu_ms": quote_cpu_ms,
        "twin_plans": twin.plans,
        "twin_vehicles_moved": vehicles_moved,
        "quote_interval_s": quote_interval_s,
        "vehicles": n_vehicles,
        "requests_per_h": requests_per_h,
        "sent": len(rider.sent),
        "answered": len(latencies),
        "rejected": rejected,
        "latencies": latencies,
        "after_batch": after_batch,
        "cpu_share": cpu_share,
        "alive": alive,
        "reject_reasons": rider.reasons,
        "batch_interval_s": interval_s,
        "load_1min": os.getloadavg()[0],
        "batch_log": re.findall(r"batch .*", log_path.read_text(errors="replace"))[-3:],
    }


def rows_of(point: dict) -> list[dict]:
    name = f"dispatch_live_{point['label']}"
    latencies, after = point["latencies"] or [math.nan], point["after_batch"] or [math.nan]
    return [
        {"name": name, "metric": "latency_p50", "value": percentile(latencies, 0.50), "unit": "s"},
        {"name": name, "metric": "latency_p95", "value": percentile(latencies, 0.95), "unit": "s"},
        {"name": name, "metric": "latency_max", "value": float(max(latencies)), "unit": "s"},
        {"name": name, "metric": "after_batch_p50", "value": percentile(after, 0.50), "unit": "s"},
        {"name": name, "metric": "after_batch_p95", "value": percentile(after, 0.95), "unit": "s"},
        {"name": name, "metric": "answered_share", "value": point["answered"] / max(1, point["sent"]), "unit": "share"},
        {
            "name": name,
            "metric": "rejected_share",
            "value": point["rejected"] / max(1, point["answered"]),
            "unit": "share",
        },
        {"name": name, "metric": "requests_sent", "value": float(point["sent"]), "unit": ""},
        {"name": name, "metric": "dispatcher_cpu", "value": point["cpu_share"], "unit": "cores"},
        {"name": name, "metric": "machine_load_1min", "value": point["load_1min"], "unit": ""},
        {
            "name": name,
            "metric": "batch_cpu_p50",
            "value": percentile(point["batch_cpu_ms"] or [math.nan], 0.50) / 1e3,
            "unit": "s",
        },
        {
            "name": name,
            "metric": "batch_cpu_p95",
            "value": percentile(point["batch_cpu_ms"] or [math.nan], 0.95) / 1e3,
            "unit": "s",
        },
        {
            "name": name,
            "metric": "quote_cpu_per_quote",
            "value": point["quote_cpu_ms"] / max(1, point["quotes"]) / 1e3,
            "unit": "s",
        },
        {"name": name, "metric": "twin_vehicles_moved", "value": float(point["twin_vehicles_moved"]), "unit": ""},
    ]


def run() -> list[dict]:
    minutes = float(os.environ.get("DISPATCH_LIVE_MINUTES", "2"))
    spec = os.environ.get("DISPATCH_LIVE_POINTS", "500:2000,500:5000,500:10000,500:20000,1000:10000")
    quote = os.environ.get("DISPATCH_LIVE_QUOTE_S", "1")

    def number(text: str) -> float | None:
        return None if text in ("", "none") else float(text)

    points = [
        (int(p[0]), float(p[1]), number(p[2]) if len(p) > 2 else None, number(p[3] if len(p) > 3 else quote))
        for p in (q.split(":") for q in spec.split(","))
    ]
    rows: list[dict] = []
    out = REPO / "out" / "bench_dispatch_live"
    out.mkdir(parents=True, exist_ok=True)
    work = out / "run"  # the last run's configs, logs and stores, kept to look into
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir()
    if True:
        for n_vehicles, requests_per_h, batch_interval_s, quote_interval_s in points:
            point = load_point(work, n_vehicles, requests_per_h, minutes, batch_interval_s, quote_interval_s)
            rows += rows_of(point)
            (out / f"{point['label']}.json").write_text(json.dumps(point, indent=1))
            answered = point["answered"] / max(1, point["sent"])
            if (
                not point["alive"]
                or answered < 0.9
                or percentile(point["latencies"] or [math.inf], 0.95) > 2 * point["batch_interval_s"]
            ):
                break
    return rows


if __name__ == "__main__":
    for row in run():
        print(f"{row['name']:<36} {row['metric']:<20} {row['value']:>10.3f} {row['unit']}")
