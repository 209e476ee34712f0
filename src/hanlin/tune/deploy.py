"""Deploying a tuned run into the gateway: ``local/<name>`` serves base GGUF + GGUF LoRA adapter.

``deploy`` exports the run's LoRA adapter to GGUF when it has not been (``adapter.gguf`` in the
run directory), checks that llama.cpp loads it onto the base GGUF and that it changes the
model's output, copies it to ``HANLIN_HOME/models/deployed/<name>.lora.gguf`` (so deleting the
run does not break the deployment) and records the model in ``HANLIN_HOME/models/deployed.json``
with the prompt format the run trained with. The ``llamacpp`` provider reads that registry, so
``hanlin chat -m local/<name>`` and the server's ``/v1/chat/completions`` serve it at once.

Full fine-tunes have no adapter; llama.cpp would need a full GGUF of the new weights, which
Hanlin does not write. They are refused with the way out: a LoRA run, or the run's ``model/``
folder served by vLLM / SGLang and reached through the gateway's ``openai_compat`` endpoints.
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hanlin.errors import ConfigError, InvalidInputError, NotFoundError
from hanlin.fileio import atomic_path
from hanlin.models.providers.llamacpp import DEFAULT_MODEL
from hanlin.models.providers.llamacpp_models import deployed_models, update_deployed
from hanlin.paths import hanlin_home
from hanlin.tune.export import export_gguf_adapter, gguf_arch
from hanlin.tune.runs import Run, get_run, now_iso

__all__ = [
    "AdapterCheck",
    "Deployment",
    "check_gguf_adapter",
    "deploy",
    "ensure_gguf_adapter",
    "list_deployed",
    "undeploy",
]

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
CHECK_PROMPT = "User: 中国的首都是哪里？\nAssistant:"


@dataclass(frozen=True, slots=True)
class AdapterCheck:
    """llama.cpp's next-token logits for a prompt, without and with the adapter."""

    max_logit_change: float
    base_top: str
    tuned_top: str

    @property
    def changed(self) -> bool:
        return self.max_logit_change > 1e-3


@dataclass(frozen=True, slots=True)
class Deployment:
    name: str
    model: str  # what to pass to the gateway: local/<name>
    base_gguf: Path
    lora_path: Path
    run: str
    check: AdapterCheck | None


def _base_gguf(run: Run, info: dict[str, Any]) -> Path:
    gguf = (info.get("base") or {}).get("gguf")
    if not gguf:
        raise InvalidInputError(
            f"run {run.id} was trained from a Hugging Face model, not a GGUF file, so there is "
            "no llama.cpp base to apply its adapter to",
            hint=f"`hanlin tune merge {run.id}` and serve the merged folder with vLLM or "
            "SGLang (models.endpoints.<name> with provider openai_compat in hanlin.toml)",
        )
    path = Path(gguf)
    if not path.is_file():
        raise NotFoundError(
            f"the base GGUF of run {run.id} is gone: {path}",
            hint="restore the file, or retrain from a GGUF that exists",
        )
    return path


def _adapter_dir(run: Run, info: dict[str, Any]) -> Path:
    if not info.get("lora", True) or not (run.path / "adapter").is_dir():
        if (run.path / "model").is_dir():
            raise InvalidInputError(
                f"run {run.id} is a full fine-tune; llama.cpp serves LoRA adapters on the base "
                "GGUF, and Hanlin does not write full GGUF files",
                hint="train with lora: true to deploy locally, or serve "
                f"{run.path / 'model'} with vLLM / SGLang and add it to the gateway as an "
                "openai_compat endpoint",
            )
        status = info.get("status", "?")
        raise NotFoundError(
            f"run {run.id} has no final adapter (status: {status})",
            hint=f"finish it first (`hanlin tune resume {run.id}`)",
        )
    return run.path / "adapter"


def ensure_gguf_adapter(run_ref: str | Run, *, force: bool = False) -> tuple[Path, Path]:
    """The run's GGUF adapter (``adapter.gguf``, exported when missing) and its base GGUF."""
    run = run_ref if isinstance(run_ref, Run) else get_run(run_ref)
    info = run.info()
    adapter = _adapter_dir(run, info)
    base = _base_gguf(run, info)
    out = run.path / "adapter.gguf"
    stale = (
        out.is_file() and out.stat().st_mtime < (adapter / "adapter_config.json").stat().st_mtime
    )
    if force or stale or not out.is_file():
        export_gguf_adapter(adapter, base, out)
    return out, base


