"""The OCPP central system (CSMS): a websockets server in the controller's own event loop.

A charge point connects at ``ws://HOST:PORT/<charge point id>`` offering ``ocpp1.6``,
``ocpp2.0.1`` or ``ocpp2.1``. Security profile 1 checks HTTP basic auth (user = the charge point
id, password from the credentials file); profile 2 does the same over TLS; profile 0 (no
password) is allowed only on a loopback address. A refused charge point gets HTTP 401 (wrong or
missing password) or 404 (unknown id) before any OCPP message.

Set-points are charging profiles: a TxProfile on the running transaction (a TxDefaultProfile
when none runs), in W or A. On every (re)connection the central system clears the profiles it
set and installs the charger's failsafe as a TxDefaultProfile at stack level 0, so a charge
point that was lost comes back at its failsafe until the plan speaks again.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import datetime as dt
import hmac
import ipaddress
import json
import logging
import ssl
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

import websockets
from ocpp.v16 import call as call16
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.typing import Subprotocol

from drivers.ocpp.handlers import HANDLERS
from drivers.ocpp.state import ChargePointSession

log = logging.getLogger(__name__)

SUBPROTOCOLS = tuple(HANDLERS)
FAILSAFE_STACK_LEVEL, SETPOINT_STACK_LEVEL = 0, 1
FAILSAFE_PROFILE_ID, SETPOINT_PROFILE_ID = 100, 101
VENDOR_ID = "jp.arao.ems"  # the documented 1.6 discharge extension (docs/drivers.md)


class SetpointFailed(Exception):
    """The charge point did not take a set-point; ``reason`` says why."""

    def __init__(self, charge_point_id: str, reason: str):
        self.charge_point_id = charge_point_id
        self.reason = reason
        super().__init__(f"charge point {charge_point_id!r}: {reason}")


@dataclass(frozen=True)
class ConnectorConfig:
    """What a charger's driver tells the central system about its connector."""

    connector: int = 1
    rate_unit: str = "W"  # or "A"
    phases: int = 3
    voltage_v: float = 200.0
    failsafe_kw: float = 0.0
    vendor_discharge: bool = False  # 1.6 only: the charger speaks the DataTransfer extension


@dataclass
class CsmsConfig:
    host: str = "127.0.0.1"
    port: int = 9000
    security_profile: int = 0
    passwords: dict[str, str] = field(default_factory=dict)  # charge point id -> password
    id_tags: set[str] = field(default_factory=set)
    cert_file: str | None = None
    key_file: str | None = None
    heartbeat_s: int = 60
    response_timeout_s: float = 10.0


