"""Signed session cookies and the CSRF token bound to them (HMAC-SHA256, no server-side table).

Every visitor carries a session (anonymous until login): ``{"n": nonce, "u": user or null,
"exp": epoch seconds}``, base64url JSON plus its HMAC under the console's secret. The CSRF
token is an HMAC of the nonce, so it is valid only with the session it was issued to; login
issues a new nonce (no session fixation), logout drops the session.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

COOKIE = "ems_session"
LANG_COOKIE = "ems_lang"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"


def load_or_create_secret(path: str | Path) -> bytes:
    """The signing key from ``path``; created (32 random bytes, hex, mode 0600) when missing."""
    path = Path(path)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another process made it meanwhile
            pass
        else:
            with os.fdopen(descriptor, "w") as handle:
                handle.write(secrets.token_hex(32) + "\n")
    text = path.read_text().strip()
    if len(text) < 32:
        raise ValueError(f"{path}: a console secret needs at least 32 characters (delete the file to have one made)")
    return text.encode()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass
class Session:
    nonce: str
    user: str | None
    expires_s: int
    changed: bool = False  # the cookie must be (re)sent with the response

    @classmethod
    def fresh(cls, now_s: float, lifetime_s: float, user: str | None = None) -> Session:
        return cls(secrets.token_urlsafe(18), user, int(now_s + lifetime_s), changed=True)


def sign(session: Session, secret: bytes) -> str:
    body = _b64(
        json.dumps({"n": session.nonce, "u": session.user, "exp": session.expires_s}, separators=(",", ":")).encode()
    )
    mac = hmac.new(secret, b"session:" + body.encode(), hashlib.sha256).digest()
    return f"{body}.{_b64(mac)}"


def verify(cookie: str | None, secret: bytes, now_s: float) -> Session | None:
    """The session a cookie carries, or None when it is absent, forged, malformed or expired."""
    if not cookie or cookie.count(".") != 1:
        return None
    body, mac = cookie.split(".")
    expected = hmac.new(secret, b"session:" + body.encode(), hashlib.sha256).digest()
    try:
        if not hmac.compare_digest(_unb64(mac), expected):
            return None
        data = json.loads(_unb64(body))
        session = Session(str(data["n"]), data["u"] if isinstance(data["u"], str) else None, int(data["exp"]))
    except (ValueError, KeyError, TypeError):
        return None
    return session if session.expires_s > now_s else None


def csrf_token(session: Session, secret: bytes) -> str:
    return _b64(hmac.new(secret, b"csrf:" + session.nonce.encode(), hashlib.sha256).digest())


def csrf_ok(session: Session, secret: bytes, token: str | None) -> bool:
    return bool(token) and hmac.compare_digest(str(token), csrf_token(session, secret))
