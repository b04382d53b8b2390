"""Wiring shared by ``ems dispatch serve`` and ``ems dispatch feed``: broker settings and signals."""

from __future__ import annotations

import signal
import threading

from drivers.mqtt.credentials import resolve_credentials
from drivers.mqtt.link import BrokerSettings
from ems.config.schema import Portfolio


def broker_settings(
    portfolio: Portfolio,
    client_id: str,
    host: str | None,
    port: int | None,
    credentials_file: str | None,
    persistent: bool,
) -> BrokerSettings:
    """The ``[mqtt]`` broker (host and port overridable), as ``client_id`` with its own credentials.
    ``persistent``: the broker keeps the session (subscriptions, queued QoS 1 messages) while away."""
    mqtt = portfolio.mqtt
    user, password = resolve_credentials(None, None, credentials_file) if credentials_file else (None, None)
    return BrokerSettings(
        host=host or mqtt.host,
        port=port or mqtt.port,
        client_id=client_id,
        protocol="3.1.1",
        tls=mqtt.tls,
        ca_file=mqtt.ca_file,
        username=user,
        password=password,
        clean_session=not persistent,
    )


def stop_on_signals() -> threading.Event:
    """An event set by SIGINT or SIGTERM: the loops finish their batch and stop cleanly."""
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    return stop
