"""The PostgreSQL schema as numbered migrations, applied in order on start.

A small runner rather than Alembic: the schema is plain SQL (pgvector types, partial indexes,
statement triggers), Hanlin has no ORM to generate it from, and the runner is the same idea as
the embedded store's (:mod:`hanlin.knowledge.stores.schema`). Each migration runs in its own
transaction; a session advisory lock makes replicas that start together apply each migration
once. A database whose schema is newer than this Hanlin knows is refused (an older replica must
not write to a newer schema).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from hanlin.errors import ConfigError

if TYPE_CHECKING:
    import psycopg

#: pg_advisory_lock key of the migration runner ("hanlin" in ASCII)
LOCK_KEY = 0x68616E6C696E

#: (version, name, SQL — or a function returning it, for a library's own schema)
MIGRATIONS: list[tuple[int, str, str | Callable[[], str]]] = [
    (
        1,
        "knowledge bases",
        """
        CREATE EXTENSION IF NOT EXISTS vector;
        CREATE TABLE kbs (
            id serial PRIMARY KEY, name text NOT NULL UNIQUE, store text,
            created_at double precision NOT NULL
        );
        -- store is NULL until the knowledge base is complete (kb create records it last)
        CREATE TABLE kb_meta (
            kb_id int NOT NULL REFERENCES kbs(id) ON DELETE CASCADE,
            key text NOT NULL, value text NOT NULL, PRIMARY KEY (kb_id, key)
        );
        CREATE TABLE kb_sources (
            id bigserial PRIMARY KEY, kb_id int NOT NULL REFERENCES kbs(id) ON DELETE CASCADE,
            uri text NOT NULL, kind text NOT NULL, options jsonb NOT NULL DEFAULT '{}',
            added_at double precision NOT NULL, UNIQUE (kb_id, uri)
        );
        CREATE TABLE kb_files (
            kb_id int NOT NULL REFERENCES kbs(id) ON DELETE CASCADE, path text NOT NULL,
            source_id bigint NOT NULL, size bigint NOT NULL, mtime_ns bigint NOT NULL,
            content_hash text, status text NOT NULL, error text, hint text,
            updated_at double precision NOT NULL, PRIMARY KEY (kb_id, path)
        );
        CREATE INDEX kb_files_source ON kb_files (kb_id, source_id);
        CREATE TABLE kb_documents (
            id bigserial PRIMARY KEY, kb_id int NOT NULL REFERENCES kbs(id) ON DELETE CASCADE,
            key text NOT NULL, file_path text, source text NOT NULL, title text NOT NULL,
            format text NOT NULL, content_hash text NOT NULL,
            metadata jsonb NOT NULL DEFAULT '{}', n_chars int NOT NULL,
            created_at double precision NOT NULL, updated_at double precision NOT NULL,
            UNIQUE (kb_id, key)
        );
        CREATE INDEX kb_documents_file ON kb_documents (kb_id, file_path);
        CREATE INDEX kb_documents_metadata ON kb_documents USING gin (metadata jsonb_path_ops);
        CREATE TABLE kb_chunks (
            id bigserial PRIMARY KEY, kb_id int NOT NULL,
            doc_id bigint NOT NULL REFERENCES kb_documents(id) ON DELETE CASCADE,
            ord int NOT NULL, text text NOT NULL, tokens text NOT NULL, n_terms int NOT NULL,
            text_hash text NOT NULL, heading_path jsonb NOT NULL DEFAULT '[]',
            page int, page_end int, char_start int NOT NULL, char_end int NOT NULL,
            n_tokens int NOT NULL, kind text NOT NULL, embedding vector
        );
        CREATE INDEX kb_chunks_doc ON kb_chunks (doc_id);
        CREATE INDEX kb_chunks_kb ON kb_chunks (kb_id, id);
        CREATE INDEX kb_chunks_text_hash ON kb_chunks (kb_id, text_hash);
        CREATE INDEX kb_chunks_unembedded ON kb_chunks (kb_id, id) WHERE embedding IS NULL;
        -- BM25 postings of the analyzer's tokens: term frequency and the chunk's length
        CREATE TABLE kb_postings (
            kb_id int NOT NULL, term text NOT NULL,
            chunk_id bigint NOT NULL REFERENCES kb_chunks(id) ON DELETE CASCADE,
            tf int NOT NULL, dl int NOT NULL, PRIMARY KEY (kb_id, term, chunk_id)
        );
        CREATE INDEX kb_postings_chunk ON kb_postings (chunk_id);
        -- chunk count and total token length per knowledge base, for BM25's avgdl
        CREATE TABLE kb_stats (
            kb_id int PRIMARY KEY REFERENCES kbs(id) ON DELETE CASCADE,
            n_chunks bigint NOT NULL DEFAULT 0, total_len bigint NOT NULL DEFAULT 0
        );
        CREATE FUNCTION kb_stats_ins() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            INSERT INTO kb_stats AS s (kb_id, n_chunks, total_len)
                SELECT kb_id, count(*), sum(n_terms) FROM new_rows GROUP BY kb_id
            ON CONFLICT (kb_id) DO UPDATE SET n_chunks = s.n_chunks + excluded.n_chunks,
                total_len = s.total_len + excluded.total_len;
            RETURN NULL;
        END $$;
        CREATE FUNCTION kb_stats_del() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            UPDATE kb_stats s SET n_chunks = s.n_chunks - d.n, total_len = s.total_len - d.len
            FROM (SELECT kb_id, count(*) AS n, sum(n_terms) AS len FROM old_rows
                  GROUP BY kb_id) d WHERE s.kb_id = d.kb_id;
            RETURN NULL;
        END $$;
        CREATE FUNCTION kb_stats_upd() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            UPDATE kb_stats s SET total_len = s.total_len + d.len
            FROM (SELECT n.kb_id, sum(n.n_terms - o.n_terms) AS len FROM new_rows n
                  JOIN old_rows o ON o.id = n.id GROUP BY n.kb_id) d WHERE s.kb_id = d.kb_id;
            RETURN NULL;
        END $$;
        CREATE TRIGGER kb_chunks_stats_ins AFTER INSERT ON kb_chunks
            REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION kb_stats_ins();
        CREATE TRIGGER kb_chunks_stats_del AFTER DELETE ON kb_chunks
            REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION kb_stats_del();
        CREATE TRIGGER kb_chunks_stats_upd AFTER UPDATE ON kb_chunks
            REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
            FOR EACH STATEMENT EXECUTE FUNCTION kb_stats_upd();
        -- vectors of a re-embed in progress, beside the live ones until the swap
        CREATE TABLE kb_vectors_next (
            chunk_id bigint PRIMARY KEY REFERENCES kb_chunks(id) ON DELETE CASCADE,
            kb_id int NOT NULL, space text NOT NULL, embedding vector NOT NULL
        );
        CREATE INDEX kb_vectors_next_kb ON kb_vectors_next (kb_id, space);
        """,
    ),
    (
        10,
        "job queue (procrastinate) and durable ingest jobs",
        lambda: _procrastinate_schema() + JOBS_SQL,
    ),
    (
        20,
        "API keys, usage ledger and budgets, web-UI conversations",
        """
        -- API keys: salted hashes only (hanlin.access.apikeys_postgres)
        CREATE TABLE api_keys (
            id text PRIMARY KEY, name text NOT NULL DEFAULT '', scopes text[] NOT NULL,
            kbs text[] NOT NULL DEFAULT '{}', salt text NOT NULL, hash text NOT NULL,
            created_at double precision NOT NULL, revoked_at double precision,
            extra jsonb NOT NULL DEFAULT '{}'
        );
        CREATE UNIQUE INDEX api_keys_active_name ON api_keys (name)
            WHERE revoked_at IS NULL AND name <> '';
        -- the usage ledger, one row per model call (hanlin.models.usage_postgres)
        CREATE TABLE usage_calls (
            id bigserial PRIMARY KEY, ts double precision NOT NULL, day text NOT NULL,
            deployment text NOT NULL, key text NOT NULL, prompt_tokens int NOT NULL,
            completion_tokens int NOT NULL, cached_tokens int NOT NULL,
            usd double precision NOT NULL, cny double precision NOT NULL,
            latency_ms double precision NOT NULL, ok boolean NOT NULL,
            cached_response boolean NOT NULL DEFAULT false
        );
        CREATE INDEX usage_calls_day ON usage_calls (day, key);
        -- spend per UTC day and caller key ('*' = everyone): what budget checks read
        CREATE TABLE usage_spend (
            day text NOT NULL, key text NOT NULL, usd double precision NOT NULL DEFAULT 0,
            calls bigint NOT NULL DEFAULT 0, PRIMARY KEY (day, key)
        );
        -- web-UI conversations (hanlin.conversations.postgres), the SQLite store's shape
        CREATE TABLE conversations (
            id text PRIMARY KEY, owner text NOT NULL, title text NOT NULL,
            model text, system_prompt text, temperature double precision, max_tokens int,
            import_key text, created_at double precision NOT NULL,
            updated_at double precision NOT NULL
        );
        CREATE INDEX conversations_owner ON conversations (owner, updated_at);
        CREATE UNIQUE INDEX conversations_import ON conversations (owner, import_key);
        CREATE TABLE conversation_messages (
            conversation_id text NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
            position int NOT NULL, role text NOT NULL, content text NOT NULL,
            meta text NOT NULL, created_at double precision NOT NULL,
            PRIMARY KEY (conversation_id, position)
        );
        """,
    ),
    (21, "keyword document frequencies; vectors stored inline", lambda: TERMS_SQL),
    (30, "traces", lambda: TRACES_SQL),
    (31, "trace tags; trace text index where pg_trgm is", lambda: TRACE_TAGS_SQL),
    (35, "prompt registry", lambda: PROMPTS_SQL),
    (50, "evaluation datasets and runs", lambda: EVALS_SQL),
    (51, "evaluation dataset import reports", lambda: EVALS_REPORT_SQL),
    (60, "workflow runs", lambda: FLOWS_SQL),
    (61, "who started each workflow run", lambda: FLOWS_STARTED_BY_SQL),
    (62, "workflow schedule fires", lambda: FLOWS_SCHEDULE_FIRES_SQL),
]

#: workflow runs, their steps and recorded side effects (hanlin.flows.postgres), the SQLite
#: store's shape (hanlin.flows.store.SCHEMA)
FLOWS_SQL = """
CREATE TABLE flow_runs (
    id text PRIMARY KEY, workflow text NOT NULL, definition text NOT NULL,
    inputs text NOT NULL, status text NOT NULL, state text NOT NULL, outputs text,
    error text, pending text, owner text, parent text, created_at double precision NOT NULL,
    updated_at double precision NOT NULL, steps int NOT NULL
);
CREATE INDEX flow_runs_created ON flow_runs (created_at);
CREATE INDEX flow_runs_workflow ON flow_runs (workflow, created_at);
CREATE TABLE flow_steps (
    run_id text NOT NULL REFERENCES flow_runs(id) ON DELETE CASCADE, seq int NOT NULL,
    node text NOT NULL, type text NOT NULL, status text NOT NULL, outputs text NOT NULL,
    branch text, error text, attempts int NOT NULL, started_at double precision NOT NULL,
    finished_at double precision NOT NULL, PRIMARY KEY (run_id, seq)
);
CREATE TABLE flow_effects (
    run_id text NOT NULL REFERENCES flow_runs(id) ON DELETE CASCADE, key text NOT NULL,
    value text NOT NULL, created_at double precision NOT NULL, PRIMARY KEY (run_id, key)
);
"""

#: the API key that started each workflow run (hanlin.flows.sql.STARTED_BY)
FLOWS_STARTED_BY_SQL = """
ALTER TABLE flow_runs ADD COLUMN started_by text;
CREATE INDEX flow_runs_started_by ON flow_runs (started_by, created_at);
"""

#: the fires of workflow schedule triggers (hanlin.flows.sql.SCHEDULE_FIRES): the primary key
#: is what lets only one replica start each fire
FLOWS_SCHEDULE_FIRES_SQL = """
CREATE TABLE flow_schedule_fires (
    workflow text NOT NULL, trigger_key text NOT NULL, scheduled_at double precision NOT NULL,
    outcome text NOT NULL, run_id text, fired_at double precision NOT NULL,
    PRIMARY KEY (workflow, trigger_key, scheduled_at)
);
"""

#: versioned evaluation datasets, runs and per-example results (hanlin.evals.postgres), the
#: SQLite store's shape (hanlin.evals.sql.SCHEMA)
EVALS_SQL = """
CREATE TABLE eval_datasets (
    name text NOT NULL, version int NOT NULL, hash text NOT NULL, source text NOT NULL,
    count int NOT NULL, created_at double precision NOT NULL, PRIMARY KEY (name, version)
);
CREATE UNIQUE INDEX eval_datasets_hash ON eval_datasets (name, hash);
CREATE TABLE eval_examples (
    name text NOT NULL, version int NOT NULL, position int NOT NULL, data text NOT NULL,
    PRIMARY KEY (name, version, position)
);
CREATE TABLE eval_runs (
    id text PRIMARY KEY, name text NOT NULL, dataset text NOT NULL, target text NOT NULL,
    config text NOT NULL, status text NOT NULL, total int NOT NULL,
    created_at double precision NOT NULL, updated_at double precision NOT NULL,
    aggregates text NOT NULL
);
CREATE INDEX eval_runs_created ON eval_runs (created_at);
CREATE TABLE eval_results (
    run_id text NOT NULL REFERENCES eval_runs(id) ON DELETE CASCADE,
    example_id text NOT NULL, position int NOT NULL, data text NOT NULL,
    PRIMARY KEY (run_id, example_id)
);
"""

#: each dataset version's import report: the rows skipped and why (hanlin.evals.sql)
EVALS_REPORT_SQL = "ALTER TABLE eval_datasets ADD COLUMN report text NOT NULL DEFAULT '{}'"

#: finished spans, one row per trace and the dashboard's per-day cache (hanlin.tracing.postgres),
#: the SQLite store's shape; ids sort bytewise (COLLATE "C") whatever the database's collation
TRACES_SQL = """
CREATE TABLE trace_spans (
    span_id text COLLATE "C" PRIMARY KEY, trace_id text COLLATE "C" NOT NULL, parent_id text,
    name text NOT NULL, start_ns bigint NOT NULL, end_ns bigint NOT NULL, status text NOT NULL,
    error text, operation text, model text, provider text, kb text, key_id text,
    input_tokens bigint NOT NULL, output_tokens bigint NOT NULL, cached_tokens bigint NOT NULL,
    cost_usd double precision NOT NULL, cost_cny double precision NOT NULL,
    attributes jsonb NOT NULL
);
CREATE INDEX trace_spans_trace ON trace_spans (trace_id, start_ns);
CREATE INDEX trace_spans_start ON trace_spans (start_ns);
CREATE INDEX trace_spans_model ON trace_spans (model, trace_id) WHERE model IS NOT NULL;
CREATE INDEX trace_spans_kb ON trace_spans (kb, trace_id) WHERE kb IS NOT NULL;
CREATE INDEX trace_spans_key ON trace_spans (key_id, trace_id) WHERE key_id IS NOT NULL;
CREATE TABLE traces (
    trace_id text COLLATE "C" PRIMARY KEY, name text NOT NULL, start_ns bigint NOT NULL,
    end_ns bigint NOT NULL, status text NOT NULL, spans int NOT NULL, model text, kb text,
    key_id text, input_tokens bigint NOT NULL, output_tokens bigint NOT NULL,
    cost_usd double precision NOT NULL, cost_cny double precision NOT NULL,
    rating smallint, comment text
);
CREATE INDEX traces_start ON traces (start_ns, trace_id);
CREATE INDEX traces_status ON traces (status, start_ns, trace_id);
CREATE INDEX traces_rating ON traces (rating, start_ns, trace_id) WHERE rating IS NOT NULL;
-- the dashboard's per-day cache (hanlin.tracing.sql.cached_stats)
CREATE TABLE trace_days (day bigint PRIMARY KEY, version bigint NOT NULL);
CREATE TABLE trace_stats_cache (
    kind text NOT NULL, day bigint NOT NULL, version bigint NOT NULL, rows text NOT NULL,
    PRIMARY KEY (kind, day)
);
"""

#: each trace's models, knowledge bases and API keys keyed by its start (hanlin.tracing.sql),
#: in place of per-span indexes whose random trace ids made every write touch pages all over the
#: table; and a trigram index for free-text search where the server has pg_trgm
TRACE_TAGS_SQL = """
CREATE TABLE trace_tags (
    start_ns bigint NOT NULL, trace_id text COLLATE "C" NOT NULL, kind text NOT NULL,
    value text NOT NULL, PRIMARY KEY (start_ns, trace_id, kind, value)
);
CREATE INDEX trace_tags_value ON trace_tags (kind, value, start_ns, trace_id);
INSERT INTO trace_tags
SELECT t.start_ns, t.trace_id, 'model', s.model FROM trace_spans s
    JOIN traces t ON t.trace_id = s.trace_id WHERE s.model IS NOT NULL
