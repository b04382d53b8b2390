"""Templates: one Jinja2 environment with autoescape, the base context every page gets, filters.

Every template extends ``base.html`` (header, navigation, language switch, logout form, print
CSS) and fills ``{% block content %}``. In a template: ``t("key")`` for a label,
``time|local`` / ``time|local("%H:%M")`` for a time in the portfolio's zone, ``time|slot`` for
its market slot (1-48), ``csrf_token`` for a form's hidden field (htmx sends it as a header by
itself, from ``hx-headers`` on ``<body>``), ``user`` (None or a User with ``.name``/``.role``),
``data|tojson`` to hand a page's data to a chart script.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, pass_context, select_autoescape
from markupsafe import Markup

from ems.web.context import console
from ems.web.i18n import LANGUAGES, pick_language, translate
from ems.web.sessions import CSRF_FIELD, CSRF_HEADER, LANG_COOKIE, csrf_token

TEMPLATES = Path(__file__).parent / "templates"
_environment: Environment | None = None


def environment() -> Environment:
    global _environment
    if _environment is None:
        env = Environment(
            loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(default=True, default_for_string=True)
        )
        env.filters["tojson"] = to_json
        env.filters["local"] = _local_filter
        env.filters["slot"] = _slot_filter
        _environment = env
    return _environment


def to_json(value: Any) -> Markup:
    """JSON safe inside <script type="application/json"> (no '</' can end the element early)."""
    text = json.dumps(value, default=str, ensure_ascii=False)
    return Markup(text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026"))


@pass_context
def _local_filter(context, value, fmt: str = "%Y-%m-%d %H:%M") -> str:
    return context["local"](value, fmt)


@pass_context
def _slot_filter(context, value) -> str:
    return context["slot"](value)


def parse_time(value) -> dt.datetime | None:
    if value is None or value == "":
        return None
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    return value


def language(request: Request) -> str:
    return pick_language(request.cookies.get(LANG_COOKIE), console(request).settings.locale)


def base_context(request: Request) -> dict:
    from ems.web.auth import current_user, session_of
    from ems.web.pages import navigation

    state = console(request)
    lang = language(request)
    zone = state.zone

    def local(value, fmt: str = "%Y-%m-%d %H:%M") -> str:
        time = parse_time(value)
        return time.astimezone(zone).strftime(fmt) if time is not None else "--"

    def slot(value) -> str:
        time = parse_time(value)
        if time is None:
            return "--"
        time = time.astimezone(zone)
        return str((time.hour * 60 + time.minute) // 30 + 1)

    return {
        "request": request,
        "lang": lang,
        "languages": LANGUAGES,
        "t": lambda key: translate(key, lang),
        "user": current_user(request),
        "csrf_token": csrf_token(session_of(request), state.secret),
        "csrf_field": CSRF_FIELD,
        "csrf_header": CSRF_HEADER,
        "nav": navigation(request.app),
        "path": request.url.path,
        "portfolio_name": state.portfolio.portfolio.name,
        "now": state.now(),
        "local": local,
        "slot": slot,
    }


def render(request: Request, template: str, context: dict | None = None, status_code: int = 200) -> HTMLResponse:
    html = environment().get_template(template).render({**base_context(request), **(context or {})})
    return HTMLResponse(html, status_code=status_code)
