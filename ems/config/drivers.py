"""The ``[twin]`` section: where the digital twin serves the assets whose driver is ``sim``.

``ems twin`` serves every ``kind = "sim"`` meter, PV array and battery as a SunSpec Modbus TCP
device on ``modbus_host`` at ``modbus_base_port + index`` (index in the order grid connections,
PV arrays, loads, batteries, shelters, as listed in the file) and every sim charger and vehicle as
an MQTT device under ``<topic_root>/<id>`` on the ``[mqtt]`` broker. ``ems devices`` and the
control loop reach a sim asset at exactly that place. See docs/drivers.md.
"""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, ConfigDict, Field


class ModbusTlsFiles(BaseModel):
    """Modbus/TCP Security for one device (TLS 1.2+, mutual authentication; conventionally port
    802). Paths are relative to the portfolio file. See docs/drivers.md, "Security"."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    ca_file: str = Field(description="PEM CA certificate that signed the device's certificate")
    cert_file: str = Field(description="PEM certificate the controller presents to the device")
    key_file: str = Field(description="PEM private key of cert_file")


class TwinModbusTls(BaseModel):
    """Both ends of the twin's Modbus/TCP Security: its simulated devices' server certificate and
    the client certificate the controller presents to them, from one CA. Paths are relative to
    the portfolio file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    ca_file: str = Field(description="PEM CA certificate that signed both certificates below")
    server_cert_file: str = Field(description="the simulated devices' certificate (its SAN must match modbus_host)")
    server_key_file: str = Field(description="PEM private key of server_cert_file")
    client_cert_file: str = Field(description="the certificate a client of the twin presents")
    client_key_file: str = Field(description="PEM private key of client_cert_file")


class TwinSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    modbus_host: str = "127.0.0.1"
    modbus_base_port: int = Field(15020, ge=1024, le=65000, description="first device's port; one port per device")
    topic_root: str = Field("arao", pattern=r"^[A-Za-z0-9_\-/]+$", description="MQTT topics are <topic_root>/<id>/...")
    step_s: float = Field(1.0, gt=0, description="real seconds between physics steps")
    publish_interval_s: float = Field(1.0, gt=0, description="real seconds between MQTT telemetry messages")
    speed: float = Field(1.0, gt=0, description="simulated seconds per real second")
    start: dt.datetime | None = Field(None, description="simulated start time (with offset); default: now")
    client_id_prefix: str = Field("twin", description="each simulated MQTT device connects as <prefix>-<id>")
    username_env: str | None = Field(None, description="environment variable with the twin devices' MQTT user")
    password_env: str | None = None
    credentials_file: str | None = Field(None, description="'user:password' file for the twin devices")
    modbus_timeout_s: float = Field(1.0, gt=0, description="timeout of a client reading a twin device")
    mqtt_timeout_s: float = Field(2.0, gt=0, description="timeout of a client reading or commanding a twin device")
    modbus_tls: TwinModbusTls | None = Field(None, description="serve the Modbus devices over Modbus/TCP Security (TLS, client certificates)")
