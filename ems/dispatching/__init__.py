"""The live dispatcher service: the pure ``dispatch`` engine bound to MQTT, the fleet contract
and its own SQLite store (docs/dispatch.md, "The live service")."""
