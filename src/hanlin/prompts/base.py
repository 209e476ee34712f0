"""What a prompt in the registry is, and the small protocol every prompt store implements
(SQLite in the app directory, PostgreSQL with ``database_url``), so the library, the CLI and the
server never depend on one backend.

A prompt is a name with versions 1..n. A version never changes once written: its text (Python
``str.format`` fields, ``{sources}``, literal braces doubled), its typed variables, an optional
model configuration, a commit message, its author and a content hash. Labels (``production``,
``staging``, any other) point at versions and move; every move is kept. ``latest`` is the
highest version, always, and is not a label anyone sets.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any, Literal, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field, model_validator

from hanlin.errors import InvalidInputError

VarType = Literal["str", "int", "float", "list", "bool"]
#: the Python types a value of each variable type may have (a bool is not an int here)
PYTHON_TYPES: dict[str, tuple[type, ...]] = {
    "str": (str,),
    "int": (int,),
    "float": (int, float),
    "list": (list, tuple),
    "bool": (bool,),
}
#: the author of the built-in versions (Hanlin's bundled prompt files)
BUILTIN_AUTHOR = "hanlin"
#: the label every reader uses unless told otherwise
PRODUCTION = "production"
#: the implicit label of the highest version
LATEST = "latest"
MAX_TEXT = 100_000
MAX_VARIABLES = 50

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,99}$")
LABEL_RE = re.compile(r"^[a-z][a-z0-9_.\-]{0,39}$")
VARIABLE_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")


def check_name(name: str) -> str:
    """A prompt name (``rag.answer.en``, ``support-greeting``), or :class:`InvalidInputError`."""
    if not NAME_RE.match(name):
        raise InvalidInputError(
            f"'{name}' is not a prompt name",
            hint="use letters, digits, '.', '_' and '-' (at most 100), starting with a letter "
            "or digit, e.g. support.greeting",
            param="name",
        )
    return name


def check_label(label: str, *, settable: bool = False) -> str:
    """A label name (``production``, ``staging``); ``settable`` refuses ``latest``."""
    if not LABEL_RE.match(label):
        raise InvalidInputError(
            f"'{label}' is not a label name",
            hint="use lowercase letters, digits, '.', '_' and '-' (at most 40), starting with a "
            "letter, e.g. staging",
            param="label",
        )
    if settable and label == LATEST:
        raise InvalidInputError(
            "'latest' always means the highest version and cannot be moved",
            hint="use another label, e.g. staging",
            param="label",
        )
    return label


def parse_ref(ref: str) -> tuple[str, int | None, str | None]:
    """``NAME``, ``NAME@3`` or ``NAME:staging`` → ``(name, version, label)``."""
    name, version, label = ref, None, None
    if "@" in ref:
        name, _, number = ref.rpartition("@")
        if not number.isdigit() or int(number) < 1:
            raise InvalidInputError(
                f"'{ref}' names no version",
                hint="write NAME@VERSION with a version number, e.g. rag.answer.en@2",
            )
        version = int(number)
    elif ":" in ref:
        name, _, label = ref.rpartition(":")
        check_label(label)
    return check_name(name), version, label


class Variable(BaseModel):
    """A variable a template fills: ``{name}`` in the text. A variable with a default is
    optional; an optional one without a default renders as an empty string."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=VARIABLE_RE.pattern)
    type: VarType = "str"
    required: bool = True
    default: str | int | float | bool | list[Any] | None = None
    description: str = Field(default="", max_length=1000)

    @model_validator(mode="after")
    def _default_fits(self) -> Variable:
        if self.default is None:
            return self
        self.required = False
        ok = isinstance(self.default, PYTHON_TYPES[self.type])
        if self.type in ("int", "float") and isinstance(self.default, bool):
            ok = False
        if not ok:
            raise ValueError(
                f"the default of '{self.name}' is {type(self.default).__name__}, not {self.type}"
            )
        return self


