"""SunSpec models as data, and discovery by scanning from the 'SunS' marker.

Only the points the energy manager uses are listed; offsets count from the model's ID
register (ID at 0, L at 1), as in the SunSpec information model. A model's length ``L`` is the
number of registers after ID and L. Values are ``raw * 10**sf`` where ``sf`` is the model's
scale-factor point (``sunssf``); SunSpec's 'not implemented' values read as None.
"""

from __future__ import annotations

from dataclasses import dataclass

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


COMMON = Model(1, 66, (
    Point("Mn", 2, "string", size=16),
    Point("Md", 18, "string", size=16),
    Point("Opt", 34, "string", size=8),
    Point("Vr", 42, "string", size=8),
    Point("SN", 50, "string", size=16),
    Point("DA", 66, "uint16"),
))

INVERTER_THREE_PHASE = Model(103, 50, (
    Point("A", 2, "uint16", "A_SF"),
    Point("A_SF", 6, "sunssf"),
    Point("PhVphA", 10, "uint16", "V_SF"),
    Point("V_SF", 13, "sunssf"),
    Point("W", 14, "int16", "W_SF"),
    Point("W_SF", 15, "sunssf"),
    Point("Hz", 16, "uint16", "Hz_SF"),
    Point("Hz_SF", 17, "sunssf"),
    Point("WH", 24, "acc32", "WH_SF", size=2),
    Point("WH_SF", 26, "sunssf"),
    Point("St", 38, "enum16"),
))

STORAGE_CONTROLS = Model(124, 24, (
    Point("WChaMax", 2, "uint16", "WChaMax_SF"),
    Point("StorCtl_Mod", 5, "bitfield16"),
    Point("MinRsvPct", 7, "uint16", "MinRsvPct_SF"),
    Point("ChaState", 8, "uint16", "ChaState_SF"),
    Point("StorAval", 9, "uint16", "StorAval_SF"),
    Point("ChaSt", 11, "enum16"),
    Point("OutWRte", 12, "int16", "InOutWRte_SF"),
    Point("InWRte", 13, "int16", "InOutWRte_SF"),
    Point("InOutWRte_RvrtTms", 15, "uint16"),
    Point("WChaMax_SF", 18, "sunssf"),
    Point("MinRsvPct_SF", 21, "sunssf"),
    Point("ChaState_SF", 22, "sunssf"),
    Point("StorAval_SF", 23, "sunssf"),
    Point("InOutWRte_SF", 25, "sunssf"),
))

METER_THREE_PHASE_WYE = Model(203, 105, (
    Point("A", 2, "int16", "A_SF"),
    Point("A_SF", 6, "sunssf"),
    Point("PhV", 7, "int16", "V_SF"),
    Point("V_SF", 15, "sunssf"),
    Point("Hz", 16, "int16", "Hz_SF"),
    Point("Hz_SF", 17, "sunssf"),
    Point("W", 18, "int16", "W_SF"),
    Point("W_SF", 22, "sunssf"),
    Point("TotWhExp", 38, "acc32", "TotWh_SF", size=2),
    Point("TotWhImp", 46, "acc32", "TotWh_SF", size=2),
    Point("TotWh_SF", 54, "sunssf"),
))

MODELS: dict[int, Model] = {m.id: m for m in (COMMON, INVERTER_THREE_PHASE, STORAGE_CONTROLS, METER_THREE_PHASE_WYE)}

# StorCtl_Mod bits (model 124): bit 0 enforces the charge rate InWRte, bit 1 the discharge rate OutWRte.
STORCTL_CHARGE = 1
STORCTL_DISCHARGE = 2


def decode_point(block: list[int], model: Model, name: str) -> float | str | None:
    """One point of a model's register block (ID first), scaled by its scale factor."""
    point = model.point(name)
    words = block[point.offset : point.offset + point.size]
    if point.type == "string":
        return decode_string(words)
    kind = {"bitfield16": "uint16"}.get(point.type, point.type)
    raw = decode(words, kind)
    if raw is None:
        return None
    if point.sf is None:
        return raw
    sf = decode_point(block, model, point.sf)
    if sf is None:
        return None
    return raw * 10.0 ** sf


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
        raise DeviceUnavailable(connection.device, f"SunSpec model {model.id} at {address} is {block[1]} long, expected {model.length}")
    return block
