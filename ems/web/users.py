"""The console's users file: names, roles and argon2 password hashes (``ems users add``).

A TOML file, written with mode 0600 and replaced atomically::

    [users.hanako]
    role = "operator"
    password_hash = "$argon2id$v=19$m=65536,t=3,p=4$..."
    created = "2026-04-15T09:00:00+09:00"

Imports no web framework: the command line uses it without the ``web`` extra's server parts
(argon2-cffi is still needed to hash).
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import re
import threading
import tomllib
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)
ROLES = ("viewer", "operator")
NAME_PATTERN = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
MIN_PASSWORD_CHARS = 8


class UsersError(ValueError):
    """The users file or a user given is not usable; the message names the file and the entry."""


@dataclass(frozen=True)
class User:
    name: str
    role: str
    password_hash: str

    @property
    def is_operator(self) -> bool:
        return self.role == "operator"


def _hasher():
    try:
        from argon2 import PasswordHasher
    except ImportError as error:  # the web extra is missing
        raise UsersError("argon2-cffi is not installed: pip install 'arao-ems[web]'") from error
    return PasswordHasher()


def hash_password(password: str) -> str:
    if len(password) < MIN_PASSWORD_CHARS:
        raise UsersError(f"password too short: at least {MIN_PASSWORD_CHARS} characters")
    return _hasher().hash(password)


class Users:
    """The users file, re-read whenever it changes on disk (a removed user is out at the next request)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._lock = threading.Lock()
        self._stamp: tuple[int, int] | None = None
        self._users: dict[str, User] = {}
        # a real hash to check against for unknown names, so a wrong name costs what a wrong password costs
        self._dummy_hash: str | None = None

    def _load(self) -> dict[str, User]:
        with self._lock:
            try:
                info = self.path.stat()
            except FileNotFoundError:
                self._stamp, self._users = None, {}
                return {}
            stamp = (info.st_mtime_ns, info.st_size)
            if stamp != self._stamp:
                try:
                    self._users = read_users(self.path)
                except UsersError as error:  # fail closed: nobody is logged in until the file is mended
                    log.error("%s; every login refused until it is mended", error)
                    self._users = {}
                self._stamp = stamp
            return self._users

    def get(self, name: str | None) -> User | None:
        return self._load().get(name) if name else None

    def all(self) -> list[User]:
        return sorted(self._load().values(), key=lambda u: u.name)

    def authenticate(self, name: str, password: str) -> User | None:
        """The user when the password matches its hash, else None (same work either way)."""
        from argon2.exceptions import InvalidHashError, VerificationError

        hasher = _hasher()
        user = self.get(name)
        if user is None:
            if self._dummy_hash is None:
                self._dummy_hash = hasher.hash("not a password of anyone")
            try:
                hasher.verify(self._dummy_hash, password)
            except VerificationError:
                pass
            return None
        try:
            hasher.verify(user.password_hash, password)
        except (VerificationError, InvalidHashError):
            return None
        return user


def read_users(path: Path) -> dict[str, User]:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as error:
        raise UsersError(f"{path}: not valid TOML: {error}") from None
    except OSError as error:
        raise UsersError(f"{path}: {error.strerror or error}") from None
    found = {}
    for name, entry in (data.get("users") or {}).items():
        where = f"{path}: users.{name}"
        if not NAME_PATTERN.match(name):
            raise UsersError(f"{where}: a name is 1-64 letters, digits, '_', '.' or '-'")
        if not isinstance(entry, dict) or entry.get("role") not in ROLES:
            raise UsersError(f"{where}.role: must be one of {', '.join(ROLES)}")
        if not str(entry.get("password_hash", "")).startswith("$argon2"):
            raise UsersError(f"{where}.password_hash: not an argon2 hash (create users with `ems users add`)")
        found[name] = User(name, entry["role"], entry["password_hash"])
    return found


def write_users(path: Path, users: dict[str, tuple[User, str]]) -> None:
    """Write all users (each with its creation time) atomically, readable by the owner only."""
    lines = ["# the console's users: `ems users add NAME --role viewer|operator` (passwords as argon2 hashes)", ""]
    for name in sorted(users):
        user, created = users[name]
        lines += [
            f"[users.{name}]",
            f'role = "{user.role}"',
            f'password_hash = "{user.password_hash}"',
            f'created = "{created}"',
            "",
        ]
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write("\n".join(lines))
    os.replace(temporary, path)


def add_user(path: Path, name: str, role: str, password: str, now: dt.datetime, replace: bool = False) -> User:
    """Add (or with ``replace`` change) one user; every other entry is kept as it was."""
    if not NAME_PATTERN.match(name):
        raise UsersError(f"user name {name!r}: 1-64 letters, digits, '_', '.' or '-'")
    if role not in ROLES:
        raise UsersError(f"role {role!r}: must be one of {', '.join(ROLES)}")
    existing = read_users(path) if path.exists() else {}
    if name in existing and not replace:
        raise UsersError(f"{path}: user {name!r} exists (give --replace to change its role or password)")
    created = _created_times(path)
    user = User(name, role, hash_password(password))
    entries = {n: (u, created.get(n, now.isoformat(timespec="seconds"))) for n, u in existing.items()}
    entries[name] = (user, now.isoformat(timespec="seconds"))
    write_users(path, entries)
    return user


def remove_user(path: Path, name: str) -> None:
    existing = read_users(path) if path.exists() else {}
    if name not in existing:
        raise UsersError(f"{path}: no user {name!r}")
    created = _created_times(path)
    write_users(path, {n: (u, created.get(n, "")) for n, u in existing.items() if n != name})


def _created_times(path: Path) -> dict[str, str]:
    if not path.exists():
        return {}
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    return {n: str(e.get("created", "")) for n, e in (data.get("users") or {}).items() if isinstance(e, dict)}
