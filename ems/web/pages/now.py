"""Now: BCP mode, the last plan, re-plan failures, devices missing or stale, the 10:00 gate,
and the plan's cost against the rule-based baseline."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

from fastapi import APIRouter, Request

from ems.web.assets import iso
from ems.web.context import Console
from ems.web.i18n import LABELS
from ems.web.pages import NavItem, page

router = APIRouter()
NAV = NavItem("/", "nav.now", order=10)
GATE_TIME = dt.time(10, 0)  # JEPX day-ahead gate closure, local time

LABELS.update(
    {
        "now.bcp_on": {"ja": "BCPモード運転中", "en": "BCP mode ACTIVE"},
        "now.bcp_off": {"ja": "通常運転", "en": "Normal operation"},
        "now.bcp_switched": {
            "ja": "BCPモードに切替済 (制御側の反映待ち)",
            "en": "BCP mode switched on (the controller follows at its next re-plan)",
        },
        "now.bcp_by": {"ja": "操作者", "en": "by"},
        "now.bcp_outage": {"ja": "停電", "en": "outage"},
        "now.last_plan": {"ja": "最新の計画", "en": "Last plan"},
        "now.status": {"ja": "状態", "en": "status"},
        "now.gap": {"ja": "ギャップ", "en": "gap"},
        "now.solve_s": {"ja": "求解時間", "en": "solve time"},
        "now.fallback": {"ja": "代替計画の理由", "en": "fallback reason"},
        "now.replan": {"ja": "再計画", "en": "Re-planning"},
        "now.replan_ok": {"ja": "前回の計画以降、失敗なし", "en": "no failure since the last plan"},
        "now.replan_failing": {"ja": "再計画が失敗中", "en": "re-planning failing"},
        "now.devices": {"ja": "欠測・停滞中の機器", "en": "Devices missing or stale"},
        "now.gate": {"ja": "前日市場の締切 (10:00) まで", "en": "Until the day-ahead gate (10:00)"},
        "now.kpi": {"ja": "ルールベース運転との比較", "en": "Against the rule-based baseline"},
        "now.energy_only": {"ja": "電力量料金のみ", "en": "energy only"},
        "now.with_demand": {"ja": "基本料金 (デマンド) を含む", "en": "with demand charge"},
        "now.plan": {"ja": "計画", "en": "plan"},
        "now.baseline": {"ja": "ベースライン", "en": "baseline"},
        "now.saving": {"ja": "削減", "en": "saving"},
        "now.no_plan": {"ja": "計画はまだありません", "en": "no plan yet"},
        "now.no_kpi": {"ja": "前日計画のファイルがまだありません", "en": "no day-ahead plan file yet"},
    }
)


@page(router, "/", "now.html")
def now(console: Console, request: Request) -> dict:
    from ems.cli.status import controller_status  # the same figures `ems status` prints

    time = console.now()
    status = controller_status(console.store, console.portfolio, time)
    plan = console.store.last_plan()
    if plan is not None and status["last_plan"] is not None:
        status["last_plan"]["gap"] = plan["summary"].get("mip_gap")
        status["last_plan"]["kind"] = plan["kind"]
    status["bcp_mode"]["switch"] = bcp_switch(console)
    return {
        **status,
        "gate": gate(time, console.zone),
        "kpi": baseline_kpi(Path(console.portfolio.control.day_ahead_dir)),
    }


def bcp_switch(console: Console) -> dict | None:
    """The operator's BCP switch as recorded (who, since when, which outage, why); the store's
    ``bcp-mode`` event says when the controller followed it."""
    from ems.bcp.mode import BcpModeError, BcpModeStore

    try:
        mode = BcpModeStore(console.bcp_state_dir).current()
    except BcpModeError as error:
        return {"error": str(error)}
    if mode is None:
        return None
    outage = mode.outage
    return {
        "active": mode.active,
        "since": iso(mode.since, console.zone),
        "operator": mode.operator,
        "reason": mode.reason,
        "outage": None
        if outage is None
        else {"name": outage.name, "start": iso(outage.start, console.zone), "end": iso(outage.end, console.zone)},
    }


def gate(now: dt.datetime, zone) -> dict:
    """The next 10:00 local gate and the seconds left until it."""
    local = now.astimezone(zone)
    closes = dt.datetime.combine(local.date(), GATE_TIME, zone)
    if local >= closes:
        closes += dt.timedelta(days=1)
    return {
        "closes": closes.isoformat(timespec="seconds"),
        "seconds_left": int((closes - local).total_seconds()),
        "delivery_day": (closes.date() + dt.timedelta(days=1)).isoformat(),
    }


def baseline_kpi(day_ahead_dir: Path) -> dict | None:
    """The newest day-ahead plan's cost against its rule-based baseline (``summary.json`` of
    ``ems plan`` / the day-ahead job): energy only, and with the demand charge."""
    summaries = sorted(day_ahead_dir.glob("*/summary.json")) if day_ahead_dir.is_dir() else []
    for path in reversed(summaries):
        try:
            summary = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if "baseline_energy_cost_yen" not in summary:
            continue
        plan_energy, base_energy = summary["energy_cost_yen"], summary["baseline_energy_cost_yen"]
        plan_total = plan_energy + summary.get("demand_charge_yen", 0.0)
        base_total = base_energy + summary.get("baseline_demand_charge_yen", 0.0)
        return {
            "source": str(path),
            "start": summary.get("start"),
            "status": summary.get("solver_status"),
            "energy_only": {
                "plan_yen": plan_energy,
                "baseline_yen": base_energy,
                "saving_yen": round(base_energy - plan_energy, 2),
            },
            "with_demand_charge": {
                "plan_yen": plan_total,
                "baseline_yen": base_total,
                "saving_yen": round(base_total - plan_total, 2),
            },
        }
    return None
