"""A simulated charger as an OCPP 1.6 charge point (the ``ocpp`` package's charge-point side).

It connects to the central system at ``ws://HOST:PORT/<id>`` (basic auth when a password is
given; TLS when an SSL context is), retrying every ``retry_s`` until stopped; boots, reports its
connector status, starts a transaction with the plugged vehicle's id as ID tag, stops it when
the vehicle leaves, and sends MeterValues (power, import register, SoC) every publish.

Charging follows the charging profiles the central system sets: the TxProfile if one is set,
else the TxDefaultProfile of the highest stack level; the vehicle charges at the limit.
Discharge follows the documented DataTransfer extension (vendor ``jp.arao.ems``, message
``SetDischargeLimit``, data ``{"connectorId": 1, "dischargeLimitW": W}``).
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import json
import logging
import ssl
import threading

import websockets
from ocpp.routing import on
from ocpp.v16 import ChargePoint, call, call_result
from ocpp.v16.enums import Action
from websockets.typing import Subprotocol

from drivers.sim.physics import SimCharger

log = logging.getLogger(__name__)

VENDOR_ID = "jp.arao.ems"


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat()


class _Wire(ChargePoint):
    """The charge point's handlers for what the central system sends."""

    owner: SimOcppChargePoint

    @on(Action.set_charging_profile)
    def on_set_profile(self, connector_id: int, cs_charging_profiles: dict, **_):
        return call_result.SetChargingProfile(status=self.owner.set_profile(cs_charging_profiles))

    @on(Action.clear_charging_profile)
    def on_clear_profile(self, **criteria):
        return call_result.ClearChargingProfile(status=self.owner.clear_profiles(criteria))

    @on(Action.data_transfer)
    def on_data_transfer(self, vendor_id: str, message_id: str | None = None, data: str | None = None, **_):
        return call_result.DataTransfer(status=self.owner.vendor_message(vendor_id, message_id, data))


