"""The central system's side of each OCPP version, on the ``ocpp`` package's ``ChargePoint``.

One class per wire version: 1.6 (BootNotification, Heartbeat, StatusNotification, MeterValues,
Authorize, Start/StopTransaction, DataTransfer) and 2.0.1 / 2.1 (the same, with
TransactionEvent in place of Start/Stop). Every handler records what it learnt in the
:class:`~drivers.ocpp.state.ChargePointSession`; ID tags are accepted when the central
system's ``authorize`` callback knows them.
"""

from __future__ import annotations

import datetime as dt
import itertools
import logging
import time
from collections.abc import Callable
from typing import Any

from ocpp.routing import on
from ocpp.v16 import ChargePoint as ChargePoint16
from ocpp.v16 import call_result as result16
from ocpp.v16.enums import Action as Action16
from ocpp.v21 import ChargePoint as ChargePoint21
from ocpp.v201 import ChargePoint as ChargePoint201

from drivers.ocpp.state import ChargePointSession, apply_meter_values

log = logging.getLogger(__name__)

# 1.6 transaction ids are integers the central system hands out: start from the clock so that a
# restarted controller never gives out an id a charge point still holds from before.
_transaction_ids = itertools.count(int(time.time()) % 1_000_000_000)


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat()


class CsmsSide:
    """What every version's handler shares: the session and the ID-tag check."""

    def attach(self, session: ChargePointSession, authorize: Callable[[str], bool], heartbeat_s: int) -> None:
        self.session = session
        self.authorize_tag = authorize
        self.heartbeat_s = heartbeat_s

    def _tag_status(self, tag: str | None) -> str:
        accepted = tag is not None and self.authorize_tag(tag)
        if not accepted:
            log.warning("%s: ID tag %r refused (not a known vehicle tag)", self.session.charge_point_id, tag)
        return "Accepted" if accepted else "Invalid"


class Csms16(CsmsSide, ChargePoint16):
    @on(Action16.boot_notification)
    def on_boot(self, charge_point_vendor: str, charge_point_model: str, **_):
        self.session.seen()
        self.session.vendor, self.session.model, self.session.booted = charge_point_vendor, charge_point_model, True
        return result16.BootNotification(current_time=_now(), interval=self.heartbeat_s, status="Accepted")

    @on(Action16.heartbeat)
    def on_heartbeat(self, **_):
        self.session.seen()
        return result16.Heartbeat(current_time=_now())

    @on(Action16.status_notification)
    def on_status(self, connector_id: int, status: str, **_):
        self.session.seen()
        self.session.connector(connector_id).status = status
        return result16.StatusNotification()

    @on(Action16.meter_values)
    def on_meter_values(self, connector_id: int, meter_value: list, **_):
        self.session.seen()
        apply_meter_values(self.session.connector(connector_id), meter_value)
        return result16.MeterValues()

    @on(Action16.authorize)
    def on_authorize(self, id_tag: str, **_):
        self.session.seen()
        return result16.Authorize(id_tag_info={"status": self._tag_status(id_tag)})

    @on(Action16.start_transaction)
    def on_start(self, connector_id: int, id_tag: str, meter_start: int, **_):
        self.session.seen()
        status = self._tag_status(id_tag)
        transaction_id = next(_transaction_ids)
        if status == "Accepted":
            state = self.session.connector(connector_id)
            state.transaction_id, state.id_tag = transaction_id, id_tag
            state.energy_import_kwh = meter_start / 1000.0
        return result16.StartTransaction(transaction_id=transaction_id, id_tag_info={"status": status})

    @on(Action16.stop_transaction)
    def on_stop(self, transaction_id: int, meter_stop: int, **_):
        self.session.seen()
        found = self.session.transaction(transaction_id)
        if found is not None:
            _connector, state = found
            state.transaction_id, state.id_tag, state.setpoint_kw = None, None, None
            state.energy_import_kwh, state.import_w = meter_stop / 1000.0, 0.0
        return result16.StopTransaction()

    @on(Action16.data_transfer)
    def on_data_transfer(self, vendor_id: str, **_):
        self.session.seen()
        return result16.DataTransfer(status="UnknownVendorId")


class Csms2x(CsmsSide):
    """OCPP 2.0.1 and 2.1 (same message names; ``self._call_result`` is the version's module)."""

    _call_result: Any  # set by the version's ChargePoint base

    @on("BootNotification")
    def on_boot(self, charging_station: dict, reason: str, **_):
        self.session.seen()
        self.session.vendor = charging_station.get("vendor_name", "")
        self.session.model = charging_station.get("model", "")
        self.session.booted = True
        return self._call_result.BootNotification(current_time=_now(), interval=self.heartbeat_s, status="Accepted")

    @on("Heartbeat")
    def on_heartbeat(self, **_):
        self.session.seen()
        return self._call_result.Heartbeat(current_time=_now())

    @on("StatusNotification")
    def on_status(self, connector_status: str, evse_id: int, connector_id: int, **_):
        self.session.seen()
        self.session.connector(evse_id).status = connector_status
        return self._call_result.StatusNotification()

    @on("MeterValues")
    def on_meter_values(self, evse_id: int, meter_value: list, **_):
        self.session.seen()
        apply_meter_values(self.session.connector(evse_id), meter_value)
        return self._call_result.MeterValues()

    @on("Authorize")
    def on_authorize(self, id_token: dict, **_):
        self.session.seen()
        return self._call_result.Authorize(id_token_info={"status": self._tag_status(id_token.get("id_token"))})

    @on("TransactionEvent")
    def on_transaction_event(
        self,
        event_type: str,
        transaction_info: dict,
        evse: dict | None = None,
        id_token: dict | None = None,
        meter_value: list | None = None,
        **_,
    ):
        self.session.seen()
        transaction_id = transaction_info.get("transaction_id")
        found = self.session.transaction(transaction_id)
        number = evse.get("id", 1) if evse else (found[0] if found else 1)
        state = self.session.connector(number)
        if meter_value:
            apply_meter_values(state, meter_value)
        answer = {}
        if id_token is not None:
            status = self._tag_status(id_token.get("id_token"))
            answer["id_token_info"] = {"status": status}
            if status == "Accepted":
                state.id_tag = id_token.get("id_token")
        if event_type == "Ended":
            state.transaction_id, state.id_tag, state.setpoint_kw, state.import_w = None, None, None, 0.0
        else:
            state.transaction_id = transaction_id
        return self._call_result.TransactionEvent(**answer)

    @on("DataTransfer")
    def on_data_transfer(self, vendor_id: str, **_):
        self.session.seen()
        return self._call_result.DataTransfer(status="UnknownVendorId")


class Csms201(Csms2x, ChargePoint201):
    pass


class Csms21(Csms2x, ChargePoint21):
    pass


HANDLERS: dict[str, type[Csms16] | type[Csms201] | type[Csms21]] = {
    "ocpp1.6": Csms16,
    "ocpp2.0.1": Csms201,
    "ocpp2.1": Csms21,
}
