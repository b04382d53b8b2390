"""The audit log: every console action with its user (newest first)."""

from __future__ import annotations

from fastapi import APIRouter, Request

from ems.web import audit
from ems.web.context import Console
from ems.web.i18n import LABELS
from ems.web.pages import NavItem, page

router = APIRouter()
NAV = NavItem("/audit", "nav.audit", order=90)

LABELS.update(
    {
        "audit.time": {"ja": "時刻", "en": "time"},
        "audit.user": {"ja": "ユーザー", "en": "user"},
        "audit.action": {"ja": "操作", "en": "action"},
        "audit.outcome": {"ja": "結果", "en": "outcome"},
        "audit.message": {"ja": "内容", "en": "message"},
    }
)


@page(router, "/audit", "audit.html")
def audit_log(console: Console, request: Request) -> dict:
    text = request.query_params.get("limit", "200")
    limit = min(max(int(text), 1), 5000) if text.isdigit() else 200
    return {"entries": audit.entries(console, limit)}
