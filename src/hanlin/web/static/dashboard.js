// The dashboard (#/dashboard): totals and per-day charts of requests and errors, tokens, cost
// and latency p50 / p95, and breakdowns per model, API key and knowledge base — all from
// GET /api/traces/stats (per UTC day and group). Charts are drawn by charts.js; each has its
// numbers in a table under "Show the numbers".

import { api } from "./api.js";
import { chart, compact } from "./charts.js";
import { h } from "./dom.js";
import { nsOf } from "./traces.js";
import { fmtCost, fmtInt, fmtMs, fmtPercent, tr } from "./traces-text.js";

const DAY_MS = 86400e3;
const RANGES = [7, 30, 90];

/** The UTC days from `days - 1` days ago to today, as YYYY-MM-DD. */
export function dayLabels(days, now = Date.now()) {
  const today = Math.floor(now / DAY_MS);
  return Array.from({ length: days }, (_, i) => new Date((today - days + 1 + i) * DAY_MS).toISOString().slice(0, 10));
}

/** Rows of several groups summed per group, most requests first. */
export function byGroup(rows) {
  const groups = new Map();
  for (const r of rows) {
    const g = groups.get(r.group) || { group: r.group, requests: 0, errors: 0, input_tokens: 0, output_tokens: 0, cost_usd: 0 };
    for (const k of ["requests", "errors", "input_tokens", "output_tokens", "cost_usd"]) g[k] += r[k];
    groups.set(r.group, g);
  }
  return [...groups.values()].sort((a, b) => b.requests - a.requests || String(a.group).localeCompare(String(b.group)));
}

export class DashboardView {
  constructor() {
    this.days = 30;
    this.spans = "root";
    this.data = null;
    this.error = null;
    this.el = h("section", { id: "dashboard-view", class: "view traces-view", testid: "dashboard-view", hidden: true });
    document.getElementById("main").append(this.el);
    window.addEventListener("hanlin:lang", () => {
      if (!this.el.hidden) this.render();
    });
  }

  async show() {
    this.render();
    await this.load();
  }

  async load() {
    const asked = (this.asked = (this.asked || 0) + 1); // a slower earlier answer is dropped
    const labels = dayLabels(this.days);
    const since_ns = nsOf(Date.parse(`${labels[0]}T00:00:00Z`));
    const stats = (by, spans = this.spans) => api.traceStats({ by, spans, since_ns }).then((r) => r.rows);
    try {
      const [days, model, key_id, kb] = await Promise.all([stats("none"), stats("model"), stats("key_id"), stats("kb", "root")]);
      if (asked !== this.asked) return;
      this.data = { labels, days, model, key_id, kb };
      this.error = null;
    } catch (err) {
      if (asked !== this.asked) return;
      this.data = null;
      this.error = err.status === 403 ? tr("list.denied") : err.display || err.message;
    }
    this.render();
  }

  // --- rendering -------------------------------------------------------------------------------

  render() {
    const head = h(
      "header",
      { class: "kb-head" },
      h("div", {}, h("h1", { testid: "dashboard-title" }, tr("dash.title")), h("p", { class: "muted" }, tr("dash.subtitle"))),
      h("span", { class: "spacer" }),
      h("a", { class: "btn btn-ghost btn-small", href: "#/traces" }, tr("nav.traces")),
    );
    const controls = this.renderControls();
    if (this.error) {
      this.el.replaceChildren(head, controls, h("p", { class: "msg-error", role: "alert", testid: "dashboard-error" }, this.error));
      return;
    }
    if (!this.data) {
      this.el.replaceChildren(head, controls, h("p", { class: "muted" }, "…"));
      return;
    }
    const { labels, days, model, key_id, kb } = this.data;
    if (!days.length) {
      this.el.replaceChildren(
        head,
        controls,
        h("div", { class: "empty-state", testid: "dashboard-empty" }, h("h2", {}, tr("dash.empty.title")), h("p", {}, tr("dash.empty.body"))),
      );
      return;
    }
    const index = new Map(days.map((r) => [r.day, r]));
    const col = (k, none = 0) => labels.map((d) => (index.get(d) ? index.get(d)[k] : none));
    const sum = (k) => days.reduce((a, r) => a + r[k], 0);
    const requests = sum("requests");
    const errors = sum("errors");
    const charts = this.charts(labels, col);
    this.el.replaceChildren(
      head,
      controls,
      h(
        "div",
        { class: "dash-totals", testid: "dash-totals" },
        this.total("requests", tr(this.spans === "llm" ? "dash.count.llm" : "dash.total.requests"), fmtInt(requests)),
        this.total("errors", tr("dash.total.errors"), fmtInt(errors), tr("dash.total.error_rate", { rate: fmtPercent(requests ? errors / requests : 0) })),
        this.total("tokens", tr("dash.total.tokens"), `${fmtInt(sum("input_tokens"))} / ${fmtInt(sum("output_tokens"))}`),
        this.total("cost", tr("dash.total.cost"), sum("cost_usd") ? fmtCost(sum("cost_usd")) : "$0"),
      ),
      h("div", { class: "dash-charts" }, charts.map((c) => h("div", { class: "card" }, c))),
      this.renderData(labels, index),
      h(
        "div",
        { class: "dash-breakdowns" },
        this.breakdown("model", model),
        this.breakdown("key_id", key_id),
        this.breakdown("kb", kb, tr("dash.by.kb.note")),
      ),
    );
  }

