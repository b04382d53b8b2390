"""A store filled by a short real run of ``ems run --twin`` and a day-ahead plan of ``ems plan``,
shared by the console's tests (session scope: made once), and a console client on a copy of it.

``web_run`` is the run (read only: tests copy its store); ``console`` builds the application on a
fresh copy with two users (``hanako`` operator, ``taro`` viewer) and returns a ``ConsoleClient``.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import REPO, Broker, free_port, free_port_block

CONFIG = REPO / "config" / "arao.toml"
RUN_START = "2026-04-15T07:00+09:00"
PASSWORDS = {"hanako": "operator-password-1", "taro": "viewer-password-1"}


@dataclass
class WebRun:
    store: Path
    day_ahead_dir: Path
    start: dt.datetime
    end: dt.datetime  # just after the run's newest reading (the console's clock in the tests)


@pytest.fixture(scope="session")
def web_run(tmp_path_factory) -> WebRun:
    directory = tmp_path_factory.mktemp("web-run")
    broker = Broker(free_port(), directory).start()
    env = os.environ | {"PYTHONUNBUFFERED": "1"}
    store = directory / "ems.sqlite"
    try:
        for _attempt in range(3):  # a port of the free block can be taken before the twin binds it
            done = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "ems",
                    "run",
                    "--config",
                    str(CONFIG),
                    "--twin",
                    "--speed",
                    "120",
                    "--mqtt-host",
                    broker.host,
                    "--mqtt-port",
                    str(broker.port),
                    "--store",
                    str(store),
                    "--inputs",
                    "profiles",
                    "--status-every-s",
                    "1",
                    "--start",
                    RUN_START,
                    "--modbus-base-port",
                    str(free_port_block(40)),
                    "--duration-hours",
                    "1",
                ],
                cwd=REPO,
                capture_output=True,
                text=True,
                env=env,
                timeout=300,
            )
            if "cannot listen" not in done.stderr:
                break
        assert done.returncode == 0, done.stderr[-3000:]
    finally:
        broker.stop()
    day_ahead = directory / "day-ahead"
    planned = subprocess.run(
        [
            sys.executable,
            "-m",
            "ems",
            "plan",
            "--config",
            str(CONFIG),
            "--date",
            "2026-04-16",
            "--out",
            str(day_ahead / "2026-04-16"),
            "--no-plot",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert planned.returncode == 0, planned.stderr[-3000:]
    from ems.store import Store

    filled = Store(store, create=False, readonly=True)
    newest = max(time for _device, time, _quality in filled.latest_telemetry())
    filled.close()
    return WebRun(store, day_ahead, dt.datetime.fromisoformat(RUN_START), newest + dt.timedelta(seconds=1))


class ConsoleClient:
    """A TestClient on the console with helpers to log in and to read the page's CSRF token."""

    def __init__(self, client, store, app):
        self.client, self.store, self.app = client, store, app

    def __getattr__(self, name):
        return getattr(self.client, name)

    def csrf(self, path: str = "/login") -> str:
        page = self.client.get(path, headers={"accept": "text/html"})
        found = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        assert found, f"no CSRF field on {path}"
        return found.group(1)

    def login(self, name: str, password: str | None = None):
        token = self.csrf("/login")
        return self.client.post(
            "/login",
            data={"username": name, "password": password or PASSWORDS[name], "csrf_token": token, "next": "/"},
            follow_redirects=False,
        )


@pytest.fixture
def console(web_run, tmp_path):
    from fastapi.testclient import TestClient

    from ems.config import load_portfolio
    from ems.store import Store
    from ems.web.app import create_app
    from ems.web.users import add_user

    store_path = tmp_path / "ems.sqlite"
    shutil.copy(web_run.store, store_path)
    users = tmp_path / "users.toml"
    for name, role in (("hanako", "operator"), ("taro", "viewer")):
        add_user(users, name, role, PASSWORDS[name], web_run.end)
    portfolio = load_portfolio(CONFIG)
    portfolio = portfolio.model_copy(
        update={"control": portfolio.control.model_copy(update={"day_ahead_dir": str(web_run.day_ahead_dir)})}
    )
    store = Store(store_path, create=False)
    app = create_app(
        portfolio,
        CONFIG,
        store,
        users_path=users,
        secret=b"k" * 64,
        clock=lambda: web_run.end,
        bcp_state_dir=tmp_path / "bcp",
    )
    with TestClient(app, base_url="http://127.0.0.1") as client:
        yield ConsoleClient(client, store, app)
    store.close()
