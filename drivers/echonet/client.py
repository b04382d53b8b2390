"""An asyncio ECHONET Lite client: one UDP socket for every node, requests matched by TID.

Get and SetC are resent once, with the same TID, if no answer came within half the timeout
(UDP may drop a datagram; both services are idempotent for the absolute values written here).
A SetC counts as done only on a Set_Res (0x71) that lists every property written with PDC 0;
a SetC_SNA (0x51), a timeout or a Set_Res that leaves a property out is a failed write.
Discovery sends a Get of the node profile's instance list (0x0EF001, EPC 0xD6) to the
multicast group 224.0.23.0 or to a list of unicast addresses, and collects every answer.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import socket
import struct

from drivers.echonet.frame import (
    CONTROLLER,
    NODE_PROFILE,
    Eoj,
    Esv,
    Frame,
    FrameError,
    Property,
    instance_list,
    parse,
)

log = logging.getLogger(__name__)

ECHONET_PORT = 3610
MULTICAST_GROUP = "224.0.23.0"
EPC_INSTANCE_LIST = 0xD6


class EchonetError(Exception):
    """A node did not answer, or refused: names the node, the object and the properties."""

    def __init__(self, where: str, reason: str):
        self.where = where
        self.reason = reason
        super().__init__(f"ECHONET Lite {where}: {reason}")


class _Protocol(asyncio.DatagramProtocol):
    def __init__(self, client: EchonetClient):
        self.client = client

    def datagram_received(self, data: bytes, addr) -> None:
        self.client._received(data, addr)

    def error_received(self, exc: Exception) -> None:
        log.debug("ECHONET Lite socket error: %r", exc)


class EchonetClient:
    """Shared by every ECHONET Lite driver of a process (``bind_port = 3610`` for units that
    answer only to that port; the default, an ephemeral port, suits units that answer the sender)."""

    def __init__(self, bind_host: str = "0.0.0.0", bind_port: int = 0, multicast_interface: str | None = None):
        self.bind_host = bind_host
        self.bind_port = bind_port
        self.multicast_interface = multicast_interface
        self._transport: asyncio.DatagramTransport | None = None
        self._tids = itertools.cycle(range(1, 0x10000))
        self._pending: dict[int, tuple[str, asyncio.Future]] = {}
        self._collectors: dict[int, list[tuple[str, Frame]]] = {}
        self.malformed = 0

    async def open(self) -> None:
        if self._transport is not None:
            return
        loop = asyncio.get_running_loop()
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 1)
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 1)
        if self.multicast_interface:
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(self.multicast_interface))
        sock.bind((self.bind_host, self.bind_port))
        sock.setblocking(False)
        self._transport, _ = await loop.create_datagram_endpoint(lambda: _Protocol(self), sock=sock)

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()
            self._transport = None
        for _host, future in self._pending.values():
            if not future.done():
                future.cancel()
        self._pending.clear()

    @property
    def local_address(self) -> tuple[str, int]:
        return self._open_transport("local address").get_extra_info("sockname")

    def _open_transport(self, where: str) -> asyncio.DatagramTransport:
        if self._transport is None:  # closed by its owner while a request was under way
            raise EchonetError(where, "the ECHONET Lite socket is closed")
        return self._transport

    def _received(self, data: bytes, addr) -> None:
        try:
            frame = parse(data)
        except FrameError as error:
            self.malformed += 1
            log.warning("ECHONET Lite: malformed datagram from %s:%d dropped: %s", addr[0], addr[1], error)
            return
        if frame.tid in self._collectors:
            self._collectors[frame.tid].append((addr[0], frame))
            return
        host, future = self._pending.get(frame.tid, (None, None))
        if future is None or future.done() or frame.esv in (Esv.GET, Esv.SETC, Esv.SETI, Esv.INF_REQ):
            return
        if addr[0] != host:
            log.warning("ECHONET Lite: answer with TID %d from %s, expected from %s: ignored", frame.tid, addr[0], host)
            return
        future.set_result((addr[0], frame))

    async def request(
        self, host: str, deoj: Eoj, esv: Esv, properties: list[Property], timeout_s: float, port: int = ECHONET_PORT
    ) -> Frame:
        """Send one request and wait for the answer with its TID (one resend at half time)."""
        if self._transport is None:
            await self.open()
        tid = next(self._tids)
        frame = Frame(tid, CONTROLLER, deoj, esv, tuple(properties))
        data = frame.to_bytes()
        where = f"{host}:{port} {deoj}"
        future = asyncio.get_running_loop().create_future()
        self._pending[tid] = (host, future)
        try:
            for _attempt in range(2):
                self._open_transport(where).sendto(data, (host, port))
                try:
                    _source, answer = await asyncio.wait_for(asyncio.shield(future), timeout_s / 2)
                    return answer
                except TimeoutError:
                    continue
            raise EchonetError(where, f"no answer to ESV 0x{esv:02X} within {timeout_s} s")
        finally:
            self._pending.pop(tid, None)
            if not future.done():
                future.cancel()

    async def get(
        self, host: str, eoj: Eoj, epcs: list[int], timeout_s: float, port: int = ECHONET_PORT
    ) -> dict[int, bytes]:
        """The properties the node has; a property it lacks (Get_SNA, PDC 0) is left out."""
        answer = await self.request(host, eoj, Esv.GET, [Property(epc) for epc in epcs], timeout_s, port)
        if answer.esv not in (Esv.GET_RES, Esv.GET_SNA):
            raise EchonetError(f"{host}:{port} {eoj}", f"answered Get with ESV 0x{answer.esv:02X}")
        return {p.epc: p.edt for p in answer.properties if p.edt}

    async def set(
        self, host: str, eoj: Eoj, values: dict[int, bytes], timeout_s: float, port: int = ECHONET_PORT
    ) -> None:
        """SetC; returns only on a positive Set_Res for every property, raises otherwise."""
        where = f"{host}:{port} {eoj}"
        answer = await self.request(host, eoj, Esv.SETC, [Property(e, v) for e, v in values.items()], timeout_s, port)
        if answer.esv == Esv.SETC_SNA:
            refused = [f"0x{p.epc:02X}" for p in answer.properties if p.edt]
            raise EchonetError(where, f"refused the write (SetC_SNA) of {', '.join(refused) or 'its properties'}")
        if answer.esv != Esv.SET_RES:
            raise EchonetError(where, f"answered SetC with ESV 0x{answer.esv:02X}, not Set_Res")
        accepted = {p.epc for p in answer.properties if not p.edt}
        missing = [f"0x{e:02X}" for e in values if e not in accepted]
        if missing:
            raise EchonetError(where, f"Set_Res did not accept {', '.join(missing)}")

    async def discover(
        self, targets: list[str] | None = None, timeout_s: float = 1.0, port: int = ECHONET_PORT
    ) -> dict[str, list[Eoj]]:
        """``{node address: its device objects}``; ``targets`` None asks the multicast group."""
        if self._transport is None:
            await self.open()
        tid = next(self._tids)
        self._collectors[tid] = []
        data = Frame(tid, CONTROLLER, NODE_PROFILE, Esv.GET, (Property(EPC_INSTANCE_LIST),)).to_bytes()
        try:
            for host in targets or [MULTICAST_GROUP]:
                self._open_transport(f"{host}:{port} node profile").sendto(data, (host, port))
            await asyncio.sleep(timeout_s)
            found: dict[str, list[Eoj]] = {}
            for host, frame in self._collectors[tid]:
                edt = frame.get(EPC_INSTANCE_LIST)
                if frame.esv == Esv.GET_RES and edt:
                    found[host] = instance_list(edt)
            return found
        finally:
            self._collectors.pop(tid, None)


def join_multicast(sock: socket.socket, interface: str, group: str = MULTICAST_GROUP) -> None:
    """Join the ECHONET Lite group on one interface address (a node's receiving socket)."""
    membership = struct.pack("4s4s", socket.inet_aton(group), socket.inet_aton(interface))
    sock.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, membership)
