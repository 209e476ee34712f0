"""Importing Dify DSL exports (tests/flows/dify/, written in Dify's export format): each shape
converts and validates, the offline-runnable ones run, an unsupported node is named with its
reason, and input that is not a Dify workflow app is refused saying what is supported."""

from __future__ import annotations

from pathlib import Path

import pytest

from hanlin.cli.main import main
from hanlin.config import load_settings
from hanlin.errors import InvalidInputError
from hanlin.flows import FlowEngine, Workflow
from hanlin.flows.dify import import_dify
from hanlin.models.gateway import Gateway
from hanlin.testing.capable_model import capable_reply
from hanlin.testing.upstream import FakeUpstream, UpstreamServer
from tests.flows.conftest import CountingServer

DIFY = Path(__file__).parent / "dify"


def dsl(name: str) -> str:
    return (DIFY / name).read_text("utf-8")


def test_a_chatflow_with_retrieval_llm_and_answer() -> None:
    result = import_dify(
        dsl("kb_chatflow.yml"), kbs={"6b1a7b8e-6d9f-4bd1-9c43-1a2b3c4d5e6f": "handbook"}
    )
    assert result.mode == "advanced-chat" and result.unconverted == []
    wf = Workflow.from_dict(result.definition)
    assert wf.name == "Handbook-QA"
    assert [n.type for n in wf.spec.nodes] == ["start", "knowledge_retrieval", "llm", "answer"]
    retrieve, llm = wf.spec.nodes[1].config, wf.spec.nodes[2].config
    assert retrieve["kbs"] == ["handbook"] and retrieve["query"] == "{{start.query}}"
    assert retrieve["k"] == 4
    # sys.query is the start node's input; {{#context#}} is the retrieval's numbered text
    assert wf.spec.nodes[0].config["inputs"]["query"]["type"] == "string"
    assert "{{knowledge_retrieval.text}}" in llm["system"] and llm["prompt"] == "{{start.query}}"
    assert llm["model"] == "openai/gpt-4o-mini" and llm["temperature"] == 0.2
    assert [n.field for n in result.notes] == ["memory"]


def test_a_branching_workflow_converts_and_runs(
    engine: FlowEngine, counting: CountingServer
) -> None:
    text = dsl("branching_workflow.yml").replace("http://HOOK", counting.url)
    result = import_dify(text)
    assert result.unconverted == [] and result.notes == []
    wf = Workflow.from_dict(result.definition)
    assert [str(e) for e in wf.spec.edges or []][2:4] == [
        "big.case_1 -> big_message",
        "big.else -> small_message",
    ]
    big = engine.run(wf, {"amount": 80, "customer": "Ada"})
    assert big.status == "done", big.error
    assert big.outputs == {"message": "BIG order from Ada: 160.0", "status": 200}
    small = engine.run(wf, {"amount": 10, "customer": "Bo"})
    assert small.outputs == {"message": "small order from Bo", "status": 200}
    assert counting.total == 2


def test_question_classifier_and_iteration_run_on_a_fake_model() -> None:
    result = import_dify(dsl("classify_iterate.yml"), model="fake/m")
    assert result.unconverted == []
    wf = Workflow.from_dict(result.definition)
    node = {n.id: n for n in wf.spec.nodes}
    assert node["classify"].type == "question_classifier"
    assert node["each_line"].config["parallelism"] == 2
    assert list(wf.graph.order)[:2] == ["start", "classify"]
    with UpstreamServer(FakeUpstream(responder=capable_reply)) as upstream:
        settings = load_settings(
            models={"endpoints": {"fake": {"base_url": upstream.url}}, "retries": 0}
        )
        gateway = Gateway(settings)
        engine = FlowEngine(settings, gateway=gateway)
        try:
            run = engine.run(wf, {"query": "buy milk; call Bo"})
        finally:
            engine.close()
            gateway.close()
    assert run.status == "done", run.error
    answer = (run.outputs or {})["answer"]
    # the fake model picks the first class: one numbered gist per line, in order
    assert "'1. " in answer and "'2. " in answer and "Not a task list" not in answer, answer


def test_an_unsupported_node_is_named_and_the_rest_converted() -> None:
    result = import_dify(dsl("plugin_tool.yml"))
    (missing,) = result.unconverted
    assert (missing.node, missing.dify_type, missing.title) == ("deepl", "tool", "DeepL")
    assert "plugin tool acme/deepl/deepl/translate has no Hanlin counterpart" in missing.reason
    node = {n["id"]: n for n in result.definition["nodes"]}
    assert node["now"] == {"id": "now", "type": "tool", "title": "Now", "tool": "current_time",
                           "arguments": {}}  # fmt: skip
    assert (
        node["deepl"]["type"] == "unconverted" and node["deepl"]["dify"]["tool_name"] == "translate"
    )
    with pytest.raises(InvalidInputError, match="node 'deepl': unknown node type 'unconverted'"):
        Workflow.from_dict(result.definition)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("app: [unclosed", "not valid YAML"),
        ("name: x\nnodes: []\n", "not a Dify app export"),
        (
            "app: {mode: agent-chat, name: a}\nkind: app\nmodel_config: {}\n",
            "'agent-chat' app is not a workflow",
        ),
        ("app: {mode: completion, name: a}\nkind: app\n", "'completion' app is not a workflow"),
        ("app: {mode: workflow, name: a}\nkind: app\nworkflow: {}\n", "no `workflow.graph.nodes`"),
    ],
)
def test_input_that_is_not_a_dify_workflow_is_refused(text: str, message: str) -> None:
    with pytest.raises(InvalidInputError, match=message) as caught:
        import_dify(text)
    assert "workflow or chatflow export" in (caught.value.hint or "")


def test_the_cli_writes_the_workflow_and_names_what_it_left(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "t.yaml"
    try:
        main(["workflow", "import", str(DIFY / "plugin_tool.yml"), "-o", str(out)])
    except SystemExit as exc:
        assert not exc.code
    err = capsys.readouterr().err
    assert "not converted deepl (tool, 'DeepL')" in err and "not valid yet" in err
    assert out.read_text("utf-8").startswith("name: plugin_tool\n")
    try:
        main(["workflow", "import", str(DIFY / "classify_iterate.yml")])
    except SystemExit as exc:
        assert not exc.code
    assert "valid" in capsys.readouterr().err
    assert (load_settings().home / "workflows" / "triage.yaml").is_file()
