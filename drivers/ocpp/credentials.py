"""Per-charge-point passwords (OCPP security profiles 1 and 2): 'charge_point_id:password' lines."""

from __future__ import annotations

from pathlib import Path

from drivers.mqtt.credentials import CredentialsError


def read_passwords(path: str | Path) -> dict[str, str]:
    """``{charge point id: password}``; blank lines and lines starting with '#' are skipped."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError:
        raise CredentialsError(f"OCPP credentials file {str(path)!r} is missing or unreadable") from None
    passwords: dict[str, str] = {}
    for number, line in enumerate(lines, start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        charge_point_id, sep, password = line.partition(":")
        if not sep or not charge_point_id or not password:
            raise CredentialsError(
                f"OCPP credentials file {str(path)!r} line {number}: expected 'charge_point_id:password'"
            )
        if charge_point_id in passwords:
            raise CredentialsError(
                f"OCPP credentials file {str(path)!r} line {number}: {charge_point_id!r} given twice"
            )
        passwords[charge_point_id] = password
    return passwords