UNION SELECT t.start_ns, t.trace_id, 'kb', s.kb FROM trace_spans s
    JOIN traces t ON t.trace_id = s.trace_id WHERE s.kb IS NOT NULL
UNION SELECT t.start_ns, t.trace_id, 'key_id', s.key_id FROM trace_spans s
    JOIN traces t ON t.trace_id = s.trace_id WHERE s.key_id IS NOT NULL;
DROP INDEX trace_spans_model;
DROP INDEX trace_spans_kb;
DROP INDEX trace_spans_key;
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'pg_trgm') THEN
        BEGIN
            CREATE EXTENSION IF NOT EXISTS pg_trgm;
        EXCEPTION WHEN insufficient_privilege THEN
            RAISE NOTICE 'pg_trgm needs a superuser: trace text search scans without it';
        END;
    END IF;
    IF EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm') THEN
        CREATE INDEX trace_spans_text ON trace_spans USING gin ((attributes::text) gin_trgm_ops);
    END IF;
END
$$;
"""

#: prompts, their immutable versions, labels and every label move (hanlin.prompts.postgres): the
#: SQLite store's tables (hanlin.prompts.sql.TABLES); ``prompt_state.generation`` grows with every
#: change, so a replica's cache knows when to re-read
PROMPTS_SQL = """
CREATE TABLE prompts (
    name text PRIMARY KEY, created_at double precision NOT NULL,
    updated_at double precision NOT NULL
);
CREATE TABLE prompt_versions (
    name text NOT NULL REFERENCES prompts(name), version int NOT NULL, text text NOT NULL,
    variables text NOT NULL, config text, message text NOT NULL, author text NOT NULL,
    created_at double precision NOT NULL, hash text NOT NULL, PRIMARY KEY (name, version)
);
CREATE INDEX prompt_versions_hash ON prompt_versions (hash);
CREATE TABLE prompt_labels (
    name text NOT NULL REFERENCES prompts(name), label text NOT NULL, version int NOT NULL,
    PRIMARY KEY (name, label),
    FOREIGN KEY (name, version) REFERENCES prompt_versions(name, version)
);
CREATE TABLE prompt_label_moves (
    name text NOT NULL, label text NOT NULL, version int NOT NULL, previous int,
    actor text NOT NULL, at double precision NOT NULL
);
CREATE INDEX prompt_label_moves_name ON prompt_label_moves (name, at);
CREATE TABLE prompt_state (id int PRIMARY KEY, generation bigint NOT NULL);
INSERT INTO prompt_state (id, generation) VALUES (1, 0);
CREATE FUNCTION prompt_versions_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'prompt versions are immutable';
END $$;
CREATE TRIGGER prompt_versions_immutable BEFORE UPDATE ON prompt_versions
    FOR EACH ROW EXECUTE FUNCTION prompt_versions_immutable();
