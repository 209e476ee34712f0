"""The completion-style chat adapter of the ``llamacpp`` provider: prompt formats, grammars
for structured output and tool calls, and the parsers that turn generated text into events.

Pure Python (llama.cpp is imported only to build grammars); the format and why it was chosen
are described in :mod:`hanlin.models.providers.llamacpp`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from functools import lru_cache
from typing import Any

from hanlin.errors import ConfigError
from hanlin.models.errors import BadRequestError
from hanlin.models.types import ChatOptions, Message, Tool

# --- prompt formats -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PromptFormat:
    """How a conversation becomes one completion prompt.

    Templates hold ``{text}`` (and ``{name}``, the tool's name, in ``tool``). ``preamble`` is the
    system text used when the conversation has none; ``examples`` are (user, assistant)
    exchanges shown before the conversation. ``special`` lists special-token markers the
    templates use: they are parsed as tokens in the prompt and removed from message content.
    """

    system: str = "{text}\n\n"
    user: str = "User: {text}\n"
    assistant: str = "Assistant: {text}\n"
    tool: str = "Tool result ({name}): {text}\n"
    generation: str = "Assistant:"
    preamble: str = ""
    examples: tuple[tuple[str, str], ...] = ()
    stop: tuple[str, ...] = ("\nUser:", "\nAssistant:", "\nTool result")
    special: tuple[str, ...] = ()

    @classmethod
    def from_option(cls, value: str | dict[str, Any]) -> PromptFormat:
        """A built-in format by name, or a table of fields over a ``base`` format.

        Raises ConfigError for an unknown name or field.
        """
        if isinstance(value, str):
            try:
                return PROMPT_FORMATS[value]
            except KeyError:
                raise ConfigError(
                    f"unknown prompt_format '{value}'",
                    hint=f"use one of {', '.join(sorted(PROMPT_FORMATS))}, or a table of "
                    f"fields ({', '.join(f.name for f in fields(cls))})",
                ) from None
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(value) - known - {"base"})
        if unknown:
            raise ConfigError(
                f"unknown prompt_format field(s): {', '.join(unknown)}",
                hint=f"fields are: base, {', '.join(sorted(known))}",
            )
        base = cls.from_option(str(value.get("base", "transcript")))
        changes = {k: v for k, v in value.items() if k != "base"}
        for key in ("stop", "special"):
            if key in changes:
                changes[key] = tuple(changes[key])
        if "examples" in changes:
            changes["examples"] = tuple((str(u), str(a)) for u, a in changes["examples"])
        return cls(**{f.name: changes.get(f.name, getattr(base, f.name)) for f in fields(cls)})


_TRANSCRIPT = PromptFormat(
    preamble="A conversation between a user and a helpful, knowledgeable assistant. "
    "The assistant answers clearly and concisely.",
    examples=(
        (
            "What is the boiling point of water at sea level?",
            "Water boils at 100 °C (212 °F) at sea level.",
        ),
        ("一年有几个月？", "一年有十二个月。"),
    ),
)

PROMPT_FORMATS: dict[str, PromptFormat] = {
    "transcript": _TRANSCRIPT,
    "qa": PromptFormat(
        user="Question: {text}\n",
        assistant="Answer: {text}\n",
        generation="Answer:",
        preamble=_TRANSCRIPT.preamble,
        stop=("\nQuestion:", "\nAnswer:", "\nTool result"),
    ),
    # For instruction-tuned GGUFs a user points at (the base Gemma answers garbage in these).
    "chatml": PromptFormat(
        system="<|im_start|>system\n{text}<|im_end|>\n",
        user="<|im_start|>user\n{text}<|im_end|>\n",
        assistant="<|im_start|>assistant\n{text}<|im_end|>\n",
        tool="<|im_start|>user\nTool result ({name}): {text}<|im_end|>\n",
        generation="<|im_start|>assistant\n",
        stop=("<|im_end|>", "<|im_start|>"),
        special=("<|im_start|>", "<|im_end|>"),
    ),
    "gemma": PromptFormat(
        system="<start_of_turn>user\n{text}<end_of_turn>\n",
        user="<start_of_turn>user\n{text}<end_of_turn>\n",
        assistant="<start_of_turn>model\n{text}<end_of_turn>\n",
        tool="<start_of_turn>user\nTool result ({name}): {text}<end_of_turn>\n",
        generation="<start_of_turn>model\n",
        stop=("<end_of_turn>", "<start_of_turn>"),
        special=("<start_of_turn>", "<end_of_turn>"),
    ),
}


def _fill(template: str, text: str, name: str = "") -> str:
    # str.replace, not str.format: message text may hold braces.
    return template.replace("{name}", name).replace("{text}", text)


def _tools_block(tools: Sequence[Tool], choice: str) -> str:
    lines = ["You can call these tools:"]
    for tool in tools:
        lines.append(f"- {tool.name}: {tool.description or 'no description'}")
        lines.append(f"  arguments (JSON schema): {json.dumps(tool.parameters)}")
    call = '{"name": "<tool name>", "arguments": {<arguments>}}'
    if choice == "auto":
        lines.append(
            f"To call a tool, reply with {call}. "
            'To answer without a tool, reply with {"answer": "<your answer>"}.'
        )
    elif choice == "required":
        lines.append(f"Reply with a tool call: {call}.")
    else:
        lines.append(f'Reply by calling {choice}: {{"name": "{choice}", "arguments": {{...}}}}.')
    return "\n".join(lines)


def _call_json(name: str, arguments: str) -> str:
    try:
        args: Any = json.loads(arguments or "{}")
    except ValueError:
        args = arguments
    return json.dumps({"name": name, "arguments": args}, ensure_ascii=False)


def render_prompt(
    messages: Sequence[Message],
    fmt: PromptFormat,
    tools: Sequence[Tool] = (),
    tool_choice: str = "auto",
) -> str:
    """The completion prompt for a conversation; tools are offered when ``tools`` is given.

    With tools, the examples and earlier plain answers are shown as ``{"answer": ...}`` so every
    assistant turn has the shape the grammar asks for; earlier tool calls are always shown as
    the JSON the model would write, and tool results under the tool's name.
    """

    def clean(text: str) -> str:
        for marker in fmt.special:
            text = text.replace(marker, "")
        return text

    def answer(text: str) -> str:
        return json.dumps({"answer": text}, ensure_ascii=False) if tools else text

    system = "\n\n".join(clean(m.text) for m in messages if m.role == "system" and m.text)
    system = system or fmt.preamble
    if tools:
        block = _tools_block(tools, tool_choice)
        system = f"{system}\n\n{block}" if system else block
    parts = [_fill(fmt.system, system)] if system else []
    for user, reply in fmt.examples:
        parts += [_fill(fmt.user, user), _fill(fmt.assistant, answer(reply))]
    tool_names: dict[str, str] = {}
    for m in messages:
        if m.role == "user":
            parts.append(_fill(fmt.user, clean(m.text)))
        elif m.role == "assistant":
            if m.text:
                parts.append(_fill(fmt.assistant, answer(clean(m.text))))
            for call in m.tool_calls or []:
                tool_names[call.id] = call.name
                parts.append(_fill(fmt.assistant, _call_json(call.name, call.arguments)))
        elif m.role == "tool":
            name = m.name or tool_names.get(m.tool_call_id or "", "tool")
            parts.append(_fill(fmt.tool, clean(m.text), name))
    parts.append(fmt.generation)
    return "".join(parts)


# --- grammars -------------------------------------------------------------------------------

# The converter's string rule lets raw control characters into strings, which strict JSON
# parsers (Python's json.loads among them) reject; this one makes the model escape them.
_LOOSE_CHAR = 'char ::= [^"\\\\] |'
_STRICT_CHAR = 'char ::= [^"\\\\\\x7F\\x00-\\x1F] |'


@lru_cache(maxsize=128)
def grammar_for_schema(schema_json: str) -> str:
    """GBNF accepting exactly the JSON documents that match a JSON schema.

    Raises BadRequestError when llama.cpp's converter cannot express the schema.
    """
    from llama_cpp.llama_grammar import json_schema_to_gbnf

    try:
        gbnf = json_schema_to_gbnf(schema_json)
    except Exception as exc:  # the converter raises bare Exceptions on unsupported schemas
        raise BadRequestError(
            f"llama.cpp cannot turn this JSON schema into a grammar: {exc}",
            hint="simplify the schema (types, properties, required, enum, anyOf, arrays)",
        ) from exc
    return str(gbnf).replace(_LOOSE_CHAR, _STRICT_CHAR)


def answer_schema(options: ChatOptions) -> dict[str, Any]:
    """The JSON schema of a plain answer under the call's ``response_format``."""
    fmt = options.response_format
    if fmt is not None and fmt.type == "json_schema" and fmt.json_schema:
        return fmt.json_schema
    if fmt is not None and fmt.type == "json_object":
        return {"type": "object"}
    return {"type": "string"}


def tool_schema(tools: Sequence[Tool], choice: str, options: ChatOptions) -> dict[str, Any]:
    """The schema of one tool-mode reply: a call of an allowed tool, or (``auto``) an answer."""
    variants: list[dict[str, Any]] = [
        {
            "type": "object",
            "properties": {"name": {"const": t.name}, "arguments": t.parameters},
            "required": ["name", "arguments"],
        }
        for t in tools
        if choice in ("auto", "required", t.name)
    ]
    if choice == "auto":
        variants.append(
            {
                "type": "object",
                "properties": {"answer": answer_schema(options)},
                "required": ["answer"],
            }
        )
    return variants[0] if len(variants) == 1 else {"anyOf": variants}


# --- output parsing -------------------------------------------------------------------------


class StopScanner:
    """Passes generated text on, cutting it at the first stop sequence.

    Holds back what could still become a stop sequence, and trailing whitespace (passed on only
    when more text follows), so streamed and non-streamed text are identical. Leading whitespace
    of the answer is dropped (the prompt ends before the space that starts the answer).
    """

    __slots__ = ("_pending", "_sink", "_started", "_stops")

    def __init__(self, stops: Sequence[str], sink: Callable[[str], None]) -> None:
        self._stops = [s for s in stops if s]
        self._sink = sink
        self._pending = ""
        self._started = False

    def feed(self, text: str) -> bool:
        """Add text; True when a stop sequence was found (the text before it is passed on)."""
        if not self._started:
            text = text.lstrip()
            if not text:
                return False
            self._started = True
        pending = self._pending + text
        cut = min((i for s in self._stops if (i := pending.find(s)) >= 0), default=-1)
        if cut >= 0:
            self._pending = ""
            if head := pending[:cut].rstrip():
                self._sink(head)
            return True
        keep = len(pending) - len(pending.rstrip())
        for stop in self._stops:
            for n in range(min(len(stop) - 1, len(pending)), keep, -1):
                if pending.endswith(stop[:n]):
                    keep = n
                    break
        if keep < len(pending):
            self._sink(pending[: len(pending) - keep])
            self._pending = pending[len(pending) - keep :]
        else:
            self._pending = pending
        return False

    def close(self) -> None:
        """End of output: pass on held-back text unless it is only trailing whitespace."""
        if rest := self._pending.rstrip():
            self._sink(rest)
        self._pending = ""


_ANSWER_HEAD = '{"answer":"'


class ToolOutput:
    """Collects a tool-mode reply; streams a plain ``{"answer": "..."}`` as it is generated.

    ``feed`` takes the generated text piece by piece; the answer's string content goes to
    ``on_text`` decoded, as soon as it is complete enough to decode. ``text`` is everything.
    """

    __slots__ = ("_body_start", "_on_text", "_sent", "_state", "text")

    def __init__(self, on_text: Callable[[str], None], stream_answer: bool = True) -> None:
        self._on_text = on_text
        self.text = ""
        self._state = "head" if stream_answer else "other"  # head | answer | done | other
        self._body_start = 0
        self._sent = 0  # characters of the string body already decoded and sent

    @property
    def streamed_answer(self) -> bool:
        """True when the reply is a plain answer whose text went out through ``on_text``."""
        return self._state in ("answer", "done")

    def feed(self, piece: str) -> None:
        self.text += piece
        if self._state == "head":
            compact = "".join(self.text.split())
            if compact.startswith(_ANSWER_HEAD):
                self._state = "answer"
                self._body_start = self.text.index('"', self.text.index(":")) + 1
            elif not _ANSWER_HEAD.startswith(compact):
                self._state = "other"
        if self._state == "answer":
            self._drain()

    def _drain(self) -> None:
        body = self.text[self._body_start + self._sent :]
        size, closed = _decodable(body)
        if closed:
            self._state = "done"
        if size:
            self._sent += size
            self._on_text(json.loads(f'"{body[:size]}"'))


def _decodable(body: str) -> tuple[int, bool]:
    """How much of a JSON string body decodes on its own, and whether the string ends there.

    The body may be cut inside an escape (``\\``, ``\\u12``) or between the halves of a
    surrogate pair (``\\ud83d\\ude00``); that tail waits for the next token.
    """
    i, n = 0, len(body)
    while i < n:
        if body[i] == '"':
            return i, True
        if body[i] != "\\":
            i += 1
            continue
        if i + 1 >= n:
            break
        if body[i + 1] != "u":
            i += 2
            continue
        if i + 6 > n:
            break
        if 0xD800 <= int(body[i + 2 : i + 6], 16) < 0xDC00:  # high surrogate: wait for its pair
            if i + 8 > n or (body[i + 6 : i + 8] == "\\u" and i + 12 > n):
                break
            i += 12 if body[i + 6 : i + 8] == "\\u" else 6
        else:
            i += 6
    return i, False
