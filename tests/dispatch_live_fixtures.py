"""The live dispatcher's test set-up: a Mosquitto with persistence and the shipped users and ACL,
``ems dispatch serve`` and ``ems dispatch feed`` as real processes, and a rider's view of the
answers on ``rides/+/status``."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from dispatch.demand import generate_requests
from tests.conftest import REPO, SHIPPED_MOSQUITTO, Broker, free_port

CONFIG = REPO / "config/arao.toml"
DATE = dt.date(2026, 4, 15)
START = dt.datetime(2026, 4, 15, 8, 0, tzinfo=dt.timezone(dt.timedelta(hours=9)))
RIDER = ("rider", "rider-example-only")
TWIN = ("twin", "twin-example-only")


@dataclass
class PersistentBroker(Broker):
    """Keeps sessions, queued QoS 1 messages and retained messages across a restart; logs to a file."""

    def config_text(self) -> str:
        text = super().config_text()
        log = self.directory / f"mosquitto-{self.port}.log"
        return text.replace(
            "persistence false", f"persistence true\npersistence_location {self.directory}/\nautosave_interval 1"
        ).replace("log_dest stderr\nlog_type error\nlog_type warning", f"log_dest file {log}\nlog_type all")

    @property
    def log_text(self) -> str:
        path = self.directory / f"mosquitto-{self.port}.log"
        return path.read_text(errors="replace") if path.exists() else ""


def persistent_broker(directory: Path) -> PersistentBroker:
    broker = PersistentBroker(free_port(), directory, SHIPPED_MOSQUITTO / "passwd", SHIPPED_MOSQUITTO / "acl")
    return broker.start()  # type: ignore[return-value]


def write_log(path: Path, count: int = 40) -> Path:
    """The first ``count`` requests of the seeded reference day (08:00 to about 09:35)."""
    frame = generate_requests(DATE, 200, "Asia/Tokyo", seed=0).head(count)
    frame.to_csv(path, index=False)
    return path


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}


@dataclass
class LiveRun:
    broker: Broker
    directory: Path
    speed: float
    epoch: float

    def clock_args(self) -> list[str]:
        return ["--speed", str(self.speed), "--start", START.isoformat(), "--epoch", repr(self.epoch)]

    def serve(self, *extra: str, name: str = "serve") -> subprocess.Popen:
        args = [
            sys.executable,
            "-m",
            "ems",
            "--log-level",
            "INFO",
            "dispatch",
            "serve",
            "--config",
            str(CONFIG),
            "--mqtt-port",
            str(self.broker.port),
            "--credentials",
            str(SHIPPED_MOSQUITTO / "dispatcher.credentials"),
            "--store",
            str(self.directory / "dispatch.sqlite"),
            *self.clock_args(),
            *extra,
        ]
        log = (self.directory / f"{name}.log").open("ab")
        return subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env=_env(), cwd=REPO)

    def start_serving(self, *extra: str, boot_s: float = 40.0) -> subprocess.Popen:
        """The dispatcher, its clock reading START ``boot_s`` from now (time for it and the feeder to
        start on a loaded machine); back once it is subscribed."""
        self.epoch = time.time() + boot_s
        process = self.serve(*extra)
        if not wait_until(
            lambda: "dispatcher-arao: connected" in self.log_text() or process.poll() is not None, boot_s
        ):
            process.kill()
            raise AssertionError(f"the dispatcher did not connect within {boot_s} s: {self.log_text()[-2000:]}")
        assert process.poll() is None, self.log_text()
        return process

    def feed(self, requests: Path) -> subprocess.Popen:
        args = [
            sys.executable,
            "-m",
            "ems",
            "dispatch",
            "feed",
            "--config",
            str(CONFIG),
            "--requests",
            str(requests),
            "--mqtt-port",
            str(self.broker.port),
            "--credentials",
            str(SHIPPED_MOSQUITTO / "rider.credentials"),
            *self.clock_args(),
        ]
        log = (self.directory / "feed.log").open("ab")
        return subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env=_env(), cwd=REPO)

    def log_text(self, name: str = "serve") -> str:
        return (self.directory / f"{name}.log").read_text(errors="replace")

    def simulated_now(self) -> dt.datetime:
        return START + dt.timedelta(seconds=(time.time() - self.epoch) * self.speed)

    def wait_simulated(self, moment: dt.datetime, timeout_s: float = 120.0) -> None:
        deadline = time.monotonic() + timeout_s
        while self.simulated_now() < moment and time.monotonic() < deadline:
            time.sleep(0.05)


def stop(process: subprocess.Popen, timeout_s: float = 20.0) -> int:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)
    return process.returncode


class Rider:
    """A client reading every answer on ``rides/+/status`` (and anything else it is told to)."""

    def __init__(
        self, broker: Broker, user: tuple[str, str] = RIDER, client_id: str = "test-rider", topics=("rides/+/status",)
    ):
        self.messages: dict[str, list[dict]] = {}
        self.raw: list[tuple[str, bytes]] = []
        self.lock = threading.Lock()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id)
        self.client.username_pw_set(*user)
        self.client.on_message = self._on_message
        self.client.on_connect = lambda c, *a: c.subscribe([(t, 1) for t in topics]) if topics else None
        self.client.connect(broker.host, broker.port)
        self.client.loop_start()

    def _on_message(self, client, userdata, message) -> None:
        with self.lock:
            self.raw.append((message.topic, message.payload))
            if message.topic.startswith("rides/") and message.payload:
                body = json.loads(message.payload)
                self.messages.setdefault(body["id"], []).append(body)

    def publish(self, topic: str, payload: str) -> None:
        self.client.publish(topic, payload, qos=1).wait_for_publish(5)

    def final(self) -> dict[str, dict]:
        with self.lock:
            return {rid: bodies[-1] for rid, bodies in self.messages.items()}

    def statuses(self, request_id: str) -> list[str]:
        with self.lock:
            return [b["status"] for b in self.messages.get(request_id, [])]

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def wait_until(condition, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return False


FINAL = {"dropped_off", "rejected"}


def live_figures(rider: Rider, log) -> tuple[float, float]:
    """(served share, mean wait [s]) as the riders saw them on their status topics."""
    waits, served = [], 0
    for request in log.requests:
        bodies = rider.messages.get(request.request_id, [])
        if any(b["status"] == "dropped_off" for b in bodies):
            served += 1
            pickup = next(b for b in bodies if b["status"] == "picked_up")
            waits.append(log.clock.to_s(dt.datetime.fromisoformat(pickup["time"])) - request.time_s)
    return served / len(log.requests), float(np.mean(waits))
