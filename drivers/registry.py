"""Drivers register themselves by name; a config picks one with ``driver = "<name>"``.

Each driver class is registered once with :func:`register`; :func:`create` builds one from a
mapping (validated into the class's typed settings), :func:`names` lists what is known.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from pydantic import BaseModel

_DRIVERS: dict[str, type] = {}

T = TypeVar("T", bound=type)


class UnknownDriver(KeyError):
    def __init__(self, name: str):
        super().__init__(f"unknown driver {name!r}; known: {', '.join(names())}")


def register(name: str) -> Callable[[T], T]:
    """Class decorator: register a driver under ``name`` (duplicates are an error)."""

    def decorate(cls: T) -> T:
        if name in _DRIVERS and _DRIVERS[name] is not cls:
            raise ValueError(f"driver name {name!r} is already registered by {_DRIVERS[name].__qualname__}")
        if not hasattr(cls, "Settings") or not issubclass(cls.Settings, BaseModel):
            raise TypeError(f"driver {name!r} needs a pydantic 'Settings' class")
        _DRIVERS[name] = cls
        return cls

    return decorate


def driver_class(name: str) -> type:
    _load_builtin()
    try:
        return _DRIVERS[name]
    except KeyError:
        raise UnknownDriver(name) from None


def create(name: str, mapping: dict[str, Any], **resources: Any):
    """Build the driver ``name`` from an untyped mapping (e.g. a config table)."""
    cls = driver_class(name)
    return cls(cls.Settings.model_validate(mapping), **resources)


def names() -> list[str]:
    _load_builtin()
    return sorted(_DRIVERS)


def _load_builtin() -> None:
    # Importing the modules runs their @register decorators.
    import drivers.echonet.devices
    import drivers.modbus.sunspec_drivers
    import drivers.modbus.vendor
    import drivers.mqtt.devices
    import drivers.ocpp.driver
    import drivers.template  # noqa: F401
