"""Throw-away certificates for the TLS tests (openssl, EC keys: fast)."""

from __future__ import annotations

import subprocess
from pathlib import Path

EC_KEY = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes")


def _openssl(directory: Path, *args: str) -> None:
    subprocess.run(["openssl", *args], cwd=directory, check=True, capture_output=True)


def ec_ca(directory: Path, name: str) -> None:
    """A self-signed CA: ``<name>.key`` and ``<name>.crt``."""
    _openssl(
        directory,
        "req",
        "-x509",
        *EC_KEY,
        "-days",
        "2",
        "-subj",
        f"/CN={name}",
        "-keyout",
        f"{name}.key",
        "-out",
        f"{name}.crt",
    )


def ec_signed(directory: Path, ca: str, name: str, extension: str) -> None:
    """``<name>.key`` and ``<name>.crt`` signed by the CA ``ca``, with the given v3 extensions."""
    _openssl(directory, "req", *EC_KEY, "-subj", f"/CN={name}", "-keyout", f"{name}.key", "-out", f"{name}.csr")
    (directory / f"{name}.ext").write_text(extension + "\n")
    _openssl(
        directory,
        "x509",
        "-req",
        "-in",
        f"{name}.csr",
        "-CA",
        f"{ca}.crt",
        "-CAkey",
        f"{ca}.key",
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        f"{name}.ext",
        "-out",
        f"{name}.crt",
    )


def make_certificates(directory: Path) -> dict[str, str]:
    """A throw-away CA and a server certificate for 127.0.0.1."""
    ec_ca(directory, "ca")
    ec_signed(directory, "ca", "server", "subjectAltName=IP:127.0.0.1")
    return {name: str(directory / name) for name in ("ca.crt", "server.crt", "server.key")}
