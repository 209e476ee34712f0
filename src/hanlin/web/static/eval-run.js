// One run (#/evals/runs/<id>): what it evaluated, its live progress (polled while it runs: done /
// total, the example in hand), stop / resume / delete, the report; each metric's mean as a card
// with its 95% interval drawn as a whisker, latency p50 / p95 and cost, the latency histogram
// (charts.js), and the per-example results a page at a time, filtered by text, outcome and a
// metric's score. Outputs and questions are untrusted: set as text only.

import { api, download } from "./api.js";
import { chart } from "./charts.js";
import { h, toast } from "./dom.js";
import { pager } from "./evals.js";
import { progressBar, statusPill } from "./eval-runs.js";
import { errorText, fmtInterval, fmtScore, fmtTime, goldText, te } from "./evals-text.js";
import { getLang } from "./i18n.js";
import { fmtMs } from "./traces-text.js";

const POLL_MS = 700;
const PAGE = 50;
const NS = "http://www.w3.org/2000/svg";
/** metrics not on a [0, 1] scale */
export const UNBOUNDED = new Set(["latency_ms", "cost_usd"]);

/** An SVG element with these attributes (and text). */
export function svg(tag, attrs = {}, text = null) {
  const node = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  if (text !== null) node.textContent = text;
  return node;
}

/** A [0, 1] mean as a bar with its interval as a whisker. */
function meanBar(m) {
  const W = 200;
  const x = (v) => Math.max(0, Math.min(1, v)) * W;
  const root = svg("svg", { viewBox: `0 0 ${W} 14`, class: "eval-meanbar", role: "img", "aria-label": `${m.mean.toFixed(3)} [${m.lo.toFixed(3)}, ${m.hi.toFixed(3)}]` });
  root.append(
    svg("rect", { x: 0, y: 3, width: W, height: 8, rx: 3, class: "eval-track" }),
    svg("rect", { x: 0, y: 3, width: x(m.mean), height: 8, rx: 3, class: "eval-fill" }),
    svg("line", { x1: x(m.lo), x2: x(m.hi), y1: 7, y2: 7, class: "eval-whisker" }),
    svg("line", { x1: x(m.lo), x2: x(m.lo), y1: 2, y2: 12, class: "eval-whisker" }),
    svg("line", { x1: x(m.hi), x2: x(m.hi), y1: 2, y2: 12, class: "eval-whisker" }),
  );
  return root;
}

export class RunView {
  constructor(root, id) {
    this.root = root;
    this.id = id;
    this.run = null;
    this.results = null;
    this.error = null;
    this.filters = { q: "", outcome: "", metric: "", below: "" };
    this.offset = 0;
    this.timer = 0;
    this.stopped = false;
    this.wasGoing = false;
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
  }

  get going() {
    return Boolean(this.run && (this.run.status === "running" || this.run.live));
  }

  async load() {
    clearTimeout(this.timer);
    try {
      this.run = await api.evalRun(this.id);
      this.error = null;
    } catch (err) {
      this.error = errorText(err);
    }
    if (this.stopped) return;
    // results: at first, while going (the new ones), and once more when it has finished
    if (!this.error && (this.results === null || this.going || this.wasGoing)) await this.loadResults(false);
    this.wasGoing = this.going;
    if (this.stopped) return;
    this.render();
    if (this.going && !this.root.hidden) this.timer = setTimeout(() => this.load(), POLL_MS);
  }

  async loadResults(render = true) {
    const p = { offset: String(this.offset), limit: String(PAGE) };
    for (const [k, v] of Object.entries(this.filters)) if (v) p[k] = v;
    try {
      this.results = await api.evalResults(this.id, p);
    } catch (err) {
      this.results = { error: errorText(err) };
    }
    if (render && !this.stopped) this.render();
  }

