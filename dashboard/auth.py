"""Login for the dashboard and the installer pages, as an ASGI middleware, so that the
page, its callbacks and its websocket are guarded alike (dash-auth's BasicAuth is
Flask-only; the dashboard runs on Dash's FastAPI backend for websocket push).

Two ways in, both against the users file (dashboard/users.py) for role and facilities:
- HTTP basic auth (behind a TLS-terminating reverse proxy only: the password travels with
  every request). A password is checked with argon2 once (~0.1 s); the same credentials
  are then remembered for ``CACHE_S`` under a keyed digest, so the page's many requests do
  not each pay for it. Failed logins are counted and, from the fourth for one name from
  one address, answered 429 for a doubling wait (1 s ... 60 s) without checking anything.
- A trusted reverse proxy's user header (``trusted_header``, e.g. ``X-Forwarded-User`` from
  an OIDC/SSO proxy): the name is taken as proven. Only where nothing but that proxy can
  reach the port.

Who is logged in is in ``current_user()`` for the code the request runs (Dash callbacks,
the websocket loop). The users file is read again when it changes.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import logging
import math
import secrets
import time
from collections.abc import Awaitable, Callable, MutableMapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from prometheus_client import Counter

from dashboard.users import Role, User, load_users, verify_password
from locowatch.errors import UsageError
from locowatch.files import stamp

log = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
Asgi = Callable[[Scope, Receive, Send], Awaitable[None]]

CACHE_S = 300.0  # how long checked credentials are trusted without argon2 again
FREE_FAILURES = 3  # failed logins of one name from one address before waits begin
MAX_WAIT_S = 60.0
FORGET_S = 900.0  # failures older than this are forgotten
RELOAD_CHECK_S = 1.0

LOGINS = Counter(
    "locowatch_login_attempts",
    "Logins checked (not the requests that reuse a checked one), by outcome: ok, "
    "wrong_password, unknown_user, malformed, throttled, forbidden (no role or facility).",
    ["outcome"],
)
_CURRENT_USER: ContextVar[User | None] = ContextVar("locowatch_user", default=None)


def current_user() -> User | None:
    """The user of the request being served; None where login is off."""
    return _CURRENT_USER.get()


class UsersFile:
    """The users file, read again when it changes: a user added while the dashboard runs
    can log in at once (a name not in the file looks at the file again), a removed one is
    out within ``RELOAD_CHECK_S``."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.users = load_users(path)  # a bad file at start is an error
        self._stamp = stamp(path)
        self._checked = time.monotonic()
        self.version = 0

    def get(self, name: str) -> User | None:
        now = time.monotonic()
        if now - self._checked >= RELOAD_CHECK_S or name not in self.users:
            self._checked = now
            self._reload_if_changed()
        return self.users.get(name)

    def _reload_if_changed(self) -> None:
        current = stamp(self.path)  # a stat: cheap enough for every unknown name
        if current == self._stamp:
            return
        self._stamp = current
        try:
            self.users = load_users(self.path)
            self.version += 1
            log.info("users file %s read again: %d users", self.path, len(self.users))
        except (OSError, UsageError) as exc:  # keep the last good users
            log.error("users file %s not read again, keeping the last: %s", self.path, exc)


@dataclass(frozen=True)
class Refusal:
    status: int  # 401 who are you, 403 not for you, 429 wait
    retry_after_s: float = 0.0


@dataclass
class _Failures:
    count: int = 0
    last: float = 0.0
    not_before: float = 0.0


@dataclass
class Throttle:
    """Failed logins per (address, name): free for ``FREE_FAILURES``, then doubling waits."""

    entries: dict[tuple[str, str], _Failures] = field(default_factory=dict)

    def wait_s(self, key: tuple[str, str], now: float) -> float:
        entry = self.entries.get(key)
        return max(0.0, entry.not_before - now) if entry else 0.0

    def failed(self, key: tuple[str, str], now: float) -> None:
        if len(self.entries) > 10_000:  # a scan of many names: forget the old ones
            self.entries = {k: e for k, e in self.entries.items() if now - e.last < FORGET_S}
        entry = self.entries.get(key)
        if entry is None or now - entry.last > FORGET_S:
            entry = self.entries[key] = _Failures()
        entry.count += 1
        entry.last = now
        over = entry.count - FREE_FAILURES
        if over > 0:
            entry.not_before = now + min(2.0 ** (over - 1), MAX_WAIT_S)

    def succeeded(self, key: tuple[str, str]) -> None:
        self.entries.pop(key, None)


