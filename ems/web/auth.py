"""Who is asking: the session middleware, the role and CSRF checks, login and logout.

In a handler, depend on ``viewer`` to read and on ``operator`` to change anything::

    @router.post("/api/replan")
    async def replan(request: Request, user: Operator): ...

``operator`` answers 401 without a login, 403 for a viewer and 403 without the session's CSRF
token (form field ``csrf_token`` or header ``X-CSRF-Token``), before the handler runs: a refused
request changes nothing. Refusals of a logged-in user are written to the audit log.
"""

from __future__ import annotations

import logging
import time
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import RedirectResponse, Response

from ems.web import audit
from ems.web.context import console
from ems.web.sessions import COOKIE, CSRF_FIELD, CSRF_HEADER, Session, csrf_ok, sign, verify
from ems.web.users import User

log = logging.getLogger(__name__)
router = APIRouter()
FAILED_LOGINS_ALLOWED = (
    5  # per user name within FAILED_LOGIN_WINDOW_S; then that name is refused until the window passes
)
FAILED_LOGIN_WINDOW_S = 600.0
AUDITED_FAILURES_PER_WINDOW = (
    100  # beyond this, failed logins go to the process log only (a stranger cannot fill the store)
)
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def wall_s() -> float:
    """Sessions expire on the wall clock, never on a twin's scaled clock."""
    return time.time()


async def session_middleware(request: Request, call_next) -> Response:
    state = console(request)
    session = verify(request.cookies.get(COOKIE), state.secret, wall_s())
    if session is None:
        session = Session.fresh(wall_s(), state.settings.session_hours * 3600)
    request.state.session = session
    response = await call_next(request)
    session = request.state.session  # login and logout replace it
    if session.changed:
        response.set_cookie(
            COOKIE,
            sign(session, state.secret),
            max_age=int(state.settings.session_hours * 3600),
            httponly=True,
            samesite="lax",
            secure=state.settings.secure_cookies,
            path="/",
        )
    # no page of the console may be framed, sniffed or leak its address; scripts only from /static
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    response.headers.setdefault(
        "Content-Security-Policy",
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data:; frame-ancestors 'none'; form-action 'self'",
    )
    return response


def session_of(request: Request) -> Session:
    return request.state.session


def current_user(request: Request) -> User | None:
    """The logged-in user, re-read from the users file (a removed user is logged out)."""
    return console(request).users.get(session_of(request).user)


def wants_html(request: Request) -> bool:
    return not request.url.path.startswith("/api/") and "text/html" in request.headers.get("accept", "")


def login_redirect(request: Request) -> RedirectResponse:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/login?next={quote(target)}", status_code=303)


async def csrf_token_of(request: Request) -> str | None:
    token = request.headers.get(CSRF_HEADER)
    if token:
        return token
    kind = request.headers.get("content-type", "")
    if kind.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
        value = (await request.form()).get(CSRF_FIELD)
        return value if isinstance(value, str) else None
    return None


async def check_csrf(request: Request) -> None:
    if request.method in WRITE_METHODS and not csrf_ok(
        session_of(request), console(request).secret, await csrf_token_of(request)
    ):
        raise HTTPException(403, "missing or wrong CSRF token (reload the page)")


async def viewer(request: Request) -> User:
    """Any logged-in user (401 otherwise); writes also need the CSRF token."""
    user = current_user(request)
    if user is None:
        raise HTTPException(401, "log in first", headers={"WWW-Authenticate": "Cookie"})
    await check_csrf(request)
    return user


async def operator(request: Request) -> User:
    """A logged-in operator with the session's CSRF token; refusals of known users are audited."""
    user = current_user(request)
    if user is None:
        log.warning("refused %s %s from %s: not logged in", request.method, request.url.path, request.client)
        raise HTTPException(401, "log in first", headers={"WWW-Authenticate": "Cookie"})
    action = f"{request.method} {request.url.path}"
    if not user.is_operator:
        audit.record(console(request), user.name, user.role, action, "refused", "needs the operator role")
        raise HTTPException(403, "this action needs the operator role")
    try:
        await check_csrf(request)
    except HTTPException:
        audit.record(console(request), user.name, user.role, action, "refused", "missing or wrong CSRF token")
        raise
    return user


# in a handler's signature: ``user: Operator`` (writes), ``user: Viewer`` (any login)
Operator = Annotated[User, Depends(operator)]
Viewer = Annotated[User, Depends(viewer)]
CsrfChecked = Annotated[None, Depends(check_csrf)]


def safe_next(target: str | None) -> str:
    """Only a path on this console (no scheme, no other host) may follow a login."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


@router.get("/login", include_in_schema=False)
async def login_page(request: Request, next: str = "/"):
    from ems.web.render import render

    return render(
        request, "login.html", {"next": safe_next(next), "failed": False, "no_users": not console(request).users.all()}
    )


@router.post("/login", include_in_schema=False)
async def login(request: Request, _csrf: CsrfChecked):
    import asyncio

    from ems.web.render import render

    form = await request.form()
    name, password = str(form.get("username", ""))[:64], str(form.get("password", ""))
    target = safe_next(str(form.get("next", "/")))
    state = console(request)
    failures = state.extras.setdefault("failed_logins", {})
    now_s = wall_s()
    recent = [t for t in failures.get(name, []) if now_s - t < FAILED_LOGIN_WINDOW_S]
    client = request.client.host if request.client else None
    if len(recent) >= FAILED_LOGINS_ALLOWED:  # guessing stops here, without even checking the password
        _failed_login(
            state, name, client, f"{len(recent)} failed logins within {FAILED_LOGIN_WINDOW_S / 60:.0f} minutes", now_s
        )
        return render(
            request,
            "login.html",
            {"next": target, "failed": True, "throttled": True, "no_users": False},
            status_code=429,
        )
    user = await asyncio.to_thread(state.users.authenticate, name, password)  # argon2 takes ~50 ms: off the loop
    if user is None:
        failures[name] = [*recent, now_s][-FAILED_LOGINS_ALLOWED:]
        if len(failures) > 1000:  # names tried at random: forget those outside the window
            for stale in [n for n, times in failures.items() if now_s - times[-1] >= FAILED_LOGIN_WINDOW_S]:
                del failures[stale]
        _failed_login(state, name, client, "wrong user name or password", now_s)
        return render(request, "login.html", {"next": target, "failed": True, "no_users": False}, status_code=401)
    failures.pop(name, None)
    request.state.session = Session.fresh(wall_s(), state.settings.session_hours * 3600, user=user.name)
    audit.record(state, user.name, user.role, "login", client=client)
    return RedirectResponse(target, status_code=303)


def _failed_login(state, name: str, client: str | None, reason: str, now_s: float) -> None:
    audited = [t for t in state.extras.get("audited_login_failures", []) if now_s - t < FAILED_LOGIN_WINDOW_S]
    if len(audited) < AUDITED_FAILURES_PER_WINDOW:
        audit.record(state, name[:64] or None, None, "login", "refused", reason, client=client)
        audited.append(now_s)
    else:
        log.warning("login refused for %r from %s: %s (not audited: too many failures)", name[:64], client, reason)
    state.extras["audited_login_failures"] = audited


@router.post("/logout", include_in_schema=False)
async def logout(request: Request, user: Viewer):
    state = console(request)
    audit.record(state, user.name, user.role, "logout")
    request.state.session = Session.fresh(wall_s(), state.settings.session_hours * 3600)
    return RedirectResponse("/login", status_code=303)