def check_gguf_adapter(
    base_gguf: Path, adapter_gguf: Path, prompt: str = CHECK_PROMPT, scale: float = 1.0
) -> AdapterCheck:
    """Load base and base + adapter in llama.cpp and compare next-token logits on ``prompt``.

    Raises ConfigError when llama.cpp refuses the adapter.
    """
    import llama_cpp
    import numpy as np

    def logits(lora: Path | None) -> tuple[Any, str]:
        try:
            llm = llama_cpp.Llama(
                str(base_gguf),
                n_ctx=256,
                n_threads=1,
                lora_path=str(lora) if lora else None,
                lora_scale=scale,
                verbose=False,
            )
        except (RuntimeError, ValueError) as exc:
            raise ConfigError(
                f"llama.cpp cannot load the adapter {adapter_gguf} onto {base_gguf.name}: {exc}",
                hint="export it again against the run's base GGUF (`hanlin tune export-gguf`)",
            ) from exc
        try:
            tokens = llm.tokenize(prompt.encode("utf-8"), add_bos=True, special=False)
            llm.eval(tokens)
            # without logits_all, llama-cpp-python keeps no scores: read the context's last row
            ptr = llama_cpp.llama_get_logits_ith(llm.ctx, -1)
            row = np.ctypeslib.as_array(ptr, shape=(llm.n_vocab(),)).astype(np.float32)
            top = llm.detokenize([int(row.argmax())]).decode("utf-8", "replace")
        finally:
            llm.close()
        return row, top

    base, base_top = logits(None)
    tuned, tuned_top = logits(adapter_gguf)
    return AdapterCheck(float(np.abs(base - tuned).max()), base_top, tuned_top)


def _prompt_format(run: Run, info: dict[str, Any]) -> str | dict[str, Any]:
    """The serving prompt format matching the run's training template."""
    fmt = info.get("prompt_format")
    if isinstance(fmt, dict | str) and fmt:
        return fmt
    template = info.get("template") or "transcript"
    if template in ("tokenizer", "custom"):
        raise InvalidInputError(
            f"run {run.id} was trained with the '{template}' template, which has no recorded "
            "llama.cpp prompt format",
            hint="train with a named prompt format (template: transcript, qa, chatml, gemma)",
        )
    return {"base": template, "preamble": "", "examples": []}


def _check_name(name: str) -> None:
    if not _NAME.fullmatch(name) or name == DEFAULT_MODEL:
        raise InvalidInputError(
            f"'{name}' cannot be a deployed model name",
            hint="use letters, digits, '.', '_' and '-' (up to 64), not 'gemma3-270m'",
        )


def deploy(
    run_ref: str | Run,
    name: str,
    *,
    lora_scale: float = 1.0,
    replace: bool = False,
    check: bool = True,
    home: Path | None = None,
) -> Deployment:
    """Register the run as ``local/<name>`` in the gateway (see the module docstring).

    Raises InvalidInputError for a bad or taken name (unless ``replace``), a full fine-tune, or a
    run without a GGUF base; ConfigError when llama.cpp cannot load the adapter.
    """
    _check_name(name)
    run = run_ref if isinstance(run_ref, Run) else get_run(run_ref)
    info = run.info()
    existing = deployed_models(home).get(name)
    if existing is not None and not replace and existing.get("run") != run.id:
        raise InvalidInputError(
            f"a model named '{name}' is already deployed (from run {existing.get('run')})",
            hint="pick another --name, or pass --replace",
        )
    prompt_format = _prompt_format(run, info)
    adapter, base = ensure_gguf_adapter(run)
    result = check_gguf_adapter(base, adapter, scale=lora_scale) if check else None
    if result is not None and not result.changed:
        raise InvalidInputError(
            f"the adapter of run {run.id} does not change the model's output",
            hint="the run learnt nothing (check its loss curve), or raise --scale",
        )
    target = (home or hanlin_home()) / "models" / "deployed" / f"{name}.lora.gguf"
    with atomic_path(target) as tmp:
        shutil.copyfile(adapter, tmp)
    entry = {
        "path": str(base),
        "lora_path": str(target),
        "lora_scale": lora_scale,
        "prompt_format": prompt_format,
        "context": gguf_arch(base).context or None,
        "run": run.id,
        "run_dir": str(run.path),
        "method": info.get("method"),
        "deployed": now_iso(),
    }
    update_deployed(name, entry, home)
    return Deployment(name, f"local/{name}", base, target, run.id, result)


def undeploy(name: str, *, home: Path | None = None) -> dict[str, Any]:
    """Remove ``local/<name>``; returns its registry entry. NotFoundError when unknown."""
    known = deployed_models(home)
    if name not in known:
        import difflib

        close = difflib.get_close_matches(name, list(known), n=1)
        raise NotFoundError(
            f"no deployed model '{name}'",
            hint=f"did you mean '{close[0]}'?"
            if close
            else "list them with `hanlin tune deployed`",
        )
    previous = update_deployed(name, None, home) or known[name]
    lora = previous.get("lora_path")
    folder = (home or hanlin_home()) / "models" / "deployed"
    if lora and Path(lora).parent == folder:
        Path(lora).unlink(missing_ok=True)
    return previous


def list_deployed(home: Path | None = None) -> dict[str, dict[str, Any]]:
    """The deployed models, by name."""
    return deployed_models(home)
