"""Running workflows: each node type with real parts, retries, timeouts, error strategies,
recorded side effects, human input, rerun from a node, cancel."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hanlin.config import load_settings
from hanlin.errors import ConflictError, InvalidInputError
from hanlin.flows import FlowEngine, Workflow
from hanlin.flows.events import NodeFinishedEvent, NodeRetryEvent, NodeTextEvent, event_dict
from hanlin.models.gateway import Gateway
from hanlin.testing.upstream import Reply, UpstreamServer

from .conftest import CountingServer


def post(url: str, extra: str = "") -> str:
    return f"""
name: post
nodes:
  - {{id: start, type: start, inputs: {{msg: string}}}}
  - {{id: send, type: http_request, method: POST, url: "{url}",
     body: {{m: "{{{{start.msg}}}}"}}{extra}}}
  - {{id: out, type: answer, answer: "{{{{send.json.echo}}}}"}}
"""


def test_http_post_runs_once_and_a_rerun_from_a_later_node_does_not_repeat_it(
    engine: FlowEngine, counting: CountingServer
) -> None:
    run = engine.run(Workflow.from_yaml(post(counting.url)), {"msg": "hi"})
    assert run.status == "done", run.error
    assert json.loads(run.outputs["answer"]) == {"m": "hi"}
    assert counting.total == 1 and list(counting.keys) == [f"{run.id}:send"]
    again = engine.drive(engine.rerun(run.id, "out").id)
    assert again.status == "done" and again.parent == run.id and counting.total == 1
    redo = engine.drive(engine.rerun(run.id, "send", {"msg": "new"}).id)
    assert json.loads(redo.outputs["answer"]) == {"m": "new"} and counting.total == 2
    assert engine.state_at(run.id, 2)["send"]["status"] == 200
    assert [s.node for s in engine.history(run.id)] == ["start", "send", "out"]


def test_retries_with_backoff_then_success(engine: FlowEngine, counting: CountingServer) -> None:
    counting.fail_first = 2
    wf = Workflow.from_yaml(post(counting.url, ", retry: {max_attempts: 3, backoff_s: 0.01}"))
    events = list(engine.stream(engine.start(wf, {"msg": "x"}).id))
    retries = [e for e in events if isinstance(e, NodeRetryEvent)]
    assert [r.attempt for r in retries] == [1, 2] and "HTTP 500" in retries[0].error
    assert retries[1].wait_s == pytest.approx(0.02)
    assert counting.total == 3 and events[-1].status == "done"


def test_error_strategies(engine: FlowEngine) -> None:
    blocked = "http://10.1.2.3/hook"  # the SSRF guard refuses it before sending anything
    failed = engine.run(Workflow.from_yaml(post(blocked)), {"msg": "x"})
    assert failed.status == "failed"
    assert "step 'send'" in failed.error and "10.1.2.3" in failed.error
    default = post(blocked, ", on_error: default, default: {json: {echo: fallback}}")
    run = engine.run(Workflow.from_yaml(default), {"msg": "x"})
    assert run.status == "done" and run.outputs == {"answer": "fallback"}
    branch = (
        post(blocked, ", on_error: branch")
        + """
  - {id: oops, type: answer, answer: "failed: {{send.error}}"}
edges: [start -> send, send -> out, send.error -> oops]
"""
    )
    run = engine.run(Workflow.from_yaml(branch), {"msg": "x"})
    assert run.status == "done" and run.outputs["answer"].startswith("failed: ")
    assert [s.status for s in engine.history(run.id)] == ["done", "failed", "skipped", "done"]


def test_a_timeout_fails_the_attempt(engine: FlowEngine, counting: CountingServer) -> None:
    counting.delay = 1.0
    run = engine.run(Workflow.from_yaml(post(counting.url, ", timeout_s: 0.2")), {"msg": "x"})
    assert run.status == "failed" and "timed out after 0.2 s" in run.error


def test_a_failed_run_resumes_from_the_failed_node(
    engine: FlowEngine, counting: CountingServer
) -> None:
    counting.fail_first = 1
    run = engine.run(Workflow.from_yaml(post(counting.url)), {"msg": "y"})
    assert run.status == "failed" and "HTTP 500" in run.error
    resumed = engine.drive(run.id)
    assert resumed.status == "done" and counting.total == 2


LOOPS = """
name: loops
nodes:
  - {id: start, type: start, inputs: {words: array}}
  - id: each
    type: iteration
    items: "{{start.words}}"
    parallelism: 2
    body:
      nodes:
        - {id: up, type: template, template: "{{ each.index }}:{{ each.item | upper }}"}
    output: "{{up.output}}"
  - id: count
    type: loop
    variables: {n: 0}
    body:
      nodes:
        - id: inc
          type: code
          code: "def main(n):\\n    return {'n': n + 2}"
          inputs: {n: "{{count.n}}"}
          outputs: {n: integer}
    update: {n: "{{inc.n}}"}
    until: "count.n >= 5"
    max_iterations: MAX
  - id: out
    type: end
    outputs: {words: "{{each.output}}", n: "{{count.n}}", rounds: "{{count.iterations}}"}
