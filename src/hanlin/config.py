"""Settings: ``hanlin.toml`` (app directory or working directory), overridden by ``HANLIN_*``.

Nested settings use a double underscore in the environment, e.g.
``HANLIN_KNOWLEDGE__EMBEDDING_MODEL=e5-small``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from hanlin.paths import hanlin_home

FusionMethod = Literal["weighted", "rrf"]


class KnowledgeSettings(BaseModel):
    """Defaults for new knowledge bases and for search."""

    model_config = ConfigDict(extra="forbid")

    embedding_model: str = "fast-use"
    chunk_tokens: int = Field(default=320, ge=32, le=8192)
    chunk_overlap: int = Field(default=48, ge=0, le=1024)
    #: processes that embed during ingest; None = one per CPU core (at most 8)
    embed_workers: int | None = Field(default=None, ge=1, le=64)
    fusion: FusionMethod = "weighted"
    #: weight of the dense retriever in weighted fusion; keyword gets 1 - dense_weight.
    dense_weight: float = Field(default=0.3, ge=0.0, le=1.0)
    rrf_k: int = Field(default=60, ge=1)
    #: below this many chunks (or allowed chunks under a filter) dense search is exact.
    exact_search_below: int = Field(default=20_000, ge=0)
    max_file_mb: int = Field(default=256, ge=1)


class Settings(BaseSettings):
    """All of Hanlin's settings."""

    model_config = SettingsConfigDict(
        env_prefix="HANLIN_",
        env_nested_delimiter="__",
        extra="forbid",
    )

    home: Path = Field(default_factory=hanlin_home)
    knowledge: KnowledgeSettings = Field(default_factory=KnowledgeSettings)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (
            init_settings,
            env_settings,
            TomlConfigSettingsSource(settings_cls, toml_file=_toml_files()),
        )


def _toml_files() -> list[Path]:
    """Config files, lowest priority first: the app directory, then the working directory."""
    files = [hanlin_home() / "hanlin.toml", Path.cwd() / "hanlin.toml"]
    explicit = os.environ.get("HANLIN_CONFIG")
    if explicit:
        files.append(Path(explicit))
    return [f for f in files if f.is_file()]


def load_settings(**overrides: object) -> Settings:
    """Read settings; a malformed file or value raises :class:`hanlin.errors.ConfigError`."""
    from pydantic import ValidationError

    from hanlin.errors import ConfigError

    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        raise ConfigError(
            f"invalid settings: {exc.errors()[0]['loc']}: {exc.errors()[0]['msg']}",
            hint="fix hanlin.toml or the HANLIN_* environment variable it names",
        ) from exc
