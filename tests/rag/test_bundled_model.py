"""Generative mode with the real bundled Gemma 3 270M base model (slow: it really generates).

A 270M base model does not follow the answer prompt well, so its words are not checked — only
the contract: evidence first, streamed text, usage, and citations that are valid, renumbered
and contiguous whatever the model wrote.
"""

from __future__ import annotations

import pytest

from hanlin import KnowledgeBase
from hanlin.config import RagSettings
from hanlin.rag.base import AnswerDelta, AnswerDone, RetrievalEvent
from hanlin.rag.citations import cited_numbers
from hanlin.rag.engine import RagEngine
from tests.bundled import require_bundled_model

require_bundled_model()

pytestmark = pytest.mark.slow


def test_generative_answer_with_the_bundled_model(kb: KnowledgeBase) -> None:
    settings = RagSettings(answer_tokens=24, max_context_tokens=600)
    with RagEngine(kb, settings=settings) as engine:
        assert not engine.is_capable("local/gemma3-270m")
        events = list(engine.stream("法国的首都是哪里？", mode="generative"))
    assert isinstance(events[0], RetrievalEvent) and events[0].evidence
    assert isinstance(events[-1], AnswerDone)
    deltas = [e.text for e in events[1:-1] if isinstance(e, AnswerDelta)]
    answer = events[-1].answer
    assert answer.mode == "generative" and answer.model == "local/gemma3-270m"
    assert answer.text == "".join(deltas)
    assert 0 < answer.usage.completion_tokens <= 24 and answer.usage.prompt_tokens > 0
    numbers = [c.n for c in answer.citations]
    assert numbers == list(range(1, len(numbers) + 1))
    assert sorted(cited_numbers(answer.text)) == numbers
    given = {e.chunk_id for e in events[0].evidence}
    assert {c.chunk_id for c in answer.citations} <= given
    # the packed sources fit the budget, counted with the model's own tokenizer
    assert "pack" in answer.timings_ms and "generate" in answer.timings_ms
