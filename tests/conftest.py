"""Shared fixtures: a private Mosquitto broker on a free port, and a running digital twin.

``mosquitto`` starts an anonymous broker; ``mosquitto_factory(**options)`` starts brokers with
a password file and ACL (``password_file=``, ``acl_file=``) and can restart one on the same
port. ``twin_factory(config_path, ...)`` serves a portfolio's simulated devices against a broker
on free Modbus ports, in a background thread. All of them stop at the end of the test.
"""

from __future__ import annotations

import datetime as dt
import os
import random
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.tls_fixtures import ec_ca, ec_signed

# fixtures shared by several test modules, registered here so no test module imports them
pytest_plugins = ["tests.optimise_fixtures", "tests.store_fixtures", "tests.web_fixtures", "tests.console_fixtures"]

MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
REPO = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# Blocks are drawn below the kernel's ephemeral range (ip_local_port_range starts at 32768 on
# Linux): ports there are never handed to outgoing connections, so a block found free stays free
# until the twin binds it, however many clients the other tests open meanwhile.
BLOCK_PORTS_FROM, BLOCK_PORTS_TO = 20000, 32000


def free_port_block(count: int, attempts: int = 200) -> int:
    """The first of ``count`` consecutive free TCP ports on 127.0.0.1, below the ephemeral range."""
    rng = random.Random()
    for _ in range(attempts):
        base = rng.randrange(BLOCK_PORTS_FROM, BLOCK_PORTS_TO - count)
        sockets = []
        try:
            for port in range(base, base + count):
                s = socket.socket()
                s.bind(("127.0.0.1", port))
                sockets.append(s)
            return base
        except OSError:
            continue
        finally:
            for s in sockets:
                s.close()
    raise RuntimeError(f"no block of {count} free ports found")


def wait_for_port(port: int, timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.02)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {timeout_s} s")


@dataclass
class Broker:
    """A Mosquitto process on 127.0.0.1:port; restartable on the same port."""

    port: int
    directory: Path
    password_file: Path | None = None
    acl_file: Path | None = None
    listener_options: tuple[str, ...] = ()  # e.g. cafile/certfile/keyfile for a TLS listener
    process: subprocess.Popen | None = field(default=None, repr=False)
    host: str = "127.0.0.1"

    def config_text(self) -> str:
        lines = [
            f"listener {self.port} 127.0.0.1",
            *self.listener_options,
            "persistence false",
            "log_dest stderr",
            "log_type error",
            "log_type warning",
        ]
        if self.password_file is not None:
            lines += ["allow_anonymous false", f"password_file {self.password_file}"]
        else:
            lines.append("allow_anonymous true")
        if self.acl_file is not None:
            lines.append(f"acl_file {self.acl_file}")
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            # As root Mosquitto drops to user 'mosquitto', which cannot read pytest's private
            # temporary directories (certificates, keys): stay the user that started it.
            lines.append("user root")
        return "\n".join(lines) + "\n"

    def start(self) -> Broker:
        conf = self.directory / f"mosquitto-{self.port}.conf"
        conf.write_text(self.config_text())
        self.process = subprocess.Popen([MOSQUITTO, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            wait_for_port(self.port)
        except RuntimeError as error:
            stderr = ""
            if self.process.poll() is not None and self.process.stderr is not None:
                stderr = self.process.stderr.read().decode(errors="replace")
            self.stop()
            raise RuntimeError(f"{error}; mosquitto said: {stderr.strip()[-800:]}") from None
        return self

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        self.process = None

    def restart(self, down_s: float = 0.5) -> None:
        self.stop()
        time.sleep(down_s)
        self.start()


@pytest.fixture
def mosquitto_factory(tmp_path):
    if not Path(MOSQUITTO).exists():
        pytest.fail("mosquitto is not installed (.ci/run installs it)")
    brokers: list[Broker] = []

    def make(
        password_file: Path | None = None, acl_file: Path | None = None, listener_options: tuple[str, ...] = ()
    ) -> Broker:
        broker = Broker(free_port(), tmp_path, password_file, acl_file, listener_options)
        brokers.append(broker)
        return broker.start()

    yield make
    for broker in brokers:
        broker.stop()


@pytest.fixture
def mosquitto(mosquitto_factory) -> Broker:
    return mosquitto_factory()


@pytest.fixture
def twin_factory():
    from ems.config import load_portfolio
    from simulations.twin import Twin, TwinOptions, TwinThread

    running: list[TwinThread] = []

    def make(
        config_path: str | Path = REPO / "config/arao.toml",
        broker: Broker | None = None,
        *,
        start: dt.datetime | None = None,
        speed: float = 1.0,
        clock=None,
        portfolio=None,
    ):
        portfolio = portfolio or load_portfolio(config_path)
        base = free_port_block(40)
        options = TwinOptions(
            mqtt_host=broker.host if broker else None,
            mqtt_port=broker.port if broker else None,
            modbus_base_port=base,
            speed=speed,
            start=start,
            serve_mqtt=broker is not None,
        )
        twin = Twin(portfolio, config_path, options, clock=clock)
        runner = TwinThread(twin).start()
        running.append(runner)
        return runner

    yield make
    for runner in running:
        runner.stop()


# --- certificates and the shipped broker set-up (Modbus/TCP Security, MQTT over TLS) ---------


@dataclass(frozen=True)
class Pki:
    """A throw-away CA with a server certificate for 127.0.0.1 and a client certificate, plus a
    second, unrelated CA with a client certificate of its own (openssl, EC keys: fast)."""

    directory: Path

    def path(self, name: str) -> str:
        return str(self.directory / name)


@pytest.fixture(scope="session")
def test_pki(tmp_path_factory) -> Pki:
    directory = tmp_path_factory.mktemp("pki")
    ec_ca(directory, "ca")
    ec_signed(directory, "ca", "server", "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth")
    ec_signed(directory, "ca", "client", "extendedKeyUsage=clientAuth")
    ec_ca(directory, "other-ca")
    ec_signed(directory, "other-ca", "stranger", "extendedKeyUsage=clientAuth")
    return Pki(directory)


SHIPPED_MOSQUITTO = REPO / "config/mosquitto"


@pytest.fixture
def shipped_broker(mosquitto_factory) -> Broker:
    """A private broker with the shipped password file and ACL (anonymous clients refused)."""
    return mosquitto_factory(password_file=SHIPPED_MOSQUITTO / "passwd", acl_file=SHIPPED_MOSQUITTO / "acl")
