"""The ride-pooling dispatcher (docs/dispatch.md).

Layout: ``model`` (requests, stops, vehicle views), ``router`` (travel time and distance),
``routes`` (evaluating and inserting into a vehicle's stop sequence), ``assign`` (the pure batch
assignment: insertion fast path, trip enumeration, ILP on HiGHS), ``fleet`` (charging, depot
return, rebalancing, the fleet plans), ``demand`` (points of interest and the seeded request
generator), ``requests_io`` (reading and checking request logs), ``simulate`` (replay and KPIs).
This package imports only ``ems.config`` and ``ems.fleet`` from ``ems``.
"""
