"""Simulated devices: physics stepped by a clock, served over the real protocols.

``clock`` gives simulated time (faster than real time if asked); ``physics`` holds PV, meters,
batteries, chargers and vehicles, each with ``step(now, dt_s)``; ``modbus_server`` serves them
as SunSpec (or a vendor map) over pymodbus; ``mqtt_device`` serves chargers and vehicles on a
broker. The digital twin in ``simulations/`` assembles them from a portfolio file.
"""
