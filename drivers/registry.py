"""Drivers register themselves by name; a config picks one with ``driver = "<name>"``.

Each driver class is registered once with :func:`register`; :func:`create` builds one from a
mapping (validated into the class's typed settings), :func:`names` lists what is known and
:func:`needs` the shared connections a driver takes (``drivers.api.SHARED_CONNECTIONS``).

The built-in drivers are found by walking this package: every module under ``drivers/`` is
imported once (which runs its ``@register`` decorators), except the simulated devices in
``drivers/sim`` and modules whose optional dependency is not installed.
"""

from __future__ import annotations

import importlib
import inspect
import logging
import os
import pkgutil
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from pydantic import BaseModel

from drivers.api import SHARED_CONNECTIONS

log = logging.getLogger(__name__)

_DRIVERS: dict[str, type] = {}
_LOADED = False
NOT_DRIVERS = ("drivers.sim",)  # the twin's simulated devices: served over the protocols, not drivers

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
        _check_needs(name, cls)
        _DRIVERS[name] = cls
        return cls

    return decorate


def _check_needs(name: str, cls: type) -> None:
    """``needs`` names known shared connections, each one a keyword of the constructor."""
    declared = set(getattr(cls, "needs", ()))
    unknown = declared - set(SHARED_CONNECTIONS)
    if unknown:
        raise TypeError(
            f"driver {name!r} needs unknown shared connection(s) {sorted(unknown)}; "
            f"known: {', '.join(SHARED_CONNECTIONS)}"
        )
    parameters = inspect.signature(cls.__init__).parameters  # type: ignore[misc]
    missing = declared - set(parameters)
    if missing:
        raise TypeError(f"driver {name!r} needs {sorted(missing)} but its constructor takes no such argument")


def driver_class(name: str) -> type:
    _load_builtin()
    try:
        return _DRIVERS[name]
    except KeyError:
        raise UnknownDriver(name) from None


def needs(name: str) -> frozenset[str]:
    """The shared connections the driver ``name`` takes as keyword arguments (none: it opens its own)."""
    return frozenset(getattr(driver_class(name), "needs", ()))


def create(name: str, mapping: dict[str, Any], **connections: Any) -> Any:
    """Build the driver ``name`` from an untyped mapping (e.g. a config table), handing it the
    shared ``connections`` it needs."""
    cls = driver_class(name)
    return cls(cls.Settings.model_validate(mapping), **connections)  # type: ignore[attr-defined]


def names() -> list[str]:
    _load_builtin()
    return sorted(_DRIVERS)


def _load_builtin() -> None:
    global _LOADED
    if _LOADED:
        return
    import drivers

    for module in builtin_modules(drivers.__path__, "drivers."):
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as error:
            if error.name is None or error.name.split(".")[0] == "drivers":
                raise  # a broken driver module is an error, not an absent extra
            log.debug("driver module %s skipped: %s is not installed", module, error.name)
    _LOADED = True


def builtin_modules(path: Iterable[str], prefix: str) -> list[str]:
    """The modules under the package directories ``path`` that may hold drivers, in a fixed
    order; found on disk, so nothing is imported to look (the packages in NOT_DRIVERS are left out)."""
    found = []
    for info in pkgutil.iter_modules(list(path), prefix):
        if info.name in NOT_DRIVERS:
            continue
        if info.ispkg:
            found += builtin_modules([os.path.join(p, info.name.rsplit(".", 1)[-1]) for p in path], info.name + ".")
        else:
            found.append(info.name)
    return sorted(found)