"""

#: BM25's document frequency per term, kept by statement triggers on kb_postings, so that a
#: keyword search reads df in one probe per term instead of counting posting lists (the
#: pruned search in hanlin.knowledge.stores.postgres_sql needs it before it reads postings).
#: Every writer of a knowledge base already queues on its kb_stats row (the chunk triggers
#: update it); the term triggers take that row first too, so term rows are only ever locked
#: by one writer at a time, and concurrent writers cannot deadlock on them.
#: Vectors: STORAGE MAIN keeps them in the row (EXTERNAL, pgvector's default, moved every
#: vector of 512 dimensions out of line, and an exact scan paid a TOAST fetch per row).
TERMS_SQL = """
CREATE TABLE kb_terms (
    kb_id int NOT NULL REFERENCES kbs(id) ON DELETE CASCADE,
    term text NOT NULL, df int NOT NULL, PRIMARY KEY (kb_id, term)
);
INSERT INTO kb_terms SELECT kb_id, term, count(*) FROM kb_postings GROUP BY kb_id, term;
CREATE FUNCTION kb_terms_ins() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM 1 FROM kb_stats WHERE kb_id IN (SELECT DISTINCT kb_id FROM new_rows)
        ORDER BY kb_id FOR UPDATE;
    INSERT INTO kb_terms AS t (kb_id, term, df)
        SELECT kb_id, term, count(*) FROM new_rows GROUP BY kb_id, term ORDER BY kb_id, term
    ON CONFLICT (kb_id, term) DO UPDATE SET df = t.df + excluded.df;
    RETURN NULL;
