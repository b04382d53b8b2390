"""The ``[twin]`` section: where the digital twin serves the assets whose driver is ``sim``.

``ems twin`` serves every ``kind = "sim"`` meter, PV array and battery as a SunSpec Modbus TCP
device on ``modbus_host`` at ``modbus_base_port + index`` (index in the order grid connections,
PV arrays, loads, batteries, shelters, as listed in the file) and every sim charger and vehicle as
an MQTT device under ``<topic_root>/<id>`` on the ``[mqtt]`` broker; with ``chargers = "ocpp"`` the
depot chargers are OCPP 1.6 charge points connecting to the ``[ocpp]`` central system, and with
``v2h = "echonet"`` the V2H points are ECHONET Lite nodes on ``echonet_network``. ``ems devices`` and the
control loop reach a sim asset at exactly that place. See docs/drivers.md.
"""

from __future__ import annotations

import datetime as dt
from typing import Literal

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
    chargers: Literal["mqtt", "ocpp"] = Field(
        "mqtt", description="how the twin's depot chargers speak: MQTT, or OCPP 1.6 to the [ocpp] central system"
    )
    v2h: Literal["mqtt", "echonet"] = Field(
        "mqtt", description="how the twin's V2H points speak: MQTT, or ECHONET Lite nodes"
    )
    echonet_network: str = Field(
        "127.0.36.0/24", description="loopback network whose hosts .1, .2, ... the twin's ECHONET Lite nodes take"
    )
    echonet_port: int = Field(3610, ge=1, le=65535, description="UDP port of the twin's ECHONET Lite nodes")
    ocpp_retry_s: float = Field(1.0, gt=0, description="seconds between a twin charge point's connection attempts")
    modbus_tls: TwinModbusTls | None = Field(
        None, description="serve the Modbus devices over Modbus/TCP Security (TLS, client certificates)"
    )


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class OcppDriver(_Strict):
    """A charger reached through the controller's OCPP central system (see ``[ocpp]``)."""

    kind: Literal["ocpp"]
    charge_point_id: str = Field(
        pattern=r"^[A-Za-z0-9_.\-:]+$", description="identity the charge point connects with (ws://HOST:PORT/<id>)"
    )
    connector: int = Field(1, ge=1, description="connector (1.6) or EVSE (2.0.1) id")
    rate_unit: Literal["W", "A"] = Field("W", description="unit of the charging profiles sent: W, or A per phase")
    phases: Literal[1, 3] = Field(3, description="phases used to turn kW into A")
    voltage_v: float = Field(200.0, gt=0, description="phase voltage used to turn kW into A")
    v2x: Literal["none", "vendor"] = Field(
        "none", description="1.6 only: 'vendor' discharges through the documented DataTransfer extension"
    )
    timeout_s: float = Field(5.0, gt=0, description="a set-point not answered within it has failed")
    stale_after_s: float = Field(120.0, gt=0, description="meter values older than this read as stale")


class EchonetDriver(_Strict):
    """A device reached over ECHONET Lite (UDP)."""

    kind: Literal["echonet"]
    host: str = Field(description="the node's IP address")
    port: int = Field(3610, ge=1, le=65535, description="UDP port (3610 on real units)")
    instance: int = Field(1, ge=1, le=0x7F, description="instance code of the device object")
    model: str | None = Field(
        None, description="echonet_v2h, echonet_battery, echonet_pv or echonet_meter; defaults by asset type"
    )
    timeout_s: float = Field(1.0, gt=0, description="a read or SetC not answered within it has failed")


class OcppServer(_Strict):
    """The ``[ocpp]`` section: the central system the controller runs for OCPP chargers."""

    host: str = Field("127.0.0.1", description="address the central system listens on")
    port: int = Field(9000, ge=1, le=65535, description="its TCP port (ws://HOST:PORT/<charge point id>)")
    security_profile: Literal[0, 1, 2] = Field(
        0, description="0 none (loopback only), 1 basic auth, 2 basic auth over TLS"
    )
    credentials_file: str | None = Field(
        None, description="'charge_point_id:password' lines, relative to the config file"
    )
    cert_file: str | None = Field(None, description="TLS certificate (PEM) for profile 2")
    key_file: str | None = Field(None, description="TLS key (PEM) for profile 2")
    heartbeat_s: int = Field(60, ge=1, description="heartbeat interval given to charge points at boot")
    id_tags: dict[str, str] = Field(
        default_factory=dict, description="ID tag -> vehicle id; a vehicle's own id is always its tag"
    )


class EchonetNetwork(_Strict):
    """The ``[echonet]`` section: the controller's ECHONET Lite socket."""

    bind_host: str = Field("0.0.0.0", description="local address of the controller's UDP socket")
    bind_port: int = Field(0, ge=0, le=65535, description="0: any free port; 3610 for units that answer only to 3610")
    multicast_interface: str | None = Field(None, description="local address multicast discovery goes out on")
