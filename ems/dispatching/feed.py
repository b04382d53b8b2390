"""Publish a request log (the CSV ``ems dispatch simulate`` reads) on ``rides/request`` in
simulated time, QoS 1: each request goes out when the shared clock reaches its ``time``."""

from __future__ import annotations

import logging
import threading
import time

from dispatch.requests_io import RequestLog
from drivers.mqtt.link import MqttLink
from ems.dispatching.clock import SharedClock
from ems.dispatching.messages import REQUEST_TOPIC, request_payload

log = logging.getLogger(__name__)


def feed(log_: RequestLog, link: MqttLink, clock: SharedClock, stop: threading.Event, ack_timeout_s: float = 60.0) -> tuple[int, int]:
    """(published, acknowledged by the broker). Requests earlier than the clock's start go at once."""
    infos = []
    for request in log_.requests:
        while not stop.is_set():
            ahead_s = request.time_s - log_.clock.to_s(clock.now())
            if ahead_s <= 0:
                break
            stop.wait(min(clock.real_seconds(ahead_s), 0.5))
        if stop.is_set():
            break
        # paho keeps a QoS 1 message while the broker is away and sends it on reconnection
        infos.append(link.publish(REQUEST_TOPIC, request_payload(request, log_.clock)))
    deadline = time.monotonic() + ack_timeout_s
    while time.monotonic() < deadline and not all(i.is_published() for i in infos):
        time.sleep(0.05)
    return len(infos), sum(i.is_published() for i in infos)
