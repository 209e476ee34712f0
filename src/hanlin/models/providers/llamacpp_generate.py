"""Generation on a loaded local model: a request's plan (prompt, grammar, sampling, logit bias,
logprobs, token budget), the prompt evaluated in batches of ``n_batch`` tokens and the
token-by-token loop, both stopping at the cancel flag (a client that leaves during a long
prompt frees the model within one batch, not after the whole prompt), and the stream events.
:mod:`hanlin.models.providers.llamacpp` is the provider around it."""

from __future__ import annotations

import codecs
import json
import random
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from hanlin.models.errors import (
    BadRequestError,
    ContextTooLongError,
    UnsupportedFeatureError,
)
from hanlin.models.providers.llamacpp_models import (
    _LoadedModel,
)
from hanlin.models.providers.llamacpp_prompt import (
    PromptFormat,
    StopScanner,
    ToolOutput,
    answer_schema,
    grammar_for_schema,
    render_prompt,
    tool_schema,
)
from hanlin.models.types import (
    ChatOptions,
    Finish,
    FinishReason,
    Message,
    StreamEvent,
    TextDelta,
    TextPart,
    ToolCallDelta,
    Usage,
    UsageEvent,
)

_Emit = Callable[[StreamEvent], None]

# --- the generation plan and loop -----------------------------------------------------------

_EXTRA = {"top_k", "min_p", "repeat_penalty", "presence_penalty", "frequency_penalty", "grammar"}
#: OpenAI request fields honoured here beyond ChatOptions (they arrive in ``extra_body``);
#: at most one tool call is made per reply, which satisfies either ``parallel_tool_calls``
_OPENAI = {"logit_bias", "logprobs", "top_logprobs", "parallel_tool_calls"}


@dataclass(slots=True)
class _Plan:
    """Everything one call needs, decided before it reaches the model's worker thread."""

    label: str
    prompt: str
    special: bool
    max_tokens: int | None
    stops: tuple[str, ...]
    sampling: dict[str, Any]
    seed: int | None
    #: GBNF text constraining the output, or None
    grammar: str | None = None
    tools: bool = False
    #: in tool mode: the answer is JSON (response_format), sent whole instead of streamed
    json_answer: bool = False
    call_id: str = "call_0"
    #: token id → bias added to its logit (OpenAI's ``logit_bias``, in this model's token ids)
    logit_bias: dict[int, float] | None = None
    #: None: no log probabilities; else how many alternatives to list per token
    top_logprobs: int | None = None


def _plan(label: str, fmt: PromptFormat, messages: Sequence[Message], opts: ChatOptions) -> _Plan:
    for m in messages:
        parts = m.content if isinstance(m.content, list) else []
        if any(not isinstance(p, TextPart) for p in parts):
            raise UnsupportedFeatureError(
                f"{label} is a text-only model and cannot read images, files or audio",
                hint="send text parts only, or use a model that reads them "
                "(see `hanlin models ls`)",
                provider=label,
            )
    extra = dict(opts.extra_body or {})
    unknown = sorted(set(extra) - _EXTRA - _OPENAI)
    if unknown:
        raise BadRequestError(
            f"{label} (llama.cpp) does not support {', '.join(unknown)}",
            hint="besides the standard options it takes "
            f"{', '.join(sorted(_OPENAI | _EXTRA))}; leave the others out",
            provider=label,
            param=unknown[0],
        )
    # llama.cpp's own defaults (the same as Llama.create_completion's)
    try:
        sampling = {
            "temp": 0.8 if opts.temperature is None else opts.temperature,
            "top_p": 0.95 if opts.top_p is None else opts.top_p,
            "top_k": int(extra.get("top_k", 40)),
            "min_p": float(extra.get("min_p", 0.05)),
            "repeat_penalty": float(extra.get("repeat_penalty", 1.0)),
            "presence_penalty": float(extra.get("presence_penalty", 0.0)),
            "frequency_penalty": float(extra.get("frequency_penalty", 0.0)),
        }
    except (TypeError, ValueError) as exc:
        raise BadRequestError(
            f"extra_body sampling options for {label} must be numbers: {exc}", provider=label
        ) from None
    choice = opts.tool_choice or "auto"
    tools = list(opts.tools or []) if choice != "none" else []
    stops = [*fmt.stop, *(opts.stop or [])]
    if tools:  # the stops as they appear inside a JSON string, for answers that run on
        stops += [json.dumps(s, ensure_ascii=False)[1:-1] for s in fmt.stop]
    plan = _Plan(
        label=label,
        prompt=render_prompt(messages, fmt, tools, choice),
        special=bool(fmt.special),
        max_tokens=opts.max_tokens,
        stops=tuple(dict.fromkeys(stops)),
        sampling=sampling,
        seed=opts.seed,
    )
    rf = opts.response_format
    if "grammar" in extra and (tools or (rf is not None and rf.type != "text")):
        raise BadRequestError(
            "extra_body.grammar cannot be combined with tools or response_format",
            hint="each of them constrains the output with its own grammar: pick one",
            provider=label,
        )
    if tools:
        plan.tools = True
        plan.json_answer = rf is not None and rf.type != "text"
        plan.grammar = grammar_for_schema(json.dumps(tool_schema(tools, choice, opts)))
        taken = {c.id for m in messages for c in m.tool_calls or []}
        n = len(taken)
        while f"call_{n}" in taken:
            n += 1
        plan.call_id = f"call_{n}"
    elif isinstance(extra.get("grammar"), str):
        plan.grammar = extra["grammar"]
    elif rf is not None and rf.type != "text":
        plan.grammar = grammar_for_schema(json.dumps(answer_schema(opts)))
    plan.logit_bias = _logit_bias(extra.get("logit_bias"), label)
    plan.top_logprobs = _top_logprobs(extra, label, tools=bool(tools))
    return plan


