"""Optional HTTP basic auth for the whole app, page, callbacks and websocket alike.

dash-auth's BasicAuth is Flask-only and the dashboard runs on Dash's FastAPI backend (for
websocket push), so this is a small ASGI middleware instead. Users come from a file of
``name:sha256-of-password`` lines (``printf %s PASSWORD | sha256sum`` makes one), so the
file can sit in a config repository without leaking passwords. Behind a TLS-terminating
reverse proxy only: basic auth sends the password with every request.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any

from locowatch.errors import UsageError

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
Asgi = Callable[[Scope, Receive, Send], Awaitable[None]]


def password_sha256(password: str) -> str:
    return hashlib.sha256(password.encode("utf-8")).hexdigest()


def load_users(path: Path) -> dict[str, str]:
    """``name -> sha256 hex`` from a users file; blank lines and ``#`` comments skipped."""
    users: dict[str, str] = {}
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, digest = line.partition(":")
        if not sep or not name or len(digest) != 64 or not _is_hex(digest):
            raise UsageError(f"{path}:{number}: expected 'name:<sha256 hex of the password>'")
        users[name] = digest.lower()
    if not users:
        raise UsageError(f"{path}: no users")
    return users


def _is_hex(text: str) -> bool:
    try:
        bytes.fromhex(text)
    except ValueError:
        return False
    return True


class BasicAuth:
    """ASGI middleware: every request and websocket needs one of ``users``' credentials."""

    def __init__(
        self, app: Asgi, users: dict[str, str], open_paths: tuple[str, ...] = (), realm: str = ""
    ) -> None:
        self.app = app
        self.users = users
        self.open_paths = open_paths  # health and metrics, for probes and scrapers
        self.realm = realm or "locowatch"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket") or scope["path"] in self.open_paths:
            await self.app(scope, receive, send)
            return
        if self.allowed(dict(scope.get("headers") or ()).get(b"authorization", b"")):
            await self.app(scope, receive, send)
            return
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})
            return
        await send(
            {
                "type": "http.response.start",
                "status": 401,
                "headers": [
                    (b"www-authenticate", f'Basic realm="{self.realm}"'.encode()),
                    (b"content-type", b"text/plain; charset=utf-8"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": b"login required\n"})

    def allowed(self, header: bytes) -> bool:
        scheme, _, encoded = header.partition(b" ")
        if scheme.lower() != b"basic":
            return False
        try:
            name, _, password = base64.b64decode(encoded, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return False
        expected = self.users.get(name)
        return expected is not None and hmac.compare_digest(expected, password_sha256(password))
