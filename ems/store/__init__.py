"""Storage of telemetry, plans, set-points, events and the controller's state (docs/control.md, Storage).

The embedded default is a local SQLite file (WAL mode) that needs no server; an InfluxDB sink
mirrors time series when configured, through an outbox kept in the same file so nothing is lost
while the sink is down.
"""

from ems.store.sqlite import SCHEMA_VERSION, Store, StoreError

__all__ = ["SCHEMA_VERSION", "Store", "StoreError"]
