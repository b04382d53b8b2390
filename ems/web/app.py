"""``create_app``: the console as a FastAPI application on one store and one portfolio."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import HTTPException
from fastapi.responses import JSONResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles

from ems.web.context import Console, utc_now
from ems.web.sessions import LANG_COOKIE, load_or_create_secret
from ems.web.users import Users

STATIC = Path(__file__).parent / "static"


class ConsoleSetupError(RuntimeError):
    """The console's users file or secret cannot be used; the message names the file."""


def console_files(portfolio, users_path: str | Path | None = None) -> tuple[bytes, Path]:
    """The session key (made on first start) and the users file, checked before serving."""
    from ems.web.users import UsersError, read_users

    settings = portfolio.console
    users = Path(users_path or settings.users_file)
    try:
        secret = load_or_create_secret(settings.secret_file)
        if users.exists():
            read_users(users)
    except UsersError as error:
        raise ConsoleSetupError(str(error)) from None
    except ValueError as error:
        raise ConsoleSetupError(str(error)) from None
    except OSError as error:
        raise ConsoleSetupError(f"{error.filename or settings.secret_file}: {error.strerror or error}") from None
    return secret, users


def create_app(
    portfolio,
    config_path: str | Path,
    store,
    *,
    users_path: str | Path | None = None,
    secret: bytes | None = None,
    clock: Callable[[], dt.datetime] = utc_now,
    replan_now: Callable[[], object] | None = None,
    dispatch_store: str | Path | None = None,
    bcp_state_dir: str | Path = "var/ems",
) -> FastAPI:
    """The console on ``store`` (opened for writing: audit entries and re-plan requests go there).

    ``users_path`` and ``secret`` default to the config's ``[console]`` files; ``clock`` is the
    controller's (a twin's scaled clock) when served from ``ems run --http``; ``dispatch_store``
    is the live dispatcher's store (``ems dispatch serve --store``), read for the Fleet page;
    ``bcp_state_dir`` is where ``ems bcp activate`` records BCP mode (``ems run --bcp-state-dir``).
    """
    from ems.web import auth
    from ems.web.i18n import LANGUAGES
    from ems.web.pages import include_pages

    settings = portfolio.console
    state = Console(
        portfolio=portfolio,
        config_path=Path(config_path),
        store=store,
        users=Users(users_path or settings.users_file),
        secret=secret if secret is not None else load_or_create_secret(settings.secret_file),
        clock=clock,
        replan_now=replan_now,
        dispatch_store=Path(dispatch_store) if dispatch_store else None,
        bcp_state_dir=Path(bcp_state_dir),
    )
    app = FastAPI(title="arao-ems console", docs_url=None, redoc_url=None, openapi_url="/api/openapi.json")
    app.state.console = state
    app.middleware("http")(auth.session_middleware)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.include_router(auth.router)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, error: HTTPException):
        if auth.wants_html(request):
            if error.status_code == 401:
                return auth.login_redirect(request)
            from ems.web.render import render

            return render(
                request,
                "error.html",
                {"status": error.status_code, "detail": error.detail},
                status_code=error.status_code,
            )
        return JSONResponse({"detail": error.detail}, status_code=error.status_code, headers=error.headers)

    @app.get("/healthz")
    async def healthz():
        """For monitors, no login: the store answers and the last plan's age."""
        plan = await _in_thread(state.store.last_plan)
        now = state.now()
        return {
            "ok": True,
            "now": now.isoformat(timespec="seconds"),
            "last_plan_age_s": None if plan is None else round((now - plan["created"]).total_seconds(), 1),
            "last_plan_status": None if plan is None else plan["status"],
        }

    @app.get("/lang/{code}", include_in_schema=False)
    async def switch_language(code: str, next: str = "/"):
        """A preference cookie only (no state on the server changes)."""
        response = RedirectResponse(auth.safe_next(next), status_code=303)
        if code in LANGUAGES:
            response.set_cookie(
                LANG_COOKIE, code, max_age=365 * 86400, samesite="lax", httponly=True, secure=settings.secure_cookies
            )
        return response

    include_pages(app)
    return app


async def _in_thread(fn, *args):
    from fastapi.concurrency import run_in_threadpool

    return await run_in_threadpool(fn, *args)
