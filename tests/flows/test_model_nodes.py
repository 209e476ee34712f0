"""The nodes that ask a model for a decision or for values — question_classifier and
parameter_extractor — against a fake OpenAI-compatible upstream (a real local server)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from hanlin.config import load_settings
from hanlin.flows import FlowEngine, Workflow
from hanlin.flows.base import WorkflowInvalidError
from hanlin.models.gateway import Gateway
from hanlin.testing.upstream import Reply, UpstreamServer

CHAT = "/v1/chat/completions"


def reply(content: str) -> Reply:
    return Reply.chat(content, prompt_tokens=5, completion_tokens=2)


@pytest.fixture()
def model() -> Iterator[tuple[UpstreamServer, FlowEngine]]:
    with UpstreamServer() as upstream:
        settings = load_settings(
            models={"endpoints": {"fake": {"base_url": upstream.url}}, "retries": 0}
        )
        gateway = Gateway(settings)
        engine = FlowEngine(settings, gateway=gateway)
        yield upstream, engine
        engine.close()
        gateway.close()


TRIAGE = """
name: triage
nodes:
  - {id: start, type: start, inputs: {message: string}}
  - id: classify
    type: question_classifier
    model: fake/m
    query: "{{start.message}}"
    instruction: Billing questions about charges are refunds.
    classes:
      - {id: refund, name: Refund request, description: the customer wants money back}
      - {id: bug, description: something in the product is broken}
  - {id: refund_reply, type: answer, answer: "refund desk ({{classify.class_name}})"}
  - {id: bug_reply, type: answer, answer: "engineering ({{classify.class_id}})"}
  - {id: other, type: answer, answer: "a person will read it"}
edges:
  - start -> classify
  - classify.refund -> refund_reply
  - classify.bug -> bug_reply
  - classify.else -> other
"""


def test_the_classifier_takes_the_branch_of_the_class_the_model_picks(
    model: tuple[UpstreamServer, FlowEngine],
) -> None:
    upstream, engine = model
    wf = Workflow.from_yaml(TRIAGE)
    upstream.app.script(CHAT, reply('{"class_id": "refund"}'))
    run = engine.run(wf, {"message": "I was charged twice, give it back"})
    assert run.status == "done", run.error
    assert run.outputs == {"answer": "refund desk (Refund request)"}
    sent = upstream.app.requests[-1][2]
    schema = sent["response_format"]["json_schema"]["schema"]
    assert schema["properties"]["class_id"]["enum"] == ["refund", "bug", "none"]
    prompt = sent["messages"][-1]["content"]
    assert "I was charged twice" in prompt and "the customer wants money back" in prompt
    assert "Billing questions" in prompt
    skipped = {s.node for s in engine.history(run.id) if s.status == "skipped"}
    assert skipped == {"bug_reply", "other"}

    # a model without structured output that names one class in words still routes
    upstream.app.script(CHAT, reply("This is a bug report."))
    run = engine.run(wf, {"message": "the export button crashes"})
    assert run.outputs == {"answer": "engineering (bug)"}

    upstream.app.script(CHAT, reply('{"class_id": "none"}'))
    assert engine.run(wf, {"message": "hello"}).outputs == {"answer": "a person will read it"}


def test_a_classifier_answer_that_names_no_class_fails_with_the_models_text(
    model: tuple[UpstreamServer, FlowEngine],
) -> None:
    upstream, engine = model
    upstream.app.script(CHAT, reply("I cannot decide"), reply('{"class_id": "bug"}'))
    wf = Workflow.from_yaml(
        TRIAGE.replace("    query:", "    retry: {max_attempts: 2, backoff_s: 0}\n    query:")
    )
    run = engine.run(wf, {"message": "it broke"})
    assert run.status == "done" and run.outputs == {"answer": "engineering (bug)"}
    upstream.app.script(CHAT, reply("I cannot decide"))
    failed = engine.run(Workflow.from_yaml(TRIAGE), {"message": "it broke"})
    assert failed.status == "failed"
    assert "classify" in failed.error and "did not answer JSON" in failed.error


def test_classifier_settings_are_checked_with_the_fix() -> None:
    with pytest.raises(WorkflowInvalidError) as bad:
        Workflow.from_yaml(TRIAGE.replace("id: bug,", "id: else,"))
    assert "may not be called 'else'" in bad.value.message and "classify" in bad.value.message
    with pytest.raises(WorkflowInvalidError) as bad:
        Workflow.from_yaml(
            TRIAGE.replace("classify.bug -> bug_reply", "classify.bugs -> bug_reply")
        )
    assert "no branch 'bugs'" in bad.value.message and "refund, bug, else" in bad.value.message


EXTRACT = """
name: order
nodes:
  - {id: start, type: start, inputs: {text: string}}
  - id: extract
    type: parameter_extractor
    model: fake/m
    query: "{{start.text}}"
    parameters:
      - {name: order_id, type: string, description: the order number, required: true}
      - {name: amount, type: number, description: money asked back}
      - {name: urgent, type: boolean, required: false}
      - {name: channel, type: string, options: [email, phone], required: false}
      - {name: items, type: "array[string]", required: false}
  - id: check
    type: if_else
    cases: [{id: ok, when: "extract.__is_success"}]
  - {id: done, type: answer, answer: "refund {{extract.amount}} for {{extract.order_id}}"}
  - {id: ask, type: answer, answer: "please tell us: {{extract.__reason}}"}
edges: [start -> extract, extract -> check, check.ok -> done, check.else -> ask]
"""


def test_the_extractor_gives_typed_values_and_reports_a_missing_one(
    model: tuple[UpstreamServer, FlowEngine],
) -> None:
    upstream, engine = model
    wf = Workflow.from_yaml(EXTRACT)
    found = {"order_id": "A-17", "amount": "12.5", "urgent": "yes", "channel": None, "items": "mug"}
    upstream.app.script(CHAT, reply(json.dumps(found)))
    run = engine.run(wf, {"text": "Order A-17: refund 12.5 for the mug, urgently"})
    assert run.status == "done", run.error
    assert run.outputs == {"answer": "refund 12.5 for A-17"}
    outputs = next(s.outputs for s in engine.history(run.id) if s.node == "extract")
    assert outputs["amount"] == 12.5 and outputs["urgent"] is True
    assert outputs["items"] == ["mug"] and outputs["channel"] is None
    schema = upstream.app.requests[-1][2]["response_format"]["json_schema"]["schema"]
    assert schema["required"] == ["order_id", "amount", "urgent", "channel", "items"]
    assert {"type": "null"} in schema["properties"]["amount"]["anyOf"]

    missing: dict[str, Any] = {**found, "order_id": None, "amount": "lots", "channel": "fax"}
    upstream.app.script(CHAT, reply(json.dumps(missing)))
    run = engine.run(wf, {"text": "refund me"})
    assert run.status == "done", run.error
    answer = run.outputs["answer"]
    assert answer.startswith("please tell us: order_id: required, but not found")
    assert "amount: 'lots' is not a number" in answer
    assert "channel: 'fax' is not one of ['email', 'phone']" in answer


def test_extractor_settings_are_checked() -> None:
    with pytest.raises(WorkflowInvalidError, match=r"parameters\.0\.type"):
        Workflow.from_yaml(EXTRACT.replace("type: string, description: the order", "type: str,"))
    with pytest.raises(WorkflowInvalidError, match="has no output 'amout'"):
        Workflow.from_yaml(EXTRACT.replace("{{extract.amount}}", "{{extract.amout}}"))