class CentralSystem:
    def __init__(self, config: CsmsConfig):
        if config.security_profile == 0 and not ipaddress.ip_address(_resolve(config.host)).is_loopback:
            raise ValueError(f"[ocpp] security_profile 0 (no password) is only allowed on loopback, not {config.host}")
        if config.security_profile == 2 and not (config.cert_file and config.key_file):
            raise ValueError("[ocpp] security_profile 2 needs cert_file and key_file (TLS)")
        self.config = config
        self.sessions: dict[str, ChargePointSession] = {}
        self.connectors: dict[str, dict[int, ConnectorConfig]] = {}  # registered by the drivers
        self.refused: list[str] = []
        self._server: Server | None = None
        self._tasks: set[asyncio.Task] = set()

    # --- lifecycle -----------------------------------------------------------------------

    def expect(self, charge_point_id: str, connector: ConnectorConfig) -> None:
        """A driver declares the charge point and connector it speaks for."""
        self.connectors.setdefault(charge_point_id, {})[connector.connector] = connector
        self.sessions.setdefault(charge_point_id, ChargePointSession(charge_point_id))

    async def start(self) -> None:
        if self._server is not None:
            return
        context = None
        if self.config.security_profile == 2:
            if self.config.cert_file is None:  # refused in __init__
                raise ValueError("[ocpp] security_profile 2 needs cert_file and key_file (TLS)")
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(self.config.cert_file, self.config.key_file)
        self._server = await serve(
            self._handle,
            self.config.host,
            self.config.port,
            subprotocols=[Subprotocol(p) for p in SUBPROTOCOLS],
            process_request=self._check_request,
            ssl=context,
            ping_interval=20,
            ping_timeout=20,
        )

    @property
    def port(self) -> int:
        return self._server.sockets[0].getsockname()[1] if self._server else self.config.port

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        for task in list(self._tasks):
            task.cancel()

    def silent(self) -> list[str]:
        """Expected charge points that are not connected or have reported nothing yet."""
        return sorted(
            cp
            for cp, s in self.sessions.items()
            if not s.connected or not all(s.connector(n).reported for n in self.connectors.get(cp, {}))
        )

    async def wait_reported(self, timeout_s: float) -> bool:
        """Wait until every expected charge point is connected and has reported; False on timeout."""
        deadline = asyncio.get_running_loop().time() + timeout_s
        while self.silent():
            if asyncio.get_running_loop().time() >= deadline:
                return False
            await asyncio.sleep(0.05)
        return True

    # --- connections -----------------------------------------------------------------------

    def _check_request(self, connection: ServerConnection, request):
        charge_point_id = request.path.strip("/").split("/")[-1]
        if charge_point_id not in self.sessions:
            return self._refuse(connection, HTTPStatus.NOT_FOUND, charge_point_id, "unknown charge point id")
        if self.config.security_profile == 0:
            return None
        user, password = _basic_auth(request.headers.get("Authorization"))
        expected = self.config.passwords.get(charge_point_id)
        if (
            user != charge_point_id
            or expected is None
            or password is None
            or not hmac.compare_digest(password, expected)
        ):
            response = self._refuse(connection, HTTPStatus.UNAUTHORIZED, charge_point_id, "wrong or missing password")
            response.headers["WWW-Authenticate"] = 'Basic realm="ocpp", charset="UTF-8"'
            return response
        return None

    def _refuse(self, connection: ServerConnection, status: HTTPStatus, charge_point_id: str, reason: str):
        self.refused.append(f"{charge_point_id}: {reason}")
        log.warning("OCPP: refused charge point %r: %s", charge_point_id, reason)
        return connection.respond(status, f"{reason}\n")

    async def _handle(self, connection: ServerConnection) -> None:
        if connection.request is None:  # the handshake passed _check_request: there is one
            return
        charge_point_id = connection.request.path.strip("/").split("/")[-1]
        version = connection.subprotocol
        if version not in HANDLERS:
            log.warning("OCPP: %s offered no supported subprotocol (%s)", charge_point_id, ", ".join(SUBPROTOCOLS))
            await connection.close(1002, "no supported OCPP subprotocol")
            return
        session = self.sessions[charge_point_id]
        if session.connected and session.handler is not None:
            await session.handler._connection.close(1000, "replaced by a new connection")
        handler = HANDLERS[version](charge_point_id, connection, response_timeout=self.config.response_timeout_s)
        handler.attach(session, lambda tag: tag in self.config.id_tags, self.config.heartbeat_s)
        session.handler, session.version, session.connected = handler, version, True
        session.ready = asyncio.Event()  # set once the failsafe is in place: set-points wait for it
        session.connections += 1
        session.seen()
        log.info("OCPP: %s connected (%s, connection %d)", charge_point_id, version, session.connections)
        self._spawn(self._apply_failsafe(session, handler))
        try:
            await handler.start()
        except websockets.ConnectionClosed:
            pass
        finally:
            if session.handler is handler:
                session.connected, session.handler = False, None
                session.disconnected_at = dt.datetime.now(dt.UTC)
                log.warning("OCPP: %s disconnected; its readings are missing until it returns", charge_point_id)

    def _spawn(self, coroutine) -> None:
        task = asyncio.create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _apply_failsafe(self, session: ChargePointSession, handler) -> None:
        """Clear what the controller set before, and install the failsafe default profile."""
        await asyncio.sleep(0)  # let the charge point's first message (its boot) be read first
        try:
            for number, connector in self.connectors.get(session.charge_point_id, {}).items():
                session.connector(number).setpoint_kw = None
                try:
                    await self._clear(handler, session.version, number)
                    await self._send_profile(
                        handler, session, connector, min(0.0, connector.failsafe_kw), failsafe=True
                    )
                except (TimeoutError, SetpointFailed, websockets.ConnectionClosed) as error:
                    log.warning(
                        "OCPP: %s connector %d: failsafe profile not installed: %s",
                        session.charge_point_id,
                        number,
                        error,
                    )
        finally:
            session.ready.set()

    # --- set-points ------------------------------------------------------------------------

    async def set_power(self, charge_point_id: str, connector: int, setpoint_kw: float) -> float:
        """Send a set-point [kW, bus sign: negative charges the vehicle]; the power applied."""
        session = self.sessions.get(charge_point_id)
        if session is None or not session.connected or session.handler is None:
            raise SetpointFailed(charge_point_id, "not connected to the central system")
        config = self.connectors.get(charge_point_id, {}).get(connector, ConnectorConfig(connector))
        handler = session.handler
        await session.ready.wait()  # never before the (re)connection's failsafe, or it would clear this
        if setpoint_kw > 0:
            await self._discharge(handler, session, config, setpoint_kw)
        else:
            if session.version == "ocpp1.6" and config.vendor_discharge:
                await self._vendor_discharge(handler, charge_point_id, connector, 0.0)
            await self._send_profile(handler, session, config, setpoint_kw, failsafe=False)
        session.connector(connector).setpoint_kw = setpoint_kw
        return setpoint_kw

    async def _discharge(
        self, handler, session: ChargePointSession, config: ConnectorConfig, setpoint_kw: float
    ) -> None:
        if session.version == "ocpp2.1":
            await self._send_profile(handler, session, config, setpoint_kw, failsafe=False)
        elif session.version == "ocpp1.6" and config.vendor_discharge:
            await self._vendor_discharge(handler, session.charge_point_id, config.connector, setpoint_kw)
        else:
            why = (
                "OCPP 1.6 has no discharge set-point; enable the charger's vendor extension (v2x = 'vendor')"
                if session.version == "ocpp1.6"
                else "OCPP 2.0.1 has no discharge set-point (V2X needs OCPP 2.1)"
            )
            raise SetpointFailed(session.charge_point_id, f"discharge of {setpoint_kw} kW refused: {why}")

    async def _vendor_discharge(self, handler, charge_point_id: str, connector: int, setpoint_kw: float) -> None:
        data = json.dumps({"connectorId": connector, "dischargeLimitW": round(setpoint_kw * 1000.0)})
        answer = await handler.call(call16.DataTransfer(vendor_id=VENDOR_ID, message_id="SetDischargeLimit", data=data))
        if answer is None or answer.status != "Accepted":
            raise SetpointFailed(
                charge_point_id, f"vendor discharge limit not accepted ({getattr(answer, 'status', 'error')})"
            )

    async def _send_profile(
        self, handler, session: ChargePointSession, config: ConnectorConfig, setpoint_kw: float, failsafe: bool
    ) -> None:
        state = session.connector(config.connector)
        transaction = None if failsafe else state.transaction_id
        purpose = "TxProfile" if transaction is not None else "TxDefaultProfile"
        level = FAILSAFE_STACK_LEVEL if failsafe else SETPOINT_STACK_LEVEL
        profile_id = FAILSAFE_PROFILE_ID if failsafe else SETPOINT_PROFILE_ID
        watts = -setpoint_kw * 1000.0  # OCPP limits are charging power, positive
        limit = watts if config.rate_unit == "W" else watts / (config.phases * config.voltage_v)
        period: dict = {"start_period": 0, "limit": round(max(0.0, limit), 1), "number_phases": config.phases}
        if session.version == "ocpp2.1" and setpoint_kw > 0:
            discharge = (
                setpoint_kw * 1000.0
                if config.rate_unit == "W"
                else setpoint_kw * 1000.0 / (config.phases * config.voltage_v)
            )
            period.update(
                operation_mode="CentralSetpoint",
                setpoint=-round(discharge, 1),
                discharge_limit=-round(discharge, 1),
                limit=0.0,
            )
        schedule: dict[str, Any] = {"charging_rate_unit": config.rate_unit, "charging_schedule_period": [period]}
        profile: dict[str, Any] = {
            "stack_level": level,
            "charging_profile_purpose": purpose,
            "charging_profile_kind": "Relative",
        }
        if session.version == "ocpp1.6":
            profile.update(charging_profile_id=profile_id, charging_schedule=schedule)
            if transaction is not None:
                profile["transaction_id"] = int(transaction)
            request = call16.SetChargingProfile(connector_id=config.connector, cs_charging_profiles=profile)
        else:
            schedule["id"] = profile_id
            profile.update(id=profile_id, charging_schedule=[schedule])
            if transaction is not None:
                profile["transaction_id"] = str(transaction)
            request = handler._call.SetChargingProfile(evse_id=config.connector, charging_profile=profile)
        answer = await handler.call(request)
        if answer is None or answer.status != "Accepted":
            raise SetpointFailed(
                session.charge_point_id,
                f"SetChargingProfile {purpose} {limit:.1f} {config.rate_unit} not accepted "
                f"({getattr(answer, 'status', 'CallError')})",
            )

    async def _clear(self, handler, version: str, connector: int) -> None:
        if version == "ocpp1.6":
            await handler.call(
                call16.ClearChargingProfile(connector_id=connector, charging_profile_purpose="TxProfile")
            )
            await handler.call(call16.ClearChargingProfile(id=SETPOINT_PROFILE_ID))
        else:
            await handler.call(
                handler._call.ClearChargingProfile(
                    charging_profile_criteria={"evse_id": connector, "charging_profile_purpose": "TxProfile"}
                )
            )
            await handler.call(handler._call.ClearChargingProfile(charging_profile_id=SETPOINT_PROFILE_ID))


def _basic_auth(header: str | None) -> tuple[str | None, str | None]:
    if not header or not header.startswith("Basic "):
        return None, None
    try:
        user, _, password = base64.b64decode(header[6:], validate=True).decode("utf-8").partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None, None
    return user, password


def _resolve(host: str) -> str:
    return "127.0.0.1" if host == "localhost" else host
