"""Modbus/TCP Security: Modbus over TLS with mutual authentication by X.509 certificates.

The Modbus Organization's "MODBUS/TCP Security" specification carries the ordinary Modbus
application data unit (MBAP header and PDU) inside TLS, requires TLS 1.2 or later, requires
both ends to present a certificate (mutual authentication) and reserves TCP port 802 for it.
These helpers build the two ``ssl.SSLContext`` ends from PEM files; the connection layer
(``connection.py``) and the simulated devices (``drivers/sim/modbus_server.py``) use them.
"""

from __future__ import annotations

import ssl
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

SECURE_PORT = 802  # IANA "mbap-s", the specification's default


class TlsError(ValueError):
    """A certificate, key or CA file cannot be used; names the file and the reason."""


class ClientTls(BaseModel):
    """The client (controller) end: whom to trust and which certificate to present."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    ca_file: str = Field(description="PEM CA certificate(s) that signed the device's certificate")
    cert_file: str = Field(description="PEM certificate this client presents to the device")
    key_file: str = Field(description="PEM private key of cert_file")


class ServerTls(BaseModel):
    """The server (device) end: its own certificate and the CA its clients must be signed by."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    ca_file: str = Field(description="PEM CA certificate(s) a client certificate must chain to")
    cert_file: str
    key_file: str


def _base_context(purpose: int, ca_file: str, cert_file: str, key_file: str) -> ssl.SSLContext:
    context = ssl.SSLContext(purpose)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.verify_mode = ssl.CERT_REQUIRED  # both ends: mutual authentication
    for name, path in (("CA", ca_file), ("certificate", cert_file), ("key", key_file)):
        if not Path(path).is_file():
            raise TlsError(f"Modbus TLS {name} file {path!r} does not exist")
    try:
        context.load_verify_locations(cafile=ca_file)
    except (ssl.SSLError, OSError) as error:
        raise TlsError(f"Modbus TLS CA file {ca_file!r}: {error}") from None
    try:
        context.load_cert_chain(certfile=cert_file, keyfile=key_file)
    except (ssl.SSLError, OSError) as error:
        raise TlsError(f"Modbus TLS certificate {cert_file!r} with key {key_file!r}: {error}") from None
    return context


def client_context(tls: ClientTls) -> ssl.SSLContext:
    """TLS 1.2+, the device's certificate checked against ``ca_file`` and its host name/IP."""
    context = _base_context(ssl.PROTOCOL_TLS_CLIENT, tls.ca_file, tls.cert_file, tls.key_file)
    context.check_hostname = True
    return context


def server_context(tls: ServerTls) -> ssl.SSLContext:
    """TLS 1.2+, a client without a certificate signed by ``ca_file`` is refused in the handshake."""
    return _base_context(ssl.PROTOCOL_TLS_SERVER, tls.ca_file, tls.cert_file, tls.key_file)
