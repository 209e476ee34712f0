"""API keys for the HTTP server: shown once when created, stored only as salted hashes.

Keys look like ``hk-`` + 32 URL-safe random characters (192 bits). A store keeps, per key: a
public id (``key_…``, what logs, the usage ledger and per-key budgets see), a label, its scopes,
the knowledge bases it may use (none listed = all), a random salt and ``sha256(salt + key)``. A
random 192-bit key needs no slow hash: nothing short of the key itself matches.

:class:`APIKeys` is what every store does. Embedded, :class:`APIKeyStore` is
``HANLIN_HOME/apikeys.json`` (mode 0600); the server re-reads the file when it changes, so
``hanlin apikeys revoke`` takes effect on a running server at once. With ``database_url`` the keys
live in PostgreSQL (:mod:`hanlin.access.apikeys_postgres`), shared by every replica;
:func:`hanlin.access.auth.open_apikeys` picks the store.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import threading
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from hanlin.access.caller import SCOPES, Access
from hanlin.errors import ConfigError, InvalidInputError, NotFoundError
from hanlin.fileio import atomic_write_text

PREFIX = "hk-"


@dataclass(slots=True)
class APIKey:
    """One stored key (never the key itself)."""

    id: str
    name: str
    scopes: list[str]
    kbs: list[str]
    salt: str
    hash: str
    created_at: float
    revoked_at: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def active(self) -> bool:
        return self.revoked_at is None

    def allows(self, scope: str) -> bool:
        have = set(self.scopes)
        return "admin" in have or scope in have or (scope == "kb:read" and "kb:write" in have)

    def allows_kb(self, name: str) -> bool:
        return not self.kbs or name in self.kbs

    def access(self) -> Access:
        """What this key lets its caller do, for :func:`hanlin.access.caller.acting_as`."""
        return Access.key(self.id, self.scopes, self.kbs, self.name)

    def public(self) -> dict[str, Any]:
        """What ``apikeys ls`` shows: everything but the salt and hash."""
        return {
            "id": self.id,
            "name": self.name,
            "scopes": self.scopes,
            "kbs": self.kbs,
            "created_at": self.created_at,
            "revoked_at": self.revoked_at,
        }


def _digest(salt: str, key: str) -> str:
    return hashlib.sha256(bytes.fromhex(salt) + key.encode("utf-8")).hexdigest()


def parse_scopes(text: str | Iterable[str]) -> list[str]:
    """``"chat,kb:read"`` → ``["chat", "kb:read"]``; unknown scopes are an error."""
    items = text.split(",") if isinstance(text, str) else list(text)
    scopes = [s.strip() for s in items if s.strip()]
    unknown = [s for s in scopes if s not in SCOPES]
    if unknown or not scopes:
        raise InvalidInputError(
            f"unknown scope {', '.join(unknown)}" if unknown else "no scope given",
            hint=f"scopes are {', '.join(SCOPES)} (comma-separated)",
        )
    return list(dict.fromkeys(scopes))


def new_key(
    scopes: Iterable[str], *, kbs: Iterable[str] = (), name: str = ""
) -> tuple[APIKey, str]:
    """A fresh key and its record (scopes checked); the caller stores only the record."""
    plain = PREFIX + secrets.token_urlsafe(24)
    salt = secrets.token_hex(16)
    record = APIKey(
        id="key_" + secrets.token_hex(4),
        name=name,
        scopes=parse_scopes(list(scopes)),
        kbs=list(dict.fromkeys(kbs)),
        salt=salt,
        hash=_digest(salt, plain),
        created_at=time.time(),
    )
    return record, plain


def matching(keys: Iterable[APIKey], plain: str) -> APIKey | None:
    """The active key among ``keys`` that ``plain`` is, or None."""
    if not plain.startswith(PREFIX):
        return None
    for key in keys:
        if key.active and hmac.compare_digest(key.hash, _digest(key.salt, plain)):
            return key
    return None


def name_taken(name: str) -> InvalidInputError:
    return InvalidInputError(
        f"an active key is already named {name!r}",
        hint="pick another --name, or revoke the old key first",
    )


def no_such_key(ref: str) -> NotFoundError:
    return NotFoundError(
        f"no active API key with id or name {ref!r}", hint="see `hanlin apikeys ls`"
    )


def ambiguous(ref: str, n: int) -> InvalidInputError:
    return InvalidInputError(f"{ref!r} names {n} keys", hint="revoke by id (`hanlin apikeys ls`)")


@runtime_checkable
class APIKeys(Protocol):
    """Where API keys are kept: the key file, or a PostgreSQL table shared by replicas.
    Every method is safe to call from several threads."""

    def create(
        self, scopes: Iterable[str], *, kbs: Iterable[str] = (), name: str = ""
    ) -> tuple[APIKey, str]:
        """Make a key; returns the record and the key itself, which is not stored anywhere.
        Raises :class:`InvalidInputError` for an unknown scope or a name an active key has."""
        ...

    def records(self) -> list[APIKey]:
        """Every key, revoked ones included, oldest first."""
        ...

    def revoke(self, ref: str) -> APIKey:
        """Revoke the active key with this id or name (:class:`NotFoundError` if none)."""
        ...

    def verify(self, plain: str) -> APIKey | None:
        """The active key this is, or None (on the hot path of every request)."""
        ...

    def has_active(self) -> bool: ...


class APIKeyStore:
    """The key file. Safe to share between threads; other processes see changes by mtime."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._keys: list[APIKey] = []
        self._stamp: tuple[int, int, int] | None = None

    # -- file ------------------------------------------------------------------------------
    def _load(self) -> list[APIKey]:
        try:
            st = self.path.stat()
        except FileNotFoundError:
            self._keys, self._stamp = [], None
            return self._keys
        stamp = (st.st_mtime_ns, st.st_size, st.st_ino)
        if stamp != self._stamp:
            try:
                raw = json.loads(self.path.read_text("utf-8"))
                self._keys = [APIKey(**k) for k in raw.get("keys", [])]
            except (OSError, ValueError, TypeError) as exc:
                raise ConfigError(
                    f"cannot read API keys from {self.path} ({type(exc).__name__})",
                    hint="fix the file, or move it away and create keys again "
                    "with `hanlin apikeys create`",
                ) from None
            self._stamp = stamp
        return self._keys

    def _save(self, keys: list[APIKey]) -> None:
        data = {"keys": [asdict(k) for k in keys]}
        atomic_write_text(self.path, json.dumps(data, indent=2, ensure_ascii=False), mode=0o600)
        self._stamp = None  # re-read (and re-stamp) on next use

    # -- operations ------------------------------------------------------------------------
    def create(
        self, scopes: Iterable[str], *, kbs: Iterable[str] = (), name: str = ""
    ) -> tuple[APIKey, str]:
        """Make a key; returns the record and the key itself, which is not stored anywhere."""
        record, plain = new_key(scopes, kbs=kbs, name=name)
        with self._lock:
            keys = list(self._load())
            if name and any(k.name == name and k.active for k in keys):
                raise name_taken(name)
            keys.append(record)
            self._save(keys)
        return record, plain

    def records(self) -> list[APIKey]:
        with self._lock:
            return list(self._load())

    def revoke(self, ref: str) -> APIKey:
        """Revoke by id or by name."""
        with self._lock:
            keys = list(self._load())
            found = [k for k in keys if k.active and ref in (k.id, k.name)]
            if not found:
                raise no_such_key(ref)
            if len(found) > 1:
                raise ambiguous(ref, len(found))
            found[0].revoked_at = time.time()
            self._save(keys)
            return found[0]

    def verify(self, plain: str) -> APIKey | None:
        """The active key this is, or None."""
        if not plain.startswith(PREFIX):
            return None
        with self._lock:
            keys = self._load()
        return matching(keys, plain)

    def has_active(self) -> bool:
        with self._lock:
            return any(k.active for k in self._load())
