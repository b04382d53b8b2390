"""One MQTT connection (paho-mqtt 2) that reconnects with back-off and resubscribes.

paho's network thread reconnects by itself (``reconnect_delay_set``: doubling from
``reconnect_min_s`` to ``reconnect_max_s``); on every (re)connection the link subscribes again
to every filter it was given and republishes its birth message, so a broker restart loses
nothing but the messages in flight, which the callers resend (see ``devices.py``).
Handlers run on paho's thread.
"""

from __future__ import annotations

import logging
import ssl
import threading
from collections.abc import Callable
from typing import Literal

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from pydantic import BaseModel, ConfigDict, Field, SecretStr

log = logging.getLogger(__name__)

Handler = Callable[[str, bytes], None]


class BrokerSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    host: str = "127.0.0.1"
    port: int = Field(1883, ge=1, le=65535)
    client_id: str
    protocol: Literal["3.1.1", "5"] = "3.1.1"
    keepalive_s: int = Field(10, ge=2)
    tls: bool = False
    ca_file: str | None = None
    cert_file: str | None = Field(None, description="client certificate (PEM), for certificate auth")
    key_file: str | None = None
    username: str | None = None
    password: SecretStr | None = None  # SecretStr: never printed by repr or logs
    reconnect_min_s: float = Field(0.2, gt=0)
    reconnect_max_s: float = Field(5.0, gt=0)
    clean_session: bool = Field(
        True, description="False: the broker keeps subscriptions and queued QoS 1 messages while away"
    )


class Will(BaseModel):
    topic: str
    payload: str
    retain: bool = True


class MqttLink:
    """A connected client plus the subscriptions to restore after every reconnect."""

    def __init__(self, settings: BrokerSettings, will: Will | None = None, birth: Will | None = None):
        self.settings = settings
        self.birth = birth
        self._handlers: dict[str, list[Handler]] = {}
        self._lock = threading.Lock()
        self.connected = threading.Event()
        self.connections = 0  # how many times the link has (re)connected
        self.last_error: str | None = None
        protocol = mqtt.MQTTv5 if settings.protocol == "5" else mqtt.MQTTv311
        # MQTT 5 has clean_start at connect instead; a persistent session is 3.1.1's clean_session False
        clean_session = settings.clean_session if protocol == mqtt.MQTTv311 else None
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=settings.client_id, protocol=protocol, clean_session=clean_session
        )
        if settings.username:
            password = settings.password.get_secret_value() if settings.password else None
            client.username_pw_set(settings.username, password)
        if settings.tls:
            client.tls_set(
                ca_certs=settings.ca_file,
                certfile=settings.cert_file,
                keyfile=settings.key_file,
                cert_reqs=ssl.CERT_REQUIRED,
                tls_version=ssl.PROTOCOL_TLS_CLIENT,
            )
        if will is not None:
            client.will_set(will.topic, will.payload, qos=1, retain=will.retain)
        client.reconnect_delay_set(settings.reconnect_min_s, settings.reconnect_max_s)  # type: ignore[arg-type]  # paho takes float seconds
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        self.client = client

    @property
    def name(self) -> str:
        return self.settings.client_id

    def start(self) -> None:
        """Connect in the background; keeps trying while the broker is away."""
        self.client.connect_async(self.settings.host, self.settings.port, keepalive=self.settings.keepalive_s)
        self.client.loop_start()

    def stop(self) -> None:
        if self.birth is not None and self.connected.is_set():
            info = self.client.publish(self.birth.topic, "offline", qos=1, retain=self.birth.retain)
            info.wait_for_publish(1.0)
        self.client.disconnect()
        self.client.loop_stop()
        self.connected.clear()

    def wait_connected(self, timeout_s: float) -> bool:
        return self.connected.wait(timeout_s)

    def subscribe(self, topic_filter: str, handler: Handler) -> None:
        with self._lock:
            first = topic_filter not in self._handlers
            self._handlers.setdefault(topic_filter, []).append(handler)
        if first and self.connected.is_set():
            self.client.subscribe(topic_filter, qos=1)

    def publish(self, topic: str, payload: str | bytes, retain: bool = False) -> mqtt.MQTTMessageInfo:
        return self.client.publish(topic, payload, qos=1, retain=retain)

    # --- paho callbacks (network thread) ------------------------------------------------------

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            # Never echo credentials: the reason code alone says what the broker refused.
            self.last_error = f"broker {self.settings.host}:{self.settings.port} refused: {reason_code}"
            log.warning("%s: %s", self.name, self.last_error)
            return
        with self._lock:
            filters = list(self._handlers)
        if filters:
            client.subscribe([(f, 1) for f in filters])
        if self.birth is not None:
            client.publish(self.birth.topic, self.birth.payload, qos=1, retain=self.birth.retain)
        self.connections += 1
        self.last_error = None
        self.connected.set()
        log.info(
            "%s: connected to %s:%d (connection %d)",
            self.name,
            self.settings.host,
            self.settings.port,
            self.connections,
        )

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        self.connected.clear()
        log.info("%s: disconnected (%s); reconnecting with back-off", self.name, reason_code)

    def _on_message(self, client, userdata, message: mqtt.MQTTMessage) -> None:
        with self._lock:
            handlers = [h for f, hs in self._handlers.items() if mqtt.topic_matches_sub(f, message.topic) for h in hs]
        for handler in handlers:
            handler(message.topic, bytes(message.payload))
