"""Actions on the running controller: "re-plan now" (operator role, CSRF, audited).

A re-plan request is recorded in the store (``ems.store.requests``), where the controller's
scheduler finds it at its next poll; inside ``ems run --http`` the scheduler is also poked at
once. The answer is JSON for API clients, a small HTML fragment for htmx, a redirect for a
plain form.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse

from ems.store.requests import request_replan
from ems.web import audit
from ems.web.auth import Operator
from ems.web.context import console
from ems.web.i18n import LABELS, translate
from ems.web.render import language

router = APIRouter()
NAV = None

LABELS.update(
    {
        "action.replan": {"ja": "今すぐ再計画", "en": "Re-plan now"},
        "action.replan_sent": {"ja": "再計画を依頼しました", "en": "Re-plan requested"},
    }
)


def answer(request: Request, data: dict, message_key: str, back: str) -> JSONResponse | HTMLResponse | RedirectResponse:
    """One action, three kinds of caller: htmx gets a fragment, a form a redirect, others JSON."""
    if request.headers.get("HX-Request") == "true":
        from markupsafe import escape

        return HTMLResponse(
            f'<span class="done" role="status">{escape(translate(message_key, language(request)))}</span>'
        )
    if "text/html" in request.headers.get("accept", ""):
        return RedirectResponse(back, status_code=303)
    return JSONResponse(data)


@router.post("/api/replan")
async def replan(request: Request, user: Operator):
    state = console(request)
    request_id = await run_in_threadpool(request_replan, state.store, user.name, state.now())
    if state.replan_now is not None:  # in the controller's process: no wait for its next poll
        state.replan_now()
    await run_in_threadpool(
        audit.record, state, user.name, user.role, "replan", "done", f"request #{request_id}", request_id=request_id
    )
    return answer(
        request,
        {"requested": True, "request_id": request_id, "in_process": state.replan_now is not None},
        "action.replan_sent",
        "/schedule",
    )
