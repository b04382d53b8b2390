"""The console's security: logins, sessions, CSRF, roles, and the audit log, through TestClient
on a store filled by a real twin run. A refused write must leave the store as it was."""

from __future__ import annotations

import pytest

from ems.web.sessions import COOKIE


def snapshot(store) -> dict:
    """What a write could change: counts of every table that matters and the re-plan request."""
    return {table: store.count(table) for table in ("events", "plans", "setpoints", "state")} | {
        "replan_request": store.get_state("replan_request")
    }


def audit_rows(store) -> list[dict]:
    return [data for _t, _k, _m, data in store.latest_events(("audit",), limit=100)]


def test_healthz_answers_without_a_login_with_the_stored_plan(console):
    answer = console.get("/healthz")
    assert answer.status_code == 200
    body = answer.json()
    assert body["ok"] is True
    assert body["last_plan_status"] == console.store.last_plan()["status"]
    assert body["last_plan_age_s"] >= 0


def test_pages_need_a_login(console):
    page = console.get("/", headers={"accept": "text/html"}, follow_redirects=False)
    assert page.status_code == 303 and page.headers["location"] == "/login?next=/"
    api = console.get("/api/")
    assert api.status_code == 401


def test_login_sets_an_httponly_samesite_cookie_and_opens_the_pages(console):
    answer = console.login("taro")
    assert answer.status_code == 303 and answer.headers["location"] == "/"
    cookie = answer.headers["set-cookie"]
    assert f"{COOKIE}=" in cookie and "HttpOnly" in cookie and "SameSite=lax" in cookie
    now = console.get("/api/")
    assert now.status_code == 200
    assert now.json()["last_plan"]["id"] == console.store.last_plan()["id"]
    assert audit_rows(console.store)[0].items() >= {"user": "taro", "action": "login", "outcome": "done"}.items()


def test_a_wrong_password_is_refused_and_audited(console):
    before = console.store.count("plans")
    answer = console.login("hanako", "not-her-password")
    assert answer.status_code == 401
    assert console.get("/api/").status_code == 401
    assert audit_rows(console.store)[0].items() >= {"user": "hanako", "action": "login", "outcome": "refused"}.items()
    assert console.store.count("plans") == before


def test_login_without_the_csrf_token_is_refused(console):
    answer = console.post(
        "/login", data={"username": "hanako", "password": "operator-password-1"}, follow_redirects=False
    )
    assert answer.status_code == 403
    assert console.get("/api/").status_code == 401


def test_a_token_of_another_session_does_not_pass(console):
    stolen = console.csrf("/login")
    console.cookies.clear()  # a new visitor: a new session, so the old token is worthless
    console.get("/login")
    answer = console.post(
        "/login",
        data={"username": "hanako", "password": "operator-password-1", "csrf_token": stolen},
        follow_redirects=False,
    )
    assert answer.status_code == 403


def test_an_unauthenticated_replan_is_refused_and_changes_nothing(console):
    before = snapshot(console.store)
    answer = console.post("/api/replan")
    assert answer.status_code == 401
    token = console.csrf("/login")  # a valid CSRF token alone is no login
    assert console.post("/api/replan", headers={"X-CSRF-Token": token}).status_code == 401
    assert snapshot(console.store) == before


def test_a_viewer_may_not_replan_and_the_refusal_is_audited(console):
    console.login("taro")
    token = console.csrf("/")
    before = snapshot(console.store)
    answer = console.post("/api/replan", headers={"X-CSRF-Token": token})
    assert answer.status_code == 403
    after = snapshot(console.store)
    assert after["replan_request"] is None and after["plans"] == before["plans"]
    assert after["events"] == before["events"] + 1  # the audit entry, nothing else
    assert (
        audit_rows(console.store)[0].items()
        >= {"user": "taro", "action": "POST /api/replan", "outcome": "refused"}.items()
    )