  async act(what) {
    try {
      if (what === "stop") await api.cancelEvalRun(this.id);
      else if (what === "resume") await api.resumeEvalRun(this.id);
      else if (what === "delete") {
        if (!window.confirm(te("run.delete.confirm", { id: this.run.id }))) return;
        await api.deleteEvalRun(this.run.id);
        toast(te("run.deleted", { id: this.run.id }));
        location.hash = "#/evals/runs";
        return;
      } else if (what === "report") {
        await download(`/api/evals/report?${new URLSearchParams({ a: this.run.id, download: "true" })}`, `eval-report-${this.run.id}.html`);
        return;
      }
    } catch (err) {
      toast(errorText(err), "error");
    }
    await this.load();
  }

  // --- rendering -------------------------------------------------------------------------------

  render() {
    const back = h("a", { class: "btn btn-ghost btn-small trace-back", href: "#/evals/runs" }, te("run.back"));
    if (this.error || !this.run) {
      const body = this.error ? h("p", { class: "msg-error", role: "alert", testid: "evals-error" }, this.error) : h("p", { class: "muted" }, "…");
      this.root.replaceChildren(back, body);
      return;
    }
    const r = this.run;
    const action = (what, label, cls = "btn btn-small") => h("button", { type: "button", class: cls, testid: `run-${what}`, onclick: () => this.act(what) }, label);
    const canResume = !this.going && (r.status !== "done" || (r.aggregates.errors || 0) > 0);
    const head = h(
      "header",
      { class: "kb-head" },
      h("div", {}, h("h1", { testid: "run-title" }, r.name), h("p", { class: "muted" }, h("code", {}, r.id), " ", statusPill(r.status))),
      h("span", { class: "spacer" }),
      this.going && r.live ? action("stop", te("run.stop"), "btn btn-danger btn-small") : null,
      canResume ? action("resume", te("run.resume")) : null,
      h("a", { class: "btn btn-small", href: `#/evals/compare?${new URLSearchParams({ a: r.id })}`, testid: "run-compare" }, te("run.compare")),
      action("report", te("run.report")),
      this.going ? null : action("delete", te("run.delete"), "btn btn-ghost btn-small"),
    );
    const fact = (label, value) => h("div", {}, h("dt", {}, label), h("dd", {}, value));
    const cfg = r.config || {};
    const facts = h(
      "dl",
      { class: "trace-facts" },
      fact(te("run.dataset"), h("a", { href: `#/evals/datasets/${encodeURIComponent(r.dataset)}`, testid: "run-dataset-link" }, r.dataset)),
      fact(te("run.target"), cfg.model ? `${r.target} (${cfg.model})` : r.target),
      fact(te("run.judge"), cfg.judge || te("run.judge.none")),
      fact(te("run.created"), fmtTime(r.created_at)),
    );
    // the filter form outlives the re-renders of a running run (a field keeps what is typed)
    if (!this.filterForm || this.filterLang !== getLang()) {
      this.filterForm = this.renderFilters();
      this.filterLang = getLang();
    }
    const parts = [back, head, facts, this.renderProgress(), this.renderNotes(), this.renderMetrics(), this.renderHistogram(), this.renderResults()];
    this.root.replaceChildren(...parts.filter(Boolean));
  }

  renderProgress() {
    const r = this.run;
    if (!this.going) return null;
    const live = r.live || { done: r.done, total: r.total, current: "", elapsed_s: 0, stopping: false };
    return h(
      "section",
      { class: "card eval-live", testid: "run-live", "aria-live": "polite" },
      h("p", {}, te("run.progress", { done: live.done, total: live.total })),
      progressBar(live.done, live.total, "run-progress"),
      h(
        "p",
        { class: "muted small" },
        live.current ? te("run.current", { id: live.current }) : "",
        live.elapsed_s ? ` · ${te("run.elapsed", { s: live.elapsed_s.toFixed(1) })}` : "",
        live.stopping ? ` · ${te("run.stopping")}` : "",
      ),
    );
  }