def _logit_bias(raw: Any, label: str) -> dict[int, float] | None:
    if raw is None:
        return None
    try:
        bias = {int(k): float(v) for k, v in dict(raw).items()}
    except (TypeError, ValueError):
        bias = None
    if bias is None or any(k < 0 or not -100 <= v <= 100 for k, v in bias.items()):
        raise BadRequestError(
            "logit_bias maps token ids to biases from -100 to 100",
            hint=f"use token ids of {label}'s own tokenizer",
            provider=label,
            param="logit_bias",
        )
    return bias or None


def _top_logprobs(extra: dict[str, Any], label: str, *, tools: bool) -> int | None:
    """How many alternatives per token, or None when log probabilities are off."""
    top = extra.get("top_logprobs")
    if top is not None and (not isinstance(top, int) or not 0 <= top <= 20):
        raise BadRequestError(
            "top_logprobs must be an integer from 0 to 20",
            hint="send top_logprobs from 0 to 20 with logprobs: true",
            provider=label,
            param="top_logprobs",
        )
    if not extra.get("logprobs"):
        if top:
            raise BadRequestError(
                "top_logprobs needs logprobs: true",
                hint="add logprobs: true, or leave top_logprobs out",
                provider=label,
                param="top_logprobs",
            )
        return None
    if tools:
        raise BadRequestError(
            f"{label} cannot return logprobs together with tools",
            hint="its tool replies are generated as JSON, not as the answer's tokens: "
            "leave out logprobs or tools",
            provider=label,
            param="logprobs",
        )
    return int(top or 0)


def _token_logprob(llm: Any, token: int, top: int) -> dict[str, Any]:
    """OpenAI's logprob entry for a sampled token, from the logits it was sampled from."""
    import llama_cpp
    import numpy as np

    logits = np.ctypeslib.as_array(llama_cpp.llama_get_logits_ith(llm.ctx, -1), (llm.n_vocab(),))
    shifted = logits.astype(np.float64) - float(logits.max())
    logprobs = shifted - np.log(np.exp(shifted).sum())

    def entry(tok: int) -> dict[str, Any]:
        raw = llm.detokenize([tok])
        text = raw.decode("utf-8", errors="replace")
        return {"token": text, "logprob": float(logprobs[tok]), "bytes": list(raw)}

    alternatives = []
    if top:
        best = np.argpartition(-logprobs, top)[:top]
        alternatives = [entry(int(t)) for t in best[np.argsort(-logprobs[best])]]
    return entry(token) | {"top_logprobs": alternatives}


def _budget(n_prompt: int, max_tokens: int | None, n_ctx: int, label: str, n_train: int) -> int:
    """How many tokens may be generated; ContextTooLongError when the request cannot fit."""
    hint = "shorten the conversation or lower max_tokens" + (
        f", or raise n_ctx in the endpoint options (the model was trained for {n_train})"
        if n_train > n_ctx
        else ""
    )
    if max_tokens is None:
        if n_prompt >= n_ctx:
            raise ContextTooLongError(
                f"the prompt is {n_prompt} tokens; {label} has a context of {n_ctx} tokens",
                hint=hint,
                provider=label,
            )
        return n_ctx - n_prompt
    if n_prompt + max_tokens > n_ctx:
        raise ContextTooLongError(
            f"the prompt ({n_prompt} tokens) plus max_tokens ({max_tokens}) is "
            f"{n_prompt + max_tokens} tokens; {label} has a context of {n_ctx} tokens",
            hint=hint,
            provider=label,
        )
    return max_tokens


