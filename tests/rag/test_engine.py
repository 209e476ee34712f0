"""The RAG engine as a user meets it: answers that quote and cite the right place, refusals in
the question's language, follow-ups, streaming, packing, and generated answers from a fake
chat model whose citations are cleaned up."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from hanlin import KnowledgeBase, ask
from hanlin.config import RagSettings, Settings, load_settings
from hanlin.errors import StepError
from hanlin.knowledge.loaders import LoaderOptions, load_file
from hanlin.models.errors import ModelError
from hanlin.models.gateway import Gateway
from hanlin.rag.base import Answer, AnswerDelta, AnswerDone, Citation, RetrievalEvent
from hanlin.rag.citations import cited_numbers
from hanlin.rag.engine import RagEngine
from hanlin.rag.select import span_overlap
from hanlin.rag.templates import template
from hanlin.testing.upstream import Reply, UpstreamServer
from hanlin.text import count_tokens
from tests.conftest import use_home
from tests.rag.conftest import DANUBE, chat_json, sse

FAKE = "fake/chat-model"


def document_text(citation: Citation) -> str:
    """The text of the cited document as Hanlin loaded it (offsets refer to it).

    Citations name a file relative to the folder it was added from (``rag-docs0/france.md``),
    never by its absolute server path."""
    path = Path(citation.source)
    assert not path.is_absolute(), "citations must not show server paths"
    (doc,) = load_file(_DOCS_PARENT[0] / path, LoaderOptions())
    return doc.text


_DOCS_PARENT: list[Path] = []


@pytest.fixture(autouse=True)
def _docs_parent(docs_dir: Path) -> None:
    """Where cited folders lie: the parent of the documents' folder."""
    _DOCS_PARENT[:] = [docs_dir.parent]


def assert_points_at_its_text(c: Citation) -> None:
    assert document_text(c)[c.char_start : c.char_end] == c.snippet


def events_of(engine: RagEngine, question: str, **kw: Any) -> tuple[list[Any], Answer]:
    events = list(engine.stream(question, **kw))
    assert isinstance(events[0], RetrievalEvent)
    assert all(isinstance(e, AnswerDelta) for e in events[1:-1]) and len(events) >= 3
    assert isinstance(events[-1], AnswerDone)
    answer = events[-1].answer
    assert "".join(e.text for e in events[1:-1] if isinstance(e, AnswerDelta)) == answer.text
    return events, answer


def assert_contiguous(answer: Answer) -> None:
    numbers = [c.n for c in answer.citations]
    assert numbers == list(range(1, len(numbers) + 1))
    assert sorted(cited_numbers(answer.text)) == numbers


# -- extractive answers (the offline default) -------------------------------------------------


def test_chinese_question_gets_a_quoted_fact_citing_its_chunk(kb: KnowledgeBase) -> None:
    answer = ask(kb, "法国的首都是哪里？")
    assert answer.mode == "extractive" and answer.model is None
    assert any("gemma3-270m" in n and "base model" in n for n in answer.notes)
    assert answer.text.startswith("资料原文摘录") and "「法国的首都是巴黎。」[1]" in answer.text
    (c,) = answer.citations
    assert c.n == 1 and c.source.endswith("france.md") and c.heading_path == ["法国", "首都"]
    assert c.title == "法国" and c.page is None and "巴黎" in c.snippet
    assert_points_at_its_text(c)
    ev = answer.evidence[0]
    assert ev.chunk_id == c.chunk_id and set(ev.scores) >= {"dense", "keyword"}
    assert {"retrieve", "extract", "total"} <= set(answer.timings_ms)


def test_english_question_english_answer_with_heading_and_span(kb: KnowledgeBase) -> None:
    answer = ask(kb, "Where does the Danube rise?")
    assert answer.text.startswith("From the sources:")
    assert "Black Forest" in answer.text and answer.text.rstrip().endswith("[1]")
    c = answer.citations[0]
    assert c.source.endswith("danube.md") and c.heading_path[-1] == "Course"
    assert_points_at_its_text(c)


