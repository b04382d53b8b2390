"""Mirror of the store's time series to InfluxDB (v2 write API), fed from the store's outbox.

Lines leave the outbox only after the server accepted them, in order, so an outage of the
server (or a restart of either side) loses nothing: the backlog is sent when it returns.

Errors are told apart: a connection error, a timeout or a 5xx means the server is away (the
batch stays and is sent again later); 401, 403, 404 and 429 concern the server's setup, not the
lines (kept and retried, with a warning); any other 4xx (400, 413, 422) means the server refuses
what it was given: the batch is split until the refused lines are found, each is moved aside
into an ``outbox-rejected`` event (logged, kept in the store, never sent again) and the rest is
sent.
"""

from __future__ import annotations

import datetime as dt
import logging
import os

from influxdb_client import InfluxDBClient, WritePrecision
from influxdb_client.client.write_api import SYNCHRONOUS
from influxdb_client.rest import ApiException
from urllib3.exceptions import HTTPError

from ems.store.sqlite import Store

log = logging.getLogger(__name__)

SETUP_ERRORS = {401, 403, 404, 429}  # the lines are fine; the server (token, bucket, rate) is not


class _Away(Exception):
    """The server cannot take anything now; the outbox keeps the batch."""


class InfluxSink:
    def __init__(self, url: str, org: str, bucket: str, token: str = "", timeout_s: float = 2.0, batch: int = 5000):
        self.url, self.org, self.bucket, self.batch = url, org, bucket, batch
        self._client = InfluxDBClient(
            url=url, token=token or "none", org=org, timeout=int(timeout_s * 1000), retries=False
        )
        self._write = self._client.write_api(write_options=SYNCHRONOUS)
        self.down = False
        self.rejected = 0

    @classmethod
    def from_settings(cls, settings) -> InfluxSink:
        token = os.environ.get(settings.token_env, "") if settings.token_env else ""
        return cls(settings.url, settings.org, settings.bucket, token, settings.timeout_s)

    def flush(self, store: Store) -> int:
        """Send the outbox in order until it is empty or the server is away; returns lines sent."""
        sent = 0
        while True:
            batch = store.outbox_batch(self.batch)
            if not batch:
                break
            try:
                sent += self._send(store, batch)
            except _Away as away:
                if not self.down:
                    log.warning(
                        "InfluxDB at %s not taking writes (%s); %d+ lines kept in the outbox",
                        self.url,
                        away,
                        len(batch),
                    )
                self.down = True
                break
            if self.down:
                log.info("InfluxDB at %s is back; backlog being sent", self.url)
                self.down = False
        return sent

    def _send(self, store: Store, batch: list[tuple[int, str]]) -> int:
        """Send ``batch``; lines the server refuses are moved aside. Raises _Away if it is away."""
        try:
            self._write.write(
                bucket=self.bucket,
                org=self.org,
                record=[line for _id, line in batch],
                write_precision=WritePrecision.MS,  # type: ignore[arg-type]  # its members are plain str
            )
        except ApiException as error:
            status = error.status or 0
            if status >= 500 or status in SETUP_ERRORS or status < 400:
                raise _Away(f"HTTP {status}") from None
            if len(batch) == 1:
                reason = f"HTTP {status}: {(error.body or error.reason or '').strip()[:300]}"
                log.error(
                    "InfluxDB at %s refused a line for good (%s); moved aside: %s", self.url, reason, batch[0][1][:200]
                )
                store.outbox_reject(batch[0][0], batch[0][1], reason, dt.datetime.now(dt.UTC))
                self.rejected += 1
                return 0
            half = len(batch) // 2  # find the refused lines by halves; the others go through
            return self._send(store, batch[:half]) + self._send(store, batch[half:])
        except (HTTPError, OSError) as error:
            raise _Away(type(error).__name__) from None
        store.outbox_ack(batch[-1][0])
        return len(batch)

    def close(self) -> None:
        self._client.close()
