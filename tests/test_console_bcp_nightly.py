"""The console's BCP and Nightly DR pages through FastAPI's TestClient: a drill run as a real
background process from start to result, the BCP switch with its refusals, and the nights the
nightly job wrote."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from ems.bcp.mode import BcpModeStore

SPEC_12H = (
    "start=2026-09-15T14:00+09:00; hours=12; sites=shelter_north,shelter_central,shelter_south,city_hall; pv_scale=0.3"
)


@pytest.fixture
def ops(console, tmp_path):
    """The console with its BCP state, drills and nights in this test's directory."""
    state = console.app.state.console
    state.bcp_state_dir = tmp_path / "bcp"
    state.extras["drills_dir"] = str(tmp_path / "drills")
    yield console
    jobs = state.extras.get("drill_jobs")
    if jobs is not None:
        jobs.stop_all()


def poll(client, job_id: str, timeout_s: float = 240.0) -> dict:
    deadline = time.monotonic() + timeout_s
    seen_steps = set()
    while time.monotonic() < deadline:
        body = client.get(f"/api/bcp/drills/{job_id}").json()
        seen_steps.add(body["job"]["step"])
        if body["job"]["status"] != "running":
            body["seen_steps"] = seen_steps
            return body
        time.sleep(0.3)
    raise AssertionError(f"drill {job_id} still running after {timeout_s} s")


def audit_actions(console) -> list[tuple[str, str, str]]:
    rows = console.store.latest_events(("audit",), limit=200)
    return [(data["user"], data["action"], data["outcome"]) for _t, _k, _m, data in rows]


# --- drills ------------------------------------------------------------------------------------


def test_a_drill_runs_from_start_to_result(ops):
    assert ops.login("hanako").status_code == 303
    token = ops.csrf("/bcp")
    started = ops.post("/api/bcp/drills", data={"outage_spec": SPEC_12H, "state": "store", "csrf_token": token})
    assert started.status_code == 202, started.text
    job = started.json()
    assert (
        job["status"] == "running"
        and job["operator"] == "hanako"
        and started.headers["location"] == f"/api/bcp/drills/{job['id']}"
    )

    # while it runs, the htmx fragment polls itself; a second drill is refused
    fragment = ops.get(f"/bcp/drills/{job['id']}", headers={"HX-Request": "true"})
    assert 'hx-trigger="every 1s"' in fragment.text or 'data-status="done"' in fragment.text
    busy = ops.post("/api/bcp/drills", data={"outage_spec": SPEC_12H, "state": "store", "csrf_token": token})
    assert busy.status_code in (409, 202)  # 202 only if the first one already finished

    body = poll(ops.client, job["id"])
    assert body["job"]["status"] == "done", body["job"]
    assert max(body["seen_steps"]) == 5  # the command's progress lines reached the page
    summary, supply = body["result"]["summary"], body["result"]["supply"]
    assert set(summary["shelter_hours"]) == {"north_school_gym", "central_community_hall", "south_school_gym"}
    # the energy on board came from the twin run's readings in the console's store, as at the console's clock
    assert summary["state"].startswith(f"store {Path(ops.store.path).resolve()}: ")
    assert "batteries and vehicles, latest reading 2026-04-14T23:" in summary["state"]  # 08:xx in Tokyo
    assert summary["initial_soc_kwh"]
    for shelter, hours in summary["shelter_hours"].items():
        assert 0 <= hours <= summary["upper_bound_hours"][shelter] + 1e-6
        assert len(supply[shelter]["time"]) == 12 * 60 // summary["step_minutes"]
    assert body["result"]["reservation"]["keep_energy_kwh"]  # the reservation live BCP mode would publish
    assert {v["vehicle"] for v in summary["visits"]} == set(summary["vehicles_assigned"])

    page = ops.get(f"/bcp?drill={job['id']}", headers={"accept": "text/html"})
    assert page.status_code == 200
    assert 'data-chart="bcp-supply"' in page.text and "taxi-" in page.text
    assert f'data-drill="{job["id"]}" data-status="done"' in page.text
    listed = ops.get("/api/bcp").json()
    assert listed["drills"][0]["id"] == job["id"] and listed["drill"]["job"]["status"] == "done"
    assert ("hanako", "bcp-drill", "started") in audit_actions(ops)


