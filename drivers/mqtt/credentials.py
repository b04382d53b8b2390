"""Broker credentials from environment variables or a file: never from the TOML, never logged."""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import SecretStr


class CredentialsError(ValueError):
    """Names where the credentials were looked for, never what they are."""


def resolve_credentials(
    username_env: str | None, password_env: str | None, credentials_file: str | Path | None
) -> tuple[str | None, SecretStr | None]:
    """(user, password) from ``credentials_file`` ('user:password' on its first line) or from
    the named environment variables; (None, None) when none is configured."""
    if credentials_file:
        path = Path(credentials_file)
        try:
            line = path.read_text(encoding="utf-8").splitlines()[0].strip()
        except (OSError, IndexError):
            raise CredentialsError(f"MQTT credentials file {str(path)!r} is missing or empty") from None
        name, sep, secret = line.partition(":")
        if not sep or not name:
            raise CredentialsError(f"MQTT credentials file {str(path)!r}: first line must be 'user:password'")
        return name, SecretStr(secret)
    user: str | None = None
    password: SecretStr | None = None
    if username_env:
        user = os.environ.get(username_env)
        if not user:
            raise CredentialsError(f"environment variable {username_env!r} (MQTT user name) is not set")
    if password_env:
        value = os.environ.get(password_env)
        if value is None:
            raise CredentialsError(f"environment variable {password_env!r} (MQTT password) is not set")
        password = SecretStr(value)
    return user, password
