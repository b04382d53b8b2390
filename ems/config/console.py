"""Settings of the operators' console (``ems serve``, ``ems run --http``): ``[console]``."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class ConsoleSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    locale: Literal["ja", "en"] = Field(
        "ja", description="language of the console's labels by default (each user may switch)"
    )
    users_file: str = Field(
        "var/ems/users.toml",
        description="the console's users and their argon2 password hashes "
        "(`ems users add`); relative to the working directory",
    )
    secret_file: str = Field(
        "var/ems/console-secret",
        description="the key that signs session cookies; created (mode 0600) on first start when missing",
    )
    session_hours: float = Field(12.0, gt=0, le=24 * 30, description="a login lasts this long")
    secure_cookies: bool = Field(
        False, description="mark cookies Secure (set when the console is served over HTTPS behind a proxy)"
    )