  renderNotes() {
    const r = this.run;
    const agg = r.aggregates || {};
    const cfg = r.config || {};
    const notes = Object.entries(cfg.not_run || {}).map(([metric, why]) => te("run.not_run", { metric, why }));
    if (agg.errors) notes.push(te("run.errors", { n: agg.errors }));
    if (agg.unjudged) notes.push(te("run.unjudged", { n: agg.unjudged }));
    if (agg.false_refusals || agg.missed_refusals) notes.push(te("run.refusals", { fr: agg.false_refusals, mr: agg.missed_refusals }));
    const failed = cfg.error ? h("p", { class: "msg-error", role: "alert", testid: "run-error" }, te("run.failed", { error: cfg.error })) : null;
    if (!notes.length && !failed) return null;
    return h("div", { class: "eval-notes", testid: "run-notes" }, failed, notes.map((n) => h("p", { class: "eval-note" }, n)));
  }

  renderMetrics() {
    const agg = this.run.aggregates || {};
    const metrics = agg.metrics || {};
    const names = Object.keys(metrics);
    if (!names.length) return null;
    const card = (name, m) =>
      h(
        "div",
        { class: "card eval-metric", testid: "metric-card", "data-metric": name },
        h("span", { class: "muted small eval-metric-name" }, name),
        h("strong", { class: "eval-metric-mean", testid: "metric-mean" }, fmtScore(name, m.mean)),
        h("span", { class: "small", testid: "metric-ci" }, fmtInterval(name, m.lo, m.hi)),
        UNBOUNDED.has(name) ? null : meanBar(m),
        h("span", { class: "muted small" }, te("run.n", { n: m.n })),
      );
    const extra = (key, label, value) =>
      h("div", { class: "card eval-metric", testid: "metric-card", "data-metric": key }, h("span", { class: "muted small" }, label), h("strong", { class: "eval-metric-mean", testid: "metric-mean" }, value));
    return h(
      "section",
      { "aria-labelledby": "eval-metrics-h" },
      h("h2", { id: "eval-metrics-h", class: "eval-h2" }, te("run.metrics")),
      h(
        "div",
        { class: "eval-metrics", testid: "metric-cards" },
        names.map((n) => card(n, metrics[n])),
        agg.latency_p50_ms !== null && agg.latency_p50_ms !== undefined ? extra("latency_p50_ms", te("run.p50"), fmtMs(agg.latency_p50_ms)) : null,
        agg.latency_p95_ms !== null && agg.latency_p95_ms !== undefined ? extra("latency_p95_ms", te("run.p95"), fmtMs(agg.latency_p95_ms)) : null,
        "cost_usd_total" in agg ? extra("cost_usd_total", te("run.cost"), fmtScore("cost_usd", agg.cost_usd_total)) : null,
      ),
    );
  }

  renderHistogram() {
    const bins = this.run.latency_histogram || [];
    if (!bins.length) return null;
    const labels = bins.map((b) => `${fmtMs(b.lo)}–${fmtMs(b.hi)}`);
    const figure = chart({
      kind: "bar",
      title: te("run.histogram"),
      testid: "latency-histogram",
      labels,
      whole: true,
      format: (n) => String(n),
      tick: (label) => label.split("–")[0],
      series: [{ label: te("run.histogram.series"), values: bins.map((b) => b.count), cls: "chart-s0" }],
    });
    return h("section", { class: "card eval-histogram" }, figure);
  }