class Login:
    """ASGI middleware: every request and websocket needs a user of the users file with
    ``role`` (and, if given, ``facility``); ``open_paths`` (health, metrics) stay open."""

    def __init__(
        self,
        app: Asgi,
        users: UsersFile,
        *,
        open_paths: tuple[str, ...] = (),
        realm: str = "locowatch",
        role: Role = Role.viewer,
        facility: str | None = None,
        trusted_header: str | None = None,
    ) -> None:
        self.app = app
        self.users = users
        self.open_paths = open_paths
        self.realm = realm
        self.role = role
        self.facility = facility
        self.trusted_header = trusted_header.lower().encode() if trusted_header else None
        self.throttle = Throttle()
        self._key = secrets.token_bytes(32)  # the credential cache's digests die with us
        self._checked: dict[bytes, tuple[str, int, float]] = {}  # digest -> name, version, until

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket") or scope["path"] in self.open_paths:
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or ())
        client = (scope.get("client") or ("?", 0))[0]
        if self.trusted_header is not None:
            name = headers.get(self.trusted_header, b"").decode("utf-8", "replace")
            user = self.users.get(name) if name else None
            refusal = None if user else Refusal(403 if name else 401)
            if name and user is None:
                LOGINS.labels("unknown_user").inc()
                log.warning("login refused: %s (from the proxy header) is not a user", name)
        else:
            user, refusal = await self._basic(headers.get(b"authorization", b""), client)
        if user is not None and not self._allowed(user):
            LOGINS.labels("forbidden").inc()
            log.warning("login refused: %s may not use this page", user.name)
            user, refusal = None, Refusal(403)
        if user is None:
            await self._refuse(scope, send, refusal or Refusal(401))
            return
        token = _CURRENT_USER.set(user)
        try:
            await self.app(scope, receive, send)
        finally:
            _CURRENT_USER.reset(token)

    def _allowed(self, user: User) -> bool:
        if self.facility is not None:
            return user.may(self.role, self.facility)
        return user.role >= self.role

    async def _basic(self, header: bytes, client: str) -> tuple[User | None, Refusal | None]:
        """The user these credentials prove, or why not (an HTTP status)."""
        digest = hmac.new(self._key, header, hashlib.sha256).digest()
        remembered = self._checked.get(digest)
        now = time.monotonic()
        if remembered and remembered[2] > now:
            name, version, _ = remembered
            user = self.users.get(name)
            if user is not None and version == self.users.version:
                return user, None
        credentials = _parse_basic(header)
        if credentials is None:
            if header:
                LOGINS.labels("malformed").inc()
            return None, Refusal(401)
        name, password = credentials
        key = (client, name)
        wait = self.throttle.wait_s(key, now)
        if wait > 0:
            LOGINS.labels("throttled").inc()
            return None, Refusal(429, wait)
        user = self.users.get(name)
        if not await asyncio.to_thread(verify_password, user, password):
            self.throttle.failed(key, time.monotonic())
            outcome = "wrong_password" if user else "unknown_user"
            LOGINS.labels(outcome).inc()
            log.warning("login failed: %s from %s (%s)", name, client, outcome.replace("_", " "))
            return None, Refusal(401)
        assert user is not None
        self.throttle.succeeded(key)
        LOGINS.labels("ok").inc()
        log.info("login: %s from %s", name, client)
        if len(self._checked) > 4096:
            self._checked.clear()
        self._checked[digest] = (name, self.users.version, now + CACHE_S)
        return user, None

    async def _refuse(self, scope: Scope, send: Send, refusal: Refusal) -> None:
        status = refusal.status
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})
            return
        headers = [(b"content-type", b"text/plain; charset=utf-8")]
        if status == 401 and self.trusted_header is None:
            headers.append((b"www-authenticate", f'Basic realm="{self.realm}"'.encode()))
        if status == 429:
            headers.append((b"retry-after", str(math.ceil(refusal.retry_after_s)).encode()))
        body = {401: b"login required\n", 403: b"not allowed\n", 429: b"too many failed logins\n"}
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body[status]})


def _parse_basic(header: bytes) -> tuple[str, str] | None:
    scheme, _, encoded = header.partition(b" ")
    if scheme.lower() != b"basic":
        return None
    try:
        name, sep, password = base64.b64decode(encoded, validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return (name, password) if sep and name else None