"""


def test_iteration_loop_and_code(engine: FlowEngine) -> None:
    run = engine.run(Workflow.from_yaml(LOOPS.replace("MAX", "10")), {"words": ["a", "b", "c"]})
    assert run.status == "done", run.error
    assert run.outputs == {"words": ["0:A", "1:B", "2:C"], "n": 6, "rounds": 3}
    steps = [s.node for s in engine.history(run.id)]
    assert "each[2].up" in steps and "count[0].inc" in steps
    stuck = engine.run(Workflow.from_yaml(LOOPS.replace("MAX", "2")), {"words": []})
    assert stuck.status == "failed" and "reached max_iterations (2)" in stuck.error


def test_tool_node_and_sub_workflow(engine: FlowEngine) -> None:
    folder = engine.settings.home / "workflows"
    folder.mkdir(parents=True)
    (folder / "add.yaml").write_text(
        """
nodes:
  - {id: start, type: start, inputs: {a: integer, b: integer}}
  - {id: calc, type: tool, tool: calculator, arguments: {expression: "{{start.a}} + {{start.b}}"}}
  - {id: end, type: end, outputs: {sum: "{{calc.result}}"}}
""",
        "utf-8",
    )
    wf = Workflow.from_yaml(
        """
name: outer
nodes:
  - {id: start, type: start, inputs: {x: integer}}
  - {id: sub, type: sub_workflow, workflow: add, inputs: {a: "{{start.x}}", b: 40}}
  - {id: out, type: answer, answer: "sum={{sub.sum}}"}
"""
    )
    run = engine.run(wf, {"x": 2})
    assert run.status == "done", run.error
    assert run.outputs == {"answer": "sum=42"}
    assert "sub/calc" in [s.node for s in engine.history(run.id)]


REVIEW = """
name: review
nodes:
  - {id: start, type: start, inputs: {draft: string}}
  - {id: ask, type: human_input, kind: approve, prompt: "Publish {{start.draft}}?"}
  - id: check
    type: if_else
    cases: [{id: ok, when: {var: "{{ask.approved}}", op: "==", value: true}}]
  - {id: published, type: answer, answer: "published {{start.draft}}"}
  - {id: dropped, type: answer, answer: "dropped: {{ask.comment}}"}
edges: [start -> ask, ask -> check, check.ok -> published, check.else -> dropped]
"""


def test_human_input_pauses_persists_and_checks_the_answer(engine: FlowEngine) -> None:
    run = engine.run(Workflow.from_yaml(REVIEW), {"draft": "post 1"})
    assert run.status == "paused" and run.pending is not None
    assert run.pending.prompt == "Publish post 1?" and run.pending.node == "ask"
    other = FlowEngine(engine.settings)  # another engine, as after a restart
    try:
        with pytest.raises(InvalidInputError, match="approved"):
            other.answer(run.id, {"approve": "yes"})
        assert other.store.get_run(run.id).status == "paused"
        other.answer(run.id, {"approved": False, "comment": "too long"})
        done = other.drive(run.id)
        assert done.status == "done" and done.outputs == {"answer": "dropped: too long"}
        with pytest.raises(ConflictError):
            other.answer(run.id, {"approved": True})
    finally:
        other.close()


def test_cancel_a_paused_run(engine: FlowEngine) -> None:
    run = engine.run(Workflow.from_yaml(REVIEW), {"draft": "d"})
    assert engine.cancel(run.id).status == "cancelled"
    with pytest.raises(ConflictError, match="cancelled"):
        engine.drive(run.id)


def test_bad_inputs_are_refused_before_a_run_is_recorded(engine: FlowEngine) -> None:
    wf = Workflow.from_yaml(REVIEW)
    with pytest.raises(InvalidInputError, match="missing workflow input 'draft'"):
        engine.start(wf, {})
    with pytest.raises(InvalidInputError, match="must be string"):
        engine.start(wf, {"draft": [1]})
    assert engine.store.list_runs() == []


def test_llm_node_streams_and_parses_structured_output(tmp_path: Path) -> None:
    with UpstreamServer() as upstream:
        settings = load_settings(
            models={"endpoints": {"fake": {"base_url": upstream.url}}, "retries": 0}
        )
        gateway = Gateway(settings)
        engine = FlowEngine(settings, gateway=gateway)
        wf = Workflow.from_yaml(
            """
