"""OCPP (JSON over websockets): a central system (CSMS) and the charger driver that uses it."""
