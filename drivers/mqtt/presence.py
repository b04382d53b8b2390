"""One process per role on a broker: a retained presence message, cleared by the last will.

MQTT lets only one connection hold a client id: a second client with the same id takes the
session over, the first reconnects and takes it back, and the two throw each other off many
times a second. So before a controller or a twin connects with its client id it reads
``presence/<client id>`` on a short-lived probe connection of its own; if another process
holds that id (its retained record says ``online``), it is refused with :class:`AlreadyRunning`
naming the process, and connects nothing. A process that holds the id publishes its record
retained when it connects (birth) and ``offline`` when it stops; its last will publishes
``offline`` if it dies, so a crash does not lock the id.

Two processes started within the same fraction of a second can both pass the check; the
shipped ACL lets each client write only ``presence/<its own client id>``.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import socket
import threading
import uuid

from pydantic import BaseModel

from drivers.mqtt.link import BrokerSettings, MqttLink, Will

log = logging.getLogger(__name__)
PRESENCE_ROOT = "presence"
OFFLINE = "offline"


def presence_topic(client_id: str) -> str:
    return f"{PRESENCE_ROOT}/{client_id}"


class PresenceRecord(BaseModel):
    role: str
    pid: int
    host: str
    since: dt.datetime


class AlreadyRunning(RuntimeError):
    """Another process holds this client id on this broker."""

    def __init__(self, client_id: str, broker: BrokerSettings, holder: PresenceRecord | None):
        self.client_id = client_id
        who = (
            f"{holder.role} (pid {holder.pid} on {holder.host}, since {holder.since.isoformat(timespec='seconds')})"
            if holder
            else "another process"
        )
        super().__init__(
            f"{who} is already connected to {broker.host}:{broker.port} as {client_id!r}; "
            f"a second one would take its MQTT session over: stop it first"
        )


def presence_wills(client_id: str, role: str) -> tuple[Will, Will]:
    """(last will, birth) announcing this process on ``presence/<client id>``."""
    record = PresenceRecord(role=role, pid=os.getpid(), host=socket.gethostname(), since=dt.datetime.now(dt.UTC))
    topic = presence_topic(client_id)
    return Will(topic=topic, payload=OFFLINE), Will(topic=topic, payload=record.model_dump_json())


def parse_presence(payload: bytes) -> PresenceRecord | None:
    """The holder's record, or None when the id is free (``offline``, empty, or unreadable)."""
    text = payload.decode("utf-8", errors="replace").strip()
    if not text or text == OFFLINE:
        return None
    try:
        return PresenceRecord.model_validate(json.loads(text))
    except (ValueError, TypeError):
        return None


def check_absent(settings: BrokerSettings, timeout_s: float = 3.0) -> bool:
    """Raise :class:`AlreadyRunning` if a process holds ``settings.client_id`` on the broker.

    Returns True when the check was made, False when the broker could not be reached within
    ``timeout_s`` (the caller then starts and keeps retrying, as it would without the check).
    The probe subscribes to the presence topic and to an echo topic of its own, then publishes
    the echo: the broker delivers a retained presence record before the echo, so the echo's
    arrival proves there is none.
    """
    probe_id = f"{settings.client_id}-probe-{uuid.uuid4().hex[:8]}"
    echo_topic = presence_topic(probe_id)  # the ACL lets a client write its own presence topic
    holder: list[PresenceRecord | None] = []
    echoed = threading.Event()

    def on_presence(topic: str, payload: bytes) -> None:
        holder.append(parse_presence(payload))

    link = MqttLink(settings.model_copy(update={"client_id": probe_id, "reconnect_max_s": 0.5}))
    link.subscribe(presence_topic(settings.client_id), on_presence)
    link.subscribe(echo_topic, lambda topic, payload: echoed.set())
    link.start()
    try:
        if not link.wait_connected(timeout_s):
            log.warning(
                "%s: broker %s:%d not reachable (%s): could not check whether another process holds this client id",
                settings.client_id,
                settings.host,
                settings.port,
                link.last_error or "no answer",
            )
            return False
        link.publish(echo_topic, "echo")
        if not echoed.wait(timeout_s):
            log.warning(
                "%s: no echo on %s within %.1f s (does the broker's ACL allow 'pattern write %s/%%c'?): "
                "could not check whether another process holds this client id",
                settings.client_id,
                echo_topic,
                timeout_s,
                PRESENCE_ROOT,
            )
            return False
    finally:
        link.stop()
    current = holder[-1] if holder else None
    if current is not None:
        raise AlreadyRunning(settings.client_id, settings, current)
    return True
