"""The conformance suite every trace store passes — SQLite, PostgreSQL and any other: subclass
:class:`TraceStoreConformanceTests` and say how to open yours.

::

    # conftest.py — before the suite is imported, so pytest rewrites its asserts
    pytest.register_assert_rewrite("hanlin.testing.trace_store_conformance")

    class TestMyTraceStore(TraceStoreConformanceTests):
        @pytest.fixture
        def open_store(self, tmp_path):
            return lambda: MyTraceStore(tmp_path / "traces")

``open_store`` returns a function that opens the same (initially empty) store each time it is
called. Every method of :class:`~hanlin.tracing.base.TraceStore` is called here and its result
checked against what a user of the trace list and the dashboard would see.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from hanlin.errors import InvalidInputError
from hanlin.tracing.base import SpanRecord, TraceQuery, TraceStore, TraceSummary

OpenTraceStore = Callable[[], TraceStore]

#: 2025-03-01T00:00:00Z, in ns
T0 = 1_740_787_200 * 10**9
MS = 10**6
DAY = 86_400 * 10**9


def tid(n: int) -> str:
    return f"{n:032x}"


def sid(trace: int, n: int) -> str:
    return f"{trace:08x}{n:08x}"


def span(
    trace: int, n: int, parent: int | None, name: str, start_ms: float, ms: float, **kw: Any
) -> SpanRecord:
    """Span ``n`` of trace ``trace`` (parent ``parent`` or a root), ``start_ms`` after
    :data:`T0`, lasting ``ms``."""
    start = T0 + int(start_ms * MS)
    return SpanRecord(
        trace_id=tid(trace),
        span_id=sid(trace, n),
        parent_id=None if parent is None else sid(trace, parent),
        name=name,
        start_ns=start,
        end_ns=start + int(ms * MS),
        **kw,
    )


def chat_trace(trace: int, at_ms: float, *, model: str = "m1", **root: Any) -> list[SpanRecord]:
    """A root ``POST /chat`` with one ``chat`` child calling ``model``."""
    return [
        span(trace, 1, None, "POST /chat", at_ms, 100, status="ok", **root),
        span(trace, 2, 1, "chat", at_ms + 10, 50, model=model, input_tokens=10, output_tokens=2),
    ]


def ids(found: list[TraceSummary]) -> list[str]:
    return [t.trace_id for t in found]


class TraceStoreConformanceTests:
    """The contract of :class:`~hanlin.tracing.base.TraceStore`; subclass it and override
    :meth:`open_store`."""

    @pytest.fixture
    def open_store(self) -> OpenTraceStore:
        """Override: a function opening the store under test (the same store each call)."""
        raise NotImplementedError("override the open_store fixture in the subclass")

    @pytest.fixture
    def store(self, open_store: OpenTraceStore) -> Iterator[TraceStore]:
        opened = open_store()
        yield opened
        opened.close()

    # --- writing -------------------------------------------------------------------------
    def test_spans_written_out_of_order_make_one_trace_with_its_root(
        self, store: TraceStore
    ) -> None:
        root = span(1, 1, None, "POST /v1/chat/completions", 0, 1000, status="ok", key_id="k1")
        retrieve = span(1, 2, 1, "retrieve", 5, 40, kb="docs", operation="retrieve")
        first = span(1, 3, 1, "chat", 100, 300, model="m1", input_tokens=10, output_tokens=4)
        second = span(
            1, 4, 1, "chat", 500, 200, model="m2", input_tokens=7, output_tokens=3,
            cost_usd=0.25, cost_cny=1.75, status="error", error="upstream 500",
        )  # fmt: skip
        store.write([second, first])
        (early,) = store.list_traces(TraceQuery())
        assert (early.name, early.spans, early.start_ns) == ("chat", 2, first.start_ns)
        store.write([retrieve])
        store.write([root])
        (trace,) = store.list_traces(TraceQuery())
        assert trace.trace_id == tid(1) and trace.name == "POST /v1/chat/completions"
        assert trace.start_ns == root.start_ns and trace.duration_ms == 1000.0
        assert (trace.spans, trace.status) == (4, "error")
        assert (trace.model, trace.kb, trace.key_id) == ("m1", "docs", "k1")
        assert (trace.input_tokens, trace.output_tokens) == (17, 7)
        assert (trace.cost_usd, trace.cost_cny) == (0.25, 1.75)
        assert (trace.rating, trace.comment) == (None, None)
        got = store.get_trace(tid(1))
        assert [s.span_id for s in got] == [sid(1, n) for n in (1, 2, 3, 4)]
        assert got[3] == second and got[0] == root
        assert store.count() == 4

    def test_a_span_written_again_is_kept_once(self, store: TraceStore) -> None:
        spans = chat_trace(1, 0)
        store.write(spans + spans)
        store.write(spans)
        (trace,) = store.list_traces(TraceQuery())
        assert (trace.spans, trace.input_tokens) == (2, 10)
        assert store.count() == 2 and len(store.get_trace(tid(1))) == 2
        store.write([])
        assert store.count() == 2

    def test_attributes_and_text_round_trip(self, store: TraceStore) -> None:
        attrs = {
            "gen_ai.input.messages": '[{"role": "user", "content": "北京的天气？"}]',
            "hanlin.top_k": 5,
            "hanlin.scores": [0.5, 0.25],
            "hanlin.flag": True,
        }
        one = span(1, 1, None, "rag 问答", 0, 10, attributes=attrs, error="超时")
        store.write([one])
        assert store.get_trace(tid(1)) == [one]
        (trace,) = store.list_traces(TraceQuery(text="天气"))
        assert trace.name == "rag 问答"

    def test_text_with_nul_characters_is_stored(self, store: TraceStore) -> None:
        bad = span(1, 1, None, "a\x00b", 0, 10, error="x\x00", attributes={"k\x00": "v\x00"})
        store.write([bad])
        (got,) = store.get_trace(tid(1))
        assert got.name in ("a\x00b", "a\ufffdb") and len(got.attributes) == 1

    def test_writers_on_many_threads_lose_no_span(self, store: TraceStore) -> None:
        def write(worker: int) -> None:
            for n in range(10):  # every worker adds spans to the same five traces
                store.write([span(t, 100 * worker + n, 0, "step", n, 1) for t in range(5)])

        threads = [threading.Thread(target=write, args=(w,)) for w in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        found = store.list_traces(TraceQuery())
        assert sorted(t.spans for t in found) == [40] * 5
        assert store.count() == 200

    def test_written_traces_persist(self, open_store: OpenTraceStore) -> None:
        first = open_store()
        first.write(chat_trace(1, 0))
        first.rate(tid(1), 1, "good")
        first.close()
        again = open_store()
        (trace,) = again.list_traces(TraceQuery())
        assert (trace.spans, trace.rating, trace.comment) == (2, 1, "good")
        again.close()

    # --- listing -------------------------------------------------------------------------
    def test_each_filter_includes_and_excludes_the_right_traces(self, store: TraceStore) -> None:
        store.write(chat_trace(1, 0, model="m1", key_id="alice"))
        two = chat_trace(2, 1000, model="m1")
        two.append(span(2, 3, 1, "chat", 1050, 20, model="m2"))  # m2 only on a later span
        store.write(two)
        store.write(
            [
                span(3, 1, None, "Agent Run", 2000, 100, key_id="bob"),
                span(3, 2, 1, "retrieve", 2010, 10, kb="docs", attributes={"q": "50% off_x"}),
                span(3, 3, 1, "tool", 2030, 10, status="error", attributes={"args": 'say "hi"'}),
            ]
        )
        store.write(chat_trace(4, 3000, model="m3", kb="wiki"))

        def found(**kw: Any) -> list[str]:
            return sorted(ids(store.list_traces(TraceQuery(**kw))))

        assert found() == [tid(1), tid(2), tid(3), tid(4)]
        assert found(model="m1") == [tid(1), tid(2)]
        assert found(model="m2") == [tid(2)]
        assert found(model="nope") == []
        assert found(kb="docs") == [tid(3)] and found(kb="wiki") == [tid(4)]
        assert found(key_id="alice") == [tid(1)] and found(key_id="bob") == [tid(3)]
        assert found(status="error") == [tid(3)]
        assert found(status="ok") == [tid(1), tid(2), tid(4)]
        assert found(text="agent run") == [tid(3)]  # the root's name, any case
        assert found(text="POST") == [tid(1), tid(2), tid(4)]
        assert found(text="50% OFF_X") == [tid(3)]  # an attribute value
        assert found(text='say "hi"') == [tid(3)]  # quotes as the user typed them
        assert found(text="%") == [tid(3)] and found(text="_") == [tid(3)]  # no wildcards
        assert found(text="retrieve") == []  # a child's name is not searched
        assert found(since_ns=T0 + 1000 * MS) == [tid(2), tid(3), tid(4)]
        assert found(until_ns=T0 + 1000 * MS) == [tid(1)]
        assert found(since_ns=T0 + 1000 * MS, until_ns=T0 + 2001 * MS) == [tid(2), tid(3)]
        assert found(model="m1", key_id="alice") == [tid(1)]
        assert found(model="m3", kb="docs") == []
        assert ids(store.list_traces(TraceQuery(limit=2))) == [tid(4), tid(3)]

    def test_pages_list_every_trace_once_newest_first(self, store: TraceStore) -> None:
        for n in range(1, 24):  # traces 2k and 2k+1 start at the same moment
            store.write(chat_trace(n, (n // 2) * 100, model="even" if n % 2 == 0 else "odd"))
        expected = sorted(
            (t for t in range(1, 24)), key=lambda n: ((n // 2) * 100, tid(n)), reverse=True
        )
        for model, want in ((None, expected), ("odd", [n for n in expected if n % 2])):
            seen: list[str] = []
            before = None
            while True:
                page = store.list_traces(TraceQuery(model=model, limit=5, before=before))
                seen += ids(page)
                if len(page) < 5:
                    break
                before = (page[-1].start_ns, page[-1].trace_id)
            assert seen == [tid(n) for n in want]

    def test_a_rating_is_kept_cleared_and_filterable(self, store: TraceStore) -> None:
        store.write(chat_trace(1, 0))
        store.write(chat_trace(2, 100))
        assert store.rate(tid(1), 1, "right answer") is True
        assert store.rate(tid(2), -1, None) is True
        store.write([span(1, 9, 1, "late", 50, 1)])  # a later span keeps the rating
        by_id = {t.trace_id: t for t in store.list_traces(TraceQuery())}
        assert (by_id[tid(1)].rating, by_id[tid(1)].comment) == (1, "right answer")
        assert by_id[tid(1)].spans == 3
        assert ids(store.list_traces(TraceQuery(rating=1))) == [tid(1)]
        assert ids(store.list_traces(TraceQuery(rating=-1))) == [tid(2)]
        assert store.rate(tid(1), None, None) is True
        assert store.list_traces(TraceQuery(rating=1)) == []
        assert {t.rating for t in store.list_traces(TraceQuery())} == {None, -1}
        assert store.rate(tid(99), 1, "x") is False
        assert store.list_traces(TraceQuery(rating=1)) == []
        with pytest.raises(InvalidInputError):
            store.rate(tid(1), 2, None)  # type: ignore[arg-type]

    def test_ids_of_one_trace_never_reach_another(self, store: TraceStore) -> None:
        store.write(chat_trace(1, 0, model="m1"))
        store.write(chat_trace(2, 100, model="m2"))
        stolen = span(1, 2, 1, "chat", 10, 50, model="m2")
        stolen.trace_id = tid(3)  # trace 1's span id, sent again under another trace
        store.write([stolen])
        assert [s.trace_id for s in store.get_trace(tid(1))] == [tid(1)] * 2
        assert store.get_trace(tid(3)) == []
        assert ids(store.list_traces(TraceQuery(model="m2"))) == [tid(2)]
        assert ids(store.list_traces(TraceQuery(model="m1"))) == [tid(1)]
        assert store.get_trace("%") == [] and store.get_trace(tid(1)[:-1]) == []
        store.write(chat_trace(0xAB, 200))
        assert len(store.get_trace(tid(0xAB))) == 2 and store.get_trace(tid(0xAB).upper()) == []
        assert store.rate("%", 1, None) is False
        assert {t.rating for t in store.list_traces(TraceQuery())} == {None}
        assert sorted(ids(store.list_traces(TraceQuery()))) == [tid(1), tid(2), tid(0xAB)]

    # --- dashboard -------------------------------------------------------------------------
    def test_stats_per_day_and_group_are_exact(self, store: TraceStore) -> None:
        def call(trace: int, at_ms: float, ms: float, model: str, **kw: Any) -> SpanRecord:
            return span(trace, 2, 1, "chat", at_ms, ms, model=model, operation="chat", **kw)

        day2 = 86_400_000  # ms
        store.write(
            [
                span(t, 1, None, "POST /chat", (day2 if t > 5 else 0) + t * 10, 1000, status="ok")
                for t in range(1, 8)
            ]
            + [
                call(1, 10, 100, "a", input_tokens=1, output_tokens=2, cost_usd=0.1, kb="k"),
                call(2, 20, 200, "a", input_tokens=3, output_tokens=4, cost_usd=0.2),
                call(3, 30, 400, "a", status="error", cost_cny=1.5),
                call(4, 40, 300, "a"),
                call(5, 50, 50, "b", input_tokens=5),
                call(6, day2 + 60, 10, "a"),
                call(7, day2 + 70, 30, "a", kb="k"),
            ]
            + [span(8, 1, None, "GET /health", day2 + 80, 5, status="error")]
            # an answer names its model too, but only its model call is a call
            + [span(3, 3, 1, "answer docs", 30, 900, model="a", operation="rag")]
        )
        rows = store.stats("model")
        assert store.stats("model") == rows  # the second time from the per-day cache
        got = [
            (
                *(r.day, r.group, r.requests, r.errors, r.input_tokens, r.output_tokens),
                *(r.cost_usd, r.cost_cny, round(r.p50_ms, 6), round(r.p95_ms, 6)),
            )
            for r in rows
        ]
        assert got == [
            ("2025-03-01", "a", 4, 1, 4, 6, 0.3, 1.5, 250.0, 385.0),
            ("2025-03-01", "b", 1, 0, 5, 0, 0.0, 0.0, 50.0, 50.0),
            ("2025-03-02", "a", 2, 0, 0, 0, 0.0, 0.0, 20.0, 29.0),
        ]
        by_kb = [(r.day, r.group, r.requests) for r in store.stats("kb")]
        assert by_kb == [
            ("2025-03-01", "k", 1),
            ("2025-03-01", None, 4),
            ("2025-03-02", "k", 1),
            ("2025-03-02", None, 1),
        ]
        (later,) = store.stats("none", since_ns=T0 + day2 * MS)
        assert (later.day, later.group, later.requests, later.p50_ms) == ("2025-03-02", None, 2, 20)
        roots = [(r.day, r.group, r.requests, r.errors, r.p50_ms) for r in store.stats(
            "model", spans="root"
        )]  # fmt: skip
        assert roots == [
            ("2025-03-01", "a", 4, 1, 1000.0),  # a trace's model: its first model call's
            ("2025-03-01", "b", 1, 0, 1000.0),
            ("2025-03-02", "a", 2, 0, 1000.0),
            ("2025-03-02", None, 1, 1, 5.0),
        ]
        assert store.stats("model", since_ns=T0 + 3 * day2 * MS) == []
        with pytest.raises(InvalidInputError):
            store.stats("user")  # type: ignore[arg-type]

    def test_stats_follow_every_change_by_any_writer(self, open_store: OpenTraceStore) -> None:
        store, other = open_store(), open_store()  # other: another process, another replica

        def llm(on: TraceStore, since: int | None = None) -> list[tuple[Any, ...]]:
            return [(r.day, r.requests, r.p50_ms) for r in on.stats("model", since_ns=since)]

        def roots(on: TraceStore) -> list[tuple[str, int]]:
            return [(r.day, r.requests) for r in on.stats("none", spans="root")]

        chat = {"model": "a", "operation": "chat"}
        store.write([span(1, 1, None, "POST", 0, 10), span(1, 2, 1, "chat", 1, 100, **chat)])
        assert llm(store) == [("2025-03-01", 1, 100.0)]
        other.write([span(2, 2, None, "chat", 50, 300, **chat)])
        assert llm(store) == llm(other) == [("2025-03-01", 2, 200.0)]
        assert llm(store, since=T0 + 20 * MS) == [("2025-03-01", 1, 300.0)]  # part of a day
        assert roots(store) == [("2025-03-01", 2)]
        other.write([span(2, 9, None, "POST", -3_600_000, 4_000_000)])  # trace 2 moves a day
        assert roots(store) == [("2025-02-28", 1), ("2025-03-01", 1)]
        assert llm(store) == [("2025-03-01", 2, 200.0)]
        assert other.prune(older_than_ns=T0) == 2
        assert llm(store) == [("2025-03-01", 1, 100.0)] and roots(store) == [("2025-03-01", 1)]
        store.close()
        other.close()

    # --- pruning ---------------------------------------------------------------------------
    def test_prune_by_age_deletes_whole_traces(self, store: TraceStore) -> None:
        old = chat_trace(1, 0)
        old.append(span(1, 3, 1, "late child", 5000, 10))  # ends after the cut: still old
        store.write(old)
        store.write(chat_trace(2, 1000))
        store.write(chat_trace(3, 4000))
        assert store.prune(older_than_ns=T0 + 2000 * MS) == 5
        assert ids(store.list_traces(TraceQuery())) == [tid(3)]
        assert store.get_trace(tid(1)) == [] and store.get_trace(tid(2)) == []
        assert len(store.get_trace(tid(3))) == 2 and store.count() == 2
        assert store.prune(older_than_ns=T0) == 0

    def test_prune_by_size_deletes_the_oldest_whole_traces(self, store: TraceStore) -> None:
        store.write([span(1, n, None if n == 0 else 0, "a", n, 1) for n in range(3)])
        store.write([span(2, n, None if n == 0 else 0, "b", 100 + n, 1) for n in range(2)])
        store.write([span(3, n, None if n == 0 else 0, "c", 200 + n, 1) for n in range(4)])
        assert store.prune(max_spans=9) == 0 and store.count() == 9
        assert store.prune(max_spans=5) == 5  # 3 + 2: the two oldest, never half of one
        assert ids(store.list_traces(TraceQuery())) == [tid(3)]
        assert store.count() == 4 and len(store.get_trace(tid(3))) == 4
        assert store.prune(older_than_ns=T0, max_spans=0) == 4
        assert store.count() == 0 and store.list_traces(TraceQuery()) == []

    def test_text_search_is_the_same_before_and_after_indexing(self, store: TraceStore) -> None:
        def say(n: int, words: str) -> list[SpanRecord]:
            spans = chat_trace(n, n * 100)
            spans[1].attributes = {"gen_ai.input.messages": words}
            return spans

        store.write(say(1, "the Invoice is overdue") + say(2, "发票已经逾期了") + say(3, "hello"))
        while store.index_text(limit=2):  # in slices, as the writer does
            pass
        store.write(say(4, "an invoice again") + say(5, "逾期的发票"))  # not indexed yet

        def found(text: str) -> list[str]:
            return sorted(ids(store.list_traces(TraceQuery(text=text))))

        assert found("invoice") == [tid(1), tid(4)]  # any case, indexed or not
        assert found("逾期") == [tid(2), tid(5)] and found("已经逾期") == [tid(2)]
        assert found("voice is over") == [tid(1)] and found("Invoice is under") == []
        assert store.prune(older_than_ns=T0 + 150 * MS) == 2  # trace 1, indexed, goes
        assert store.index_text() >= 0 and found("invoice") == [tid(4)]
        assert found("hello") == [tid(3)] and found("zebra") == []

    def test_prune_in_slices_deletes_the_oldest_traces_first(self, store: TraceStore) -> None:
        for n in range(1, 6):
            store.write(chat_trace(n, n * 100, model=f"m{n}"))
        cut = T0 + 450 * MS  # traces 1-4 expired
        assert store.prune(older_than_ns=cut, limit=3) == 6  # the three oldest, whole
        assert ids(store.list_traces(TraceQuery())) == [tid(5), tid(4)]
        assert store.list_traces(TraceQuery(model="m2")) == []  # its filter values went too
        assert store.prune(older_than_ns=cut, limit=3) == 2
        assert store.prune(older_than_ns=cut, limit=3) == 0
        assert store.prune(max_spans=0, limit=1) == 2 and store.count() == 0
        assert store.list_traces(TraceQuery(text="POST")) == []
