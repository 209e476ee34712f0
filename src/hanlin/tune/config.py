"""The configuration of a tuning run: a YAML file and/or flags, with defaults per method.

Keys left out take the defaults of the method (``cpt``, ``sft``, ``dpo``) and of LoRA on or off
(:data:`METHOD_DEFAULTS`); an unknown key is an error listing the valid ones.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from hanlin.errors import ConfigError, NotFoundError

Method = Literal["cpt", "sft", "dpo"]

# (method, lora) → defaults for keys the user did not set.
METHOD_DEFAULTS: dict[tuple[str, bool], dict[str, Any]] = {
    ("cpt", False): {"lr": 5e-5, "epochs": 1.0, "batch_size": 4, "max_len": 512},
    ("cpt", True): {"lr": 2e-4, "epochs": 1.0, "batch_size": 4, "max_len": 512},
    ("sft", False): {"lr": 2e-5, "epochs": 3.0, "batch_size": 4, "max_len": 512},
    ("sft", True): {"lr": 2e-4, "epochs": 3.0, "batch_size": 4, "max_len": 512},
    ("dpo", False): {"lr": 5e-7, "epochs": 1.0, "batch_size": 2, "max_len": 512},
    ("dpo", True): {"lr": 5e-6, "epochs": 1.0, "batch_size": 2, "max_len": 512},
}


class TuneConfig(BaseModel):
    """Every setting of a run; see ``docs/tune.md`` for each key."""

    model_config = ConfigDict(extra="forbid")

    method: Method = "sft"
    base: str = Field("bundled", description="bundled | *.gguf | HF model dir | cached HF name")
    data: str = Field(..., description="the dataset file")
    format: str = "auto"
    validation: str | None = Field(None, description="a separate validation file")
    val_ratio: float = Field(0.1, ge=0, lt=1)
    template: str | dict[str, Any] = "transcript"
    template_examples: bool = False
    add_eos: bool = True
    lora: bool = True
    qlora: bool = False
    lora_r: int = Field(16, ge=1)
    lora_alpha: int = Field(32, ge=1)
    lora_dropout: float = Field(0.05, ge=0, lt=1)
    lora_targets: str | list[str] = "all-linear"
    lr: float = Field(2e-4, gt=0)
    epochs: float = Field(3.0, gt=0)
    max_steps: int = Field(-1, description="> 0 overrides epochs")
    batch_size: int = Field(4, ge=1)
    grad_accum: int = Field(1, ge=1)
    max_len: int = Field(512, ge=8)
    warmup_ratio: float = Field(0.0, ge=0, lt=1)
    weight_decay: float = Field(0.0, ge=0)
    scheduler: str = "linear"
    grad_checkpointing: bool = False
    precision: Literal["auto", "fp32", "bf16", "fp16"] = "auto"
    dpo_beta: float = Field(0.1, gt=0)
    seed: int = 42
    logging_steps: int = Field(1, ge=1)
    save_steps: int = Field(50, ge=1)
    eval_steps: int | None = Field(None, ge=1, description="default: save_steps")
    save_total_limit: int = Field(2, ge=1)
    evaluate: bool = Field(True, description="validation loss / samples before and after")
    eval_examples: int = Field(32, ge=1)
    eval_generate: bool = True
    run_id: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _method_defaults(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        method = data.get("method", "sft")
        lora = bool(data.get("lora", method != "cpt")) or bool(data.get("qlora", False))
        defaults = METHOD_DEFAULTS.get((str(method), lora), {})
        return {**defaults, "lora": lora, **{k: v for k, v in data.items() if k != "lora"}}

    @property
    def uses_lora(self) -> bool:
        return self.lora or self.qlora


def valid_keys() -> list[str]:
    return list(TuneConfig.model_fields)


def parse_config(values: dict[str, Any]) -> TuneConfig:
    """Validate a mapping of settings; ConfigError names unknown keys and lists valid ones."""
    unknown = sorted(set(values) - set(TuneConfig.model_fields))
    if unknown:
        raise ConfigError(
            f"unknown config key(s): {', '.join(unknown)}",
            hint=f"valid keys: {', '.join(valid_keys())}",
        )
    try:
        return TuneConfig.model_validate(values)
    except ValidationError as exc:
        lines = [
            f"{'.'.join(str(p) for p in e['loc']) or 'config'}: {e['msg']}" for e in exc.errors()
        ]
        raise ConfigError(
            "invalid tuning config: " + "; ".join(lines),
            hint="fix these keys (see docs/tune.md for every key and its default)",
        ) from None


def _coerce(raw: str) -> Any:
    """A ``--set key=value`` value: YAML scalars (numbers, booleans, null, lists)."""
    try:
        return yaml.safe_load(raw)
    except yaml.YAMLError:
        return raw


def load_config(
    path: str | Path | None = None,
    overrides: dict[str, Any] | None = None,
    sets: list[str] | None = None,
) -> TuneConfig:
    """Settings from a YAML file, then flag ``overrides``, then ``key=value`` strings.

    Relative ``data``/``validation``/``base`` paths in the file are taken relative to the file.
    Raises NotFoundError (no file) or ConfigError (bad YAML, unknown or invalid keys).
    """
    values: dict[str, Any] = {}
    if path is not None:
        p = Path(path).expanduser()
        if not p.is_file():
            raise NotFoundError(f"no config file at {p}", hint="give the path of a YAML file")
        try:
            loaded = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"{p} is not valid YAML: {exc}") from None
        if not isinstance(loaded, dict):
            raise ConfigError(f"{p} must hold a mapping of settings (key: value)")
        for key in ("data", "validation", "base"):
            value = loaded.get(key)
            if isinstance(value, str) and (p.parent / value).exists():
                loaded[key] = str((p.parent / value).resolve())
        values.update(loaded)
    values.update({k: v for k, v in (overrides or {}).items() if v is not None})
    for item in sets or []:
        key, sep, raw = item.partition("=")
        if not sep:
            raise ConfigError(f"--set expects key=value, got '{item}'", hint="e.g. --set lr=1e-4")
        values[key.strip()] = _coerce(raw)
    if "data" not in values:
        raise ConfigError(
            "no dataset given", hint="set data: in the config file or pass --data FILE"
        )
    return parse_config(values)


def dump_config(config: TuneConfig) -> str:
    """The resolved config as YAML (every key, defaults filled in)."""
    return yaml.safe_dump(config.model_dump(), sort_keys=False, allow_unicode=True)
