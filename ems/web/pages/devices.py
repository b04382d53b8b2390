"""Devices: every configured device with its latest reading and quality, its last set-point,
its protocol and address."""

from __future__ import annotations

import datetime as dt

from fastapi import APIRouter, Request

from ems.store.reads import latest_setpoints, latest_values
from ems.web.assets import address, asset_index, iso
from ems.web.context import Console
from ems.web.i18n import LABELS
from ems.web.pages import NavItem, page

router = APIRouter()
NAV = NavItem("/devices", "nav.devices", order=40)
QUANTITIES = ("power_kw", "soc_fraction", "energy_kwh", "setpoint_kw")

LABELS.update(
    {
        "devices.title": {"ja": "機器一覧", "en": "Devices"},
        "col.kind": {"ja": "種別", "en": "kind"},
        "col.site": {"ja": "拠点", "en": "site"},
        "col.reading": {"ja": "計測値", "en": "reading"},
        "col.quality": {"ja": "品質", "en": "quality"},
        "col.read_at": {"ja": "計測時刻", "en": "read at"},
        "col.last_setpoint": {"ja": "最後の指令", "en": "last set-point"},
        "col.protocol": {"ja": "通信方式", "en": "protocol"},
        "col.address": {"ja": "アドレス", "en": "address"},
        "col.state": {"ja": "状態", "en": "state"},
    }
)


@page(router, "/devices", "devices.html")
def devices(console: Console, request: Request) -> dict:
    from ems.cli.status import STALE_POLLS  # the same rule `ems status` applies

    zone = console.zone
    assets = asset_index(console.portfolio)
    latest = latest_values(console.store, list(assets))
    setpoints = latest_setpoints(console.store, list(assets))
    newest = max((time for values in latest.values() for time, _v, _q in values.values()), default=None)
    behind = dt.timedelta(seconds=STALE_POLLS * console.portfolio.control.poll_s)
    rows = []
    for info in assets.values():
        values = latest.get(info.id, {})
        readings = {q: values[q][1] for q in QUANTITIES if q in values}
        main = values.get("power_kw") or values.get("soc_fraction")
        quality = main[2] if main else None
        read_at = main[0] if main else None
        if "missing" in values and (main is None or values["missing"][0] >= main[0]) and info.kind != "vehicle":
            quality = values["missing"][2]
        state = (
            "never read"
            if main is None
            else (
                quality
                if quality != "good"
                else ("stale" if newest and read_at and newest - read_at > behind else "ok")
            )
        )
        protocol, where = address(info.driver)
        last = setpoints.get(info.id)
        rows.append(
            {
                "device": info.id,
                "kind": info.kind,
                "site": info.site,
                "readings": readings,
                "quality": quality,
                "read_at": iso(read_at, zone),
                "state": state,
                "protocol": protocol,
                "address": where,
                "last_setpoint": None if last is None else {**last, "time": iso(last["time"], zone)},
            }
        )
    return {"devices": rows, "newest_reading": iso(newest, zone)}