def test_traditional_chinese_question_gets_traditional_wording(kb: KnowledgeBase) -> None:
    answer = ask(kb, "法國的首都是哪裡？")
    assert answer.text.startswith("資料原文摘錄") and "巴黎" in answer.text
    assert "「法国的首都是巴黎。」" in answer.text  # the quote itself is never altered


def test_pdf_citation_has_the_page(kb: KnowledgeBase) -> None:
    answer = ask(kb, "How many meteors did the observatory record in 2023?")
    assert "412 meteors" in answer.text
    c = answer.citations[0]
    assert c.source.endswith("observatory.pdf") and c.page == 2 and c.page_end == 2
    assert "412" in c.snippet


# -- refusals ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("question", "lang"),
    [
        ("月球背面有多少个陨石坑？", "zh"),
        ("量子计算机如何纠错？", "zh"),
        ("Who won the 1998 FIFA World Cup final?", "en"),
        ("What is the boiling point of mercury?", "en"),
    ],
)
def test_questions_without_evidence_are_refused_with_closest_sources(
    kb: KnowledgeBase, question: str, lang: str
) -> None:
    answer = ask(kb, question)
    assert answer.refused and answer.mode == "refused"
    assert answer.text == template("refuse", lang)  # type: ignore[arg-type]
    assert answer.citations == [] and cited_numbers(answer.text) == []
    assert 1 <= len(answer.evidence) <= 3
    assert [e.citation.n for e in answer.evidence] == list(range(1, len(answer.evidence) + 1))
    assert any("below the threshold" in n for n in answer.notes)


def test_refusal_threshold_is_a_setting(kb: KnowledgeBase) -> None:
    strict = RagEngine(kb, settings=RagSettings(refusal_threshold=5.0))
    assert strict.ask("法国的首都是哪里？").refused
    lenient = RagEngine(kb, settings=RagSettings(refusal_threshold=0.0))
    assert not lenient.ask("月球背面有多少个陨石坑？").refused


# -- conversation ------------------------------------------------------------------------------


def test_follow_up_question_retrieves_the_earlier_subject(kb: KnowledgeBase) -> None:
    history = [
        {"role": "user", "content": "法国的人口有多少？"},
        {"role": "assistant", "content": "法国的人口约为六千八百万。"},
    ]
    answer = ask(kb, "它的首都是哪里？", history=history)
    assert "法国" in answer.standalone_question
    assert answer.evidence[0].citation.source.endswith("france.md")
    assert answer.citations[0].source.endswith("france.md") and "巴黎" in answer.text
    assert any("without a model" in n for n in answer.notes)
    # the same words after a question about Japan lead to Japan
    japan = ask(kb, "它的首都是哪里？", history=[{"role": "user", "content": "日本的人口有多少？"}])
    assert japan.citations[0].source.endswith("japan.md") and "东京" in japan.text


def test_english_follow_up(kb: KnowledgeBase) -> None:
    history = [{"role": "user", "content": "Where does the Danube rise?"}]
    answer = ask(kb, "How many bridges does Budapest have across it?", history=history)
    assert "danube" in answer.standalone_question.lower()
    assert "nine bridges" in answer.text and answer.citations[0].heading_path[-1] == "Bridges"


# -- streaming and the async API -------------------------------------------------------------


def test_stream_order_and_joined_deltas_equal_the_answer(kb: KnowledgeBase) -> None:
    engine = RagEngine(kb)
    events, answer = events_of(engine, "日本有多少人口？")
    retrieval = events[0]
    assert retrieval.standalone_question == "日本有多少人口？"
    assert [e.chunk_id for e in retrieval.evidence] == [e.chunk_id for e in answer.evidence]
    assert "一亿二千四百万" in answer.text
    _, refused = events_of(engine, "量子计算机如何纠错？")
    assert refused.refused


