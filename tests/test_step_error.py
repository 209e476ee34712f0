"""`StepError`: one error type for "step S of pipeline P failed", for RAG and the agent loop."""

from __future__ import annotations

from hanlin.errors import NotFoundError, StepError
from hanlin.models.errors import RateLimitError
from hanlin.server.errors import classify


def test_a_step_error_keeps_the_cause_its_hint_and_exit_code() -> None:
    cause = NotFoundError("no knowledge base 'docs'", hint="create it with `hanlin kb create docs`")
    error = StepError("RAG", "retrieve", cause)
    assert error.message == "RAG step 'retrieve' failed: no knowledge base 'docs'"
    assert error.hint == cause.hint and error.exit_code == cause.exit_code == 2
    assert error.pipeline == "RAG" and error.step == "retrieve"
    assert error.cause is cause and error.__cause__ is cause


def test_a_numbered_step_with_detail_and_a_foreign_cause() -> None:
    error = StepError("agent", 3, ValueError("bad"), detail="model call to fake/m")
    assert str(error) == "agent step 3 (model call to fake/m) failed: ValueError: bad"
    assert error.hint is None and error.exit_code == 1


def test_the_server_answers_with_the_status_of_the_cause() -> None:
    limited = RateLimitError("slow down", retry_after=2.5, provider="deepseek", status=429)
    status, kind, _, headers = classify(StepError("RAG", "generate", limited))
    assert (status, kind, headers) == (*classify(limited)[:2], {"Retry-After": "3"})
    assert status == 429
