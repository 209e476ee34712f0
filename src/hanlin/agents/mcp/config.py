"""MCP server entries as ``hanlin.toml`` holds them, in the shape common MCP clients use::

    [mcpServers.time]
    command = "uvx"
    args = ["mcp-server-time"]
    env = { TZ = "UTC" }

    [mcpServers.docs]
    url = "https://mcp.example.com/mcp"
    headers = { Authorization = "Bearer ${DOCS_TOKEN}" }

An entry is either a command (stdio: ``command``, ``args``, ``env``, ``cwd``) or a ``url``
(streamable HTTP, with ``headers``). ``${VAR}`` in ``env`` and ``headers`` values is read from
the environment when connecting, so secrets need not sit in the file.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from hanlin.errors import ConfigError

_VAR_RE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,47}$")


class McpServerConfig(BaseModel):
    """One MCP server: a command to run (stdio) or a URL (streamable HTTP)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    #: ``stdio`` or ``http``; inferred from ``command`` / ``url`` when left out
    type: Literal["stdio", "http", "streamable-http", "streamableHttp"] | None = None
    command: str | None = None
    args: list[str] = Field(default_factory=list)
    env: dict[str, str] = Field(default_factory=dict, repr=False)
    cwd: str | None = None
    url: str | None = None
    headers: dict[str, str] = Field(default_factory=dict, repr=False)
    #: seconds one call (tool, resource, prompt) may take before it fails
    timeout: float = Field(default=60.0, gt=0)
    #: seconds the server has to start and finish the handshake
    startup_timeout: float = Field(default=30.0, gt=0)
    disabled: bool = False

    @model_validator(mode="after")
    def _one_transport(self) -> McpServerConfig:
        if bool(self.command) == bool(self.url):
            raise ValueError("give either `command` (stdio) or `url` (streamable HTTP), not both")
        if self.url and not self.url.startswith(("http://", "https://")):
            raise ValueError(f"url must start with http:// or https://, not {self.url!r}")
        kind = "stdio" if self.command else "http"
        if self.type is not None and (self.type == "stdio") != (kind == "stdio"):
            raise ValueError(f"type {self.type!r} does not match the entry (it has a {kind} key)")
        if self.command is None and (self.args or self.env or self.cwd):
            raise ValueError("args, env and cwd apply to `command` servers only")
        if self.url is None and self.headers:
            raise ValueError("headers apply to `url` servers only")
        return self

    @property
    def transport(self) -> Literal["stdio", "http"]:
        return "stdio" if self.command else "http"

    def resolved_env(self) -> dict[str, str]:
        """``env`` with ``${VAR}`` expanded (raises :class:`ConfigError` for unset variables)."""
        return {k: expand(v, f"env.{k}") for k, v in self.env.items()}

    def resolved_headers(self) -> dict[str, str]:
        """``headers`` with ``${VAR}`` expanded (raises :class:`ConfigError` for unset ones)."""
        return {k: expand(v, f"headers.{k}") for k, v in self.headers.items()}

    def describe(self) -> str:
        """A one-line summary safe to print: no env values, no header values."""
        if self.command:
            return " ".join([self.command, *self.args])
        return str(self.url)


def expand(value: str, where: str) -> str:
    """Replace ``${VAR}`` with the environment variable's value."""

    def sub(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in os.environ:
            raise ConfigError(
                f"MCP server setting {where} uses ${{{name}}}, which is not set",
                hint=f"export {name}=… before starting Hanlin, or write the value in hanlin.toml",
            )
        return os.environ[name]

    return _VAR_RE.sub(sub, value)


def parse_servers(raw: Mapping[str, Any]) -> dict[str, McpServerConfig]:
    """Validate ``mcpServers`` entries; an invalid one raises :class:`ConfigError` naming it."""
    servers: dict[str, McpServerConfig] = {}
    for name, entry in raw.items():
        if not _NAME_RE.match(name):
            raise ConfigError(
                f"invalid MCP server name {name!r}",
                hint="use up to 48 letters, digits, '_', '-' or '.', starting with a letter "
                "or digit",
            )
        if isinstance(entry, McpServerConfig):
            servers[name] = entry
            continue
        try:
            servers[name] = McpServerConfig.model_validate(entry)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise ConfigError(
                f"invalid MCP server [mcpServers.{name}]: "
                f"{where + ': ' if where else ''}{first['msg']}",
                hint="an entry has `command` (+ args, env, cwd) or `url` (+ headers); "
                "see docs/mcp.md",
            ) from None
    return servers


def configured_servers(settings: Any = None) -> dict[str, McpServerConfig]:
    """The ``mcpServers`` of the settings (``load_settings()`` when None), disabled ones left
    out."""
    if settings is None:
        from hanlin.config import load_settings

        settings = load_settings()
    raw = getattr(settings, "mcp_servers", None) or {}
    return {n: c for n, c in parse_servers(raw).items() if not c.disabled}


__all__ = ["McpServerConfig", "configured_servers", "expand", "parse_servers"]