def test_async_api(kb: KnowledgeBase) -> None:
    engine = RagEngine(kb)

    async def main() -> tuple[Answer, list[str]]:
        answer = await engine.aask("How is green tea made?", mode="extractive")
        kinds = [str(e.type) async for e in engine.astream("How is green tea made?")]
        return answer, kinds

    answer, kinds = asyncio.run(main())
    assert answer.citations[0].source.endswith("tea.txt") and "heating fresh leaves" in answer.text
    assert kinds[0] == "retrieval" and kinds[-1] == "done" and "delta" in kinds


def test_bad_arguments_are_errors_that_say_what_to_do(kb: KnowledgeBase) -> None:
    from hanlin.errors import InvalidInputError

    engine = RagEngine(kb)
    kws: list[dict[str, Any]] = [{"mode": "poetry"}, {"k": 0}]
    for kw in kws:
        with pytest.raises(InvalidInputError) as info:
            engine.ask("法国的首都是哪里？", **kw)
        assert info.value.hint
    with pytest.raises(InvalidInputError):
        engine.ask("   ")


# -- de-duplication --------------------------------------------------------------------------


def test_overlapping_chunks_and_copies_are_not_both_evidence(
    rag_settings: Settings, tmp_path: Path
) -> None:
    (tmp_path / "danube.md").write_text(DANUBE, "utf-8")
    (tmp_path / "danube-copy.md").write_text(DANUBE, "utf-8")
    small_chunks = rag_settings.knowledge.model_copy(
        update={"chunk_tokens": 14, "chunk_overlap": 12}
    )
    settings = rag_settings.model_copy(update={"knowledge": small_chunks})
    with KnowledgeBase.create("overlap", settings=settings) as small:
        small.add(tmp_path)
        q = "Danube Black Forest Germany Black Sea countries"
        raw = small.search(q, k=30)
        overlapping = [
            (a, b) for i, a in enumerate(raw) for b in raw[i + 1 :] if span_overlap(a, b) >= 0.5
        ]
        copies = [
            (a, b) for i, a in enumerate(raw) for b in raw[i + 1 :] if a.chunk.text == b.chunk.text
        ]
        assert overlapping and copies  # the raw search has both kinds of repeats
        answer = RagEngine(small, settings=RagSettings(k=10, per_doc_cap=10)).ask(q)
        ev = answer.evidence
        assert len(ev) >= 2
        spans = [(e.citation.doc, e.citation.char_start, e.citation.char_end) for e in ev]
        for i, (d1, s1, e1) in enumerate(spans):
            for d2, s2, e2 in spans[i + 1 :]:
                if d1 == d2:
                    assert min(e1, e2) - max(s1, s2) < 0.5 * min(e1 - s1, e2 - s2)
        assert len({e.text for e in ev}) == len(ev)


# -- generated answers (a fake OpenAI-compatible chat model) -----------------------------------


def engine_with(kb: KnowledgeBase, fake_gateway: Callable[..., Gateway], **rag: Any) -> RagEngine:
    return RagEngine(kb, gateway=fake_gateway(), settings=RagSettings(generator=FAKE, **rag))


def requests(upstream: UpstreamServer) -> list[dict[str, Any]]:
    return [body for path, _, body in upstream.app.requests if path.endswith("/chat/completions")]


def test_generated_answer_keeps_valid_citations_renumbered(
    kb: KnowledgeBase, upstream: UpstreamServer, fake_gateway: Callable[..., Gateway]
) -> None:
    upstream.app.script(
        "/v1/chat/completions",
        sse(["Paris is the capital [", "2", "] of France", " [7].", " See also [1][", "2]", "."]),
    )
    engine = engine_with(kb, fake_gateway)
    events, answer = events_of(engine, "Where does the Danube rise?")
    assert answer.mode == "generative" and answer.model == "fake/chat-model"
    assert answer.text == "Paris is the capital [1] of France. See also [2][1]."
    assert_contiguous(answer)
    ev = events[0].evidence
    assert [c.chunk_id for c in answer.citations] == [ev[1].chunk_id, ev[0].chunk_id]
    assert answer.citations[0].snippet == ev[1].text
    assert any("[7]" in n for n in answer.notes)
    assert answer.usage.prompt_tokens == 120 and answer.usage.completion_tokens == 20
    (body,) = requests(upstream)
    system, user = body["messages"][0]["content"], body["messages"][-1]["content"]
    assert "Answer in English" in system and user == "Where does the Danube rise?"
    for e in ev:  # every source the answer may cite was in the prompt, with its number
        assert f"\n[{e.citation.n}] {e.citation.title}" in system and e.text.strip() in system
    assert body["stream"] is True and body["max_tokens"] == 512