  /** The four per-day charts; `col(key, none)` is a stats column over the days. */
  charts(labels, col) {
    const errors = col("errors");
    const ok = col("requests").map((n, i) => n - errors[i]);
    const series = (key, values, cls) => ({ label: tr(`dash.series.${key}`), values, cls });
    return [
      chart({
        kind: "bar",
        title: tr("dash.chart.requests"),
        testid: "chart-requests",
        labels,
        whole: true,
        format: fmtInt,
        series: [series("ok", ok, "chart-ok"), series("errors", errors, "chart-err")],
      }),
      chart({
        kind: "bar",
        title: tr("dash.chart.tokens"),
        testid: "chart-tokens",
        labels,
        whole: true,
        format: fmtInt,
        series: [series("input", col("input_tokens"), "chart-in"), series("output", col("output_tokens"), "chart-out")],
      }),
      chart({
        kind: "bar",
        title: tr("dash.chart.cost"),
        testid: "chart-cost",
        labels,
        format: fmtCost,
        axis: (v) => (v ? `$${compact(v)}` : "0"),
        series: [series("cost", col("cost_usd"), "chart-cost")],
      }),
      chart({
        kind: "line",
        title: tr("dash.chart.latency"),
        testid: "chart-latency",
        labels,
        format: fmtMs,
        axis: (v) => (v ? fmtMs(v) : "0"),
        series: [series("p50", col("p50_ms", null), "chart-p50"), series("p95", col("p95_ms", null), "chart-p95")],
      }),
    ];
  }

  total(key, label, value, sub = null) {
    return h(
      "div",
      { class: "card dash-total", testid: `dash-total-${key}` },
      h("span", { class: "muted small" }, label),
      h("strong", { class: "dash-total-value", testid: "dash-total-value" }, value),
      sub ? h("span", { class: "muted small" }, sub) : null,
    );
  }

  renderControls() {
    const range = h("select", { testid: "dash-range", id: "dash-range" }, RANGES.map((n) => h("option", { value: String(n), selected: n === this.days }, tr("dash.days", { n }))));
    range.addEventListener("change", () => {
      this.days = Number(range.value);
      this.load();
    });
    const count = h("select", { testid: "dash-count", id: "dash-count" }, ["root", "llm"].map((k) => h("option", { value: k, selected: k === this.spans }, tr(`dash.count.${k}`))));
    count.addEventListener("change", () => {
      this.spans = count.value;
      this.load();
    });
    return h(
      "div",
      { class: "dash-controls" },
      h("label", { for: "dash-range" }, tr("dash.range")),
      range,
      h("label", { for: "dash-count" }, tr("dash.count")),
      count,
    );
  }

  renderData(labels, index) {
    const keys = ["requests", "errors", "input_tokens", "output_tokens", "cost_usd", "p50_ms", "p95_ms"];
    const heads = [tr("dash.col.day"), tr("dash.col.requests"), tr("dash.col.errors"), tr("dash.series.input"), tr("dash.series.output"), tr("col.cost"), "p50", "p95"];
    const show = { cost_usd: fmtCost, p50_ms: fmtMs, p95_ms: fmtMs };
    return h(
      "details",
      { class: "card dash-data" },
      h("summary", {}, tr("dash.data")),
      h(
        "table",
        { class: "doc-table", testid: "dash-data" },
        h("thead", {}, h("tr", {}, heads.map((x) => h("th", { scope: "col" }, x)))),
        h(
          "tbody",
          {},
          labels.filter((d) => index.has(d)).map((d) => h("tr", {}, h("th", { scope: "row" }, d), keys.map((k) => h("td", { class: "num" }, (show[k] || fmtInt)(index.get(d)[k]))))),
        ),
      ),
    );
  }

  breakdown(by, rows, note = null) {
    const groups = byGroup(rows);
    const most = Math.max(1, ...groups.map((g) => g.requests));
    const since = { 7: "7d", 30: "30d" }[this.days] || "all";
    const linkFor = (g) => `#/traces?${new URLSearchParams({ since, [by]: g.group })}`;
    const body = groups.map((g) => {
      const bar = h("span", { class: "dash-share-bar" });
      bar.style.width = `${(100 * g.requests) / most}%`;
      const name = g.group ? h("a", { href: linkFor(g) }, g.group) : h("span", { class: "muted" }, tr("dash.group.none"));
      return h(
        "tr",
        { testid: "dash-group", "data-group": g.group || "" },
        h("th", { scope: "row", class: "dash-group-name" }, name),
        h("td", { class: "num", "data-value": g.requests }, fmtInt(g.requests)),
        h("td", { class: "num" }, fmtInt(g.errors)),
        h("td", { class: "num nowrap" }, `${fmtInt(g.input_tokens)} / ${fmtInt(g.output_tokens)}`),
        h("td", { class: "num" }, fmtCost(g.cost_usd)),
        h("td", { class: "dash-share", "aria-hidden": "true" }, bar),
      );
    });
    return h(
      "section",
      { class: "card dash-breakdown", testid: `dash-by-${by}`, "aria-labelledby": `dash-by-${by}-h` },
      h("h2", { id: `dash-by-${by}-h` }, tr(`dash.by.${by}`)),
      note ? h("p", { class: "muted small" }, note) : null,
      h(
        "table",
        { class: "doc-table" },
        h("thead", {}, h("tr", {}, [tr("dash.col.group"), tr("dash.col.requests"), tr("dash.col.errors"), tr("col.tokens"), tr("col.cost"), tr("dash.col.share")].map((x, i) => h("th", { scope: "col", class: i && i < 5 ? "num" : null }, x)))),
        h("tbody", {}, body),
      ),
    );
  }
}
