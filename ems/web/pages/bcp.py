"""BCP: drills run in the background with their results, and the live BCP switch.

A drill is ``ems bcp drill`` run as its own process (``ems.web.drills``): the page polls its
progress with htmx and then shows what the command writes: shelter hours against the bound, the
supply per shelter, vehicle visits, the reservation live BCP mode would publish and, when asked
for, the resilience curve. Nothing is sent to a device or a vehicle.

Activating or deactivating BCP mode is the same operator action as ``ems bcp activate`` /
``deactivate`` (``ems.bcp.mode``, whose record the running controller reads at its next
re-plan): operator role, the session's CSRF token, a reason and a typed confirmation (the
portfolio's name, or ``BCP``). Every attempt, done or refused, goes to the audit log.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse

from ems.bcp.mode import BcpActivationRefused, BcpModeError, BcpModeStore
from ems.bcp.outage import OutageError, load_outage
from ems.web import audit
from ems.web.auth import Operator, current_user
from ems.web.context import Console, console
from ems.web.drills import STATE_SOURCES, DrillBusy, DrillJobs, DrillRefused
from ems.web.i18n import LABELS
from ems.web.pages import NavItem, jsonable, page
from ems.web.render import render

router = APIRouter()
NAV = NavItem("/bcp", "nav.bcp", order=50)
CONFIRM_WORD = "BCP"

LABELS.update(
    {
        "nav.bcp": {"ja": "BCP", "en": "BCP"},
        "bcp.drill": {"ja": "BCP訓練 (ドリル)", "en": "BCP drill"},
        "bcp.drill_note": {
            "ja": "計画のみ: 機器への指令も車両の移動も行いません",
            "en": "Planning only: nothing is sent to a device and no vehicle moves",
        },
        "bcp.outage": {"ja": "停電", "en": "Outage"},
        "bcp.outage_file": {"ja": "停電ファイル", "en": "outage file"},
        "bcp.outage_spec": {
            "ja": "または条件 (start=...; hours=...; sites=...)",
            "en": "or a spec (start=...; hours=...; sites=...)",
        },
        "bcp.state": {"ja": "開始時の蓄電量", "en": "Energy on board at the start"},
        "bcp.state.store": {"ja": "制御器の記録 (最新の計測値)", "en": "the controller's store (latest readings)"},
        "bcp.state.config": {"ja": "設定ファイルの初期値", "en": "the config's initial state of charge"},
        "bcp.resilience": {"ja": "レジリエンス曲線も計算 (数分)", "en": "also the resilience curve (minutes)"},
        "bcp.run": {"ja": "訓練を開始", "en": "Run the drill"},
        "bcp.drills": {"ja": "訓練の履歴", "en": "Drills"},
        "bcp.no_drills": {"ja": "訓練はまだありません", "en": "no drill yet"},
        "bcp.running": {"ja": "実行中", "en": "running"},
        "bcp.done": {"ja": "完了", "en": "done"},
        "bcp.failed": {"ja": "失敗", "en": "failed"},
        "bcp.shelters": {"ja": "避難所", "en": "Shelters"},
        "bcp.hours_up": {"ja": "給電時間 h", "en": "hours up"},
        "bcp.bound": {"ja": "上限 h", "en": "upper bound, h"},
        "bcp.of_bound": {"ja": "上限比", "en": "of bound"},
        "bcp.served": {"ja": "供給量 kWh", "en": "served, kWh"},
        "bcp.all_shelters": {"ja": "全避難所同時", "en": "all shelters together"},
        "bcp.supply": {"ja": "避難所ごとの供給", "en": "Supply per shelter"},
        "bcp.visits": {"ja": "車両の派遣", "en": "Vehicle visits"},
        "bcp.vehicle": {"ja": "車両", "en": "vehicle"},
        "bcp.shelter": {"ja": "避難所", "en": "shelter"},
        "bcp.arrive": {"ja": "到着", "en": "arrive"},
        "bcp.leave": {"ja": "出発", "en": "leave"},
        "bcp.delivered": {"ja": "給電 kWh", "en": "delivered, kWh"},
        "bcp.lowest": {"ja": "最低残量 kWh", "en": "lowest on board, kWh"},
        "bcp.reservation": {
            "ja": "予約 (BCPモードで配車系へ送る内容)",
            "en": "Reservation (what live BCP mode would publish)",
        },
        "bcp.keep": {"ja": "確保する電力量 kWh", "en": "energy kept, kWh"},
        "bcp.from": {"ja": "開始", "en": "from"},
        "bcp.charge_calls": {"ja": "充電の呼び出し", "en": "charging calls"},
        "bcp.resilience_curve": {
            "ja": "レジリエンス曲線 (停電を乗り切る確率)",
            "en": "Resilience curve (probability of riding out the outage)",
        },
        "bcp.served_share": {"ja": "重要負荷への供給率", "en": "critical energy served"},
        "bcp.mode": {"ja": "BCPモードの切替", "en": "BCP mode switch"},
        "bcp.mode_on": {"ja": "BCPモード運転中", "en": "BCP mode is ACTIVE"},
        "bcp.mode_off": {"ja": "通常運転", "en": "Normal operation"},
        "bcp.reason": {"ja": "理由", "en": "reason"},
        "bcp.confirm": {
            "ja": "確認のためポートフォリオ名または BCP と入力",
            "en": "type the portfolio's name or BCP to confirm",
        },
        "bcp.activate": {"ja": "BCPモードを開始", "en": "Activate BCP mode"},
        "bcp.deactivate": {"ja": "BCPモードを終了", "en": "Deactivate BCP mode"},
        "bcp.log": {"ja": "切替の記録", "en": "Switch log"},
        "bcp.operator_only": {"ja": "切替は運用者のみ", "en": "Only operators switch BCP mode"},
    }
)


def bcp_state_dir(state: Console) -> Path:
    """Where BCP mode is kept (``ems serve --bcp-state-dir``, as given to ``ems run``; default var/ems)."""
    return Path(state.bcp_state_dir)


def drill_jobs(state: Console) -> DrillJobs:
    jobs = state.extras.get("drill_jobs")
    if jobs is None:
        root = Path(state.extras.get("drills_dir", "out/drills")).resolve()
        jobs = state.extras["drill_jobs"] = DrillJobs(
            state.config_path, Path(state.store.path).resolve(), root, clock=state.now
        )
    return jobs


def mode_view(state: Console) -> dict:
    store = BcpModeStore(bcp_state_dir(state))
    try:
        mode = store.current()
        problem = ""
    except BcpModeError as error:
        mode, problem = None, str(error)
    current = None
    if mode is not None:
        current = {
            "active": mode.active,
            "since": mode.since,
            "operator": mode.operator,
            "reason": mode.reason,
            "outage": mode.outage.name if mode.outage else None,
            "sites": list(mode.outage.sites) if mode.outage else [],
            "forced": mode.forced,
        }
    return {"current": current, "problem": problem, "log": list(reversed(store.log()))[:20]}


@page(router, "/bcp", "bcp.html")
def bcp(state: Console, request: Request) -> dict:
    jobs = drill_jobs(state)
    drills = [j.as_dict() for j in jobs.jobs()[:20]]
    chosen = request.query_params.get("drill") or next((d["id"] for d in drills if d["status"] == "done"), None)
    job = jobs.get(chosen) if chosen else None
    return {
        "outage_files": jobs.outage_files(),
        "state_sources": list(STATE_SOURCES),
        "drills": drills,
        "drill": drill_view(jobs, job) if job is not None else None,
        "mode": mode_view(state),
        "confirm_words": [state.portfolio.portfolio.name, CONFIRM_WORD],
        "audit": [e for e in audit.entries(state, limit=100) if str(e.get("action", "")).startswith("bcp")][:20],
    }


def drill_view(jobs: DrillJobs, job) -> dict:
    view = {"job": job.as_dict(), "result": None}
    if job.status == "done":
        try:
            view["result"] = jobs.result(job)
        except (OSError, ValueError) as error:
            view["job"] = view["job"] | {"status": "failed", "error": f"the drill's files cannot be read: {error}"}
    return view


def _wants_fragment(request: Request) -> bool:
    return request.headers.get("HX-Request") == "true"


def _answer_error(request: Request, status: int, message: str):
    if _wants_fragment(request):
        from markupsafe import escape

        return HTMLResponse(
            f'<p class="alert" role="alert">{escape(message)}</p>', status_code=200 if status < 500 else status
        )
    raise HTTPException(status, message)


@router.post("/api/bcp/drills")
async def start_drill(request: Request, user: Operator):
    state = console(request)
    form = await request.form()
    outage = str(form.get("outage_spec") or "").strip() or str(form.get("outage_file") or "")
    source = str(form.get("state") or "store")
    resilience = str(form.get("resilience") or "") in ("on", "true", "1")
    try:
        job = await run_in_threadpool(drill_jobs(state).start, outage, source, user.name, resilience, state.now())
    except DrillRefused as error:
        await run_in_threadpool(
            audit.record, state, user.name, user.role, "bcp-drill", "refused", str(error), outage=outage[:200]
        )
        return _answer_error(request, 400, str(error))
    except DrillBusy as error:
        await run_in_threadpool(
            audit.record, state, user.name, user.role, "bcp-drill", "refused", str(error), outage=outage[:200]
        )
        return _answer_error(request, 409, str(error))
    await run_in_threadpool(
        audit.record,
        state,
        user.name,
        user.role,
        "bcp-drill",
        "started",
        f"{job.outage_name} ({job.state}) as drill {job.id}",
        drill=job.id,
        outage=job.outage,
    )
    if _wants_fragment(request):
        return render(request, "bcp_drill.html", {"view": {"job": job.as_dict(), "result": None}})
    if "text/html" in request.headers.get("accept", ""):
        return RedirectResponse(f"/bcp?drill={job.id}", status_code=303)
    return JSONResponse(jsonable(job.as_dict()), status_code=202, headers={"Location": f"/api/bcp/drills/{job.id}"})


@router.get("/api/bcp/drills/{job_id}")
async def drill_api(request: Request, job_id: str):
    if current_user(request) is None:
        return JSONResponse({"detail": "log in first"}, status_code=401, headers={"WWW-Authenticate": "Cookie"})
    jobs = drill_jobs(console(request))
    job = await run_in_threadpool(jobs.get, job_id)
    if job is None:
        raise HTTPException(404, f"no drill {job_id!r}")
    return JSONResponse(jsonable(await run_in_threadpool(drill_view, jobs, job)))


@router.get("/bcp/drills/{job_id}", include_in_schema=False)
async def drill_fragment(request: Request, job_id: str):
    """The drill's progress (polled by htmx while it runs) or, once done, its results."""
    if current_user(request) is None:
        raise HTTPException(401, "log in first")
    jobs = drill_jobs(console(request))
    job = await run_in_threadpool(jobs.get, job_id)
    if job is None:
        raise HTTPException(404, f"no drill {job_id!r}")
    return render(request, "bcp_drill.html", {"view": await run_in_threadpool(drill_view, jobs, job)})