def test_drills_are_refused_to_viewers_strangers_and_forged_forms(ops, tmp_path):
    anonymous = ops.post("/api/bcp/drills", data={"outage_spec": SPEC_12H, "state": "store"})
    assert anonymous.status_code == 401
    ops.login("taro")  # a viewer
    viewer = ops.post(
        "/api/bcp/drills", data={"outage_spec": SPEC_12H, "state": "store", "csrf_token": ops.csrf("/bcp")}
    )
    assert viewer.status_code == 403
    ops.post("/logout", data={"csrf_token": ops.csrf("/bcp")})
    ops.login("hanako")
    forged = ops.post("/api/bcp/drills", data={"outage_spec": SPEC_12H, "state": "store", "csrf_token": "forged"})
    assert forged.status_code == 403
    assert not (tmp_path / "drills").exists() or not any((tmp_path / "drills").iterdir())  # nothing started
    assert ("taro", "POST /api/bcp/drills", "refused") in audit_actions(ops)


@pytest.mark.parametrize(
    ("form", "message"),
    [
        ({"outage_spec": "/etc/passwd"}, "neither a file"),
        ({"outage_spec": "start=2026-09-15T14:00+09:00; hours=12; sites=nowhere"}, "nowhere"),
        ({"outage_spec": "start=yesterday; hours=12; sites=shelter_north"}, "start"),
        ({"outage_file": "../arao.toml"}, "neither a file"),
        ({"outage_spec": SPEC_12H, "state": "twin"}, "state"),
    ],
)
def test_bad_drill_requests_are_refused_with_the_field_named(ops, tmp_path, form, message):
    ops.login("hanako")
    answer = ops.post("/api/bcp/drills", data={"state": "store", **form, "csrf_token": ops.csrf("/bcp")})
    assert answer.status_code == 400
    assert message in answer.json()["detail"]
    assert not (tmp_path / "drills").exists() or not any((tmp_path / "drills").iterdir())
    assert ("hanako", "bcp-drill", "refused") in audit_actions(ops)


# --- the BCP switch ------------------------------------------------------------------------------


def switch(ops, action: str, **form):
    return ops.post(f"/api/bcp/{action}", data={"csrf_token": ops.csrf("/bcp"), **form})


def test_bcp_mode_on_and_off_with_reason_and_confirmation(ops, tmp_path):
    ops.login("hanako")
    # near the console's clock (the twin run's end, 2026-04-15 morning in Tokyo)
    spec = "start=2026-04-15T09:00+09:00; hours=24; sites=shelter_north,shelter_south"
    on = switch(ops, "activate", outage_spec=spec, reason="typhoon warning", confirm="BCP")
    assert on.status_code == 200, on.text
    assert on.json()["active"] is True and on.json()["operator"] == "hanako"
    mode = BcpModeStore(tmp_path / "bcp").current()
    assert mode.active and mode.operator == "hanako" and mode.reason == "typhoon warning"
    assert list(mode.outage.sites) == ["shelter_north", "shelter_south"]
    assert 'data-bcp="on"' in ops.get("/bcp", headers={"accept": "text/html"}).text

    again = switch(ops, "activate", outage_spec=spec, reason="twice", confirm="BCP")
    assert again.status_code == 409 and "already active" in again.json()["detail"]

    name = ops.app.state.console.portfolio.portfolio.name
    off = switch(ops, "deactivate", reason="grid is back", confirm=name)
    assert off.status_code == 200 and off.json()["active"] is False
    assert not BcpModeStore(tmp_path / "bcp").is_active()
    log = BcpModeStore(tmp_path / "bcp").log()
    assert [(e["action"], e["operator"], e["reason"]) for e in log] == [
        ("activate", "hanako", "typhoon warning"),
        ("deactivate", "hanako", "grid is back"),
    ]
    actions = audit_actions(ops)
    assert ("hanako", "bcp-activate", "done") in actions and ("hanako", "bcp-deactivate", "done") in actions
    assert ("hanako", "bcp-activate", "refused") in actions


@pytest.mark.parametrize(
    ("form", "status", "message"),
    [
        ({"reason": "storm", "confirm": "bcp please"}, 400, "confirm"),
        ({"reason": "", "confirm": "BCP"}, 400, "reason"),
        ({"reason": "storm", "confirm": "BCP", "outage_spec": ""}, 400, "outage"),
        # the reference typhoon (September) starts five months after the console's clock: more than a week ahead
        (
            {"reason": "storm", "confirm": "BCP", "outage_file": "typhoon-72h.toml", "outage_spec": ""},
            409,
            "days ahead",
        ),
    ],
)
def test_bcp_activation_refusals_change_nothing(ops, tmp_path, form, status, message):
    ops.login("hanako")
    data = {"outage_spec": "start=2026-04-15T09:00+09:00; hours=24; sites=shelter_north"} | form
    answer = switch(ops, "activate", **data)
    assert answer.status_code == status, answer.text
    assert message in answer.json()["detail"]
    assert BcpModeStore(tmp_path / "bcp").current() is None and BcpModeStore(tmp_path / "bcp").log() == []
    assert ("hanako", "bcp-activate", "refused") in audit_actions(ops)


