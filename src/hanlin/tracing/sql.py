"""The SQL both trace stores run, written once: the tables have the same columns in SQLite and
PostgreSQL, and a :class:`Dialect` says what differs (the spans table's name, the placeholder,
the case-insensitive LIKE, the attributes as text). Every function takes an open connection
inside a transaction (``sqlite3`` and ``psycopg`` connections both have ``execute``).

Besides ``spans`` and ``traces``, two small tables serve the dashboard: ``trace_days`` (a
version per UTC day, bumped by every write and prune that changes the day) and
``trace_stats_cache`` (a day's computed stats and the version they were computed at), so stats
over a month of traces recompute only the days that changed.

``trace_tags`` holds each trace's distinct models, knowledge bases and API keys, keyed by the
trace's start: the list's filters probe it, and a write appends to it near the newest end.
(Indexes on the spans' own ``model``/``kb``/``key_id`` with the random trace id second made
every batch touch hundreds of pages scattered over the whole file: at 1M spans a write spent
most of its time committing them.)"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from hanlin.errors import InvalidInputError
from hanlin.tracing.base import SpanRecord, StatsRow, TraceQuery, TraceSummary

DAY_NS = 86_400 * 10**9

#: span columns in :class:`SpanRecord` order, ``attributes`` last
#: the operations that are one call to a model; an answer or an agent run names its model too,
#: but is not another call
MODEL_CALLS = ("chat", "text_completion", "generate_content", "embeddings", "rerank")

SPAN_COLUMNS = (
    "trace_id, span_id, parent_id, name, start_ns, end_ns, status, error, operation, model, "
    "provider, kb, key_id, input_tokens, output_tokens, cached_tokens, cost_usd, cost_cny, "
    "attributes"
)
TRACE_COLUMNS = (
    "t.trace_id, t.name, t.start_ns, t.end_ns, t.status, t.spans, t.model, t.kb, t.key_id, "
    "t.input_tokens, t.output_tokens, t.cost_usd, t.cost_cny, t.rating, t.comment"
)
GROUPS = {"model": "model", "kb": "kb", "key_id": "key_id", "none": "NULL"}

#: ``(connection, start_ns, end_ns) -> the stats rows of the spans or traces started then``
Compute = Callable[[Any, int, int], list[StatsRow]]
#: ``session(write) -> a transaction's connection``
Session = Callable[[bool], AbstractContextManager[Any]]


@dataclass(frozen=True)
class Dialect:
    spans: str  # the spans table
    mark: str  # the placeholder
    like: str  # the case-insensitive LIKE
    attributes: str  # the attributes as JSON text
    any_of: Callable[[list[str]], tuple[str, list[Any]]]  # "IN (…)" / "= ANY(…)" and its args
    #: ``[(start_ns, trace_id), …]`` -> a subquery of those pairs and its args
    pairs: Callable[[list[tuple[int, str]]], tuple[str, list[Any]]]
    #: ends the text search's subquery: PostgreSQL must probe trace by trace, newest first,
    #: and stop at a page (" OFFSET 0"), not hash a scan of every span's JSON first
    fence: str = ""


#: the span columns a trace is tagged with (every distinct value of any of its spans)
TAGS = ("model", "kb", "key_id")


def span_values(s: SpanRecord) -> tuple[Any, ...]:
    """A span as a row of :data:`SPAN_COLUMNS`; empty names (a keyless server's ``""`` key)
    are stored as NULL, so one absent value is one group."""
    return (
        s.trace_id,
        s.span_id,
        s.parent_id or None,
        s.name,
        int(s.start_ns),
        int(s.end_ns),
        s.status,
        s.error,
        s.operation or None,
        s.model or None,
        s.provider or None,
        s.kb or None,
        s.key_id or None,
        int(s.input_tokens),
        int(s.output_tokens),
        int(s.cached_tokens),
        float(s.cost_usd),
        float(s.cost_cny),
        json.dumps(s.attributes, ensure_ascii=False, default=str),
    )


def span_of(row: Any, attributes: dict[str, Any]) -> SpanRecord:
    span = SpanRecord(*row[:-1])
    span.attributes = attributes
    return span


def summary_of(row: Any) -> TraceSummary:
    trace_id, name, start, end, status, n, model, kb, key_id, tin, tout, usd, cny, rating, note = (
        row
    )
    return TraceSummary(
        trace_id=trace_id,
        name=name,
        start_ns=start,
        duration_ms=(end - start) / 1e6,
        status=status,
        spans=n,
        model=model,
        kb=kb,
        key_id=key_id,
        input_tokens=int(tin),
        output_tokens=int(tout),
        cost_usd=cost(usd),
        cost_cny=cost(cny),
        rating=rating,
        comment=note,
    )


def cost(value: float) -> float:
    """A summed cost without the float noise of its additions (1e-12 USD is nothing)."""
    return round(float(value), 12)


def check_rating(rating: object) -> None:
    if rating not in (1, -1, None):
        raise InvalidInputError(
            f"a rating is 1, -1 or none, not {rating!r}", hint="send 1 (good), -1 (bad) or null"
        )


def group_column(by: str) -> str:
    if by not in GROUPS:
        raise InvalidInputError(
            f"cannot group traces by {by!r}", hint=f"use one of {', '.join(GROUPS)}", param="by"
        )
    return GROUPS[by]


def day_of(days: int) -> str:
    """``YYYY-MM-DD`` of a count of days since 1970-01-01 (UTC)."""
    return (date(1970, 1, 1) + timedelta(days=int(days))).isoformat()


def percentile(ordered: list[int], p: float) -> float:
    """The ``p`` quantile of sorted values, interpolated like PostgreSQL's
    ``percentile_cont`` (0.0 for none)."""
    if not ordered:
        return 0.0
    pos = p * (len(ordered) - 1)
    low = int(pos)
    high = min(low + 1, len(ordered) - 1)
    return float(ordered[low] + (ordered[high] - ordered[low]) * (pos - low))


def stats_row(day: int, group: str | None, *values: Any) -> StatsRow:
    """A :class:`StatsRow` of a day number, a group, the counts and sums, and the p50 and p95
    durations in ns."""
    n, errors, tin, tout, usd, cny, p50, p95 = values
    return StatsRow(
        day=day_of(day),
        group=group,
        requests=int(n),
        errors=int(errors),
        input_tokens=int(tin),
        output_tokens=int(tout),
        cost_usd=cost(usd),
        cost_cny=cost(cny),
        p50_ms=float(p50) / 1e6,
        p95_ms=float(p95) / 1e6,
    )


# --- writes --------------------------------------------------------------------------------


def refresh(conn: Any, d: Dialect, trace_ids: list[str], span_days: Iterable[int]) -> None:
    """Rebuild the ``traces`` rows of ``trace_ids`` from their spans (a rating survives) and
    bump the days whose stats changed: those of the new spans and the traces' old start days.
    The root is the span without a parent (the earliest span until it arrives); model, kb
    and key are those of the earliest span that has one."""
    ids, args = d.any_of(trace_ids)
    old = [
        (int(start), str(trace_id))
        for start, trace_id in conn.execute(
            f"SELECT start_ns, trace_id FROM traces WHERE trace_id {ids}", args
        ).fetchall()
    ]
    days = {start // DAY_NS for start, _ in old} | set(span_days)

    def first(column: str) -> str:
        return (
            f"(SELECT r.{column} FROM {d.spans} r WHERE r.trace_id = g.trace_id AND "
            f"r.{column} IS NOT NULL ORDER BY r.start_ns, r.span_id LIMIT 1)"
        )

    def root(column: str) -> str:
        return (
            f"(SELECT r.{column} FROM {d.spans} r WHERE r.trace_id = g.trace_id "
            "ORDER BY r.parent_id IS NOT NULL, r.start_ns, r.span_id LIMIT 1)"
        )

    conn.execute(
        f"""INSERT INTO traces (trace_id, name, start_ns, end_ns, status, spans, model, kb,
            key_id, input_tokens, output_tokens, cost_usd, cost_cny)
        SELECT g.trace_id, {root("name")}, g.start_ns, g.end_ns,
            CASE WHEN g.errors > 0 THEN 'error' ELSE {root("status")} END, g.n,
            {first("model")}, {first("kb")}, {first("key_id")},
            g.input_tokens, g.output_tokens, g.cost_usd, g.cost_cny
        FROM (SELECT trace_id, min(start_ns) AS start_ns, max(end_ns) AS end_ns,
                count(*) AS n, count(*) FILTER (WHERE status = 'error') AS errors,
                sum(input_tokens) AS input_tokens, sum(output_tokens) AS output_tokens,
                sum(cost_usd) AS cost_usd, sum(cost_cny) AS cost_cny
              FROM {d.spans} WHERE trace_id {ids} GROUP BY trace_id) g
        WHERE true
        ON CONFLICT (trace_id) DO UPDATE SET name = excluded.name,
            start_ns = excluded.start_ns, end_ns = excluded.end_ns, status = excluded.status,
            spans = excluded.spans, model = excluded.model, kb = excluded.kb,
            key_id = excluded.key_id, input_tokens = excluded.input_tokens,
            output_tokens = excluded.output_tokens, cost_usd = excluded.cost_usd,
            cost_cny = excluded.cost_cny""",
        args,
    )
    _retag(conn, d, trace_ids, old)
    _bump(conn, d, days)


def _retag(conn: Any, d: Dialect, trace_ids: list[str], old: list[tuple[int, str]]) -> None:
    """Rebuild the ``trace_tags`` rows of ``trace_ids`` (``old``: their previous starts, where
    their rows are) at the traces' current starts."""
    if old:
        pairs, pair_args = d.pairs(old)
        conn.execute(f"DELETE FROM trace_tags WHERE (start_ns, trace_id) IN ({pairs})", pair_args)
    ids, args = d.any_of(trace_ids)
    selects = [
        f"SELECT t.start_ns, t.trace_id, '{column}', s.{column} FROM {d.spans} s "
        f"JOIN traces t ON t.trace_id = s.trace_id WHERE s.trace_id {ids} "
        f"AND s.{column} IS NOT NULL"
        for column in TAGS
    ]
    conn.execute(
        "INSERT INTO trace_tags (start_ns, trace_id, kind, value) "
        + " UNION ".join(selects)
        + " ON CONFLICT DO NOTHING",
        args * len(TAGS),
    )


def _bump(conn: Any, d: Dialect, days: Iterable[int]) -> None:
    for day in sorted(set(days)):  # one order everywhere: writers never deadlock on days
        conn.execute(
            f"INSERT INTO trace_days (day, version) VALUES ({d.mark}, 1) "
            "ON CONFLICT (day) DO UPDATE SET version = trace_days.version + 1",
            (day,),
        )


def rate(conn: Any, d: Dialect, trace_id: str, rating: int | None, comment: str | None) -> bool:
    check_rating(rating)
    cur = conn.execute(
        f"UPDATE traces SET rating = {d.mark}, comment = {d.mark} WHERE trace_id = {d.mark}",
        (rating, comment, trace_id),
    )
    return bool(cur.rowcount > 0)


def prune(
    conn: Any,
    d: Dialect,
    older_than_ns: int | None,
    max_spans: int | None,
    limit: int | None = None,
) -> int:
    """Delete whole traces: those started before ``older_than_ns``, then the oldest until at
    most ``max_spans`` spans are left — at most the ``limit`` oldest traces (None: all that
    qualify); returns the spans deleted."""
    deleted = 0
    m = d.mark
    bound: tuple[Any, ...] | None = None
    if limit is not None:
        bound = conn.execute(
            f"SELECT start_ns, trace_id FROM traces ORDER BY start_ns, trace_id LIMIT 1 OFFSET {m}",
            (max(1, limit) - 1,),
        ).fetchone()

    def upto(where: str, args: tuple[Any, ...]) -> tuple[str, tuple[Any, ...]]:
        if bound is None:
            return where, args
        return f"{where} AND (start_ns, trace_id) <= ({m}, {m})", (*args, *bound)

    if older_than_ns is not None:
        deleted += _delete(conn, d, *upto(f"start_ns < {m}", (older_than_ns,)))
        if bound is not None and bound[0] < older_than_ns:
            return deleted  # the slice is full: no need to sum every trace's spans yet
    if max_spans is not None:
        total = int(conn.execute("SELECT coalesce(sum(spans), 0) FROM traces").fetchone()[0])
        excess = total - max(0, max_spans)
        if excess > 0:
            start, trace_id = conn.execute(
                "SELECT start_ns, trace_id FROM (SELECT start_ns, trace_id, "
                "sum(spans) OVER (ORDER BY start_ns, trace_id) AS upto FROM traces) c "
                f"WHERE upto >= {m} ORDER BY start_ns, trace_id LIMIT 1",
                (excess,),
            ).fetchone()
            where = f"(start_ns, trace_id) <= ({m}, {m})"
            deleted += _delete(conn, d, *upto(where, (start, trace_id)))
    return deleted


def _delete(conn: Any, d: Dialect, where: str, args: tuple[Any, ...]) -> int:
    """Delete the traces matching ``where`` (on ``traces``) with all their spans."""
    chosen = f"trace_id IN (SELECT trace_id FROM traces WHERE {where})"
    days = conn.execute(f"SELECT DISTINCT start_ns / {DAY_NS} FROM {d.spans} WHERE {chosen}", args)
    _bump(conn, d, (int(r[0]) for r in days.fetchall()))
    cur = conn.execute(f"DELETE FROM {d.spans} WHERE {chosen}", args)
    conn.execute(f"DELETE FROM traces WHERE {where}", args)
    conn.execute(f"DELETE FROM trace_tags WHERE {where}", args)  # the same start and id
    return int(cur.rowcount)


# --- reads ---------------------------------------------------------------------------------


#: ``(text) -> the search's condition on ``traces t`` and its args``
Search = Callable[[str], tuple[str, list[Any]]]


def list_sql(query: TraceQuery, d: Dialect, search: Search | None = None) -> tuple[str, list[Any]]:
    """The list query of ``query``: ``traces`` newest first, filtered, after the cursor.
    ``search`` gives the text condition (default: :func:`scan_search`)."""
    m = d.mark
    where: list[str] = []
    args: list[Any] = []
    if query.since_ns is not None:
        where.append(f"t.start_ns >= {m}")
        args.append(query.since_ns)
    if query.until_ns is not None:
        where.append(f"t.start_ns < {m}")
        args.append(query.until_ns)
    for column in TAGS:
        if getattr(query, column) is not None:
            where.append(
                f"EXISTS (SELECT 1 FROM trace_tags g WHERE g.start_ns = t.start_ns "
                f"AND g.trace_id = t.trace_id AND g.kind = '{column}' AND g.value = {m})"
            )
            args.append(getattr(query, column))
    if query.status is not None:
        where.append("t.status = 'error'" if query.status == "error" else "t.status <> 'error'")
    if query.rating is not None:
        where.append(f"t.rating = {m}")
        args.append(query.rating)
    if query.text:
        condition, found = (search or (lambda text: scan_search(d, text)))(query.text)
        where.append(condition)
        args += found
    if query.before is not None:
        where.append(f"(t.start_ns, t.trace_id) < ({m}, {m})")
        args += [int(query.before[0]), str(query.before[1])]
    sql = f"SELECT {TRACE_COLUMNS} FROM traces t"
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += f" ORDER BY t.start_ns DESC, t.trace_id DESC LIMIT {m}"
    return sql, [*args, max(0, int(query.limit))]


def in_json(text: str) -> str:
    """``text`` as written inside the attributes' JSON (a quote or a backslash escaped)."""
    return json.dumps(text, ensure_ascii=False)[1:-1]


def scan_search(d: Dialect, text: str) -> tuple[str, list[Any]]:
    """The text condition without an index: the root's name, or any span's attributes, read
    trace by trace, newest first (quick to fill a page when the text is common; reads every
    span when it is rare)."""
    m = d.mark
    return (
        f"(t.name {d.like} {m} ESCAPE '\\' OR EXISTS (SELECT 1 FROM {d.spans} s WHERE "
        f"s.trace_id = t.trace_id AND s.{d.attributes} {d.like} {m} ESCAPE '\\'{d.fence}))",
        [f"%{escape_like(text)}%", f"%{escape_like(in_json(text))}%"],
    )


def escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def cached_stats(
    session: Session, d: Dialect, kind: str, since_ns: int | None, compute: Compute
) -> list[StatsRow]:
    """Stats per day from ``trace_stats_cache`` where a day's version still matches, computed
    (and stored) for the days that changed; a day that ``since_ns`` cuts is always computed."""
    first = None if since_ns is None else since_ns // DAY_NS
    after = "" if first is None else f" AND day >= {d.mark}"
    out: list[StatsRow] = []
    fresh: list[tuple[int, int, list[StatsRow]]] = []
    with session(False) as conn:
        versions = {
            int(day): int(version)
            for day, version in conn.execute(
                f"SELECT day, version FROM trace_days WHERE true{after}",
                () if first is None else (first,),
            ).fetchall()
        }
        cached = {
            int(day): (int(version), rows)
            for day, version, rows in conn.execute(
                f"SELECT day, version, rows FROM trace_stats_cache WHERE kind = {d.mark}{after}",
                (kind,) if first is None else (kind, first),
            ).fetchall()
        }
        stale = []
        for day, version in sorted(versions.items()):
            if since_ns is not None and day == first and since_ns % DAY_NS:
                out += compute(conn, since_ns, (day + 1) * DAY_NS)
            elif day in cached and cached[day][0] == version:
                out += [StatsRow(day_of(day), *r) for r in json.loads(cached[day][1])]
            else:
                stale.append(day)
        for low, high in _runs(stale):
            rows = compute(conn, low * DAY_NS, (high + 1) * DAY_NS)
            out += rows
            for day in range(low, high + 1):
                mine = [r for r in rows if r.day == day_of(day)]
                fresh.append((day, versions[day], mine))
    if fresh:
        with session(True) as conn:
            for day, version, rows in fresh:
                encoded = json.dumps([list(vars(r).values())[1:] for r in rows])
                conn.execute(
                    "INSERT INTO trace_stats_cache (kind, day, version, rows) VALUES "
                    f"({d.mark}, {d.mark}, {d.mark}, {d.mark}) ON CONFLICT (kind, day) DO UPDATE "
                    "SET version = excluded.version, rows = excluded.rows "
                    "WHERE excluded.version > trace_stats_cache.version",
                    (kind, day, version, encoded),
                )
    out.sort(key=lambda r: (r.day, r.group is None, r.group or ""))
    return out


def _runs(days: list[int]) -> list[tuple[int, int]]:
    """Sorted days as ranges of consecutive days: [1, 2, 3, 7] → [(1, 3), (7, 7)]."""
    runs: list[tuple[int, int]] = []
    for day in days:
        if runs and runs[-1][1] == day - 1:
            runs[-1] = (runs[-1][0], day)
        else:
            runs.append((day, day))
    return runs


def stats_source(spans: str, by: str, table: str) -> tuple[str, str]:
    """The table and the condition of the rows ``stats`` counts, and the group column."""
    column = group_column(by)
    if spans == "root":
        return "traces WHERE true", column
    if spans != "llm":
        raise InvalidInputError(f"unknown span kind {spans!r}", hint="use root or llm")
    calls = ", ".join(f"'{op}'" for op in MODEL_CALLS)
    return f"{table} WHERE model IS NOT NULL AND operation IN ({calls})", column