  renderFilters() {
    const f = this.filters;
    const metrics = (this.run.config && this.run.config.metrics) || [];
    const field = (label, control) => h("label", { class: "trace-filter" }, h("span", {}, label), control);
    const q = h("input", { name: "q", testid: "result-q", maxlength: "200", placeholder: te("filter.q.placeholder") });
    q.value = f.q;
    const below = h("input", { name: "below", type: "number", step: "0.01", testid: "result-below" });
    below.value = f.below;
    const form = h(
      "form",
      { class: "trace-filters eval-result-filters", testid: "result-filters", role: "search" },
      field(te("filter.q"), q),
      field(te("filter.outcome"), h("select", { name: "outcome", testid: "result-outcome" }, ["", "answered", "refused", "failed"].map((k) => h("option", { value: k, selected: f.outcome === k }, te(`filter.outcome.${k || "any"}`))))),
      field(te("filter.metric"), h("select", { name: "metric", testid: "result-metric" }, h("option", { value: "" }, te("filter.metric.any")), metrics.map((k) => h("option", { value: k, selected: f.metric === k }, k)))),
      field(te("filter.below"), below),
      h("div", { class: "trace-filter-actions" }, h("button", { type: "submit", class: "btn btn-primary btn-small", testid: "result-apply" }, te("filter.apply"))),
    );
    form.addEventListener("submit", (e) => {
      e.preventDefault();
      const data = new FormData(form);
      this.filters = Object.fromEntries(["q", "outcome", "metric", "below"].map((k) => [k, String(data.get(k) || "").trim()]));
      if (this.filters.below && !this.filters.metric) this.filters.below = "";
      this.offset = 0;
      this.loadResults();
    });
    return form;
  }

  renderResults() {
    const res = this.results;
    const box = h("section", { class: "card", "aria-labelledby": "eval-results-h" });
    const title = h("div", { class: "card-head" }, h("h2", { id: "eval-results-h" }, te("run.results")), res && res.total !== undefined ? h("span", { class: "muted small", testid: "results-count" }, te("results.count", { n: res.total })) : null);
    box.append(title, this.filterForm);
    if (!res) return box;
    if (res.error) {
      box.append(h("p", { class: "msg-error", role: "alert" }, res.error));
      return box;
    }
    if (!res.data.length) {
      box.append(h("p", { class: "muted", testid: "results-none" }, te("results.none")));
      return box;
    }
    const bounded = ((this.run.config && this.run.config.metrics) || []).filter((m) => !UNBOUNDED.has(m));
    const rows = res.data.map((x) => {
      const scores = bounded
        .filter((m) => x.scores[m] !== null && x.scores[m] !== undefined)
        .map((m) => h("span", { class: `eval-score ${x.scores[m] >= 1 ? "eval-score-hit" : x.scores[m] <= 0 ? "eval-score-miss" : ""}`, "data-metric": m }, `${m} ${fmtScore(m, x.scores[m])}`));
      const output = x.error
        ? h("div", { class: "eval-output eval-output-error" }, te("result.error", { error: x.error }))
        : h("div", { class: "eval-output", testid: "result-output" }, x.output);
      const retrieved = (x.details && x.details.retrieved) || [];
      return h(
        "tr",
        { testid: "result-row", "data-id": x.example_id, "data-outcome": x.outcome },
        h("td", { class: "nowrap" }, h("code", {}, x.example_id), h("div", { class: "muted small" }, te(`filter.outcome.${x.outcome}`))),
        h("td", { class: "eval-text", testid: "result-question" }, x.question),
        h("td", { class: "eval-text", testid: "result-gold" }, goldText(x)),
        h(
          "td",
          { class: "eval-cell-output" },
          output,
          retrieved.length
            ? h("details", { class: "small" }, h("summary", {}, `${te("result.retrieved")} (${retrieved.length})`), h("ol", { class: "trace-hits" }, retrieved.map((d) => h("li", {}, h("code", {}, d.doc || ""), " ", d.text || ""))))
            : null,
        ),
        h("td", { testid: "result-scores" }, h("div", { class: "eval-scores" }, scores)),
        h("td", { class: "num nowrap" }, fmtMs(x.latency_ms)),
      );
    });
    const cols = ["id", "question", "gold", "output", "scores", "latency"];
    box.append(
      h(
        "div",
        { class: "doc-list" },
        h(
          "table",
          { class: "doc-table eval-results", testid: "result-table" },
          h("thead", {}, h("tr", {}, cols.map((c) => h("th", { scope: "col", class: c === "latency" ? "num" : null }, te(`col.${c}`))))),
          h("tbody", {}, rows),
        ),
      ),
    );
    const pages = pager(res.offset, PAGE, res.total, (o) => {
      this.offset = o;
      this.loadResults();
    }, "results-pager");
    if (pages) box.append(pages);
    return box;
  }
}