def _generate(model: _LoadedModel, plan: _Plan, cancel: threading.Event, emit: _Emit) -> None:
    """Run one call on the model's worker thread, emitting stream events as they come.

    Raises ContextTooLongError before generating when the prompt plus max_tokens cannot fit.
    Stops at the next prompt batch or token once ``cancel`` is set (the caller left), emitting
    nothing more.
    """
    llm = model.llm
    reply = ToolOutput(lambda text: emit(TextDelta(text)), stream_answer=not plan.json_answer)
    sink = reply.feed if plan.tools else (lambda text: emit(TextDelta(text)))
    scanner = StopScanner(plan.stops, sink)
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    finish: FinishReason = "length"
    produced = 0
    hit_stop = False
    logprobs: list[dict[str, Any]] = []
    with model.lock:
        tokens = llm.tokenize(plan.prompt.encode("utf-8"), add_bos=True, special=plan.special)
        budget = _budget(len(tokens), plan.max_tokens, model.n_ctx, plan.label, model.n_train)
        prefix = llm.longest_token_prefix(llm.input_ids[: llm.n_tokens].tolist(), tokens)
        if not _prefill(llm, tokens, cancel):
            return
        llm.set_seed(plan.seed if plan.seed is not None else random.getrandbits(31))
        grammar = model.grammar(plan.grammar, plan.label) if plan.grammar else None
        bias = _bias_processor(plan.logit_bias) if plan.logit_bias else None
        gen = llm.generate(tokens, grammar=grammar, logits_processor=bias, **plan.sampling)
        try:
            for token in gen:
                if model.is_eog(token):
                    finish = "stop"
                    break
                produced += 1
                if plan.top_logprobs is not None:
                    logprobs.append(_token_logprob(llm, token, plan.top_logprobs))
                if scanner.feed(decoder.decode(llm.detokenize([token]))):
                    finish, hit_stop = "stop", True
                    logprobs = logprobs[:-1]  # the token that completed a stop is not sent
                    break
                if produced >= budget or cancel.is_set():
                    break
        finally:
            gen.close()
    if cancel.is_set():
        return
    if not hit_stop:
        scanner.feed(decoder.decode(b"", final=True))
    scanner.close()
    if plan.tools and not reply.streamed_answer:
        finish = _emit_reply(reply.text, plan, finish, emit)
    if plan.top_logprobs is not None:
        emit(TextDelta("", logprobs))
    # llama.cpp re-evaluates the last prompt token even when the whole prompt is cached
    emit(UsageEvent(Usage(len(tokens), produced, min(prefix, len(tokens) - 1))))
    emit(Finish(finish))


def _prefill(llm: Any, tokens: list[int], cancel: threading.Event) -> bool:
    """Evaluate the prompt but its last token, ``n_batch`` tokens at a time, checking ``cancel``
    between batches; False when it was set. ``Llama.generate`` evaluates the whole uncached
    prompt in one uninterruptible call; after this it finds all but the last token cached
    (it always re-evaluates that one for fresh logits) and evaluates only that."""
    head = tokens[:-1]
    cached = llm.longest_token_prefix(llm.input_ids[: llm.n_tokens].tolist(), head)
    llm.n_tokens = cached  # eval() drops the KV cache past n_tokens before it writes
    for start in range(cached, len(head), llm.n_batch):
        if cancel.is_set():
            return False
        llm.eval(head[start : start + llm.n_batch])
    return not cancel.is_set()


def _bias_processor(bias: dict[int, float]) -> Any:
    """A llama.cpp logits processor adding ``bias`` to the logits of its token ids."""
    import llama_cpp
    import numpy as np

    ids = np.fromiter(bias, dtype=np.intc)
    values = np.fromiter(bias.values(), dtype=np.single)

    def apply(input_ids: Any, scores: Any) -> Any:
        scores[ids[ids < len(scores)]] += values[ids < len(scores)]
        return scores

    return llama_cpp.LogitsProcessorList([apply])


def _emit_reply(text: str, plan: _Plan, finish: FinishReason, emit: _Emit) -> FinishReason:
    """Events for a finished tool-mode reply that was not streamed as it came."""
    try:
        data = json.loads(text)
    except ValueError:
        data = None  # cut off by max_tokens: the raw text goes out, with finish "length"
    if isinstance(data, dict) and "name" in data:
        args = json.dumps(data.get("arguments", {}), ensure_ascii=False)
        emit(ToolCallDelta(0, plan.call_id, str(data["name"]), args))
        return "tool_calls"
    if isinstance(data, dict) and "answer" in data:
        value = data["answer"]
        text = json.dumps(value, ensure_ascii=False) if plan.json_answer else str(value)
    if text:
        emit(TextDelta(text))
    return finish


# --- the provider ---------------------------------------------------------------------------
