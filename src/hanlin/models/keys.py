"""Provider API keys: a :class:`Secret` type that refuses to be printed, and the key file.

Keys live in ``HANLIN_HOME/keys.json`` with 0600 permissions (written atomically), or in the
endpoint's environment variable, which wins when both are set. A missing key raises an error
that names the exact command and variable to fix it.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from hanlin.errors import ConfigError, NotFoundError
from hanlin.fileio import atomic_write_text
from hanlin.models.base import Endpoint
from hanlin.models.errors import MissingKeyError
from hanlin.paths import hanlin_home


class Secret:
    """A secret string: ``repr``/``str``/pickling/JSON never show it; ``reveal()`` does."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('**********')"

    __str__ = __repr__

    def __reduce__(self) -> Any:
        raise TypeError("a Secret cannot be pickled or serialized")

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    @property
    def masked(self) -> str:
        """The last four characters, for listing keys (``…abcd``)."""
        return "…" + self._value[-4:] if len(self._value) >= 12 else "…"


class KeyStore:
    """The key file in the app directory."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or hanlin_home() / "keys.json"

    def _read(self) -> dict[str, str]:
        if not self.path.exists():
            return {}
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ConfigError(
                f"cannot read the key file {self.path} ({type(exc).__name__})",
                hint="fix or delete it, then `hanlin keys set PROVIDER` again",
            ) from None
        if not isinstance(data, dict):
            raise ConfigError(f"the key file {self.path} is not a JSON object", hint="delete it")
        return {str(k): str(v) for k, v in data.items()}

    def _write(self, data: dict[str, str]) -> None:
        atomic_write_text(self.path, json.dumps(data, indent=2, sort_keys=True), mode=0o600)

    def set(self, endpoint: str, value: str) -> None:
        value = value.strip()
        if not value:
            raise ConfigError(
                "an empty key was given", hint="paste the key, or use `hanlin keys rm`"
            )
        data = self._read()
        data[endpoint] = value
        self._write(data)

    def remove(self, endpoint: str) -> None:
        data = self._read()
        if endpoint not in data:
            raise NotFoundError(f"no stored key for '{endpoint}'", hint="see `hanlin keys ls`")
        del data[endpoint]
        self._write(data)

    def get(self, endpoint: str) -> Secret | None:
        value = self._read().get(endpoint)
        return Secret(value) if value else None

    def names(self) -> list[str]:
        return sorted(self._read())


KeySource = Literal["env", "file", "missing", "not needed"]


@dataclass(frozen=True, slots=True)
class KeyStatus:
    """Which keys are set for one provider — its environment variable, the key file — and
    which one is used (the environment wins). Holds :class:`Secret` values only."""

    provider: str
    variable: str | None
    env: Secret | None
    stored: Secret | None
    needed: bool = True

    @property
    def secret(self) -> Secret | None:
        """The key in use: the environment's, else the key file's."""
        return self.env or self.stored

    @property
    def source(self) -> KeySource:
        if self.env is not None:
            return "env"
        if self.stored is not None:
            return "file"
        return "missing" if self.needed else "not needed"

    @property
    def available(self) -> bool:
        """True when a call can be made: a key is set, or none is needed."""
        return self.source != "missing"

    def listing(self) -> list[dict[str, Any]]:
        """One row per key that is set, masked (``hanlin keys ls --json``)."""
        found = (("env", self.env), ("file", self.stored))
        return [
            {
                "provider": self.provider,
                "source": source,
                "variable": self.variable,
                "key": secret.masked,
                "in_use": secret is self.secret,
            }
            for source, secret in found
            if secret is not None
        ]


def key_status(
    provider: str, variable: str | None, store: KeyStore, *, needed: bool = True
) -> KeyStatus:
    """The key status of ``provider``: ``variable`` (an environment variable, surrounding
    whitespace ignored) and the key file entry under ``provider``."""
    value = os.environ.get(variable, "").strip() if variable else ""
    return KeyStatus(
        provider, variable, Secret(value) if value else None, store.get(provider), needed
    )


def endpoint_key_status(endpoint: Endpoint, store: KeyStore | None = None) -> KeyStatus:
    """:func:`key_status` of a gateway endpoint."""
    return key_status(
        endpoint.name, endpoint.key_env, store or KeyStore(), needed=endpoint.needs_key
    )


def resolve_key(endpoint: Endpoint, store: KeyStore | None = None) -> Secret | None:
    """The key for an endpoint: its environment variable, else the key file.

    Raises :class:`MissingKeyError` when the endpoint needs a key and none is set.
    """
    status = endpoint_key_status(endpoint, store)
    if status.source == "missing":
        raise MissingKeyError(
            f"no API key for {endpoint.name}",
            hint=f"run `hanlin keys set {endpoint.name}` or set {endpoint.key_env}",
            provider=endpoint.name,
            params={"variable": endpoint.key_env},
        )
    return status.secret