def test_bcp_switch_is_refused_to_viewers_and_without_csrf(ops, tmp_path):
    spec = {
        "outage_spec": "start=2026-04-15T09:00+09:00; hours=24; sites=shelter_north",
        "reason": "x",
        "confirm": "BCP",
    }
    assert ops.post("/api/bcp/activate", data=spec).status_code == 401
    ops.login("taro")
    assert switch(ops, "activate", **spec).status_code == 403
    assert switch(ops, "deactivate", reason="x", confirm="BCP").status_code == 403
    ops.post("/logout", data={"csrf_token": ops.csrf("/bcp")})
    ops.login("hanako")
    assert ops.post("/api/bcp/activate", data=spec | {"csrf_token": "nope"}).status_code == 403
    assert BcpModeStore(tmp_path / "bcp").current() is None
    assert switch(ops, "deactivate", reason="nothing to stop", confirm="BCP").status_code == 409  # not active


# --- nightly DR ------------------------------------------------------------------------------


def test_nightly_page_lists_the_nights_and_shows_the_newest(ops, nights):
    ops.app.state.console.extras["nightly_dir"] = str(nights)
    assert ops.get("/api/nightly").status_code == 401
    ops.login("taro")  # reading needs any login
    data = ops.get("/api/nightly").json()
    assert [n["date"] for n in data["nights"]] == ["2026-04-16", "2026-04-15"]
    night = data["night"]
    kpis = json.loads((nights / "2026-04-16" / "kpis.json").read_text())
    assert night["date"] == "2026-04-16" and night["previous"] == "2026-04-15"
    assert night["plan"]["energy_cost_yen"] == kpis["plan"]["energy_cost_yen"]
    spread = night["spread"]["energy_cost_yen"]
    assert spread["p10"] <= spread["p50"] <= spread["p90"]
    (event,) = night["events"]
    assert event["event_id"] == "evening-down"
    assert set(event["vs_baseline"]) >= {"requested_kwh", "delivered_kwh", "shortfall_kwh"}
    assert set(event["vs_plan_without_event"]) >= {"requested_kwh", "delivered_kwh", "shortfall_kwh"}
    blocks = night["flexibility"]["blocks"]
    assert len(blocks) == 8 and all(b["down_kw"] >= 0 and b["up_kw"] >= 0 for b in blocks)
    hours = 3.0
    assert night["flexibility_totals"]["down_kwh"] == pytest.approx(sum(b["down_kw"] for b in blocks) * hours, abs=0.02)
    previous = json.loads((nights / "2026-04-15" / "kpis.json").read_text())
    cost = next(c for c in night["changes"] if c["what"] == "plan energy_cost_yen")
    assert cost["previous"] == previous["plan"]["energy_cost_yen"] and cost["this"] == kpis["plan"]["energy_cost_yen"]
    assert cost["change"] == pytest.approx(
        kpis["plan"]["energy_cost_yen"] - previous["plan"]["energy_cost_yen"], abs=1e-3
    )

    older = ops.get("/api/nightly/2026-04-15").json()
    assert older["previous"] is None and older["changes"] == []
    html = ops.get("/nightly?date=2026-04-16", headers={"accept": "text/html"}).text
    assert 'data-chart="night-flexibility"' in html and "evening-down" in html and "P90" in html
    report = ops.get("/nightly/2026-04-16/report.html")
    assert report.status_code == 200 and "<html" in report.text.lower()


def test_nightly_refuses_dates_that_are_not_nights(ops, nights):
    ops.app.state.console.extras["nightly_dir"] = str(nights)
    ops.login("taro")
    assert ops.get("/api/nightly/2026-04-17").status_code == 404
    assert ops.get("/api/nightly/..%2F..%2Fetc").status_code == 404
    assert ops.get("/nightly/../kpis.json/report.html").status_code == 404
    assert ops.get("/nightly?date=yesterday", headers={"accept": "text/html"}).status_code == 404


def test_nightly_page_without_nights_says_so(ops, tmp_path):
    ops.app.state.console.extras["nightly_dir"] = str(tmp_path / "never")
    ops.login("taro")
    assert ops.get("/api/nightly").json() == {"nights": [], "night": None}
    ops.client.cookies.set("ems_lang", "en")
    assert "no nightly simulation yet" in ops.get("/nightly", headers={"accept": "text/html"}).text
