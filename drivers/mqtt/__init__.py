"""MQTT drivers (paho-mqtt 2, QoS 1, MQTT 3.1.1 or 5): chargers and vehicles as JSON devices."""
