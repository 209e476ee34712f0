"""Provider API keys: a :class:`Secret` type that refuses to be printed, and the key file.

Keys live in ``HANLIN_HOME/keys.json`` with 0600 permissions (written atomically), or in the
endpoint's environment variable, which wins when both are set. A missing key raises an error
that names the exact command and variable to fix it.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from hanlin.errors import ConfigError, NotFoundError
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
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".keys-", suffix=".json")
        try:
            os.fchmod(fd, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(data, fh, indent=2, sort_keys=True)
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        os.chmod(self.path, 0o600)

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


def resolve_key(endpoint: Endpoint, store: KeyStore | None = None) -> Secret | None:
    """The key for an endpoint: its environment variable, else the key file.

    Raises :class:`MissingKeyError` when the endpoint needs a key and none is set.
    """
    if endpoint.key_env:
        env = os.environ.get(endpoint.key_env)
        if env:
            return Secret(env)
    stored = (store or KeyStore()).get(endpoint.name)
    if stored is not None:
        return stored
    if endpoint.needs_key:
        raise MissingKeyError(
            f"no API key for {endpoint.name}",
            hint=f"run `hanlin keys set {endpoint.name}` or set {endpoint.key_env}",
            provider=endpoint.name,
        )
    return None