def test_chinese_question_gets_the_chinese_prompt_and_uncited_answers_are_noted(
    kb: KnowledgeBase, upstream: UpstreamServer, fake_gateway: Callable[..., Gateway]
) -> None:
    upstream.app.script("/v1/chat/completions", sse(["不知道", " [9]", "。"]))
    answer = engine_with(kb, fake_gateway).ask("法国的首都是哪里？")
    assert answer.text == "不知道。" and answer.citations == []
    assert "the model cited no sources" in answer.notes
    (body,) = requests(upstream)
    assert "用中文" in body["messages"][0]["content"]


def test_a_capable_model_rewrites_the_follow_up(
    kb: KnowledgeBase, upstream: UpstreamServer, fake_gateway: Callable[..., Gateway]
) -> None:
    upstream.app.script(
        "/v1/chat/completions",
        chat_json("法国的首都是哪里？"),
        sse(["巴黎[1]。"]),
    )
    history = [
        {"role": "user", "content": "法国有多少人？"},
        {"role": "assistant", "content": "约六千八百万。"},
    ]
    answer = engine_with(kb, fake_gateway).ask("它的首都呢？", history=history)
    assert answer.standalone_question == "法国的首都是哪里？"
    assert answer.evidence[0].citation.source.endswith("france.md")
    assert answer.citations[0].source.endswith("france.md") and answer.text == "巴黎[1]。"
    rewrite, generate = requests(upstream)
    prompt = rewrite["messages"][-1]["content"]
    assert "User: 法国有多少人？" in prompt and "它的首都呢？" in prompt
    roles = [m["role"] for m in generate["messages"]]
    assert roles == ["system", "user", "assistant", "user"]  # history passed to the answer
    assert answer.usage.prompt_tokens == 50 + 120


def test_packing_respects_a_tiny_budget(
    kb: KnowledgeBase, upstream: UpstreamServer, fake_gateway: Callable[..., Gateway]
) -> None:
    upstream.app.script("/v1/chat/completions", sse(["ok [1]"]), sse(["ok [1]"]))
    engine = engine_with(kb, fake_gateway, max_context_tokens=60)
    events, answer = events_of(engine, "Where does the Danube rise?")
    ev = events[0].evidence
    sources = requests(upstream)[0]["messages"][0]["content"].split("Sources:", 1)[1]
    assert 1 <= len(ev) < 6 and count_tokens(sources) <= 60
    assert all(e.text.strip() in sources for e in ev)
    assert any("fit the context budget of 60 tokens" in n for n in answer.notes)
    # a budget smaller than one chunk: the chunk is cut at a sentence, offsets follow the cut
    # (the source's untrusted-block markup takes ~10 of the tokens)
    tiny = engine_with(kb, fake_gateway, max_context_tokens=55)
    events, _ = events_of(tiny, "Where does the Danube rise?")
    (only,) = events[0].evidence
    c = only.citation
    assert "Black Forest" in only.text and count_tokens(only.text) <= 45
    assert only.text.endswith("Black Sea.") and c.char_end - c.char_start == len(only.text)
    assert_points_at_its_text(c)
    system = requests(upstream)[-1]["messages"][0]["content"]
    sources = system.split("Sources:", 1)[1]
    assert only.text.strip() in sources and "[2]" not in sources