class SimOcppChargePoint:
    def __init__(
        self,
        charger: SimCharger,
        url: str,
        lock: threading.Lock,
        password: str | None = None,
        ssl_context: ssl.SSLContext | None = None,
        retry_s: float = 1.0,
        voltage_v: float = 200.0,
    ):
        self.charger = charger
        self.name = charger.name
        self.url = url
        self.lock = lock
        self.password = password
        self.ssl_context = ssl_context
        self.retry_s = retry_s
        self.voltage_v = voltage_v
        self.profiles: dict[tuple[str, int], dict] = {}  # (purpose, stack level) -> profile
        self.discharge_w = 0.0
        self.transaction_id: int | None = None
        self.session_vehicle: str | None = None
        self.connected = asyncio.Event()
        self.connections = 0
        self._wire: _Wire | None = None

    # --- what the central system asks ------------------------------------------------------

    def set_profile(self, profile: dict) -> str:
        purpose = profile.get("charging_profile_purpose")
        if purpose not in ("TxProfile", "TxDefaultProfile"):
            return "Rejected"
        if purpose == "TxProfile" and (
            self.transaction_id is None or profile.get("transaction_id") not in (None, self.transaction_id)
        ):
            return "Rejected"  # 1.6: a TxProfile needs the running transaction
        self.profiles[(purpose, int(profile.get("stack_level", 0)))] = profile
        self._apply()
        return "Accepted"

    def clear_profiles(self, criteria: dict) -> str:
        before = len(self.profiles)
        for key, profile in list(self.profiles.items()):
            if criteria.get("id") is not None and profile.get("charging_profile_id") != criteria["id"]:
                continue
            if criteria.get("charging_profile_purpose") not in (None, key[0]):
                continue
            if criteria.get("stack_level") not in (None, key[1]):
                continue
            del self.profiles[key]
        self._apply()
        return "Accepted" if len(self.profiles) < before else "Unknown"

    def vendor_message(self, vendor_id: str, message_id: str | None, data: str | None) -> str:
        if vendor_id != VENDOR_ID:
            return "UnknownVendorId"
        if message_id != "SetDischargeLimit":
            return "UnknownMessageId"
        try:
            watts = float(json.loads(data or "{}")["dischargeLimitW"])
        except (ValueError, KeyError, TypeError):
            return "Rejected"
        if watts > 0 and not self.charger.bidirectional:
            return "Rejected"
        self.discharge_w = max(0.0, watts)
        self._apply()
        return "Accepted"

    def charge_limit_kw(self) -> float:
        tx = [p for (purpose, _), p in self.profiles.items() if purpose == "TxProfile"]
        defaults = sorted(
            ((level, p) for (purpose, level), p in self.profiles.items() if purpose == "TxDefaultProfile"),
            key=lambda x: x[0],
        )
        profile = tx[0] if tx else (defaults[-1][1] if defaults else None)
        if profile is None:
            return self.charger.charge_power_kw
        schedule = profile["charging_schedule"]
        period = schedule["charging_schedule_period"][0]
        limit = float(period["limit"])
        if schedule.get("charging_rate_unit") == "A":
            limit *= period.get("number_phases", 3) * self.voltage_v
        return limit / 1000.0

    def _apply(self) -> None:
        setpoint = self.discharge_w / 1000.0 if self.discharge_w > 0 else -self.charge_limit_kw()
        with self.lock:
            self.charger.apply_setpoint(setpoint)

    # --- what the charge point says ------------------------------------------------------------

    def meter_value(self) -> dict:
        with self.lock:
            c, v = self.charger, self.charger.vehicle
            samples = [
                {"value": f"{max(0.0, -c.power_kw) * 1000:.1f}", "measurand": "Power.Active.Import", "unit": "W"},
                {"value": f"{max(0.0, c.power_kw) * 1000:.1f}", "measurand": "Power.Active.Export", "unit": "W"},
                {
                    "value": f"{c.energy.export_kwh * 1000:.0f}",
                    "measurand": "Energy.Active.Import.Register",
                    "unit": "Wh",
                },
            ]
            if v is not None:
                samples.append({"value": f"{v.soc_fraction * 100:.1f}", "measurand": "SoC", "unit": "Percent"})
        return {"timestamp": _now(), "sampled_value": samples}

    async def _follow_vehicle(self, wire: _Wire) -> None:
        with self.lock:
            vehicle = self.charger.vehicle.name if self.charger.vehicle else None
            meter_wh = int(self.charger.energy.export_kwh * 1000)
        if vehicle == self.session_vehicle:
            return
        if self.transaction_id is not None:
            await wire.call(
                call.StopTransaction(meter_stop=meter_wh, timestamp=_now(), transaction_id=self.transaction_id)
            )
            self.transaction_id = None
            self.profiles = {k: p for k, p in self.profiles.items() if k[0] != "TxProfile"}
            self.discharge_w = 0.0
        self.session_vehicle = vehicle
        if vehicle is None:
            await wire.call(call.StatusNotification(connector_id=1, error_code="NoError", status="Available"))
            self._apply()
            return
        await wire.call(call.StatusNotification(connector_id=1, error_code="NoError", status="Preparing"))
        answer = await wire.call(
            call.StartTransaction(connector_id=1, id_tag=vehicle, meter_start=meter_wh, timestamp=_now())
        )
        if answer is not None and answer.id_tag_info.get("status") == "Accepted":
            self.transaction_id = answer.transaction_id
            await wire.call(call.StatusNotification(connector_id=1, error_code="NoError", status="Charging"))
        self._apply()

    async def publish(self) -> None:
        """Follow the plug, then send one MeterValues (called by the twin every publish)."""
        wire = self._wire
        if wire is None:
            return
        try:
            await self._follow_vehicle(wire)
            await wire.call(
                call.MeterValues(connector_id=1, meter_value=[self.meter_value()], transaction_id=self.transaction_id)
            )
        except (TimeoutError, websockets.ConnectionClosed) as error:
            log.debug("%s: publish failed: %r", self.name, error)

    # --- connection ----------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        headers = {}
        if self.password is not None:
            token = base64.b64encode(f"{self.name}:{self.password}".encode()).decode()
            headers["Authorization"] = f"Basic {token}"
        while not stop.is_set():
            try:
                async with websockets.connect(
                    f"{self.url}/{self.name}",
                    subprotocols=[Subprotocol("ocpp1.6")],
                    additional_headers=headers,
                    ssl=self.ssl_context,
                    open_timeout=5,
                ) as ws:
                    await self._session(ws, stop)
            except (TimeoutError, OSError, websockets.WebSocketException) as error:
                log.debug("%s: central system not reachable: %r", self.name, error)
            self._wire = None
            self.connected.clear()
            try:
                await asyncio.wait_for(stop.wait(), self.retry_s)
            except TimeoutError:
                pass

    async def _session(self, ws, stop: asyncio.Event) -> None:
        wire = _Wire(self.name, ws, response_timeout=10)
        wire.owner = self
        listener = asyncio.create_task(wire.start())
        try:
            await wire.call(call.BootNotification(charge_point_model="AraoTwin", charge_point_vendor="arao-ems"))
            self.session_vehicle, self.transaction_id = None, None  # a new connection starts its session again
            self._wire = wire
            self.connections += 1
            self.connected.set()
            await self.publish()
            stopping = asyncio.create_task(stop.wait())
            await asyncio.wait({listener, stopping}, return_when=asyncio.FIRST_COMPLETED)
            stopping.cancel()
        finally:
            listener.cancel()