class ModelConfig(BaseModel):
    """How a version is meant to be run (all optional): which model, temperature, max tokens."""

    model_config = ConfigDict(extra="forbid")

    model: str | None = Field(default=None, min_length=1, max_length=300)
    temperature: float | None = Field(default=None, ge=0.0, le=2.0)
    max_tokens: int | None = Field(default=None, ge=1, le=1_000_000)

    def is_empty(self) -> bool:
        return self.model is None and self.temperature is None and self.max_tokens is None


class NewVersion(BaseModel):
    """What a caller writes; the store adds the number, author, time and hash."""

    model_config = ConfigDict(extra="forbid")

    text: str = Field(min_length=1, max_length=MAX_TEXT)
    variables: list[Variable] = Field(default_factory=list, max_length=MAX_VARIABLES)
    config: ModelConfig | None = None
    message: str = Field(default="", max_length=2000)

    def content_hash(self) -> str:
        """What makes two versions identical: text, variables (in any order) and config."""
        return content_hash(self.text, self.variables, self.config)


def content_hash(text: str, variables: list[Variable], config: ModelConfig | None) -> str:
    body = {
        "text": text,
        "variables": sorted((v.model_dump() for v in variables), key=lambda v: v["name"]),
        "config": None if config is None or config.is_empty() else config.model_dump(),
    }
    data = json.dumps(body, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return "sha256:" + hashlib.sha256(data.encode("utf-8", "surrogatepass")).hexdigest()


class PromptVersion(BaseModel):
    """One immutable version of a prompt."""

    name: str
    version: int
    text: str
    variables: list[Variable]
    config: ModelConfig | None
    message: str
    author: str
    created_at: float
    hash: str

    @property
    def builtin(self) -> bool:
        """Whether this is a version Hanlin shipped (its bundled file)."""
        return self.author == BUILTIN_AUTHOR


class LabelMove(BaseModel):
    """A label set to a version (``previous`` is where it pointed before, None when new)."""

    name: str
    label: str
    version: int
    previous: int | None
    actor: str
    at: float


class PromptSummary(BaseModel):
    """A prompt without its versions (what a list returns)."""

    name: str
    latest: int
    labels: dict[str, int]
    created_at: float
    updated_at: float


@runtime_checkable
class PromptStore(Protocol):
    """Prompts, their versions and labels.

    Every change is one transaction. Version numbers are assigned inside it, so concurrent
    writers (threads, processes, replicas) get distinct, gapless numbers. An unknown prompt,
    version or label raises :class:`~hanlin.errors.NotFoundError`; the stores do not check
    templates (:mod:`hanlin.prompts.template` does, before they are called).
    """

    def create(self, name: str, new: NewVersion, author: str) -> tuple[PromptVersion, bool]:
        """Add a version; ``(version, True)``. When ``new`` is identical to the latest version
        (same text, variables and config), that one is returned instead: ``(latest, False)``."""
        ...

    def get(
        self, name: str, *, version: int | None = None, label: str | None = None
    ) -> PromptVersion:
        """One version: by number, by label (``latest`` included), or the latest."""
        ...

    def versions(self, name: str) -> list[PromptVersion]:
        """Every version, oldest first."""
        ...

    def set_label(self, name: str, label: str, version: int, actor: str) -> LabelMove:
        """Point ``label`` at ``version`` (recorded with ``actor`` and the time; setting a label
        to where it already points records nothing and returns the last move)."""
        ...

    def labels(self, name: str) -> dict[str, int]: ...

    def label_history(self, name: str) -> list[LabelMove]:
        """Every move of the prompt's labels, oldest first."""
        ...

    def generation(self) -> int:
        """A number that grows with every change to any prompt: a reader whose cache was filled
        at generation *g* is current while this still returns *g*."""
        ...

    def seed(self, prompts: list[tuple[str, NewVersion]]) -> int:
        """Make each built-in version present (author :data:`BUILTIN_AUTHOR`) and point
        ``production`` at it unless a user moved ``production`` to a version of their own;
        returns how many versions were added (0 when all were there: the common, read-only
        case)."""
        ...

    def close(self) -> None: ...

    # last: inside the class body the name ``list`` is this method, not the builtin
    def list(self) -> list[PromptSummary]:
        """Every prompt, by name."""
        ...