def test_reranker_reorders_candidates(
    kb: KnowledgeBase, upstream: UpstreamServer, fake_gateway: Callable[..., Gateway]
) -> None:
    q = "Where does the Danube rise?"
    first, second = kb.search(q, k=30)[:2]
    upstream.app.script(
        "/v1/rerank",
        Reply(
            json={
                "results": [
                    {"index": 0, "relevance_score": 0.2},
                    {"index": 1, "relevance_score": 0.9},
                ]
            }
        ),
    )
    engine = engine_with(kb, fake_gateway, reranker="fake/rerank-model", refusal_threshold=0.0)
    answer = engine.ask(q, mode="extractive")
    assert [e.chunk_id for e in answer.evidence] == [second.chunk.id, first.chunk.id]
    assert answer.evidence[0].scores["rerank"] == pytest.approx(0.9)
    assert "rerank" in answer.timings_ms


def test_a_consumer_that_stops_early_stops_the_model_stream(
    kb: KnowledgeBase, upstream: UpstreamServer, fake_gateway: Callable[..., Gateway]
) -> None:
    import time

    slow = sse([f"word{i} " for i in range(40)])
    slow.chunk_delay = 0.05  # the whole answer would take 2 s
    upstream.app.script("/v1/chat/completions", slow)
    engine = engine_with(kb, fake_gateway)
    t0 = time.perf_counter()
    events = engine.stream("Where does the Danube rise?")
    assert isinstance(next(events), RetrievalEvent)
    assert isinstance(next(events), AnswerDelta)
    events.close()  # e.g. the browser went away
    assert time.perf_counter() - t0 < 1.5
    # the gateway is free for the next question
    upstream.app.script("/v1/chat/completions", sse(["Black Forest [1]."]))
    assert engine.ask("Where does the Danube rise?").text == "Black Forest [1]."


def test_model_errors_name_the_step(
    kb: KnowledgeBase, upstream: UpstreamServer, fake_gateway: Callable[..., Gateway]
) -> None:
    upstream.app.script(
        "/v1/chat/completions", Reply(status=400, json={"error": {"message": "bad model"}})
    )
    with pytest.raises(StepError) as info:
        engine_with(kb, fake_gateway).ask("法国的首都是哪里？")
    assert info.value.step == "generate" and "generate" in info.value.message
    assert info.value.pipeline == "RAG" and isinstance(info.value.cause, ModelError)


# -- surfaces ----------------------------------------------------------------------------------


def test_cli_streams_the_answer_then_the_sources(
    kb: KnowledgeBase,
    rag_settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from hanlin.cli.main import main

    use_home(monkeypatch, rag_settings.home)
    monkeypatch.setenv("COLUMNS", "200")
    main(["kb", "ask", "docs", "法国的首都是哪里？"])
    out = capsys.readouterr().out
    answer, sources = out.split("来源:")
    assert "「法国的首都是巴黎。」[1]" in answer
    assert "[1] 法国 › 首都" in sources and "france.md" in sources

    main(["kb", "ask", "docs", "What is the boiling point of mercury?"])
    out = capsys.readouterr().out
    assert out.startswith("I don't know") and "closest sources:" in out and "[1] " in out

    main(["kb", "ask", "docs", "How is green tea made?", "--json", "--mode", "extractive"])
    data = json.loads(capsys.readouterr().out)
    assert data["mode"] == "extractive" and data["citations"][0]["source"].endswith("tea.txt")
    assert data["evidence"][0]["scores"]["keyword"] > 0


def test_settings_reject_unknown_rag_keys(rag_settings: Settings) -> None:
    from hanlin.errors import ConfigError

    assert load_settings(rag={"k": 3}).rag.k == 3
    with pytest.raises(ConfigError):
        load_settings(rag={"top_k": 3})


def test_the_caller_is_recorded_with_the_model_call(
    kb: KnowledgeBase, upstream: UpstreamServer, fake_gateway: Callable[..., Gateway]
) -> None:
    upstream.app.script("/v1/chat/completions", sse(["The Danube rises [1]."]))
    gw = fake_gateway()
    engine = RagEngine(kb, gateway=gw, settings=RagSettings(generator=FAKE), user="alice")
    engine.ask("Where does the Danube rise?")
    (body,) = requests(upstream)
    assert body["user"] == "alice"  # per-key budgets see RAG answers too
    assert [r["key"] for r in gw.ledger.rows()][-1] == "alice"
