"""A simulated ECHONET Lite node on UDP: the node profile (0x0EF001) and one device object.

It answers Get, SetC and SetI from any sender, to the sender's address and port; a node made
with ``refuse_writes`` answers every SetC with SetC_SNA (as a unit in a mode that locks its
settings does). ``V2hObject`` serves a :class:`SimCharger` and its plugged vehicle as an EV
charger-discharger (0x027E). Multicast discovery: the node joins 224.0.23.0 on its own address
when ``join_group`` is set (on loopback this needs a multicast route; see docs/drivers.md).
"""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
from collections.abc import Iterable

from drivers.echonet.client import MULTICAST_GROUP, join_multicast
from drivers.echonet.frame import (
    Eoj,
    Esv,
    Frame,
    FrameError,
    Property,
    encode_instance_list,
    parse,
    to_signed,
    to_unsigned,
)
from drivers.sim.physics import SimCharger

log = logging.getLogger(__name__)

MODE_CHARGING, MODE_DISCHARGING, MODE_STANDBY = 0x42, 0x43, 0x44


class V2hObject:
    """An EV charger-discharger (0x027E) backed by the twin's charger physics."""

    def __init__(self, charger: SimCharger, lock: threading.Lock, instance: int = 1):
        self.eoj = Eoj.of(0x027E, instance)
        self.charger = charger
        self.lock = lock
        self.mode = MODE_STANDBY
        self.charge_w = int(charger.charge_power_kw * 1000)
        self.discharge_w = int(charger.discharge_power_kw * 1000)
        self.writes_applied = 0

    def get(self, epc: int) -> bytes | None:
        with self.lock:
            c, v = self.charger, self.charger.vehicle
            values = {
                0x80: bytes((0x30,)),  # operation status: on
                0xD3: to_signed(int(round(-c.power_kw * 1000)), 4),  # ECHONET: charging positive
                0xD6: to_unsigned(int(round(c.energy.import_kwh * 1000)) & 0xFFFFFFFF, 4),  # discharged to the bus
                0xD8: to_unsigned(int(round(c.energy.export_kwh * 1000)) & 0xFFFFFFFF, 4),
                0xDA: bytes((self.mode,)),
                0xC7: bytes((0x30,)) if v is None else bytes((0x43 if c.bidirectional and v.v2g_allowed else 0x41,)),
                0xEB: to_unsigned(self.charge_w, 4),
                0xEC: to_unsigned(self.discharge_w, 4),
            }
            if v is not None:
                values[0xE4] = bytes((max(0, min(100, int(round(v.soc_fraction * 100)))),))
                values[0xE6] = v.name.encode("ascii")[:24]
        return values.get(epc)

    def set(self, epc: int, edt: bytes) -> bool:
        if epc == 0xDA and len(edt) == 1 and edt[0] in (MODE_CHARGING, MODE_DISCHARGING, MODE_STANDBY):
            self.mode = edt[0]
        elif epc == 0xEB and len(edt) == 4:
            self.charge_w = int.from_bytes(edt, "big")
        elif epc == 0xEC and len(edt) == 4:
            self.discharge_w = int.from_bytes(edt, "big")
        else:
            return False
        return True

    def apply(self) -> None:
        """After a write: the mode and power settings become the charger's set-point."""
        setpoint_kw = {MODE_CHARGING: -self.charge_w / 1000.0, MODE_DISCHARGING: self.discharge_w / 1000.0}.get(
            self.mode, 0.0
        )
        with self.lock:
            self.charger.apply_setpoint(setpoint_kw)
        self.writes_applied += 1


class _NodeProtocol(asyncio.DatagramProtocol):
    def __init__(self, node: EchonetNode):
        self.node = node

    def datagram_received(self, data: bytes, addr) -> None:
        answer = self.node.answer(data)
        if answer is not None and self.node._transport is not None:
            self.node._transport.sendto(answer.to_bytes(), addr)  # from the node's own address


class EchonetNode:
    def __init__(self, host: str, port: int, device, refuse_writes: bool = False, join_group: bool = False):
        self.host, self.port = host, port
        self.device = device
        self.refuse_writes = refuse_writes
        self.join_group = join_group
        self.malformed = 0
        self._transport: asyncio.DatagramTransport | None = None
        self._group_transport: asyncio.DatagramTransport | None = None

    def answer(self, data: bytes) -> Frame | None:
        try:
            request = parse(data)
        except FrameError as error:
            self.malformed += 1
            log.warning("ECHONET node %s: dropped a malformed datagram: %s", self.host, error)
            return None
        to_profile = (request.deoj.group, request.deoj.cls) == (0x0E, 0xF0)
        if to_profile:
            source = self._profile_get
        elif request.deoj == self.device.eoj or (
            request.deoj.class_code == self.device.eoj.class_code and request.deoj.instance == 0
        ):
            source = self.device.get
        else:
            return None  # not addressed to an object of this node: the spec says stay silent
        answering = request.deoj if request.deoj.instance else self.device.eoj

        def reply(esv: Esv, props: Iterable[Property]) -> Frame:
            return Frame(request.tid, answering, request.seoj, esv, tuple(props))

        if request.esv == Esv.GET:
            props = [Property(p.epc, source(p.epc) or b"") for p in request.properties]
            ok = all(p.edt for p in props)
            return reply(Esv.GET_RES if ok else Esv.GET_SNA, props)
        if request.esv in (Esv.SETC, Esv.SETI):
            if self.refuse_writes or to_profile:
                refused = [Property(p.epc, p.edt) for p in request.properties]
                return reply(Esv.SETC_SNA, refused) if request.esv == Esv.SETC else reply(Esv.SETI_SNA, refused)
            results = [self.device.set(p.epc, p.edt) for p in request.properties]
            if all(results):
                self.device.apply()
                return (
                    reply(Esv.SET_RES, [Property(p.epc) for p in request.properties])
                    if request.esv == Esv.SETC
                    else None
                )
            props = [Property(p.epc, b"" if ok else p.edt) for p, ok in zip(request.properties, results)]
            return reply(Esv.SETC_SNA if request.esv == Esv.SETC else Esv.SETI_SNA, props)
        return None

    def _profile_get(self, epc: int) -> bytes | None:
        return {
            0x80: bytes((0x30,)),
            0x82: bytes((0x01, 0x0D, 0x01, 0x00)),  # version 1.13, format 1
            0xD3: to_unsigned(1, 3),
            0xD6: encode_instance_list([self.device.eoj]),
            0xD7: bytes((1,)) + self.device.eoj.to_bytes()[:2],
        }.get(epc)

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._transport, _ = await loop.create_datagram_endpoint(
            lambda: _NodeProtocol(self), sock=self._socket((self.host, self.port))
        )
        if self.join_group:
            # A second socket bound to the group receives multicast; answers go out unicast.
            sock = self._socket((MULTICAST_GROUP, self.port))
            try:
                join_multicast(sock, self.host, MULTICAST_GROUP)
            except OSError as error:
                sock.close()
                log.warning(
                    "ECHONET node %s: cannot join %s (%s); it answers unicast only", self.host, MULTICAST_GROUP, error
                )
                return
            self._group_transport, _ = await loop.create_datagram_endpoint(lambda: _NodeProtocol(self), sock=sock)

    @staticmethod
    def _socket(address: tuple[str, int]) -> socket.socket:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.setblocking(False)
        return sock

    async def stop(self) -> None:
        for transport in (self._transport, self._group_transport):
            if transport is not None:
                transport.close()
        self._transport = self._group_transport = None