def _confirmed(state: Console, typed: str) -> bool:
    typed = " ".join(typed.split())
    return typed in (state.portfolio.portfolio.name, CONFIRM_WORD)


async def _switch(request: Request, user, action: str):
    state = console(request)
    form = await request.form()
    reason = " ".join(str(form.get("reason") or "").split())
    typed = str(form.get("confirm") or "")
    outage_text = str(form.get("outage_spec") or "").strip() or str(form.get("outage_file") or "")
    refused = None
    if not reason:
        refused = (400, "reason: say why (it is kept in the log)")
    elif not _confirmed(state, typed):
        refused = (400, f"confirm: type {state.portfolio.portfolio.name!r} or {CONFIRM_WORD!r} to confirm")
    mode_store = BcpModeStore(bcp_state_dir(state))
    outage = None
    if refused is None and action == "bcp-activate":
        jobs = drill_jobs(state)
        if outage_text in jobs.outage_files():
            outage_text = str(jobs.outage_dir / outage_text)
        elif "=" not in outage_text or "/" in outage_text:
            refused = (400, "outage: choose an outage file or type a spec 'start=...; hours=...; sites=...'")
        if refused is None:
            try:
                outage = load_outage(outage_text)
                outage.check_against(state.portfolio, "outage")
            except OutageError as error:
                refused = (400, str(error))
    if refused is None:
        try:
            if outage is not None:
                mode = await run_in_threadpool(
                    mode_store.activate, outage, str(state.config_path), user.name, state.now(), reason
                )
            else:
                mode = await run_in_threadpool(mode_store.deactivate, user.name, state.now(), reason)
        except BcpActivationRefused as error:
            refused = (409, f"{error}".replace("give --force", "use `ems bcp activate --force`"))
        except BcpModeError as error:
            refused = (409, str(error))
    if refused is not None:
        await run_in_threadpool(audit.record, state, user.name, user.role, action, "refused", refused[1], reason=reason)
        if _wants_fragment(request):  # the panel again, with what was refused and why
            return render(request, "bcp_mode.html", _mode_panel(state) | {"error": refused[1]})
        if "text/html" in request.headers.get("accept", ""):
            return render(request, "error.html", {"status": refused[0], "detail": refused[1]}, status_code=refused[0])
        raise HTTPException(*refused)
    what = f"{outage.name}, sites {', '.join(outage.sites)}" if outage is not None else "normal operation"
    await run_in_threadpool(
        audit.record,
        state,
        user.name,
        user.role,
        action,
        "done",
        f"{what}: {reason}",
        reason=reason,
        outage=outage.name if outage is not None else None,
    )
    data = {
        "active": mode.active,
        "since": mode.since,
        "operator": mode.operator,
        "reason": mode.reason,
        "outage": outage.name if outage is not None else None,
    }
    if _wants_fragment(request):
        return render(request, "bcp_mode.html", _mode_panel(state))
    if "text/html" in request.headers.get("accept", ""):
        return RedirectResponse("/bcp#mode", status_code=303)
    return JSONResponse(jsonable(data))


def _mode_panel(state: Console) -> dict:
    return {
        "mode": mode_view(state),
        "confirm_words": [state.portfolio.portfolio.name, CONFIRM_WORD],
        "outage_files": drill_jobs(state).outage_files(),
    }


@router.post("/api/bcp/activate")
async def activate(request: Request, user: Operator):
    return await _switch(request, user, "bcp-activate")


@router.post("/api/bcp/deactivate")
async def deactivate(request: Request, user: Operator):
    return await _switch(request, user, "bcp-deactivate")