name: ask
nodes:
  - {id: start, type: start, inputs: {q: string}}
  - {id: chat, type: llm, model: fake/m, system: "Be brief.", prompt: "Q: {{start.q}}"}
  - id: pick
    type: llm
    model: fake/m
    prompt: "Classify {{chat.text}}"
    output_schema: {type: object, properties: {label: {type: string}}, required: [label]}
  - {id: out, type: end, outputs: {text: "{{chat.text}}", label: "{{pick.structured.label}}"}}
"""
        )
        upstream.app.script(
            "/v1/chat/completions",
            Reply(sse=None, json=None, status=200) if False else _stream_reply(),
            _json_reply('{"label": "greeting"}'),
        )
        run = engine.start(wf, {"q": "hello?"})
        events = list(engine.stream(run.id))
        text = "".join(e.text for e in events if isinstance(e, NodeTextEvent))
        final = engine.store.get_run(run.id)
        engine.close()
        gateway.close()
    assert final.status == "done", final.error
    assert text == "Hi there" and final.outputs == {"text": "Hi there", "label": "greeting"}
    first = upstream.app.requests[0][2]
    assert first["messages"][0] == {"role": "system", "content": "Be brief."}
    assert first["messages"][1]["content"] == "Q: hello?"
    assert upstream.app.requests[1][2]["response_format"]["type"] == "json_schema"
    assert all(isinstance(json.dumps(event_dict(e), default=str), str) for e in events)


def _stream_reply() -> Reply:
    head = '{"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":'
    pieces = [
        f'data: {head}[{{"index":0,"delta":{{"content":"{p}"}},"finish_reason":null}}]}}'
        for p in ("Hi", " there")
    ]
    done = f'data: {head}[{{"index":0,"delta":{{}},"finish_reason":"stop"}}]}}'
    return Reply(sse=[*pieces, done, "data: [DONE]"])


def _json_reply(content: str) -> Reply:
    return Reply.chat(content, prompt_tokens=3, completion_tokens=3)


@pytest.mark.slow
def test_retrieval_from_a_real_knowledge_base(engine: FlowEngine, tmp_path: Path) -> None:
    from hanlin import KnowledgeBase

    doc = tmp_path / "garden.md"
    doc.write_text(
        "# Gardening\n\nTomatoes need full sun and regular watering.\n\n"
        "## Soil\n\nLoamy soil with compost gives the best harvest of tomatoes.\n",
        "utf-8",
    )
    with KnowledgeBase.create("garden", settings=engine.settings) as kb:
        assert kb.add(doc).ok
    wf = Workflow.from_yaml(
        """
name: rag
nodes:
  - {id: start, type: start, inputs: {question: string}}
  - {id: find, type: knowledge_retrieval, kbs: [garden], query: "{{start.question}}", k: 2}
  - id: compose
    type: template
    template: "{% for r in find.results %}- {{ r.text }}
      ({{ r.source.split('/')[-1] }})\\n{% endfor %}"
  - {id: out, type: end, outputs: {context: "{{compose.output}}", n: "{{find.count}}"}}
""",
        engine.settings,
    )
    run = engine.run(wf, {"question": "what soil do tomatoes need"})
    assert run.status == "done", run.error
    assert run.outputs["n"] >= 1 and "compost" in run.outputs["context"]
    assert "garden.md" in run.outputs["context"]
    with pytest.raises(Exception, match="knowledge base 'nope' does not exist"):
        Workflow.from_yaml(wf.to_yaml().replace("- garden", "- nope"), engine.settings)
    finished = [e for e in engine.stream(engine.start(wf, {"question": "sun"}).id)]
    assert any(isinstance(e, NodeFinishedEvent) and e.node == "find" for e in finished)


def test_a_recorded_effect_is_replayed_not_sent_again(
    engine: FlowEngine, counting: CountingServer
) -> None:
    # what a process killed after recording the request's result, before its checkpoint, leaves
    run = engine.start(Workflow.from_yaml(post(counting.url)), {"msg": "once"})
    recorded = {"status": 200, "body": "", "json": {"echo": "from before"}, "headers": {}}
    engine.store.record_effect(run.id, "node:send", {"outputs": recorded, "branch": None})
    events = list(engine.stream(run.id))
    assert counting.total == 0
    assert any(isinstance(e, NodeFinishedEvent) and e.status == "replayed" for e in events)
    assert engine.store.get_run(run.id).outputs == {"answer": "from before"}
