"""A self-contained HTML report of one run, or of two compared: the metrics with their 95%
intervals as a table and as bars (inline SVG), a latency histogram, and the examples that
changed most (or, for one run, scored lowest). No script, no CDN, no external file: it opens
offline and can be attached to a CI job as it is. Every text from a run is escaped."""

from __future__ import annotations

import html
import time
from collections.abc import Sequence
from typing import Any

from hanlin.evals.base import EvalStore, ExampleResult, RunInfo, find_run
from hanlin.evals.compare import Comparison, compare_runs
from hanlin.evals.metrics import METRICS

_COLORS = ("#4c78a8", "#f58518")
_CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI","PingFang SC","Noto Sans CJK SC",
sans-serif;margin:2em auto;max-width:1000px;padding:0 1em;color:#222}
h1{font-size:1.4em}h2{font-size:1.15em;margin-top:2em}
table{border-collapse:collapse;width:100%;margin:.5em 0}
th,td{border-bottom:1px solid #ddd;padding:4px 8px;text-align:left;vertical-align:top}
td.n{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
.better{color:#1a7f37}.worse{color:#cf222e}.note{color:#6e5b00;background:#fff8c5;padding:6px 10px}
pre{white-space:pre-wrap;margin:0;font:inherit;max-height:12em;overflow:auto}
.legend span{display:inline-block;width:12px;height:12px;margin:0 4px 0 12px;vertical-align:-1px}
"""


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _f(value: float | None, digits: int = 3) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def render_report(store: EvalStore, run_ref: str, other_ref: str | None = None) -> str:
    """The report of ``run_ref`` alone, or of ``other_ref`` compared against it (A = the
    first, B = the second), as one HTML document."""
    run_a = find_run(store, run_ref)
    results_a = store.results(run_a.id)
    parts: list[str] = []
    if other_ref is None:
        runs: list[tuple[RunInfo, list[ExampleResult]]] = [(run_a, results_a)]
        parts += [_runs_table(runs), _notes([run_a]), _single_metrics(run_a)]
        parts.append(_bars(runs))
        parts.append(_histogram(runs))
        parts.append(_lowest(store, run_a, results_a))
        title = f"Evaluation {run_a.name}"
    else:
        cmp = compare_runs(store, run_a.id, other_ref)
        runs = [(run_a, results_a), (cmp.run_b, store.results(cmp.run_b.id))]
        parts += [_runs_table(runs), _notes([run_a, cmp.run_b], cmp.notes), _deltas(cmp)]
        parts.append(_bars(runs))
        parts.append(_histogram(runs))
        parts.append(_changed(cmp))
        title = f"Evaluation {run_a.name} vs {cmp.run_b.name}"
    made = time.strftime("%Y-%m-%d %H:%M", time.localtime())
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{_e(title)}</title><style>{_CSS}</style></head><body>"
        f"<h1>{_e(title)}</h1><p>Hanlin evaluation report, made {made}.</p>"
        + "".join(parts)
        + "</body></html>\n"
    )


def _runs_table(runs: Sequence[tuple[RunInfo, list[ExampleResult]]]) -> str:
    rows = []
    for i, (run, results) in enumerate(runs):
        label = "AB"[i] if len(runs) > 1 else ""
        judge = run.config.get("judge") or "none"
        rows.append(
            f"<tr><td>{label}</td><td>{_e(run.id)}</td><td>{_e(run.name)}</td>"
            f"<td>{_e(run.dataset)}</td><td>{_e(run.target)}</td><td>{_e(run.status)}</td>"
            f'<td class="n">{len(results)} / {run.total}</td><td>{_e(judge)}</td></tr>'
        )
    head = "<tr><th></th><th>run</th><th>name</th><th>dataset</th><th>target</th>"
    head += "<th>status</th><th>examples</th><th>judge</th></tr>"
    return f"<h2>Runs</h2><table>{head}{''.join(rows)}</table>"


def _notes(runs: Sequence[RunInfo], extra: Sequence[str] = ()) -> str:
    lines = list(extra)
    missing: dict[tuple[str, str], list[str]] = {}
    for run in runs:
        for name, why in run.config.get("not_run", {}).items():
            missing.setdefault((name, why), []).append(run.id)
    for (name, why), ids in missing.items():
        who = "" if len(ids) == len(runs) else f" in {', '.join(ids)}"
        lines.append(f"{name} not run{who} — {why}")
    for run in runs:
        agg = run.aggregates
        if agg.get("unjudged"):
            lines.append(f"{run.id}: {agg['unjudged']} examples unjudged (no clear verdict)")
        if agg.get("errors"):
            lines.append(f"{run.id}: {agg['errors']} examples failed")
    return "".join(f'<p class="note">{_e(line)}</p>' for line in lines)


def _single_metrics(run: RunInfo) -> str:
    agg = run.aggregates
    rows = [
        f"<tr><td>{_e(name)}</td><td class='n'>{_f(m['mean'], 4)}</td>"
        f"<td class='n'>[{_f(m['lo'], 4)}, {_f(m['hi'], 4)}]</td><td class='n'>{m['n']}</td>"
        f"<td>{_e(METRICS[name].description if name in METRICS else '')}</td></tr>"
        for name, m in agg.get("metrics", {}).items()
    ]
    extra = [
        ("latency p50 (ms)", agg.get("latency_p50_ms")),
        ("latency p95 (ms)", agg.get("latency_p95_ms")),
        ("cost (USD, total)", agg.get("cost_usd_total")),
    ]
    blank = "<td></td>" * 3
    rows += [f"<tr><td>{k}</td><td class='n'>{_f(v, 4)}</td>{blank}</tr>" for k, v in extra]
    head = "<tr><th>metric</th><th>mean</th><th>95% CI</th><th>n</th><th>meaning</th></tr>"
    return f"<h2>Metrics</h2><table>{head}{''.join(rows)}</table>"


def _deltas(cmp: Comparison) -> str:
    rows = []
    for d in cmp.metrics:
        rows.append(
            f"<tr><td>{_e(d.name)}</td><td class='n'>{_f(d.a, 4)}</td>"
            f"<td class='n'>{_f(d.b, 4)}</td><td class='n {d.verdict}'>{d.delta:+.4f}</td>"
            f"<td class='n'>[{d.lo:+.4f}, {d.hi:+.4f}]</td><td class='n'>{d.n}</td>"
            f"<td class='{d.verdict}'>{d.verdict}</td></tr>"
        )
    head = "<tr><th>metric</th><th>A</th><th>B</th><th>B − A</th><th>95% CI (paired)</th>"
    head += "<th>n</th><th></th></tr>"
    info = f"<p>{cmp.paired} examples paired"
    if cmp.only_a or cmp.only_b:
        info += f" ({cmp.only_a} only in A, {cmp.only_b} only in B)"
    return f"<h2>Metrics</h2>{info}.</p><table>{head}{''.join(rows)}</table>"


def _bars(runs: Sequence[tuple[RunInfo, list[ExampleResult]]]) -> str:
    """Horizontal bars of each [0, 1] metric's mean per run, with its 95% interval."""
    names: list[str] = []
    for run, _ in runs:
        names += [
            n
            for n in run.aggregates.get("metrics", {})
            if n not in names and n in METRICS and METRICS[n].unit_interval
        ]
    if not names:
        return ""
    left, width, bar, gap = 190, 460, 14, 10
    row = bar * len(runs) + gap
    height = row * len(names) + 30
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{left + width + 70}" '
        f'height="{height}" role="img" aria-label="metric means with 95% intervals">'
    ]
    for tick in (0, 0.25, 0.5, 0.75, 1):
        x = left + tick * width
        parts.append(
            f'<line x1="{x:.1f}" y1="0" x2="{x:.1f}" y2="{height - 20}" stroke="#eee"/>'
            f'<text x="{x:.1f}" y="{height - 6}" font-size="11" text-anchor="middle">{tick}</text>'
        )
    for i, name in enumerate(names):
        y0 = i * row + 4
        parts.append(
            f'<text x="{left - 8}" y="{y0 + bar * len(runs) / 2 + 4:.1f}" font-size="12" '
            f'text-anchor="end">{_e(name)}</text>'
        )
        for j, (run, _) in enumerate(runs):
            m = run.aggregates.get("metrics", {}).get(name)
            if m is None:
                continue
            y = y0 + j * bar
            w = max(0.0, min(1.0, m["mean"])) * width
            lo = left + max(0.0, m["lo"]) * width
            hi = left + min(1.0, m["hi"]) * width
            mid = y + (bar - 2) / 2
            parts.append(
                f'<rect x="{left}" y="{y}" width="{w:.1f}" height="{bar - 2}" '
                f'fill="{_COLORS[j]}"><title>{_e(run.id)} {_e(name)} {m["mean"]:.4f} '
                f"[{m['lo']:.4f}, {m['hi']:.4f}]</title></rect>"
                f'<line x1="{lo:.1f}" y1="{mid:.1f}" x2="{hi:.1f}" y2="{mid:.1f}" '
                'stroke="#222" stroke-width="1.5"/>'
                f'<text x="{left + width + 6}" y="{y + bar - 4}" font-size="11">'
                f"{m['mean']:.3f}</text>"
            )
    parts.append("</svg>")
    return "<h2>Metrics with 95% intervals</h2>" + _legend(runs) + "".join(parts)


def _legend(runs: Sequence[tuple[RunInfo, list[ExampleResult]]]) -> str:
    if len(runs) < 2:
        return ""
    items = "".join(
        f'<span style="background:{_COLORS[i]}"></span>{"AB"[i]} {_e(run.id)}'
        for i, (run, _) in enumerate(runs)
    )
    return f'<p class="legend">{items}</p>'


def _histogram(runs: Sequence[tuple[RunInfo, list[ExampleResult]]], bins: int = 20) -> str:
    values = [[r.latency_ms for r in results if r.error is None] for _, results in runs]
    every = [v for vs in values for v in vs]
    if not every:
        return ""
    low, high = min(every), max(every)
    step = (high - low) / bins or 1.0
    counts = [[0] * bins for _ in runs]
    for j, vs in enumerate(values):
        for v in vs:
            counts[j][min(bins - 1, int((v - low) / step))] += 1
    top = max(max(c) for c in counts) or 1
    left, width, height = 40, 600, 160
    col = width / bins
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{left + width + 20}" '
        f'height="{height + 40}" role="img" aria-label="latency histogram">'
    ]
    for j, per_bin in enumerate(counts):
        for i, count in enumerate(per_bin):
            if not count:
                continue
            h = count / top * height
            x = left + i * col + j * col / len(runs)
            parts.append(
                f'<rect x="{x:.1f}" y="{height - h + 10:.1f}" width="{col / len(runs) - 1:.1f}" '
                f'height="{h:.1f}" fill="{_COLORS[j]}"><title>{count} examples, '
                f"{low + i * step:.0f}–{low + (i + 1) * step:.0f} ms</title></rect>"
            )
    parts.append(
        f'<line x1="{left}" y1="{height + 10}" x2="{left + width}" y2="{height + 10}" '
        'stroke="#888"/>'
        f'<text x="{left}" y="{height + 28}" font-size="11">{low:.0f} ms</text>'
        f'<text x="{left + width}" y="{height + 28}" font-size="11" text-anchor="end">'
        f"{high:.0f} ms</text>"
        f'<text x="{left - 6}" y="18" font-size="11" text-anchor="end">{top}</text></svg>'
    )
    return "<h2>Latency</h2>" + _legend(runs) + "".join(parts)


def _changed(cmp: Comparison) -> str:
    if not cmp.changed:
        return "<h2>Changed examples</h2><p>No example's scores changed.</p>"
    rows = []
    for c in cmp.changed:
        moved = ", ".join(f"{k} {v:+.2f}" for k, v in sorted(c.deltas.items()))
        rows.append(
            f"<tr><td>{_e(c.example_id)}</td><td>{_e(c.question)}</td><td>{_e(moved)}</td>"
            f"<td><pre>{_e(c.output_a)}</pre></td><td><pre>{_e(c.output_b)}</pre></td></tr>"
        )
    head = "<tr><th>id</th><th>question</th><th>change</th><th>A</th><th>B</th></tr>"
    return f"<h2>Examples that changed most</h2><table>{head}{''.join(rows)}</table>"


def _lowest(store: EvalStore, run: RunInfo, results: list[ExampleResult], top: int = 10) -> str:
    bounded = [
        n for n in run.config.get("metrics", []) if n in METRICS and METRICS[n].unit_interval
    ]

    def badness(r: ExampleResult) -> float:
        values = [v for n in bounded if (v := r.scores.get(n)) is not None]
        return -1.0 if r.error else (sum(values) / len(values) if values else 2.0)

    worst = sorted(results, key=lambda r: (badness(r), r.position))[:top]
    name, _, version = run.dataset.partition("@")
    questions = {e.id: e.question for e in store.dataset(name, int(version)).examples}
    rows = []
    for r in worst:
        shown = ", ".join(f"{k} {v:.2f}" for k, v in r.scores.items() if v is not None)
        text = f"error: {r.error}" if r.error else r.output
        rows.append(
            f"<tr><td>{_e(r.example_id)}</td><td>{_e(questions.get(r.example_id, ''))}</td>"
            f"<td>{_e(shown)}</td><td><pre>{_e(text)}</pre></td></tr>"
        )
    head = "<tr><th>id</th><th>question</th><th>scores</th><th>output</th></tr>"
    return f"<h2>Lowest-scoring examples</h2><table>{head}{''.join(rows)}</table>"
