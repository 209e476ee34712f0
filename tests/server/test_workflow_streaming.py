"""``model: "workflow:NAME"`` with ``stream: true`` through the official OpenAI SDK: the answer
node's llm text arrives token by token as the model writes it — only the llm node the answer
reads, held back until a branch has chosen the answer."""

from __future__ import annotations

import time
from collections.abc import Callable

import openai
import pytest

from hanlin.config import Settings
from hanlin.server.app import create_app
from hanlin.testing import recordings as rec
from hanlin.testing.upstream import Reply, UpstreamServer
from tests.server.conftest import MODEL, LiveServer
from tests.server.test_workflows_api import write_workflows

PATH = "/v1/chat/completions"
PIECES = ["Oolong ", "grows ", "in ", "Fujian ", "and ", "Taiwan."]
DIRECT = f"""
name: direct
nodes:
  - {{id: start, type: start, inputs: {{question: string}}}}
  - {{id: ask, type: llm, model: {MODEL}, prompt: "{{{{start.question}}}}"}}
  - {{id: out, type: answer, answer: "Answer: {{{{ask.text}}}} (checked)"}}
"""
# notes feeds ask; a branch decides whether the answer reads ask
BRANCHED = f"""
name: branched
nodes:
  - {{id: start, type: start, inputs: {{question: string}}}}
  - {{id: notes, type: llm, model: {MODEL}, prompt: "Notes on {{{{start.question}}}}"}}
  - {{id: ask, type: llm, model: {MODEL}, prompt: "Answer from {{{{notes.text}}}}"}}
  - {{id: check, type: if_else, cases: [{{id: said, when: "ask.text | length > 0"}}]}}
  - {{id: out, type: answer, answer: "{{{{ask.text}}}}"}}
  - {{id: nothing, type: answer, answer: "no answer"}}
edges:
  - start -> notes
  - notes -> ask
  - ask -> check
  - check.said -> out
  - check.else -> nothing
"""


def slow_stream(pieces: list[str], delay: float) -> Reply:
    reply = rec.openai_text_stream("openai", pieces)
    reply.chunk_delay = delay
    return reply


@pytest.mark.slow
def test_the_answer_streams_token_by_token_through_the_openai_sdk(
    fresh_settings: Callable[..., Settings], upstream: UpstreamServer
) -> None:
    settings = fresh_settings()
    write_workflows(settings, direct=DIRECT, branched=BRANCHED)
    server = LiveServer(create_app(settings))
    try:
        client = openai.OpenAI(base_url=server.url + "/v1", api_key="unused", max_retries=0)
        upstream.app.script(PATH, slow_stream(PIECES, 0.15))
        stream = client.chat.completions.create(
            model="workflow:direct",
            messages=[{"role": "user", "content": "Where does oolong grow?"}],
            stream=True,
        )
        arrived: list[tuple[float, str]] = []
        for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                arrived.append((time.monotonic(), chunk.choices[0].delta.content))
        text = "".join(t for _, t in arrived)
        assert text == "Answer: " + "".join(PIECES) + " (checked)"
        assert len(arrived) >= len(PIECES)  # a chunk per token, not one at the end
        assert arrived[0][1].startswith("Answer: Oolong")
        # the first token came while the model was still writing (≥ 5 gaps of 0.15 s later)
        assert arrived[-1][0] - arrived[0][0] > 0.5

        # the first llm node's text is not the reply; the second's waits for the branch
        upstream.app.script(
            PATH, slow_stream(["private ", "notes"], 0.0), slow_stream(PIECES, 0.05)
        )
        stream = client.chat.completions.create(
            model="workflow:branched",
            messages=[{"role": "user", "content": "oolong"}],
            stream=True,
        )
        pieces = [
            c.choices[0].delta.content for c in stream if c.choices and c.choices[0].delta.content
        ]
        assert "".join(pieces) == "".join(PIECES)
        assert not any("notes" in p for p in pieces)

        # not streamed: the same answer in one message
        upstream.app.script(PATH, slow_stream(PIECES, 0.0))
        reply = client.chat.completions.create(
            model="workflow:direct", messages=[{"role": "user", "content": "again"}]
        )
        assert reply.choices[0].message.content == "Answer: " + "".join(PIECES) + " (checked)"
    finally:
        server.stop()
