"""The one Modbus connection layer every Modbus driver uses (TCP, or RTU on a serial line).

It owns the pymodbus async client, bounds every request by the device's timeout, retries a
failed request on a fresh connection, reconnects by itself, and turns every failure into
:class:`~drivers.api.DeviceUnavailable` (with the Modbus exception code when the device sent
one), so a driver never blocks the caller past its timeout and never crashes on a bad answer.
"""

from __future__ import annotations

import asyncio
import logging
import struct
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pymodbus.client import AsyncModbusSerialClient, AsyncModbusTcpClient, AsyncModbusTlsClient
from pymodbus.exceptions import ModbusException

from drivers.api import DeviceUnavailable
from drivers.modbus.security import ClientTls, TlsError, client_context

log = logging.getLogger(__name__)

WordOrder = Literal["big", "little"]
MAX_REGISTERS_PER_READ = 125  # Modbus application protocol limit for function 3/4
EXCEPTION_NAMES = {
    1: "illegal function",
    2: "illegal data address",
    3: "illegal data value",
    4: "server device failure",
    6: "server device busy",
    10: "gateway path unavailable",
    11: "gateway target failed to respond",
}


class ModbusEndpoint(BaseModel):
    """Where a Modbus device is and how patient to be with it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    host: str
    port: int = Field(502, ge=1, le=65535)
    unit_id: int = Field(1, ge=0, le=247)
    timeout_s: float = Field(1.0, gt=0)
    retries: int = Field(1, ge=0, le=5, description="extra attempts, each on a fresh connection")
    # Modbus/TCP Security (drivers/modbus/security.py): None is plain Modbus TCP.
    tls: ClientTls | None = Field(None, description="TLS with a client certificate (Modbus/TCP Security)")
    # Modbus RTU (serial) and word order: for building meters on RS-485, and vendors that
    # put a 32-bit value's low word first.
    transport: Literal["tcp", "rtu"] = "tcp"
    serial_port: str | None = Field(None, description="RTU: serial device, e.g. /dev/ttyUSB0")
    baudrate: int = Field(9600, gt=0)
    parity: Literal["N", "E", "O"] = "N"
    stopbits: Literal[1, 2] = 1
    word_order: WordOrder = "big"

    @model_validator(mode="after")
    def _rtu_needs_a_port(self) -> ModbusEndpoint:
        if self.transport == "rtu" and not self.serial_port:
            raise ValueError("transport 'rtu' needs serial_port")
        return self

    @property
    def where(self) -> str:
        return (
            f"{self.serial_port} (RTU {self.baudrate} {self.parity}{self.stopbits})"
            if self.transport == "rtu"
            else f"{self.host}:{self.port}"
        )


class ModbusExceptionResponse(DeviceUnavailable):
    """The device answered with a Modbus exception (e.g. illegal data address)."""

    def __init__(self, device: str, function: str, address: int, code: int):
        self.code = code
        name = EXCEPTION_NAMES.get(code, "unknown")
        super().__init__(device, f"Modbus exception {code} ({name}) on {function} at register {address}")


class ModbusConnection:
    """A reconnecting, time-bounded Modbus TCP client for one device."""

    def __init__(self, device: str, endpoint: ModbusEndpoint):
        self.device = device
        self.endpoint = endpoint
        self._client: AsyncModbusTcpClient | None = None
        self._lock = asyncio.Lock()  # one request at a time per connection

    async def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    async def _connected_client(self) -> AsyncModbusTcpClient:
        if self._client is not None and self._client.connected:
            return self._client
        await self.close()
        ep = self.endpoint
        client = self._new_client()
        try:
            ok = await asyncio.wait_for(client.connect(), ep.timeout_s)
        except (TimeoutError, OSError, ModbusException) as error:
            client.close()
            raise DeviceUnavailable(self.device, f"cannot connect to {ep.where}: {error!r}") from None
        if not ok:
            client.close()
            raise DeviceUnavailable(self.device, f"cannot connect to {ep.where}")
        self._client = client
        return client

    def _new_client(self):
        ep = self.endpoint
        # reconnect_delay=0: reconnection is done here, on demand, within the caller's timeout.
        if ep.transport == "rtu":
            assert ep.serial_port is not None  # the settings refuse rtu without a serial_port
            return AsyncModbusSerialClient(
                ep.serial_port,
                baudrate=ep.baudrate,
                parity=ep.parity,
                stopbits=ep.stopbits,
                bytesize=8,
                timeout=ep.timeout_s,
                retries=0,
                reconnect_delay=0,
            )
        if ep.tls is None:
            return AsyncModbusTcpClient(ep.host, port=ep.port, timeout=ep.timeout_s, retries=0, reconnect_delay=0)
        try:
            context = client_context(ep.tls)
        except TlsError as error:
            raise DeviceUnavailable(self.device, str(error)) from None
        return AsyncModbusTlsClient(
            ep.host, port=ep.port, sslctx=context, timeout=ep.timeout_s, retries=0, reconnect_delay=0
        )

    async def _request(self, function: str, address: int, call) -> Any:
        last_error = "no attempt"
        for _attempt in range(self.endpoint.retries + 1):
            async with self._lock:
                try:
                    client = await self._connected_client()
                    response = await asyncio.wait_for(call(client), self.endpoint.timeout_s)
                except DeviceUnavailable as error:
                    last_error = error.reason
                    continue
                except (TimeoutError, OSError, ModbusException) as error:
                    last_error = f"{function} at register {address}: {type(error).__name__} {error}".strip()
                    await self.close()
                    continue
            if response.isError():
                raise ModbusExceptionResponse(
                    self.device, function, address, int(getattr(response, "exception_code", 0))
                )
            return response
        log.debug("%s: giving up after %d attempts: %s", self.device, self.endpoint.retries + 1, last_error)
        raise DeviceUnavailable(self.device, last_error)

    async def read_registers(self, address: int, count: int, table: str = "holding") -> list[int]:
        """Read ``count`` 16-bit registers from ``address`` (split into legal request sizes)."""
        unit = self.endpoint.unit_id
        words: list[int] = []
        for start in range(address, address + count, MAX_REGISTERS_PER_READ):
            n = min(MAX_REGISTERS_PER_READ, address + count - start)
            if table == "input":
                call = lambda c, s=start, n=n: c.read_input_registers(s, count=n, device_id=unit)  # noqa: E731
            else:
                call = lambda c, s=start, n=n: c.read_holding_registers(s, count=n, device_id=unit)  # noqa: E731
            response = await self._request(f"read {table} x{n}", start, call)
            if len(response.registers) != n:
                raise DeviceUnavailable(self.device, f"asked {n} registers at {start}, got {len(response.registers)}")
            words.extend(response.registers)
        return words

    async def write_registers(self, address: int, values: list[int]) -> None:
        unit = self.endpoint.unit_id
        await self._request(
            f"write x{len(values)}", address, lambda c: c.write_registers(address, values, device_id=unit)
        )


# --- encoding ------------------------------------------------------------------------------

WIDTH = {
    "int16": 1,
    "uint16": 1,
    "int32": 2,
    "uint32": 2,
    "acc32": 2,
    "float32": 2,
    "sunssf": 1,
    "enum16": 1,
    "bitfield16": 1,
    "acc16": 1,
    "count": 1,
    "pad": 1,
    "enum32": 2,
    "bitfield32": 2,
    "int64": 4,
    "uint64": 4,
    "acc64": 4,
}
NOT_IMPLEMENTED = {
    "int16": 0x8000,
    "sunssf": 0x8000,
    "uint16": 0xFFFF,
    "enum16": 0xFFFF,
    "int32": 0x80000000,
    "uint32": 0xFFFFFFFF,
    "enum32": 0xFFFFFFFF,
    "bitfield32": 0xFFFFFFFF,
    "int64": 0x8000000000000000,
    "uint64": 0xFFFFFFFFFFFFFFFF,
}


def decode(words: list[int], kind: str, word_order: WordOrder = "big") -> float | None:
    """Register words to a number; SunSpec's 'not implemented' values give None.

    ``word_order = "little"`` is for devices that put the low 16-bit word of a 32/64-bit value
    first (bytes within each word stay big-endian, as Modbus has them)."""
    raw = 0
    ordered = words[: WIDTH[kind]]
    for word in reversed(ordered) if word_order == "little" else ordered:
        raw = (raw << 16) | (word & 0xFFFF)
    if NOT_IMPLEMENTED.get(kind) == raw:
        return None
    bits = 16 * WIDTH[kind]
    if kind in ("int16", "sunssf", "int32", "int64"):
        return raw - (1 << bits) if raw & (1 << (bits - 1)) else raw
    if kind == "float32":
        return struct.unpack(">f", raw.to_bytes(4, "big"))[0]
    return raw


def encode(value: float, kind: str, word_order: WordOrder = "big") -> list[int]:
    """A number to register words (rounded for integer types, range-checked)."""
    words = _encode_big(value, kind)
    return list(reversed(words)) if word_order == "little" else words


def _encode_big(value: float, kind: str) -> list[int]:
    if kind == "float32":
        raw = int.from_bytes(struct.pack(">f", value), "big")
    else:
        number = int(round(value))
        bits = 16 * WIDTH[kind]
        signed = kind in ("int16", "int32", "int64", "sunssf")
        low, high = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)
        if not low <= number <= high:
            raise ValueError(f"{value} does not fit {kind}")
        raw = number & ((1 << bits) - 1)
    return [(raw >> (16 * i)) & 0xFFFF for i in reversed(range(WIDTH[kind]))]


def decode_string(words: list[int]) -> str:
    data = b"".join(w.to_bytes(2, "big") for w in words)
    return data.split(b"\0", 1)[0].decode("ascii", errors="replace").strip()


def encode_string(text: str, n_words: int) -> list[int]:
    data = text.encode("ascii")[: 2 * n_words].ljust(2 * n_words, b"\0")
    return [int.from_bytes(data[i : i + 2], "big") for i in range(0, len(data), 2)]
