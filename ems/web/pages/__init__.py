"""The console's pages. One module per page, listed in ``PAGE_MODULES``; each has

* ``router``: a ``fastapi.APIRouter`` with its routes,
* ``NAV``: a ``NavItem`` (its place in the navigation), or None for a page without a tab,
* a data function decorated with ``@page(router, "/name", "name.html")``: it returns plain
  JSON-able data, served as ``GET /name`` (the template, with the data as ``data``) and as
  ``GET /api/name`` (the same data as JSON). Both need a logged-in user.

Actions are ordinary routes with ``Depends(operator)`` (see ``ems.web.auth``), and write their
audit entry with ``ems.web.audit.record``.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable
from dataclasses import dataclass

from fastapi import APIRouter, FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

PAGE_MODULES = (
    "ems.web.pages.now",
    "ems.web.pages.schedule",
    "ems.web.pages.fleet",
    "ems.web.pages.devices",
    "ems.web.pages.audit",
    "ems.web.pages.actions",
    "ems.web.pages.bcp",
    "ems.web.pages.nightly",
)


@dataclass(frozen=True)
class NavItem:
    path: str
    label_key: str  # a key of ems.web.i18n.LABELS
    order: int  # tabs sorted by this


def include_pages(app: FastAPI) -> None:
    items = []
    for name in PAGE_MODULES:
        module = importlib.import_module(name)
        app.include_router(module.router)
        if getattr(module, "NAV", None) is not None:
            items.append(module.NAV)
    app.state.navigation = sorted(items, key=lambda item: item.order)


def navigation(app: FastAPI) -> list[NavItem]:
    return app.state.navigation


def page(router: APIRouter, path: str, template: str) -> Callable:
    """Serve ``fn(console, request) -> dict`` as HTML at ``path`` and as JSON at ``/api`` + ``path``.

    ``fn`` may be sync (run in a worker thread: it may read the store at leisure) or async.
    Without a login the HTML route redirects to /login and the JSON route answers 401.
    """

    def decorate(fn: Callable) -> Callable:
        from ems.web.auth import current_user, login_redirect
        from ems.web.context import console
        from ems.web.render import render

        async def data_of(request: Request):
            if inspect.iscoroutinefunction(fn):
                return await fn(console(request), request)
            return await run_in_threadpool(fn, console(request), request)

        async def html(request: Request):
            if current_user(request) is None:
                return login_redirect(request)
            return render(request, template, {"data": await data_of(request)})

        async def api(request: Request):
            if current_user(request) is None:
                return JSONResponse({"detail": "log in first"}, status_code=401, headers={"WWW-Authenticate": "Cookie"})
            return JSONResponse(jsonable(await data_of(request)))

        router.add_api_route(path, html, methods=["GET"], include_in_schema=False, name=f"{fn.__name__}_page")
        router.add_api_route(f"/api{path}", api, methods=["GET"], name=f"{fn.__name__}_api")
        return fn

    return decorate


def jsonable(value):
    """Data functions may return datetimes, dates, numpy numbers: made plain for JSON."""
    from fastapi.encoders import jsonable_encoder

    return jsonable_encoder(value, custom_encoder={float: _finite})


def _finite(value: float):
    import math

    return value if math.isfinite(value) else None
