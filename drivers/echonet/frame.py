"""ECHONET Lite frames (specification v1.13, part II chapter 3), written from the published layout.

A format-1 frame is ``EHD1 EHD2 TID SEOJ DEOJ ESV OPC (EPC PDC EDT)*``: EHD1 = 0x10, EHD2 = 0x81,
TID a 16-bit transaction id, SEOJ/DEOJ 3-byte objects (class group, class, instance), ESV the
service, OPC the number of properties, then each property's code, data length and data. The
SetGet services (0x6E, 0x7E, 0x5E) carry a second property list (OPCGet); they are not used here
and are refused with a clear error rather than misread.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum

EHD1 = 0x10
EHD2_FORMAT1 = 0x81
HEADER_BYTES = 12  # EHD1 EHD2 TID(2) SEOJ(3) DEOJ(3) ESV OPC


class Esv(IntEnum):
    SETI = 0x60  # write, no response asked
    SETC = 0x61  # write, response asked
    GET = 0x62
    INF_REQ = 0x63
    SET_RES = 0x71
    GET_RES = 0x72
    INF = 0x73
    INFC = 0x74
    INFC_RES = 0x7A
    SETI_SNA = 0x50
    SETC_SNA = 0x51  # the node refused (part of) a SetC
    GET_SNA = 0x52
    INF_SNA = 0x53


SETGET_SERVICES = (0x6E, 0x7E, 0x5E)


class FrameError(ValueError):
    """A datagram that is not a well-formed ECHONET Lite format-1 frame; says what is wrong."""


@dataclass(frozen=True)
class Eoj:
    """An ECHONET object: class group code, class code, instance code."""

    group: int
    cls: int
    instance: int = 1

    @classmethod
    def of(cls, class_code: int, instance: int = 1) -> Eoj:
        """From a 16-bit class code such as 0x027E (group 0x02, class 0x7E)."""
        return cls(class_code >> 8, class_code & 0xFF, instance)

    @property
    def class_code(self) -> int:
        return (self.group << 8) | self.cls

    def to_bytes(self) -> bytes:
        return bytes((self.group, self.cls, self.instance))

    def __str__(self) -> str:
        return f"{self.group:02X}{self.cls:02X}{self.instance:02X}"


NODE_PROFILE = Eoj(0x0E, 0xF0, 0x01)
CONTROLLER = Eoj(0x05, 0xFF, 0x01)  # the controller class, as SEOJ of our requests


@dataclass(frozen=True)
class Property:
    epc: int
    edt: bytes = b""


@dataclass(frozen=True)
class Frame:
    tid: int
    seoj: Eoj
    deoj: Eoj
    esv: int
    properties: tuple[Property, ...] = field(default_factory=tuple)

    def to_bytes(self) -> bytes:
        if not 0 <= self.tid <= 0xFFFF:
            raise FrameError(f"TID {self.tid} outside 0..65535")
        if len(self.properties) > 255:
            raise FrameError(f"{len(self.properties)} properties; OPC holds at most 255")
        out = bytearray((EHD1, EHD2_FORMAT1))
        out += self.tid.to_bytes(2, "big") + self.seoj.to_bytes() + self.deoj.to_bytes()
        out += bytes((self.esv, len(self.properties)))
        for prop in self.properties:
            if len(prop.edt) > 255:
                raise FrameError(f"EPC 0x{prop.epc:02X}: {len(prop.edt)} data bytes; PDC holds at most 255")
            out += bytes((prop.epc, len(prop.edt))) + prop.edt
        return bytes(out)

    def get(self, epc: int) -> bytes | None:
        for prop in self.properties:
            if prop.epc == epc:
                return prop.edt
        return None


def parse(data: bytes) -> Frame:
    """Decode one datagram; raises :class:`FrameError` naming the first thing that is wrong."""
    if len(data) < HEADER_BYTES:
        raise FrameError(f"{len(data)} bytes; a frame has at least {HEADER_BYTES}")
    if data[0] != EHD1:
        raise FrameError(f"EHD1 0x{data[0]:02X}; ECHONET Lite is 0x10")
    if data[1] != EHD2_FORMAT1:
        raise FrameError(f"EHD2 0x{data[1]:02X}; only format 1 (0x81) is understood")
    esv, count = data[10], data[11]
    if esv in SETGET_SERVICES:
        raise FrameError(f"ESV 0x{esv:02X} (SetGet) is not supported")
    properties, offset = [], HEADER_BYTES
    for index in range(count):
        if offset + 2 > len(data):
            raise FrameError(f"property {index + 1} of {count}: frame ends at byte {len(data)}")
        epc, pdc = data[offset], data[offset + 1]
        if offset + 2 + pdc > len(data):
            raise FrameError(f"EPC 0x{epc:02X}: PDC {pdc} runs past the frame's end")
        properties.append(Property(epc, bytes(data[offset + 2 : offset + 2 + pdc])))
        offset += 2 + pdc
    if offset != len(data):
        raise FrameError(f"{len(data) - offset} bytes after the last property")
    return Frame(
        tid=int.from_bytes(data[2:4], "big"),
        seoj=Eoj(*data[4:7]),
        deoj=Eoj(*data[7:10]),
        esv=esv,
        properties=tuple(properties),
    )


def unsigned(edt: bytes) -> int | None:
    """Big-endian unsigned; the 'no data' codes (all 0xFF..FE/FF) give None."""
    if not edt:
        return None
    value = int.from_bytes(edt, "big")
    if value >= (1 << (8 * len(edt))) - 2:  # 0xFF..FE overflow, 0xFF..FF no data
        return None
    return value


def signed(edt: bytes) -> int | None:
    """Big-endian two's complement; 0x7F..FF (overflow), 0x80..00 (underflow) and 0x7F..FE give None."""
    if not edt:
        return None
    value = int.from_bytes(edt, "big", signed=True)
    bits = 8 * len(edt)
    if value in ((1 << (bits - 1)) - 1, (1 << (bits - 1)) - 2, -(1 << (bits - 1))):
        return None
    return value


def to_unsigned(value: int, size: int) -> bytes:
    return int(value).to_bytes(size, "big", signed=False)


def to_signed(value: int, size: int) -> bytes:
    return int(value).to_bytes(size, "big", signed=True)


def instance_list(edt: bytes) -> list[Eoj]:
    """The node profile's 0xD6 (self-node instance list S): a count then 3-byte objects."""
    if not edt:
        return []
    count = edt[0]
    body = edt[1 : 1 + 3 * count]
    return [Eoj(*body[i : i + 3]) for i in range(0, len(body) - len(body) % 3, 3)]


def encode_instance_list(objects: list[Eoj]) -> bytes:
    return bytes((len(objects),)) + b"".join(o.to_bytes() for o in objects)
