"""Serve a simulated device over real Modbus TCP (pymodbus server) on loopback.

A :class:`RegisterStore` holds the holding registers (input registers read the same) and tells
its owner which registers a client wrote; registers outside the image, or writes to registers
that are not writable, get a Modbus exception response (illegal data address), as a real
device answers. :class:`SunSpecImage` lays SunSpec models out from 40000.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from pymodbus.constants import ExcCodes
from pymodbus.server import ModbusTcpServer, ModbusTlsServer
from pymodbus.simulator import SimData, SimDevice

from drivers.modbus import sunspec
from drivers.modbus.connection import encode, encode_string
from drivers.modbus.security import ServerTls, server_context

log = logging.getLogger(__name__)

READ_FUNCTIONS = {3, 4, 23}
WRITE_FUNCTIONS = {6, 16, 22, 23}

WriteHook = Callable[[int, list[int]], None]


class RegisterStore:
    """A contiguous block of 16-bit registers from ``base``, with a set of writable addresses."""

    def __init__(self, base: int, size: int):
        self.base = base
        self.words = [0] * size
        self.writable: set[int] = set()
        self.on_write: WriteHook | None = None
        self.writes: list[tuple[int, list[int]]] = []  # every accepted write, for tests and logs

    def contains(self, address: int, count: int) -> bool:
        return self.base <= address and address + count <= self.base + len(self.words)

    def get(self, address: int, count: int) -> list[int]:
        return self.words[address - self.base : address - self.base + count]

    def set(self, address: int, words: list[int]) -> None:
        self.words[address - self.base : address - self.base + len(words)] = words

    # --- the datastore interface pymodbus's request handler calls ----------------------------

    def device_ids(self) -> list[int]:
        return [0]

    async def async_getValues(self, device_id: int, func_code: int, address: int, count: int = 1):
        # a write of one register (function 6) is answered with the register read back: allow it
        if func_code not in READ_FUNCTIONS | WRITE_FUNCTIONS or not self.contains(address, count):
            return ExcCodes.ILLEGAL_ADDRESS
        return list(self.get(address, count))

    async def async_setValues(self, device_id: int, func_code: int, address: int, values):
        words = [int(v) for v in values]
        if func_code not in WRITE_FUNCTIONS or not self.contains(address, len(words)):
            return ExcCodes.ILLEGAL_ADDRESS
        if any(a not in self.writable for a in range(address, address + len(words))):
            return ExcCodes.ILLEGAL_ADDRESS
        self.set(address, words)
        self.writes.append((address, words))
        if self.on_write is not None:
            self.on_write(address, words)
        return None


class SunSpecImage:
    """SunSpec models laid out from 40000: 'SunS', each model (ID, L, points), end marker."""

    BASE = 40000

    def __init__(self, models: list[sunspec.Model]):
        size = 2 + sum(m.length + 2 for m in models) + 2
        self.store = RegisterStore(self.BASE, size)
        self.addresses: dict[int, int] = {}
        self.store.set(self.BASE, sunspec.SUNS_MARKER)
        address = self.BASE + 2
        for model in models:
            self.addresses[model.id] = address
            self.store.set(address, [model.id, model.length])
            address += model.length + 2
        self.store.set(address, [sunspec.END_MODEL_ID, 0])

    def address(self, model_id: int, point: str) -> int:
        return self.addresses[model_id] + sunspec.MODELS[model_id].point(point).offset

    def set_raw(self, model_id: int, point: str, raw: int | str) -> None:
        spec = sunspec.MODELS[model_id].point(point)
        if spec.type == "string":
            words = encode_string(str(raw), spec.size)
        elif isinstance(raw, str):
            raise TypeError(f"SunSpec model {model_id} point {point!r} is a number, not text {raw!r}")
        else:
            kind = {"acc32": "uint32", "bitfield16": "uint16", "enum16": "uint16"}.get(spec.type, spec.type)
            words = encode(raw, kind)
        self.store.set(self.address(model_id, point), words)

    def set_scaled(self, model_id: int, point: str, value: float) -> None:
        """Write ``value`` in the point's unit, using the scale factor already in the image."""
        spec = sunspec.MODELS[model_id].point(point)
        sf_raw = self.store.get(self.address(model_id, spec.sf), 1)[0] if spec.sf else 0
        sf = sf_raw - 0x10000 if sf_raw & 0x8000 else sf_raw
        self.set_raw(model_id, point, int(round(value / 10.0**sf)))

    def get_signed(self, model_id: int, point: str) -> int:
        raw = self.store.get(self.address(model_id, point), 1)[0]
        return raw - 0x10000 if raw & 0x8000 else raw

    def allow_write(self, model_id: int, *points: str) -> None:
        for point in points:
            spec = sunspec.MODELS[model_id].point(point)
            start = self.address(model_id, point)
            self.store.writable.update(range(start, start + spec.size))


class ModbusDeviceServer:
    """One pymodbus TCP server for one device's register store, started and stopped at will.

    With ``tls`` it speaks Modbus/TCP Security instead: TLS 1.2+, and a client must present a
    certificate signed by ``tls.ca_file`` or the handshake fails (drivers/modbus/security.py).
    """

    def __init__(
        self, name: str, store: RegisterStore, host: str = "127.0.0.1", port: int = 0, tls: ServerTls | None = None
    ):
        self.name = name
        self.store = store
        self.host = host
        self.port = port
        self.tls = tls
        self._server: ModbusTcpServer | None = None
        self._task: asyncio.Task | None = None

    async def start(self) -> None:
        # pymodbus needs some datastore to construct; requests are then answered from ours.
        placeholder = SimDevice(id=0, simdata=[SimData(0, values=0)])
        if self.tls is None:
            server = ModbusTcpServer(placeholder, address=(self.host, self.port))
        else:
            server = ModbusTlsServer(placeholder, address=(self.host, self.port), sslctx=server_context(self.tls))
        server.context = self.store  # type: ignore[assignment]  # answers like a server context (RegisterStore)
        self._task = asyncio.create_task(server.serve_forever(), name=f"modbus-{self.name}")
        for _ in range(200):  # wait until it listens (at most ~2 s)
            if server.transport is not None or self._task.done():
                break
            await asyncio.sleep(0.01)
        if self._task.done():
            error = self._task.exception()
            self._task = None
            raise OSError(f"{self.name}: cannot listen on {self.host}:{self.port} ({error})")
        self._server = server
        log.info(
            "%s: Modbus %s on %s:%d",
            self.name,
            "TCP" if self.tls is None else "TCP Security (TLS)",
            self.host,
            self.port,
        )

    async def stop(self) -> None:
        if self._server is not None:
            await self._server.shutdown()
            self._server = None
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except (asyncio.CancelledError, Exception):
                pass
            self._task = None
