"""Stores filled by a real controller run on the digital twin, and ``ems serve`` as a process.

``twin_store(...)`` runs ``ems run --twin`` (the controller, the twin's Modbus and MQTT devices,
a real broker) for a bounded simulated time into a store, optionally mirrored to an InfluxDB
server; ``console_config(...)`` writes a copy of the reference portfolio whose relative files
still resolve. ``ems_serve(...)`` starts the console on a free port and waits for /healthz.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
REFERENCE_CONFIG = REPO / "config" / "arao.toml"


def console_config(directory: Path, store: Path, extra_toml: str = "") -> Path:
    """The reference portfolio at ``directory/arao.toml`` with its store at ``store``; the
    broker credential files and event/outage folders still point into config/."""
    text = REFERENCE_CONFIG.read_text(encoding="utf-8")
    text = text.replace('credentials_file = "mosquitto/', f'credentials_file = "{REPO / "config" / "mosquitto"}/')
    directory.mkdir(parents=True, exist_ok=True)
    for name in ("events", "outages"):
        link = directory / name
        if not link.exists():
            link.symlink_to(REPO / "config" / name)
    path = directory / "arao.toml"
    path.write_text(text + f'\n[storage]\nsqlite_path = "{store}"\n' + extra_toml, encoding="utf-8")
    return path


def twin_store(
    config: Path,
    store: Path,
    broker,
    *,
    start: str = "2026-04-15T09:00+09:00",
    hours: float = 0.25,
    speed: float = 120.0,
    timeout_s: float = 240.0,
) -> subprocess.CompletedProcess:
    """Run the controller on the twin for ``hours`` of simulated time from ``start`` into ``store``."""
    from tests.conftest import free_port_block

    command = [
        sys.executable,
        "-m",
        "ems",
        "run",
        "--config",
        str(config),
        "--twin",
        "--speed",
        str(speed),
        "--start",
        start,
        "--duration-hours",
        str(hours),
        "--mqtt-host",
        broker.host,
        "--mqtt-port",
        str(broker.port),
        "--store",
        str(store),
        "--inputs",
        "profiles",
        "--status-every-s",
        "5",
    ]
    result = None
    for _attempt in range(3):  # a port of the free block can be taken before the twin binds it
        result = subprocess.run(
            command + ["--modbus-base-port", str(free_port_block(40))],
            capture_output=True,
            text=True,
            env=os.environ | {"PYTHONUNBUFFERED": "1"},
            timeout=timeout_s,
            cwd=REPO,
        )
        if "cannot listen" not in result.stderr:
            break
    assert result is not None
    assert result.returncode == 0, result.stderr[-3000:]
    return result


@dataclass
class ServeProcess:
    process: subprocess.Popen
    url: str
    log_path: Path

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)


def ems_serve(
    config: Path,
    store: Path,
    workdir: Path,
    extra_args: tuple[str, ...] = (),
    env: dict | None = None,
    timeout_s: float = 60.0,
) -> ServeProcess:
    """``ems serve`` as its own process on a free port of 127.0.0.1, once /healthz answers."""
    from tests.conftest import free_port

    port = free_port()
    log_path = workdir / "serve.log"
    log = log_path.open("w")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "ems",
            "serve",
            "--config",
            str(config),
            "--store",
            str(store),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            *extra_args,
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=workdir,
        env=os.environ | {"PYTHONUNBUFFERED": "1"} | (env or {}),
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"ems serve exited with {process.returncode}: {log_path.read_text()[-3000:]}")
        try:
            urllib.request.urlopen(f"{url}/healthz", timeout=1).read()
            return ServeProcess(process, url, log_path)
        except OSError:
            time.sleep(0.2)
    process.kill()
    raise RuntimeError(f"ems serve did not answer /healthz within {timeout_s} s: {log_path.read_text()[-3000:]}")


@pytest.fixture(scope="session")
def nights(tmp_path_factory) -> Path:
    """Two nights of the nightly job (the callable the controller's scheduler runs) on the small
    portfolio of the nightly tests, 2026-04-15 and 2026-04-16, under ``<dir>/nightly``."""
    from simulations.nightly import NightlyOptions, nightly_job
    from tests.nightly_fixtures import write_small_portfolio

    directory = tmp_path_factory.mktemp("nights")
    config = write_small_portfolio(directory / "portfolio")
    options = NightlyOptions(
        samples=3, flexibility="blocks", event_variants=False, unavailable=False, rolling=False, inputs="profiles"
    )
    for day in (14, 15):  # 21:00 in Tokyo: the night simulates the next day
        nightly_job(
            config, directory / "nightly", dt.datetime(2026, 4, day, 12, 0, tzinfo=dt.UTC), workers=1, options=options
        )
    return directory / "nightly"


CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


@pytest.fixture(scope="module")
def chromium():
    """Debian's Chromium driven by Playwright (headless; its own browser download is never used).

    Module scope: Playwright's sync API keeps an event loop running in this thread while it is
    open, which would refuse every later ``asyncio.run`` of other test modules."""
    if not Path(CHROMIUM).exists():
        pytest.fail("chromium is not installed: .ci/run installs the Debian package 'chromium'")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=["--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"]
        )
        yield browser
        browser.close()
