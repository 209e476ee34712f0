"""Which llm text a streamed ``workflow:`` reply sends, and when (``AnswerStream``), fed the
events a run emits."""

from __future__ import annotations

from hanlin.flows import Workflow
from hanlin.flows.answer_stream import AnswerStream
from hanlin.flows.events import NodeStartedEvent, NodeTextEvent

BRANCHED = """
name: b
nodes:
  - {id: start, type: start, inputs: {q: string}}
  - {id: ask, type: llm, prompt: "{{start.q}}"}
  - {id: check, type: if_else, cases: [{id: ok, when: "ask.text | length > 3"}]}
  - {id: out, type: answer, answer: "Said: {{ask.text}}!"}
  - {id: short, type: answer, answer: "too short"}
edges: [start -> ask, ask -> check, check.ok -> out, check.else -> short]
"""


def feed(stream: AnswerStream, *events: object) -> str:
    return "".join(stream.feed(e) for e in events)  # type: ignore[arg-type]


def test_text_behind_a_branch_waits_for_its_answer_then_the_rest_follows() -> None:
    stream = AnswerStream(Workflow.from_yaml(BRANCHED))
    held = feed(stream, NodeStartedEvent("ask", "llm"), NodeTextEvent("ask", "Hel"))
    held += feed(stream, NodeTextEvent("ask", "lo"), NodeStartedEvent("check", "if_else"))
    assert held == ""  # the branch had not chosen this answer yet
    assert feed(stream, NodeStartedEvent("out", "answer")) == "Said: Hello"
    assert stream.rest("Said: Hello!") == "!"


def test_nothing_streams_when_the_other_answer_is_chosen() -> None:
    stream = AnswerStream(Workflow.from_yaml(BRANCHED))
    sent = feed(stream, NodeTextEvent("ask", "Hi"), NodeStartedEvent("short", "answer"))
    assert sent == "" and stream.rest("too short") == "too short"


def test_a_retried_model_call_drops_the_text_of_the_failed_attempt() -> None:
    stream = AnswerStream(Workflow.from_yaml(BRANCHED))
    feed(stream, NodeTextEvent("ask", "broken"), NodeStartedEvent("ask", "llm", attempt=2))
    feed(stream, NodeTextEvent("ask", "Fine"))
    assert feed(stream, NodeStartedEvent("out", "answer")) == "Said: Fine"


def test_a_plain_path_streams_at_once_and_a_diverging_reply_follows_whole() -> None:
    direct = BRANCHED.replace("check.ok -> out, check.else -> short", "check.ok -> short")
    direct = direct.replace("ask -> check", "ask -> out, ask -> check")
    stream = AnswerStream(Workflow.from_yaml(direct))
    assert feed(stream, NodeTextEvent("ask", "Hey")) == "Said: Hey"
    assert stream.rest("Said: Hey!") == "!"
    assert stream.rest("something else") == "\n\nsomething else"
