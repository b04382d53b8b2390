"""Nightly DR: the nights the nightly job wrote, each with its KPIs and P10/P50/P90 spread, the
events against their baseline and against the plan without them, the flexibility curve (the
operator's offer) and what changed since the night before. Read only (``ems.web.nights``)."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import FileResponse

from ems.web.auth import current_user
from ems.web.context import Console, console
from ems.web.i18n import LABELS
from ems.web.nights import NightMissing, list_nights, night_dates, night_view
from ems.web.pages import NavItem, page

router = APIRouter()
NAV = NavItem("/nightly", "nav.nightly", order=60)

LABELS.update(
    {
        "nav.nightly": {"ja": "夜間DR", "en": "Nightly DR"},
        "night.nights": {"ja": "夜間シミュレーション", "en": "Nights"},
        "night.none": {"ja": "夜間シミュレーションの結果がまだありません", "en": "no nightly simulation yet"},
        "night.date": {"ja": "対象日", "en": "day"},
        "night.cost": {"ja": "電力量料金 ¥", "en": "energy cost ¥"},
        "night.objective": {"ja": "目的関数 ¥", "en": "objective ¥"},
        "night.peak": {"ja": "最大受電 kW", "en": "peak import kW"},
        "night.events": {"ja": "DRイベント", "en": "DR events"},
        "night.flex_down": {"ja": "下げ余力 kWh", "en": "down flexibility kWh"},
        "night.flex_up": {"ja": "上げ余力 kWh", "en": "up flexibility kWh"},
        "night.kpis": {
            "ja": "計画の指標とばらつき (P10/P50/P90)",
            "en": "The plan's KPIs and their spread (P10/P50/P90)",
        },
        "night.kpi": {"ja": "指標", "en": "KPI"},
        "night.plan": {"ja": "計画", "en": "plan"},
        "night.without_events": {"ja": "イベントなしの計画", "en": "plan without events"},
        "night.samples": {"ja": "予測誤差サンプル数", "en": "forecast-error samples"},
        "night.event": {"ja": "イベント", "en": "event"},
        "night.direction": {"ja": "方向", "en": "direction"},
        "night.value": {"ja": "価値 ¥", "en": "value ¥"},
        "night.requested": {"ja": "要請 kWh", "en": "requested kWh"},
        "night.vs_baseline": {"ja": "ベースライン比 (精算)", "en": "against the baseline (settled)"},
        "night.vs_plan": {"ja": "イベントなし計画比", "en": "against the plan without it"},
        "night.delivered": {"ja": "実績 kWh", "en": "delivered kWh"},
        "night.shortfall": {"ja": "不足 kWh", "en": "shortfall kWh"},
        "night.flexibility": {"ja": "調整力 (オファー)", "en": "Flexibility (the operator's offer)"},
        "night.changes": {"ja": "前夜からの変化", "en": "What changed since the previous night"},
        "night.previous": {"ja": "前夜", "en": "previous night"},
        "night.this": {"ja": "今夜", "en": "this night"},
        "night.change": {"ja": "変化", "en": "change"},
        "night.first": {"ja": "比較できる前夜がありません", "en": "no earlier night to compare with"},
        "night.report": {"ja": "詳細レポート", "en": "full report"},
        "night.unavailable": {"ja": "機器停止時の追加費用 ¥", "en": "extra cost with a device out ¥"},
    }
)


def nightly_dir(state: Console) -> Path:
    return Path(state.extras.get("nightly_dir", state.portfolio.control.nightly_dir))


@page(router, "/nightly", "nightly.html")
def nightly(state: Console, request: Request) -> dict:
    root = nightly_dir(state)
    nights = list_nights(root)
    chosen = request.query_params.get("date") or (nights[0]["date"] if nights else None)
    view = None
    if chosen is not None:
        try:
            view = night_view(root, chosen)
        except NightMissing as error:
            raise HTTPException(404, str(error)) from None
    return {"nights": nights, "night": view}


@router.get("/api/nightly/{date}")
async def night_api(request: Request, date: str):
    from fastapi.concurrency import run_in_threadpool
    from fastapi.responses import JSONResponse

    from ems.web.pages import jsonable

    if current_user(request) is None:
        return JSONResponse({"detail": "log in first"}, status_code=401, headers={"WWW-Authenticate": "Cookie"})
    try:
        view = await run_in_threadpool(night_view, nightly_dir(console(request)), date)
    except NightMissing as error:
        raise HTTPException(404, str(error)) from None
    return JSONResponse(jsonable(view))


@router.get("/nightly/{date}/report.html", include_in_schema=False)
async def night_report(request: Request, date: str):
    """The night's own self-contained report, as the nightly job wrote it."""
    if current_user(request) is None:
        raise HTTPException(401, "log in first")
    root = nightly_dir(console(request))
    if date not in night_dates(root) or not (root / date / "report.html").is_file():
        raise HTTPException(404, f"no report for {date!r}")
    return FileResponse(root / date / "report.html", media_type="text/html")
