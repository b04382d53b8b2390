"""SunSpec models as data, and discovery by scanning from the 'SunS' marker.

The register tables come from pysunspec2's JSON model definitions (SunSpec's own information
model), not hand-written copies; offsets count from the model's ID register (ID at 0, L at 1).
A model's length ``L`` is the number of registers after ID and L. Values are ``raw * 10**sf``
where ``sf`` is the model's scale-factor point (``sunssf``); SunSpec's 'not implemented' values read as None.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources

from drivers.api import DeviceUnavailable
from drivers.modbus.connection import ModbusConnection, decode, decode_string

SUNS_MARKER = [0x5375, 0x6E53]  # "SunS"
BASE_ADDRESSES = (40000, 50000, 0)  # where SunSpec devices put the marker, most common first
END_MODEL_ID = 0xFFFF
MAX_MODELS = 64  # a scan never loops forever on a corrupt chain


@dataclass(frozen=True)
class Point:
    name: str
    offset: int
    type: str  # int16, uint16, acc32, sunssf, enum16, bitfield16, string
    sf: str | None = None
    size: int = 1


@dataclass(frozen=True)
class Model:
    id: int
    length: int  # L: registers after ID and L
    points: tuple[Point, ...]

    def point(self, name: str) -> Point:
        for point in self.points:
            if point.name == name:
                return point
        raise KeyError(f"model {self.id} has no point {name!r}")


SUPPORTED_MODELS = (1, 101, 102, 103, 124, 201, 202, 203, 204, 701, 702, 703, 704, 802)
INVERTER_MODELS = (103, 102, 101)  # three-phase, split-phase, single-phase: one layout, most phases first
METER_MODELS = (203, 204, 202, 201)  # wye, delta (Japan's 3-wire 200 V), split-phase, single-phase


def load_model(model_id: int) -> Model:
    """A model's fixed points from pysunspec2's JSON definition (the SunSpec information model).

    Points come first, then the groups (a group without a count appears once, as 'Group.Point');
    a repeating group (its count is a point) ends the fixed part, which is all this reads.
    """
    path = resources.files("sunspec2") / "models" / "json" / f"model_{model_id}.json"
    group = json.loads(path.read_text(encoding="utf-8"))["group"]
    points: list[Point] = []
    offset = _add_points(group, "", 0, points)
    return Model(model_id, offset - 2, tuple(p for p in points if p.name not in ("ID", "L")))


def _add_points(group: dict, prefix: str, offset: int, points: list[Point]) -> int:
    for spec in group.get("points", []):
        size = int(spec.get("size", 1))
        sf = spec.get("sf")
        sf_name = (
            f"{prefix}{sf}"
            if isinstance(sf, str) and prefix and any(p.get("name") == sf for p in group["points"])
            else sf
        )
        points.append(
            Point(f"{prefix}{spec['name']}", offset, spec["type"], sf_name if isinstance(sf_name, str) else None, size)
        )
        offset += size
    for child in group.get("groups", []):
        if isinstance(child.get("count"), str):
            break  # repeating: its length depends on the device
        for index in range(int(child.get("count", 1) or 1)):
            name = child["name"] if int(child.get("count", 1) or 1) == 1 else f"{child['name']}[{index}]"
            offset = _add_points(child, f"{prefix}{name}.", offset, points)
    return offset


MODELS: dict[int, Model] = {model_id: load_model(model_id) for model_id in SUPPORTED_MODELS}
COMMON = MODELS[1]
INVERTER_THREE_PHASE = MODELS[103]
STORAGE_CONTROLS = MODELS[124]
METER_THREE_PHASE_WYE = MODELS[203]
BATTERY_BASE = MODELS[802]
DER_AC_MEASUREMENT = MODELS[701]

# StorCtl_Mod bits (model 124): bit 0 enforces the charge rate InWRte, bit 1 the discharge rate OutWRte.
STORCTL_CHARGE = 1
STORCTL_DISCHARGE = 2


def decode_point(block: list[int], model: Model, name: str) -> float | str | None:
    """One point of a model's register block (ID first), scaled by its scale factor."""
    point = model.point(name)
    words = block[point.offset : point.offset + point.size]
    if point.type == "string":
        return decode_string(words)
    kind = {"bitfield16": "uint16", "acc64": "uint64"}.get(point.type, point.type)
    raw = decode(words, kind)
    if raw is None:
        return None
    if point.sf is None:
        return raw
    sf = number_point(block, model, point.sf)
    if sf is None:
        return None
    return raw * 10.0**sf


def number_point(block: list[int], model: Model, name: str) -> float | None:
    """A numeric point, scaled (a string point asked for as a number is a programming error)."""
    value = decode_point(block, model, name)
    if isinstance(value, str):
        raise TypeError(f"SunSpec model {model.id} point {name!r} is a string, not a number")
    return value


def text_point(block: list[int], model: Model, name: str) -> str | None:
    """A string point (a number is given as its text)."""
    value = decode_point(block, model, name)
    return value if value is None or isinstance(value, str) else str(value)


async def scan(connection: ModbusConnection) -> dict[int, int]:
    """Find the SunSpec marker and walk the model chain: ``{model id: address of its ID}``."""
    for base in BASE_ADDRESSES:
        try:
            marker = await connection.read_registers(base, 2)
        except DeviceUnavailable as error:
            if getattr(error, "code", None) is None:
                raise  # no answer at all: not worth trying other bases
            continue  # an exception response: the device has no registers here
        if marker == SUNS_MARKER:
            return await _walk(connection, base + 2)
    raise DeviceUnavailable(connection.device, f"no SunSpec marker 'SunS' at {', '.join(map(str, BASE_ADDRESSES))}")


async def _walk(connection: ModbusConnection, address: int) -> dict[int, int]:
    found: dict[int, int] = {}
    for _ in range(MAX_MODELS):
        model_id, length = await connection.read_registers(address, 2)
        if model_id == END_MODEL_ID:
            return found
        found.setdefault(model_id, address)
        address += 2 + length
    raise DeviceUnavailable(connection.device, f"SunSpec model chain longer than {MAX_MODELS} models")


async def read_model(connection: ModbusConnection, address: int, model: Model) -> list[int]:
    """The model's whole block, ID and L included; checks the ID and that L is long enough."""
    block = await connection.read_registers(address, model.length + 2)
    if block[0] != model.id:
        raise DeviceUnavailable(connection.device, f"expected SunSpec model {model.id} at {address}, found {block[0]}")
    if block[1] < model.length:
        raise DeviceUnavailable(
            connection.device, f"SunSpec model {model.id} at {address} is {block[1]} long, expected {model.length}"
        )
    return block
