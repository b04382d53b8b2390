"""The console from the command line: `ems users`, `ems serve` as a real process, and "re-plan
now" reaching a running controller (`ems run --twin --http` in-process, and `ems serve` beside it)."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import stat
import subprocess
import sys
import time

import httpx
import pytest

from ems.store import Store
from tests.conftest import REPO, free_port, free_port_block
from tests.web_fixtures import CONFIG

EMS = [sys.executable, "-m", "ems"]


def ems(*args, env=None, cwd=REPO, timeout=120):
    return subprocess.run(
        [*EMS, *args], capture_output=True, text=True, env=os.environ | (env or {}), cwd=cwd, timeout=timeout
    )


def test_users_add_writes_an_argon2_hash_readable_by_the_owner_only(tmp_path):
    users = tmp_path / "users.toml"
    done = ems(
        "users",
        "add",
        "hanako",
        "--role",
        "operator",
        "--users",
        str(users),
        "--password-env",
        "PW",
        env={"PW": "operator-password-1"},
    )
    assert done.returncode == 0, done.stderr
    assert stat.S_IMODE(users.stat().st_mode) == 0o600
    text = users.read_text()
    assert "$argon2id$" in text and "operator-password-1" not in text
    from ems.web.users import Users

    assert Users(users).authenticate("hanako", "operator-password-1").role == "operator"
    assert Users(users).authenticate("hanako", "wrong-password") is None
    listed = ems("users", "list", "--users", str(users))
    assert listed.stdout.split() == ["hanako", "operator"]


def test_users_add_refuses_a_duplicate_a_short_password_and_a_bad_role(tmp_path):
    users = tmp_path / "users.toml"
    env = {"PW": "operator-password-1", "SHORT": "abc"}
    assert (
        ems(
            "users", "add", "hanako", "--role", "viewer", "--users", str(users), "--password-env", "PW", env=env
        ).returncode
        == 0
    )
    before = users.read_text()
    again = ems("users", "add", "hanako", "--role", "operator", "--users", str(users), "--password-env", "PW", env=env)
    assert again.returncode == 2 and "exists" in again.stderr and str(users) in again.stderr
    short = ems("users", "add", "taro", "--role", "viewer", "--users", str(users), "--password-env", "SHORT", env=env)
    assert short.returncode == 2 and "too short" in short.stderr
    role = ems("users", "add", "taro", "--role", "admin", "--users", str(users), "--password-env", "PW", env=env)
    assert role.returncode == 2 and "invalid choice" in role.stderr
    assert users.read_text() == before  # nothing changed by the refusals
    changed = ems(
        "users",
        "add",
        "hanako",
        "--role",
        "operator",
        "--users",
        str(users),
        "--password-env",
        "PW",
        "--replace",
        env=env,
    )
    assert changed.returncode == 0 and 'role = "operator"' in users.read_text()


def test_a_hand_edited_users_file_with_a_bad_entry_is_named(tmp_path):
    users = tmp_path / "users.toml"
    users.write_text('[users.hanako]\nrole = "admin"\npassword_hash = "$argon2id$x"\n')
    listed = ems("users", "list", "--users", str(users))
    assert listed.returncode == 2 and f"{users}: users.hanako.role" in listed.stderr


def test_serve_stops_before_anything_runs_without_a_store_or_with_its_port_taken(tmp_path):
    missing = ems(
        "serve",
        "--config",
        str(CONFIG),
        "--store",
        str(tmp_path / "none.sqlite"),
        "--port",
        str(free_port()),
        cwd=tmp_path,
    )
    assert missing.returncode == 2 and "no such store" in missing.stderr
    assert not (tmp_path / "none.sqlite").exists() and not (tmp_path / "var").exists()  # nothing made
    store = tmp_path / "ems.sqlite"
    Store(store).close()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        busy = ems("serve", "--config", str(CONFIG), "--store", str(store), "--port", str(port), cwd=tmp_path)
    assert busy.returncode == 2 and f"cannot listen on 127.0.0.1:{port}" in busy.stderr


def test_serve_names_the_missing_web_extra(tmp_path):
    script = (
        "import sys; sys.modules['fastapi'] = None; from ems.cli import main; "
        f"sys.exit(main(['serve', '--config', {str(CONFIG)!r}]))"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=tmp_path, timeout=60)
    assert done.returncode == 2 and "'web' extra" in done.stderr and "fastapi" in done.stderr


def start_serve(args, cwd) -> tuple[subprocess.Popen, int]:
    port = free_port()
    process = subprocess.Popen(
        [*EMS, "serve", "--config", str(CONFIG), "--port", str(port), *args],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=os.environ | {"PYTHONUNBUFFERED": "1"},
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return process, port
        except httpx.HTTPError:
            time.sleep(0.2)
    process.kill()
    raise AssertionError(f"ems serve did not answer: {process.communicate()[1][-2000:]}")


def login(base: str, name: str, password: str) -> httpx.Client:
    client = httpx.Client(base_url=base, timeout=10)
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").text).group(1)
    answer = client.post("/login", data={"username": name, "password": password, "csrf_token": token})
    assert answer.status_code in (200, 303) and client.get("/api/").status_code == 200
    client.headers["X-CSRF-Token"] = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/").text).group(1)
    return client


def test_serve_as_a_process_refuses_anonymous_writes_and_ends_cleanly_on_sigterm(web_run, tmp_path):
    store = tmp_path / "ems.sqlite"
    shutil.copy(web_run.store, store)
    users = tmp_path / "users.toml"
    assert (
        ems(
            "users",
            "add",
            "hanako",
            "--role",
            "operator",
            "--users",
            str(users),
            "--password-env",
            "PW",
            env={"PW": "operator-password-1"},
        ).returncode
        == 0
    )
    process, port = start_serve(
        ["--store", str(store), "--users", str(users), "--at", web_run.end.isoformat()], tmp_path
    )
    base = f"http://127.0.0.1:{port}"
    try:
        assert httpx.post(f"{base}/api/replan").status_code == 401
        assert httpx.get(f"{base}/api/schedule").status_code == 401
        check = Store(store, create=False, readonly=True)
        assert check.get_state("replan_request") is None and check.count_events("audit") == 0
        check.close()
        client = login(base, "hanako", "operator-password-1")
        data = client.get("/api/schedule").json()
        assert data["now"].startswith(
            web_run.end.astimezone(data_zone()).strftime("%Y-%m-%dT%H")
        )  # --at: the run's time
        assert client.post("/api/replan").json()["request_id"] == 1
    finally:
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=30)
    assert process.returncode == 0, err[-2000:]
    assert f"console on http://127.0.0.1:{port}/" in out
    check = Store(store, create=False, readonly=True)
    assert check.get_state("replan_request")["user"] == "hanako"
    check.close()


def data_zone():
    from zoneinfo import ZoneInfo

    return ZoneInfo("Asia/Tokyo")


@pytest.mark.slow
def test_replan_now_reaches_the_running_controller_in_process_and_from_a_separate_console(mosquitto, tmp_path):
    """`ems run --twin --http` at real speed (a re-plan every 5 minutes): a re-plan within
    seconds of the request can only be the request's."""
    store = tmp_path / "ems.sqlite"
    # the console's users file and secret, and the BCP state, are relative to the working directory
    assert (
        ems(
            "users",
            "add",
            "hanako",
            "--role",
            "operator",
            "--config",
            str(CONFIG),
            "--password-env",
            "PW",
            env={"PW": "operator-password-1"},
            cwd=tmp_path,
        ).returncode
        == 0
    )
    assert (tmp_path / "var" / "ems" / "users.toml").exists()
    http_port = free_port()
    run = subprocess.Popen(
        [
            *EMS,
            "run",
            "--config",
            str(CONFIG),
            "--twin",
            "--mqtt-host",
            mosquitto.host,
            "--mqtt-port",
            str(mosquitto.port),
            "--store",
            str(store),
            "--inputs",
            "profiles",
            "--status-every-s",
            "1",
            "--modbus-base-port",
            str(free_port_block(40)),
            "--http",
            f"127.0.0.1:{http_port}",
        ],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=os.environ | {"PYTHONUNBUFFERED": "1"},
    )
    serve = None
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and "console on" not in (run.stdout.readline() or ""):
            assert run.poll() is None, run.stderr.read()[-3000:]
        client = login(f"http://127.0.0.1:{http_port}", "hanako", "operator-password-1")
        assert client.get("/healthz").json()["last_plan_status"] is not None
        reader = Store(store, create=False, readonly=True)
        # the scheduler's own first re-plan runs as it starts: let it finish, the next is 5 minutes away
        assert wait_for(lambda: any(row[0] == "replan" for row in list(reader.rows("job_runs"))[1:]), 120)
        plans = reader.count("plans")
        assert client.post("/api/replan").json()["in_process"] is True
        assert wait_for(lambda: reader.count("plans") > plans, 60), "no re-plan after the in-process request"
        requested = reader.latest_events(("replan-requested",), limit=5)
        assert requested and requested[0][3]["user"] == "hanako"
        # a separate console on the same store: the request waits in the store for the next poll
        serve, port = start_serve(["--store", str(store)], tmp_path)
        other = login(f"http://127.0.0.1:{port}", "hanako", "operator-password-1")
        plans = reader.count("plans")
        answer = other.post("/api/replan").json()
        assert answer["in_process"] is False and answer["request_id"] == 2
        assert wait_for(lambda: reader.count("plans") > plans, 60), "no re-plan after the stored request"
        assert [e[3]["id"] for e in reader.latest_events(("replan-requested",), limit=5)] == [2, 1]
        audits = [e[3] for e in reader.latest_events(("audit",), limit=20) if e[3]["action"] == "replan"]
        assert [a["user"] for a in audits] == ["hanako", "hanako"]
        reader.close()
    finally:
        if serve is not None:
            serve.send_signal(signal.SIGTERM)
            serve.communicate(timeout=30)
        run.send_signal(signal.SIGINT)
        out, err = run.communicate(timeout=60)
    assert run.returncode == 0, err[-3000:]


def wait_for(condition, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.2)
    return False


def test_serve_names_a_broken_users_file_before_serving(tmp_path):
    store = tmp_path / "ems.sqlite"
    Store(store).close()
    users = tmp_path / "users.toml"
    users.write_text('[users.hanako]\nrole = "operator"\npassword_hash = "plain-text"\n')
    done = ems(
        "serve",
        "--config",
        str(CONFIG),
        "--store",
        str(store),
        "--users",
        str(users),
        "--port",
        str(free_port()),
        cwd=tmp_path,
    )
    assert done.returncode == 2 and f"{users}: users.hanako.password_hash" in done.stderr
