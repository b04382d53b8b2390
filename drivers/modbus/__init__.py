"""Modbus TCP drivers: one shared connection layer, SunSpec models and vendor maps as data."""
