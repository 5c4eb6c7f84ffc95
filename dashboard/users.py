"""Dashboard users: who may log in, with which role, to which facilities.

The users file is YAML, written by ``locowatch dashboard user add`` (never by hand for the
password)::

    users:
      lena:                        # a shift manager of one depot
        password: $argon2id$v=19$m=65536,t=3,p=4$...
        role: viewer
        facilities: [north-depot]
      ivan:
        password: $argon2id$...
        role: installer            # also the calibration and coverage pages
        facilities: [north-depot, south-depot]
      ops:
        password: $argon2id$...
        role: admin                # every facility, every page

Passwords are argon2id hashes (argon2-cffi: the binding of the Password Hashing
Competition's reference implementation, salted per hash, memory-hard, its parameters in the
hash so they can be raised later; bcrypt through passlib is the other common route, but
passlib is unmaintained since 2020). The old ``name:sha256`` lines (unsalted, cracked in
seconds) are refused with how to replace them.
"""

from __future__ import annotations

import functools
import re
from enum import IntEnum
from pathlib import Path
from typing import Any

import yaml
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from locowatch.errors import UsageError
from locowatch.files import write_atomic

ALL_FACILITIES = "*"
HASHER = PasswordHasher()  # argon2id, RFC 9106's second recommended parameter set
_LEGACY_LINE = re.compile(r"^[^:\s#]+:[0-9a-fA-F]{64}\s*$")
_NAME = re.compile(r"^[A-Za-z0-9._@-]{1,64}$")


class Role(IntEnum):
    """What a user may do; each role may do everything the ones below it may."""

    viewer = 1  # the dashboard of the granted facilities
    installer = 2  # ... and the installer pages: calibration, coverage
    admin = 3  # every facility, every page

    @classmethod
    def named(cls, name: str) -> Role:
        try:
            return cls[name]
        except KeyError:
            raise ValueError(f"role must be one of {', '.join(r.name for r in cls)}") from None


class User(BaseModel):
    """One login: its password hash (absent for users who come through a trusted proxy
    header only), role and the facilities it sees."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    password: str | None = None  # argon2 hash
    role: Role = Role.viewer
    facilities: tuple[str, ...] = Field(default=())

    @field_validator("role", mode="before")
    @classmethod
    def _role(cls, value: Any) -> Any:
        return Role.named(value) if isinstance(value, str) else value

    @field_validator("password")
    @classmethod
    def _hashed(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith("$argon2"):
            raise ValueError(
                "not an argon2 hash; set it with 'locowatch dashboard user add' (plain "
                "passwords and SHA-256 digests are refused)"
            )
        return value

    def sees(self, facility_id: str) -> bool:
        return (
            self.role >= Role.admin
            or ALL_FACILITIES in self.facilities
            or facility_id in self.facilities
        )

    def may(self, role: Role, facility_id: str) -> bool:
        """Whether this user holds ``role`` (or a higher one) for ``facility_id``."""
        return self.role >= role and self.sees(facility_id)

    def plain(self) -> dict[str, Any]:
        out: dict[str, Any] = {"password": self.password} if self.password else {}
        out["role"] = self.role.name
        if self.role < Role.admin:
            out["facilities"] = list(self.facilities)
        return out


def hash_password(password: str) -> str:
    if len(password) < 8:
        raise UsageError("a password needs at least 8 characters")
    return HASHER.hash(password)


@functools.cache
def _dummy_hash() -> str:
    return HASHER.hash("not the password of anyone")


def verify_password(user: User | None, password: str) -> bool:
    """Whether ``password`` is ``user``'s. Slow (~0.1 s) on purpose, and as slow for a name
    nobody has, so that timing does not tell which names exist."""
    stored = user.password if user is not None else None
    try:
        HASHER.verify(stored or _dummy_hash(), password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False
    return stored is not None


def load_users(path: Path) -> dict[str, User]:
    """``name -> User`` from a users file, with errors that name the line or the user."""
    text = path.read_text(encoding="utf-8")
    for number, raw in enumerate(text.splitlines(), start=1):
        if _LEGACY_LINE.match(raw.strip()):
            raise UsageError(
                f"{path}:{number}: an unsalted SHA-256 password line, no longer accepted "
                "(such a file is cracked in seconds once it leaks). Write a new users file, "
                "one user at a time: locowatch dashboard user add NAME --users-file NEW "
                "--role viewer --facility ID (it asks for the password)"
            )
    try:
        document = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise UsageError(f"{path}: not YAML: {exc}") from None
    entries = document.get("users") if isinstance(document, dict) else None
    if not isinstance(entries, dict) or not entries:
        raise UsageError(f"{path}: expected 'users:' with at least one user")
    users: dict[str, User] = {}
    for name, fields in entries.items():
        try:
            users[str(name)] = User(name=str(name), **(fields or {}))
        except (ValidationError, TypeError) as exc:
            raise UsageError(f"{path}: user {name}: {_first_error(exc)}") from None
    return users


def save_users(path: Path, users: dict[str, User]) -> None:
    """Write the file atomically: a crash leaves the old one."""
    document = {"users": {name: user.plain() for name, user in sorted(users.items())}}
    text = "# locowatch dashboard users: written by 'locowatch dashboard user add'\n"
    text += yaml.safe_dump(document, sort_keys=False, allow_unicode=True)
    # A new file is its owner's only; an existing one keeps its mode (compose secrets are
    # made readable to the container's user inside a folder only root enters).
    mode = path.stat().st_mode & 0o777 if path.exists() else 0o600
    write_atomic(path, text, mode=mode)


def add_user(
    path: Path, name: str, password: str | None, role: Role, facilities: tuple[str, ...]
) -> User:
    """Add ``name`` or replace its password, role and facilities."""
    if not _NAME.match(name):
        raise UsageError(f"user name {name!r}: letters, digits and ._@- only, at most 64")
    if role < Role.admin and not facilities:
        raise UsageError(f"{name}: name the facilities it sees (--facility ID, or '*' for all)")
    users = load_users(path) if path.exists() else {}
    user = User(
        name=name,
        password=hash_password(password) if password is not None else None,
        role=role,
        facilities=() if role >= Role.admin else facilities,
    )
    users[name] = user
    save_users(path, users)
    return user


def remove_user(path: Path, name: str) -> None:
    users = load_users(path)
    if name not in users:
        raise UsageError(f"{path}: no user {name!r}")
    if len(users) == 1:
        raise UsageError(f"{path}: {name} is the last user; delete the file to turn login off")
    del users[name]
    save_users(path, users)


def _first_error(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        error = exc.errors()[0]
        where = ".".join(str(p) for p in error["loc"])
        return f"{where}: {error['msg']}" if where else str(error["msg"])
    return str(exc)
