"""Settings: ``hanlin.toml`` (app directory or working directory), overridden by ``HANLIN_*``.

Nested settings use a double underscore in the environment, e.g.
``HANLIN_KNOWLEDGE__EMBEDDING_MODEL=e5-small``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
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

    #: a registered embedder name, or "auto": chosen by the knowledge base's language from
    #: ``language_embedders`` and recorded in it (hanlin.knowledge.language). The default
    #: stays fast-use: "auto" gives English KBs MiniLM (SciFact hybrid nDCG@10 0.714 → 0.737,
    #: dense 0.43 → 0.67) at ~5× the embedding CPU (docs/benchmarks.md)
    embedding_model: str = "fast-use"
    #: the language of new knowledge bases (en, zh, mixed, …); "auto" detects it from the
    #: first documents ingested
    language: str = Field(default="auto", pattern=r"^[a-z]{2,8}$")
    #: embedding_model = "auto": language → embedder; "*" for any other and mixed languages
    language_embedders: dict[str, str] = Field(
        default_factory=lambda: {"en": "minilm-l6", "*": "fast-use"}
    )
    #: the store new knowledge bases use, by its ``hanlin.stores`` entry-point name; a
    #: knowledge base keeps the store it was created with. Unset: ``postgres`` when
    #: ``database_url`` is set, else ``sqlite``
    store: str = ""
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
    #: processes that parse files, each under the limits below; 0 = parse in the calling
    #: process without memory or time limits (for debugging a loader only)
    parse_workers: int = Field(default=1, ge=0, le=64)
    #: memory one file's parse may take (the worker's address-space limit, above its baseline)
    parse_memory_mb: int = Field(default=2048, ge=64)
    #: seconds (wall clock and CPU) one file's parse may take before its worker is killed
    parse_timeout_s: float = Field(default=300.0, gt=0)
    #: what one file may decompress to, over all its PDF streams or ZIP members together
    max_inflated_mb: int = Field(default=256, ge=1)
    #: let URL sources resolve to loopback / private / link-local addresses (SSRF guard off)
    allow_private_urls: bool = False


class RagSettings(BaseModel):
    """The RAG engine (``hanlin.rag``): retrieval, packing, refusal and the generator."""

    model_config = ConfigDict(extra="forbid")

    #: evidence chunks kept after de-duplication and diversity (the sources a model sees)
    k: int = Field(default=6, ge=1, le=100)
    #: chunks retrieved by hybrid search before rerank, de-duplication and diversity
    candidates: int = Field(default=30, ge=1, le=1000)
    #: at most this many evidence chunks from one document
    per_doc_cap: int = Field(default=3, ge=1)
    #: MMR trade-off: 1.0 ranks by relevance only, lower values prefer novel text
    mmr_lambda: float = Field(default=0.8, ge=0.0, le=1.0)
    #: tokens of sources in the prompt, at most (also bounded by the model's context)
    max_context_tokens: int = Field(default=3000, ge=16)
    #: tokens reserved for the answer (``max_tokens`` of the generation call)
    answer_tokens: int = Field(default=512, ge=1)
    #: tokens of earlier conversation turns passed to the generator
    history_tokens: int = Field(default=1000, ge=0)
    temperature: float = Field(default=0.1, ge=0.0, le=2.0)
    #: the answering model; None = ``models.default``
    generator: str | None = None
    #: the model that rewrites follow-up questions; None = the generator
    rewrite_model: str | None = None
    #: a gateway rerank model (e.g. ``siliconflow/BAAI/bge-reranker-v2-m3``); None = no rerank
    reranker: str | None = None
    #: models that cannot follow instructions (fnmatch patterns over ``endpoint/model``):
    #: ``mode="auto"`` answers extractively with them and rewrites questions without them;
    #: ``hanlin chat``, agents and the web UI say so when one is used (models/base_models.py)
    base_models: list[str] = Field(default_factory=lambda: ["local/gemma3-270m"])
    #: refuse below this evidence strength; None = calibrated per embedding model (docs/rag.md)
    refusal_threshold: float | None = None
    #: weight of the best dense cosine in the evidence strength; None = calibrated
    refusal_dense_weight: float | None = Field(default=None, ge=0.0)
    #: sentences quoted by extractive answers, at most
    extractive_sentences: int = Field(default=2, ge=1, le=10)


RouteStrategy = Literal["fallback", "round_robin", "least_busy"]


class EndpointSettings(BaseModel):
    """A user-defined endpoint (or an override of a preset's base URL / key variable)."""

    model_config = ConfigDict(extra="forbid")

    provider: str = "openai_compat"
    base_url: str | None = None
    key_env: str | None = None
    dialect: str | None = None
    #: model names this endpoint serves; empty = any name is passed through
    models: list[str] = Field(default_factory=list)
    #: provider-specific settings (e.g. ``model_path`` / ``n_threads`` for ``local``)
    options: dict[str, object] = Field(default_factory=dict)


class RouteSettings(BaseModel):
    """A name that routes to one or more deployments (``endpoint/model``)."""

    model_config = ConfigDict(extra="forbid")

    deployments: list[str] = Field(min_length=1)
    strategy: RouteStrategy = "fallback"


class PriceSettings(BaseModel):
    """A price per 1M tokens that overrides or adds to the built-in table."""

    model_config = ConfigDict(extra="forbid")

    input: float = Field(ge=0)
    output: float = Field(ge=0)
    cached_input: float | None = Field(default=None, ge=0)
    currency: Literal["USD", "CNY"] = "USD"


class BudgetSettings(BaseModel):
    """Spending limits in USD per calendar day (UTC); calls over a limit are refused."""

    model_config = ConfigDict(extra="forbid")

    daily_usd: float | None = Field(default=None, ge=0)
    #: per caller key (the ``user`` option or the server's API key id)
    per_key_daily_usd: dict[str, float] = Field(default_factory=dict)


class ModelsSettings(BaseModel):
    """The model gateway: default model, endpoints, routes, retries, prices, budgets, cache."""

    model_config = ConfigDict(extra="forbid")

    default: str = "local/gemma3-270m"
    endpoints: dict[str, EndpointSettings] = Field(default_factory=dict)
    routes: dict[str, RouteSettings] = Field(default_factory=dict)
    prices: dict[str, PriceSettings] = Field(default_factory=dict)
    budgets: BudgetSettings = Field(default_factory=BudgetSettings)
    #: retries per deployment on rate limits, 5xx and timeouts, before failing over
    retries: int = Field(default=2, ge=0, le=10)
    backoff_base: float = Field(default=0.5, gt=0)
    backoff_max: float = Field(default=8.0, gt=0)
    #: a Retry-After longer than this fails over at once instead of waiting
    max_retry_after: float = Field(default=30.0, ge=0)
    #: seconds a failing deployment is skipped (tried last) after a retryable error
    cooldown: float = Field(default=10.0, ge=0)
    timeout: float = Field(default=600.0, gt=0)
    cache: bool = False
    cache_ttl_days: float = Field(default=30.0, gt=0)
    usd_to_cny: float = Field(default=7.1, gt=0)


class ServerSettings(BaseModel):
    """``hanlin serve``: where it listens, API keys, CORS and upload limits."""

    model_config = ConfigDict(extra="forbid")

    host: str = "127.0.0.1"
    port: int = Field(default=8321, ge=0, le=65535)
    #: require API keys even on loopback (always required on any other address)
    require_keys: bool = False
    #: origins allowed by CORS; empty = no CORS headers at all
    cors_origins: list[str] = Field(default_factory=list)
    #: Host names served besides loopback ones and the bound address (``name`` for any port,
    #: ``name:port``, ``*`` for any); others get 421, against DNS rebinding
    allowed_hosts: list[str] = Field(default_factory=list)
    #: largest single uploaded file, and largest whole upload request, in MB
    max_upload_mb: int = Field(default=256, ge=1)
    max_request_mb: int = Field(default=1024, ge=1)
    #: files in one upload request, at most
    max_upload_files: int = Field(default=100, ge=1)
    #: largest request body of every other route (JSON), in MB
    max_json_mb: int = Field(default=4, ge=1)
    #: let clients add URLs that resolve to loopback / private / link-local addresses
    allow_private_urls: bool = False


class TracingSettings(BaseModel):
    """Traces of every model call, search, answer step and tool call (``hanlin traces``)."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = True
    #: record prompts, answers, queries and tool arguments (secrets are always masked)
    capture_content: bool = True
    #: also send spans to this OTLP/HTTP collector (``http://host:4318/v1/traces``)
    otlp_endpoint: str | None = None
    otlp_headers: dict[str, str] = Field(default_factory=dict)
    #: finished spans waiting to be written, at most; more are dropped and counted
    queue_size: int = Field(default=20_000, ge=100)
    #: traces older than this many days are deleted (0 = kept)
    retention_days: int = Field(default=30, ge=0)
    #: at most this many spans are kept; the oldest traces go first (0 = no limit)
    max_spans: int = Field(default=5_000_000, ge=0)


#: a prompt label's name (as hanlin.prompts.base.LABEL_RE)
_LABEL = r"^[a-z][a-z0-9_.\-]{0,39}$"


class PromptSettings(BaseModel):
    """The prompt registry (``hanlin prompt``, docs/prompts.md): which label RAG and agents read."""

    model_config = ConfigDict(extra="forbid")

    #: the label RAG answers and agents read their prompts at (an agent's ``prompt_label`` and
    #: a request's ``prompt_label`` override it)
    label: str = Field(default="production", pattern=_LABEL)
    #: per knowledge base: ``{docs = "staging"}`` answers from ``docs`` with the staging prompts
    kb_labels: dict[str, Annotated[str, Field(pattern=_LABEL)]] = Field(default_factory=dict)
    #: seconds between checks for versions and label moves made by other processes (a change
    #: made in this process is seen at once)
    refresh_s: float = Field(default=1.0, ge=0.0, le=3600.0)


class WorkflowSettings(BaseModel):
    """Workflows (``hanlin workflow``, docs/workflows.md)."""

    model_config = ConfigDict(extra="forbid")

    #: let HTTP nodes reach private and loopback addresses (off: the SSRF guard refuses them)
    allow_private_urls: bool = False
    #: hosts (``name`` or ``name:port``) HTTP nodes may reach even when private
    allowed_hosts: list[str] = Field(default_factory=list)
    #: a run marked running by a process on another machine that has not checkpointed for
    #: this long is taken over by ``resume`` (on this machine: as soon as the process is gone)
    stale_after_s: float = Field(default=600.0, gt=0)
    #: ``hanlin serve`` resumes, when it starts, the runs a dead process left running
    resume_on_start: bool = True
    #: how many of those it drives at once
    resume_concurrency: int = Field(default=4, ge=1, le=64)
    #: ``hanlin serve`` (and ``hanlin worker`` on PostgreSQL) start the workflows' schedule
    #: triggers
    schedules: bool = True
    #: folders whose files ``document_extractor`` nodes may read by path (none: only files
    #: given as bytes in the run's inputs)
    file_roots: list[str] = Field(default_factory=list)
    #: how many nodes of one graph (a workflow, a loop's or iteration item's body) run at once
    #: when branches run in parallel
    max_parallel: int = Field(default=8, ge=1, le=256)
    #: the SQLite run store's ``synchronous``: ``full`` fsyncs every checkpoint (it survives a
    #: power cut); ``normal`` leaves that to SQLite's WAL checkpoints — a checkpoint still
    #: survives the process being killed, not a power cut or an OS crash
    sqlite_synchronous: Literal["full", "normal"] = "full"


MaskMode = Literal["remote", "always", "never"]
#: what happens to a retrieved chunk or tool result the injection scanner flags
InjectionMode = Literal["off", "flag", "strip", "drop"]
GuardModelAction = Literal["block", "flag", "allow"]


class GuardRule(BaseModel):
    """An override of the PII policy for one route, endpoint, model, API key or knowledge
    base; what it leaves unset comes from the level above."""

    model_config = ConfigDict(extra="forbid")

    #: remote: mask for remote endpoints only; always; never
    mask_pii: MaskMode | None = None
    #: the entity types to mask (``ID_CARD``, ``PHONE`` …); unset: the level above's
    entities: list[str] | None = None
    #: injection found in retrieved chunks / tool results: off | flag | strip | drop
    injection: InjectionMode | None = None


class KbGuardRule(GuardRule):
    """A knowledge base's PII policy: its answers' model calls, and masking at ingest."""

    #: mask personal data in documents before they are stored (irreversible)
    mask_ingest: bool | None = None


class GuardSettings(BaseModel):
    """The guard (docs/guard.md): personal data masked before it leaves for a remote model."""

    model_config = ConfigDict(extra="forbid")

    #: remote (default): mask for remote endpoints, not for local ones; always; never
    mask_pii: MaskMode = "remote"
    #: entity types to mask; empty = every type the recognizers report
    entities: list[str] = Field(default_factory=list)
    #: recognizers by name (``hanlin.pii_recognizers``); empty = the built-in defaults and any
    #: installed plugin marked default (``jieba_person`` is opt-in)
    recognizers: list[str] = Field(default_factory=list)
    #: endpoints that count as local although their address is public, and as remote
    #: although it is loopback or private (e.g. a tunnel or a proxy to a provider)
    local_endpoints: list[str] = Field(default_factory=list)
    remote_endpoints: list[str] = Field(default_factory=list)
    #: apply the policy to embeddings and rerank calls too (bare ``<PHONE>`` placeholders)
    mask_embeddings: bool = True
    #: tool calls in a masked answer get the real values back (Hanlin's agents run tools
    #: locally; off: the caller sees the placeholders)
    restore_tool_arguments: bool = True
    #: injection patterns in retrieved chunks and tool results: off, flag (record only),
    #: strip (remove the offending text), drop (replace the chunk / result by a notice)
    injection: InjectionMode = "flag"
    #: hosts answers may link to or show images from (subdomains included; ``"*"``: any);
    #: other links and images in answers are neutralised
    allowed_link_hosts: list[str] = Field(default_factory=list)
    #: sensitive-term banks: files or folders of ``.txt`` / ``.yaml`` banks, ``"sample"`` for
    #: the one Hanlin ships (docs/guard.md)
    term_banks: list[str] = Field(default_factory=list)
    #: what a blocked answer says instead
    refusal_text: str = "抱歉，我无法提供这方面的内容。Sorry, I can't help with that."
    #: a safety classifier served through the gateway (Llama Guard, Qwen3Guard): classifies
    #: the input before a chat call and the answer after it
    model: str | None = None
    #: its labels and categories (``S1``, ``Violent``, ``Unsafe``, ``Controversial``) mapped
    #: to block | flag | allow; unmapped: Unsafe blocks, Controversial flags
    model_categories: dict[str, GuardModelAction] = Field(default_factory=dict)
    #: when the guard model cannot answer: closed (the call fails, ``guard_unavailable``) or
    #: open (it goes through, recorded); unset: closed when the call is masked, else open
    model_failure: Literal["closed", "open"] | None = None
    #: overrides by route or alias name, endpoint name or ``endpoint/model``
    routes: dict[str, GuardRule] = Field(default_factory=dict)
    #: overrides by API key id
    keys: dict[str, GuardRule] = Field(default_factory=dict)
    #: overrides by knowledge base (its answers' model calls; ``mask_ingest``)
    kbs: dict[str, KbGuardRule] = Field(default_factory=dict)


class Settings(BaseSettings):
    """All of Hanlin's settings."""

    model_config = SettingsConfigDict(
        env_prefix="HANLIN_",
        env_nested_delimiter="__",
        extra="forbid",
    )

    home: Path = Field(default_factory=hanlin_home)
    #: ``postgresql://…``: keep every stateful part in this PostgreSQL database (shared by
    #: replicas and workers); unset: everything embedded under ``home``
    database_url: str | None = None
    knowledge: KnowledgeSettings = Field(default_factory=KnowledgeSettings)
    models: ModelsSettings = Field(default_factory=ModelsSettings)
    rag: RagSettings = Field(default_factory=RagSettings)
    server: ServerSettings = Field(default_factory=ServerSettings)
    tracing: TracingSettings = Field(default_factory=TracingSettings)
    prompts: PromptSettings = Field(default_factory=PromptSettings)
    workflows: WorkflowSettings = Field(default_factory=WorkflowSettings)
    guard: GuardSettings = Field(default_factory=GuardSettings)
    #: MCP servers agents can use, ``[mcpServers.<name>]`` (see hanlin.agents.mcp.config)
    mcp_servers: dict[str, dict[str, object]] = Field(default_factory=dict, alias="mcpServers")

    @model_validator(mode="after")
    def _default_store(self) -> Settings:
        if not self.knowledge.store:
            self.knowledge.store = "postgres" if self.database_url else "sqlite"
        return self

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