END $$;
CREATE FUNCTION kb_terms_del() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM 1 FROM kb_stats WHERE kb_id IN (SELECT DISTINCT kb_id FROM old_rows)
        ORDER BY kb_id FOR UPDATE;
    UPDATE kb_terms t SET df = t.df - d.n
        FROM (SELECT kb_id, term, count(*) AS n FROM old_rows GROUP BY kb_id, term) d
        WHERE t.kb_id = d.kb_id AND t.term = d.term;
    DELETE FROM kb_terms t USING (SELECT DISTINCT kb_id, term FROM old_rows) d
        WHERE t.kb_id = d.kb_id AND t.term = d.term AND t.df <= 0;
    RETURN NULL;
END $$;
CREATE TRIGGER kb_postings_terms_ins AFTER INSERT ON kb_postings
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION kb_terms_ins();
CREATE TRIGGER kb_postings_terms_del AFTER DELETE ON kb_postings
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION kb_terms_del();
ALTER TABLE kb_chunks ALTER COLUMN embedding SET STORAGE MAIN;
"""

JOBS_SQL = """
CREATE TABLE hanlin_jobs (
    id text PRIMARY KEY, kb text NOT NULL, kind text NOT NULL,
    status text NOT NULL DEFAULT 'running', error text, model text,
    chunk_done int, chunk_total int, cancel_requested boolean NOT NULL DEFAULT false,
    stopped boolean NOT NULL DEFAULT false, access jsonb NOT NULL DEFAULT '{}',
    attempts int NOT NULL DEFAULT 0,
    created_at double precision NOT NULL, finished_at double precision
);
CREATE INDEX hanlin_jobs_kb ON hanlin_jobs (kb, created_at);
CREATE TABLE hanlin_job_files (
    job_id text NOT NULL REFERENCES hanlin_jobs(id) ON DELETE CASCADE, idx int NOT NULL,
    upload_id text, filename text NOT NULL, status text NOT NULL, reason text,
    chunks int NOT NULL DEFAULT 0, key text NOT NULL DEFAULT '',
    forgotten boolean NOT NULL DEFAULT false, PRIMARY KEY (job_id, idx)
);
-- uploaded bytes, readable by a worker on any machine (upload://<kb>/<id>/<name> sources)
CREATE TABLE hanlin_uploads (
    kb text NOT NULL, upload_id text NOT NULL, filename text NOT NULL, data bytea NOT NULL,
    created_at double precision NOT NULL, PRIMARY KEY (kb, upload_id)
);
"""


def _procrastinate_schema() -> str:
    from procrastinate.schema import SchemaManager

    return str(SchemaManager.get_schema())


def latest() -> int:
    """The schema version this Hanlin writes."""
    return max(m[0] for m in MIGRATIONS)


def migrate(conn: psycopg.Connection[Any], shown_url: str) -> list[int]:
    """Apply pending migrations on an autocommit connection; returns the versions applied.

    Raises :class:`ConfigError` when the database's schema is newer than this code."""
    conn.execute("SELECT pg_advisory_lock(%s)", (LOCK_KEY,))
    try:
        conn.execute(
            "CREATE TABLE IF NOT EXISTS hanlin_schema (version int PRIMARY KEY, "
            "name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        done = {int(r[0]) for r in conn.execute("SELECT version FROM hanlin_schema")}
        newest = max(done, default=0)
        if newest > latest():
            raise ConfigError(
                f"the database {shown_url} has schema version {newest}, newer than this "
                f"Hanlin knows ({latest()})",
                hint="upgrade Hanlin (pip install -U hanlin) on this machine: every replica "
                "and worker sharing a database must run the same or a newer version",
            )
        applied = []
        for version, name, sql in sorted(MIGRATIONS, key=lambda m: m[0]):
            if version in done:
                continue
            with conn.transaction():
                conn.execute((sql() if callable(sql) else sql).encode())
                conn.execute(
                    "INSERT INTO hanlin_schema (version, name) VALUES (%s, %s)", (version, name)
                )
            applied.append(version)
        return applied
    finally:
        conn.execute("SELECT pg_advisory_unlock(%s)", (LOCK_KEY,))