def test_an_operator_without_the_csrf_token_is_refused(console):
    console.login("hanako")
    before = snapshot(console.store)
    assert console.post("/api/replan").status_code == 403
    assert console.post("/api/replan", headers={"X-CSRF-Token": "forged"}).status_code == 403
    assert snapshot(console.store)["replan_request"] is before["replan_request"] is None


def test_an_operator_replan_is_recorded_for_the_controller_and_audited(console):
    console.login("hanako")
    token = console.csrf("/")
    answer = console.post("/api/replan", headers={"X-CSRF-Token": token})
    assert answer.status_code == 200 and answer.json()["request_id"] == 1
    assert console.store.get_state("replan_request").items() >= {"id": 1, "user": "hanako"}.items()
    assert (
        audit_rows(console.store)[0].items()
        >= {"user": "hanako", "action": "replan", "outcome": "done", "request_id": 1}.items()
    )
    again = console.post(
        "/api/replan", data={"csrf_token": token}, headers={"accept": "text/html"}, follow_redirects=False
    )
    assert again.status_code == 303  # a plain form is sent back to the page
    assert console.store.get_state("replan_request")["id"] == 2


def test_htmx_gets_a_fragment(console):
    console.login("hanako")
    token = console.csrf("/")
    answer = console.post("/api/replan", headers={"X-CSRF-Token": token, "HX-Request": "true"})
    assert answer.status_code == 200 and 'role="status"' in answer.text


def test_logout_ends_the_session(console):
    console.login("hanako")
    token = console.csrf("/")
    answer = console.post("/logout", data={"csrf_token": token}, follow_redirects=False)
    assert answer.status_code == 303
    assert console.get("/api/").status_code == 401
    assert audit_rows(console.store)[0].items() >= {"user": "hanako", "action": "logout"}.items()


def test_a_tampered_cookie_is_no_login(console):
    console.login("taro")
    value = console.cookies.get(COOKIE)
    body, mac = value.split(".")
    import base64
    import json

    data = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    data["u"] = "hanako"
    forged = base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode() + "." + mac
    console.cookies.set(COOKIE, forged)
    assert console.get("/api/").status_code == 401


def test_a_removed_user_is_logged_out_at_the_next_request(console, tmp_path):
    from ems.web.users import remove_user

    console.login("taro")
    assert console.get("/api/").status_code == 200
    remove_user(tmp_path / "users.toml", "taro")
    assert console.get("/api/").status_code == 401


@pytest.mark.parametrize("target", ["//evil.example/", "https://evil.example/", "/\\evil.example"])
def test_login_never_redirects_off_the_console(console, target):
    token = console.csrf("/login")
    answer = console.post(
        "/login",
        data={"username": "taro", "password": "viewer-password-1", "csrf_token": token, "next": target},
        follow_redirects=False,
    )
    assert answer.headers["location"] == "/"


def test_pages_forbid_framing_and_foreign_scripts(console):
    page = console.get("/login")
    assert page.headers["x-frame-options"] == "DENY"
    assert "script-src 'self'" in page.headers["content-security-policy"]


def test_repeated_wrong_passwords_lock_the_name_for_a_while_even_with_the_right_one(console):
    from ems.web.auth import FAILED_LOGINS_ALLOWED

    for _attempt in range(FAILED_LOGINS_ALLOWED):
        assert console.login("hanako", "guess-guess-guess").status_code == 401
    locked = console.login("hanako")  # the right password, too late
    assert locked.status_code == 429
    assert console.get("/api/").status_code == 401
    assert audit_rows(console.store)[0].items() >= {"user": "hanako", "action": "login", "outcome": "refused"}.items()
    assert "failed logins" in console.store.latest_events(("audit",), limit=1)[0][2]
    assert console.login("taro").status_code == 303  # other names are not affected


def test_a_users_file_broken_while_serving_lets_nobody_in(console, tmp_path):
    console.login("taro")
    assert console.get("/api/").status_code == 200
    (tmp_path / "users.toml").write_text("[users.taro\nrole = ")
    assert console.get("/api/").status_code == 401
    assert console.login("taro").status_code == 401
