"""The users file and the login middleware, without a browser: hashes only, roles and
facilities, the old SHA-256 files refused, failed logins slowed."""

from __future__ import annotations

import asyncio
import base64
import hashlib
from pathlib import Path
from typing import Any

import pytest

from dashboard.auth import FREE_FAILURES, Login, UsersFile, current_user
from dashboard.users import Role, add_user, load_users, remove_user
from locowatch.errors import UsageError


def basic(name: str, password: str) -> bytes:
    return b"Basic " + base64.b64encode(f"{name}:{password}".encode())


def call(
    login: Login, header: bytes = b"", client: str = "10.0.0.9", proxy_user: str | None = None
) -> tuple[int, list[Any]]:
    """One HTTP request through ``login`` (with basic auth ``header``, or a proxy's
    X-Forwarded-User): its status and who the app behind it saw."""
    seen: list[Any] = []
    sent: list[dict[str, Any]] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.append(current_user())
        await send({"type": "http.response.start", "status": 200, "headers": []})

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    async def receive() -> dict[str, Any]:
        return {"type": "http.request"}

    headers = [(b"authorization", header)] if header else []
    if proxy_user:
        headers.append((b"x-forwarded-user", proxy_user.encode()))
    scope = {"type": "http", "path": "/", "headers": headers, "client": (client, 5000)}
    login.app = app
    asyncio.run(login(scope, receive, send))
    return sent[0]["status"], seen


def test_the_file_holds_argon2_hashes_written_by_user_add(tmp_path: Path) -> None:
    path = tmp_path / "users.yaml"
    add_user(path, "lena", "s3cret shift", Role.viewer, ("north-depot",))
    add_user(path, "ivan", "install3r!", Role.installer, ("north-depot", "south-depot"))
    text = path.read_text(encoding="utf-8")
    assert "s3cret shift" not in text and "$argon2id$" in text
    assert path.stat().st_mode & 0o077 == 0  # the owner's only
    users = load_users(path)
    assert users["lena"].sees("north-depot") and not users["lena"].sees("south-depot")
    assert users["ivan"].may(Role.installer, "south-depot")
    assert not users["lena"].may(Role.installer, "north-depot")
    add_user(path, "lena", "new s3cret", Role.viewer, ("south-depot",))  # a change, not a copy
    assert load_users(path)["lena"].facilities == ("south-depot",)
    remove_user(path, "ivan")
    assert set(load_users(path)) == {"lena"}
    with pytest.raises(UsageError, match="at least 8"):
        add_user(path, "olga", "short", Role.viewer, ("north-depot",))
    with pytest.raises(UsageError, match="name the facilities"):
        add_user(path, "olga", "long enough", Role.viewer, ())


def test_old_sha256_and_plain_passwords_are_refused_with_the_way_out(tmp_path: Path) -> None:
    path = tmp_path / "users"
    digest = hashlib.sha256(b"pw").hexdigest()
    path.write_text(f"# managers\nlena:{digest}\n", encoding="utf-8")
    with pytest.raises(UsageError, match=r"users:2: an unsalted SHA-256 .* user add NAME"):
        load_users(path)
    path.write_text("users:\n  lena: {password: plain-password, facilities: [a]}\n", "utf-8")
    with pytest.raises(UsageError, match=r"user lena: password: .*not an argon2 hash"):
        load_users(path)
    path.write_text("users:\n  lena: {role: boss, facilities: [a]}\n", "utf-8")
    with pytest.raises(UsageError, match=r"user lena: role: .*viewer, installer, admin"):
        load_users(path)


def test_login_checks_the_password_once_and_knows_the_user(tmp_path: Path) -> None:
    path = tmp_path / "users.yaml"
    add_user(path, "lena", "s3cret shift", Role.viewer, ("north-depot",))
    login = Login(None, UsersFile(path))  # type: ignore[arg-type]
    assert call(login)[0] == 401
    assert call(login, b"Basic !!!")[0] == 401
    assert call(login, basic("lena", "wrong one"))[0] == 401
    assert call(login, basic("nobody", "s3cret shift"))[0] == 401
    status, seen = call(login, basic("lena", "s3cret shift"))
    assert status == 200 and seen[0].name == "lena"
    assert len(login._checked) == 1  # the next requests of the page reuse the check
    assert call(login, basic("lena", "s3cret shift"))[0] == 200


def test_failed_logins_are_slowed_per_name_and_address(tmp_path: Path) -> None:
    path = tmp_path / "users.yaml"
    add_user(path, "lena", "s3cret shift", Role.viewer, ("north-depot",))
    login = Login(None, UsersFile(path))  # type: ignore[arg-type]
    for _ in range(FREE_FAILURES + 1):
        assert call(login, basic("lena", "guess"))[0] == 401
    # Now even the right password waits: guessing gets 429 without a check.
    assert call(login, basic("lena", "s3cret shift"))[0] == 429
    assert call(login, basic("lena", "s3cret shift"), client="10.0.0.10")[0] == 200
    entry = login.throttle.entries[("10.0.0.9", "lena")]
    entry.not_before = 0.0  # the wait is over
    login._checked.clear()  # (the other address's check is remembered: proven credentials)
    assert call(login, basic("lena", "s3cret shift"))[0] == 200
    assert ("10.0.0.9", "lena") not in login.throttle.entries


def test_a_user_removed_or_regranted_while_logged_in(tmp_path: Path) -> None:
    path = tmp_path / "users.yaml"
    add_user(path, "lena", "s3cret shift", Role.viewer, ("north-depot",))
    add_user(path, "ivan", "install3r!", Role.installer, ("north-depot",))
    users = UsersFile(path)
    login = Login(None, users, role=Role.installer, facility="north-depot")  # type: ignore[arg-type]
    assert call(login, basic("lena", "s3cret shift"))[0] == 403  # a viewer: not this page
    assert call(login, basic("ivan", "install3r!"))[0] == 200
    remove_user(path, "ivan")
    users._checked = 0.0  # as if a second had passed
    assert call(login, basic("ivan", "install3r!"))[0] == 401


def test_behind_a_single_sign_on_proxy_the_name_comes_from_its_header(tmp_path: Path) -> None:
    path = tmp_path / "users.yaml"
    add_user(path, "lena", None, Role.viewer, ("north-depot",))  # no password: SSO only
    login = Login(None, UsersFile(path), trusted_header="X-Forwarded-User")  # type: ignore[arg-type]

    status, seen = call(login, proxy_user="lena")
    assert status == 200 and seen[0].name == "lena"
    assert call(login, proxy_user="mallory")[0] == 403  # known to the proxy, not here
    assert call(login)[0] == 401
    # A password-less user cannot log in with basic auth, whatever it sends.
    assert call(Login(None, UsersFile(path)), basic("lena", ""))[0] == 401  # type: ignore[arg-type]
