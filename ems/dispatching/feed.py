"""Publish a request log (the CSV ``ems dispatch simulate`` reads) on ``rides/request`` in
simulated time, QoS 1: each request goes out when the shared clock reaches its ``time``, less a
lead of ``lead_real_s`` real seconds. The dispatcher holds a request until its ``time``, so the
lead only absorbs the delivery delay: at speed 200 a 50 ms delay is 10 simulated seconds, a
third of a batch, and would push a request due just before a batch into the next one."""

from __future__ import annotations

import logging
import threading
import time

from dispatch.requests_io import RequestLog
from drivers.mqtt.link import MqttLink
from ems.dispatching.clock import SharedClock
from ems.dispatching.messages import REQUEST_TOPIC, request_payload

log = logging.getLogger(__name__)


def feed(
    log_: RequestLog,
    link: MqttLink,
    clock: SharedClock,
    stop: threading.Event,
    ack_timeout_s: float = 60.0,
    lead_real_s: float = 0.5,
) -> tuple[int, int]:
    """(published, acknowledged by the broker). Requests earlier than the clock's start go at once."""
    acknowledged: set[int] = set()
    lock = threading.Lock()

    def on_publish(client, userdata, mid, reason_code=None, properties=None) -> None:
        with lock:
            acknowledged.add(mid)

    link.client.on_publish = on_publish
    mids = []
    for request in log_.requests:
        while not stop.is_set():
            ahead_s = request.time_s - lead_real_s * clock.speed - log_.clock.to_s(clock.now())
            if ahead_s <= 0:
                break
            stop.wait(min(clock.real_seconds(ahead_s), 0.5))
        if stop.is_set():
            break
        # paho keeps a QoS 1 message while the broker is away and sends it on reconnection;
        # the broker's PUBACK (on_publish) is what counts, not the send
        mids.append(link.publish(REQUEST_TOPIC, request_payload(request, log_.clock)).mid)
    deadline = time.monotonic() + ack_timeout_s
    while time.monotonic() < deadline and not _all_in(mids, acknowledged, lock):
        time.sleep(0.05)
    with lock:
        return len(mids), sum(mid in acknowledged for mid in mids)


def _all_in(mids: list[int], acknowledged: set[int], lock: threading.Lock) -> bool:
    with lock:
        return all(mid in acknowledged for mid in mids)
