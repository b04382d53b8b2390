"""Mirror of the store's time series to InfluxDB (v2 write API), fed from the store's outbox.

Lines leave the outbox only after the server accepted them, in order, so an outage of the
server (or a restart of either side) loses nothing: the backlog is sent when it returns.
"""

from __future__ import annotations

import logging
import os

from influxdb_client import InfluxDBClient, WritePrecision
from influxdb_client.client.write_api import SYNCHRONOUS
from influxdb_client.rest import ApiException
from urllib3.exceptions import HTTPError

from ems.store.sqlite import Store

log = logging.getLogger(__name__)


class InfluxSink:
    def __init__(self, url: str, org: str, bucket: str, token: str = "", timeout_s: float = 2.0, batch: int = 5000):
        self.url, self.org, self.bucket, self.batch = url, org, bucket, batch
        self._client = InfluxDBClient(url=url, token=token or "none", org=org, timeout=int(timeout_s * 1000),
                                      retries=False)
        self._write = self._client.write_api(write_options=SYNCHRONOUS)
        self.down = False

    @classmethod
    def from_settings(cls, settings) -> "InfluxSink":
        token = os.environ.get(settings.token_env, "") if settings.token_env else ""
        return cls(settings.url, settings.org, settings.bucket, token, settings.timeout_s)

    def flush(self, store: Store) -> int:
        """Send the outbox in order until it is empty or the server fails; returns lines sent."""
        sent = 0
        while True:
            batch = store.outbox_batch(self.batch)
            if not batch:
                break
            try:
                self._write.write(bucket=self.bucket, org=self.org, record=[line for _id, line in batch],
                                  write_precision=WritePrecision.MS)
            except (ApiException, HTTPError, OSError) as error:
                if not self.down:
                    log.warning("InfluxDB at %s unreachable (%s); %d+ lines kept in the outbox", self.url,
                                type(error).__name__, len(batch))
                self.down = True
                break
            store.outbox_ack(batch[-1][0])
            sent += len(batch)
            if self.down:
                log.info("InfluxDB at %s is back; backlog being sent", self.url)
                self.down = False
        return sent

    def close(self) -> None:
        self._client.close()
