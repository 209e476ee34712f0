"""The HTML report of ``hanlin guard assess``: the rates against the standard's thresholds per
bank and category, as a table and as bars (inline SVG), and the answers that missed (a
should-refuse question answered, a should-answer question refused, bank terms in an answer).
Self-contained like the evaluation report (its stylesheet, no script, no CDN); every text from
a bank or a model is escaped."""

from __future__ import annotations

import time

from hanlin.evals.assess import THRESHOLDS, Assessment, Item, Row
from hanlin.evals.report import _CSS, _e

_TITLES = {
    "refuse": "Should-refuse questions (拒答测试题)",
    "answer": "Should-answer questions (非拒答测试题)",
    "generated": "Generated content (生成内容测试题)",
}
_EXTRA_CSS = ".pass{color:#1a7f37;font-weight:600}.fail{color:#cf222e;font-weight:600}"


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{value * 100:.1f} %"


def _verdict(row: Row) -> str:
    if row.passed is None:
        return "<td>–</td>"
    return '<td class="pass">pass</td>' if row.passed else '<td class="fail">fail</td>'


def _rule(kind: str) -> str:
    what, bound, op = THRESHOLDS[kind]
    return f"{what} {'≥' if op == '>=' else '≤'} {bound * 100:.0f} %"


def render_assessment(result: Assessment) -> str:
    """The whole report as one HTML document."""
    rows = result.rows()
    parts = [_summary(result, rows)]
    for kind in _TITLES:
        mine = [r for r in rows if r.kind == kind]
        if mine:
            parts.append(_kind_table(kind, mine))
    parts.append(_misses(result.items))
    problems = [p for b in result.banks for p in b.problems]
    if problems:
        parts.append(
            "<h2>Lines skipped</h2>" + "".join(f'<p class="note">{_e(p)}</p>' for p in problems)
        )
    made = time.strftime("%Y-%m-%d %H:%M", time.localtime())
    title = f"Safety assessment of {result.target}"
    verdict = (
        '<span class="pass">passed</span>'
        if result.passed()
        else '<span class="fail">failed</span>'
    )
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{_e(title)}</title><style>{_CSS}{_EXTRA_CSS}</style></head><body>"
        f"<h1>{_e(title)}</h1><p>Hanlin guard assessment, made {made}, against the thresholds of "
        f"GB/T 45654-2025 (TC260-003): {verdict}. Refusals are detected by finish reason "
        f"<code>content_filter</code>, the policy's refusal text, refusal phrases"
        f"{', and the judge ' + _e(result.judge) if result.judge else ''}.</p>"
        + "".join(parts)
        + "</body></html>\n"
    )


def _summary(result: Assessment, rows: list[Row]) -> str:
    lines = []
    for row in (r for r in rows if not r.category):
        lines.append(
            f"<tr><td>{_e(_TITLES[row.kind])}</td><td class='n'>{row.scored}</td>"
            f"<td class='n'>{_pct(row.rate)}</td><td>{_e(_rule(row.kind))}</td>{_verdict(row)}"
            f"<td class='n'>{row.errors}</td></tr>"
        )
    head = (
        "<tr><th>bank</th><th>questions</th><th>rate</th><th>threshold</th><th></th>"
        "<th>errors</th></tr>"
    )
    return f"<h2>Summary</h2><table>{head}{''.join(lines)}</table>"


def _kind_table(kind: str, rows: list[Row]) -> str:
    lines = []
    for row in rows:
        name = row.category or "all"
        lines.append(
            f"<tr><td>{_e(name)}</td><td class='n'>{row.scored}</td>"
            f"<td class='n'>{row.refused}</td><td class='n'>{row.with_terms}</td>"
            f"<td class='n'>{_pct(row.rate)}</td>{_verdict(row)}</tr>"
        )
    head = (
        "<tr><th>category</th><th>questions</th><th>refused</th><th>with bank terms</th>"
        f"<th>{_e(THRESHOLDS[kind][0])}</th><th></th></tr>"
    )
    return f"<h2>{_e(_TITLES[kind])}</h2><table>{head}{''.join(lines)}</table>{_bars(kind, rows)}"


def _bars(kind: str, rows: list[Row]) -> str:
    """One bar per category (its rate), and the threshold as a line."""
    cats = [r for r in rows if r.category and r.rate is not None]
    if not cats:
        return ""
    width, left, bar = 560, 160, 18
    height = len(cats) * (bar + 6) + 10
    scale = width - left - 60
    out = [f'<svg width="{width}" height="{height}" role="img" aria-label="rates per category">']
    for i, row in enumerate(cats):
        y = 5 + i * (bar + 6)
        w = (row.rate or 0.0) * scale
        color = "#1a7f37" if row.passed else "#cf222e"
        out.append(
            f'<text x="{left - 6}" y="{y + 13}" text-anchor="end" font-size="12">'
            f"{_e(row.category)}</text>"
            f'<rect x="{left}" y="{y}" width="{w:.1f}" height="{bar}" fill="{color}"/>'
            f'<text x="{left + w + 4:.1f}" y="{y + 13}" font-size="12">{_pct(row.rate)}</text>'
        )
    x = left + THRESHOLDS[kind][1] * scale
    out.append(
        f'<line x1="{x:.1f}" y1="0" x2="{x:.1f}" y2="{height}" stroke="#222" '
        'stroke-dasharray="4 3"/>'
    )
    return "".join(out) + "</svg>"


def _missed(item: Item) -> str:
    if item.error is not None:
        return "error: " + item.error
    if item.kind == "refuse" and not item.refused:
        return "answered"
    if item.kind == "answer" and item.refused:
        return f"refused ({item.how})"
    if item.terms:
        return "bank terms: " + ", ".join(item.terms)
    return ""


def _misses(items: list[Item]) -> str:
    lines = []
    for item in items:
        why = _missed(item)
        if why:
            q = item.question
            lines.append(
                f"<tr><td>{_e(item.kind)}</td><td>{_e(q.category)}</td><td>{_e(why)}</td>"
                f"<td><pre>{_e(q.question)}</pre></td><td><pre>{_e(item.text[:1000])}</pre></td></tr>"
            )
    if not lines:
        return "<h2>Misses</h2><p>None: every question was handled as its bank expects.</p>"
    head = "<tr><th>bank</th><th>category</th><th>what</th><th>question</th><th>answer</th></tr>"
    return f"<h2>Misses ({len(lines)})</h2><table>{head}{''.join(lines)}</table>"
