// The comparison of two runs (#/evals/compare?a=<id>&b=<id>): pick run A (the baseline) and run
// B; per metric, A, B, B − A and its paired 95% interval, drawn as a bar from 0 with the interval
// as a whisker and marked improved / regressed only when the interval excludes 0; then the
// examples whose scores moved most, side by side: the question, the gold, both answers.

import { api, download } from "./api.js";
import { h } from "./dom.js";
import { UNBOUNDED, svg } from "./eval-run.js";
import { errorText, fmtDelta, fmtInterval, fmtScore, te } from "./evals-text.js";

const W = 240;
const MARKS = { better: "▲", worse: "▼", same: "=" };

/** The delta of one metric as a bar from 0 with its interval, on a ±`scale` axis. */
function deltaBar(m, scale) {
  const half = W / 2 - 6;
  const x = (v) => W / 2 + (Math.max(-scale, Math.min(scale, v)) / scale) * half;
  const root = svg("svg", { viewBox: `0 0 ${W} 20`, class: `eval-deltabar eval-${m.verdict}`, role: "img", "data-testid": "delta-bar", "aria-label": `${fmtDelta(m.name, m.delta)} ${fmtInterval(m.name, m.lo, m.hi, true)}` });
  const from = Math.min(x(0), x(m.delta));
  root.append(
    svg("line", { x1: W / 2, x2: W / 2, y1: 0, y2: 20, class: "eval-zero" }),
    svg("rect", { x: from, y: 5, width: Math.max(1, Math.abs(x(m.delta) - x(0))), height: 10, rx: 2, class: "eval-delta-fill", "data-x": x(m.delta).toFixed(1) }),
    svg("line", { x1: x(m.lo), x2: x(m.hi), y1: 10, y2: 10, class: "eval-whisker" }),
    svg("line", { x1: x(m.lo), x2: x(m.lo), y1: 4, y2: 16, class: "eval-whisker" }),
    svg("line", { x1: x(m.hi), x2: x(m.hi), y1: 4, y2: 16, class: "eval-whisker" }),
  );
  const tip = svg("title", {}, `${m.name}: ${fmtDelta(m.name, m.delta)} ${fmtInterval(m.name, m.lo, m.hi, true)}`);
  root.append(tip);
  return root;
}

/** The axis half-width of a metric: shared by the [0, 1] metrics, each unbounded one its own. */
function scales(metrics) {
  const reach = (m) => Math.max(Math.abs(m.lo), Math.abs(m.hi), Math.abs(m.delta));
  const unit = Math.max(0.05, ...metrics.filter((m) => !UNBOUNDED.has(m.name)).map(reach));
  return Object.fromEntries(metrics.map((m) => [m.name, UNBOUNDED.has(m.name) ? Math.max(reach(m), 1e-9) * 1.05 : unit * 1.05]));
}

export class CompareView {
  constructor(root, params) {
    this.root = root;
    this.a = params.get("a") || "";
    this.b = params.get("b") || "";
    this.runs = [];
    this.cmp = null;
    this.error = null;
    this.show = "all";
  }

  stop() {}

  async load() {
    try {
      const [runs, cmp] = await Promise.all([api.evalRuns(), this.a && this.b ? api.compareEvalRuns(this.a, this.b) : null]);
      this.runs = runs.data;
      this.cmp = cmp;
      this.error = null;
    } catch (err) {
      this.error = errorText(err);
    }
    this.render();
  }

  render() {
    const head = h(
      "header",
      { class: "kb-head" },
      h("div", {}, h("h1", { testid: "compare-title" }, te("compare.title")), h("p", { class: "muted" }, te("compare.subtitle"))),
      h("span", { class: "spacer" }),
      this.cmp ? h("button", { type: "button", class: "btn btn-small", testid: "compare-report", onclick: () => this.report() }, te("compare.report")) : null,
    );
    const parts = [head, this.renderPickers()];
    if (this.error) parts.push(h("p", { class: "msg-error", role: "alert", testid: "evals-error" }, this.error));
    else if (!this.a || !this.b) parts.push(h("p", { class: "muted", testid: "compare-empty" }, te("compare.pick")));
    else if (this.cmp) parts.push(this.renderSummary(), this.renderDeltas(), this.renderChanged());
    else parts.push(h("p", { class: "muted" }, "…"));
    this.root.replaceChildren(...parts);
  }

  async report() {
    const { run_a: a, run_b: b } = this.cmp;
    try {
      await download(`/api/evals/report?${new URLSearchParams({ a: a.id, b: b.id, download: "true" })}`, `eval-report-${a.id}-vs-${b.id}.html`);
    } catch (err) {
      this.error = errorText(err);
      this.render();
    }
  }

  renderPickers() {
    const pick = (name, value, testid) =>
      h(
        "select",
        { name, testid, required: true },
        h("option", { value: "" }, "–"),
        this.runs.map((r) => h("option", { value: r.id, selected: r.id === value || r.name === value }, `${r.name} (${r.id})`)),
      );
    const form = h(
      "form",
      { class: "card trace-filters eval-pickers", testid: "compare-form" },
      h("label", { class: "trace-filter" }, h("span", {}, te("compare.a")), pick("a", this.a, "compare-a")),
      h("label", { class: "trace-filter" }, h("span", {}, te("compare.b")), pick("b", this.b, "compare-b")),
      h(
        "div",
        { class: "trace-filter-actions" },
        h("button", { type: "submit", class: "btn btn-primary btn-small", testid: "compare-go" }, te("compare.go")),
        h("button", { type: "button", class: "btn btn-ghost btn-small", testid: "compare-swap", onclick: () => this.go(form.elements.b.value, form.elements.a.value) }, te("compare.swap")),
      ),
    );
    form.addEventListener("submit", (e) => {
      e.preventDefault();
      this.go(form.elements.a.value, form.elements.b.value);
    });
    return form;
  }

  go(a, b) {
    const params = new URLSearchParams();
    if (a) params.set("a", a);
    if (b) params.set("b", b);
    location.hash = `#/evals/compare?${params}`;
  }

  renderSummary() {
    const c = this.cmp;
    const run = (label, r) => h("p", {}, h("strong", {}, label), " ", h("a", { href: `#/evals/runs/${encodeURIComponent(r.id)}` }, r.name), " ", h("code", {}, r.id), h("span", { class: "muted" }, ` — ${r.dataset}, ${r.target}`));
    return h(
      "section",
      { class: "card", testid: "compare-summary" },
      run("A", c.run_a),
      run("B", c.run_b),
      h("p", { class: "muted small", testid: "compare-paired" }, te("compare.paired", { n: c.paired }), c.only_a || c.only_b ? ` ${te("compare.only", { a: c.only_a, b: c.only_b })}` : ""),
      c.notes.map((n) => h("p", { class: "eval-note" }, n)),
    );
  }

  renderDeltas() {
    const metrics = this.cmp.metrics;
    const scale = scales(metrics);
    const cols = ["metric", "a", "b", "delta", "ci", "n", "bar", "verdict"];
    const rows = metrics.map((m) =>
      h(
        "tr",
        { testid: "delta-row", "data-metric": m.name, "data-verdict": m.verdict },
        h("th", { scope: "row", class: "dash-group-name" }, m.name),
        h("td", { class: "num", testid: "delta-a" }, fmtScore(m.name, m.a)),
        h("td", { class: "num", testid: "delta-b" }, fmtScore(m.name, m.b)),
        h("td", { class: `num eval-${m.verdict}`, testid: "delta-value" }, fmtDelta(m.name, m.delta)),
        h("td", { class: "num nowrap", testid: "delta-ci" }, fmtInterval(m.name, m.lo, m.hi, true)),
        h("td", { class: "num" }, String(m.n)),
        h("td", { class: "eval-bar-cell" }, deltaBar(m, scale[m.name])),
        h("td", { class: `nowrap eval-${m.verdict}`, testid: "delta-marker" }, `${MARKS[m.verdict]} ${te(`verdict.${m.verdict}`)}`),
      ),
    );
    return h(
      "section",
      { class: "card" },
      h(
        "div",
        { class: "doc-list" },
        h(
          "table",
          { class: "doc-table", testid: "delta-table" },
          h("thead", {}, h("tr", {}, cols.map((c) => h("th", { scope: "col", class: ["a", "b", "delta", "ci", "n"].includes(c) ? "num" : null }, te(`compare.col.${c}`))))),
          h("tbody", {}, rows),
        ),
      ),
      h("p", { class: "muted small" }, te("compare.scale")),
    );
  }

  renderChanged() {
    const { changed, run_a: a, run_b: b } = this.cmp;
    const filter = h(
      "select",
      { testid: "changed-filter", "aria-label": te("compare.changed.filter") },
      ["all", "improved", "regressed"].map((k) => h("option", { value: k, selected: this.show === k }, te(`compare.changed.${k}`))),
    );
    filter.addEventListener("change", () => {
      this.show = filter.value;
      this.render();
    });
    const shown = changed.filter((c) => this.show === "all" || c.direction === this.show);
    const items = shown.map((c) =>
      h(
        "article",
        { class: `card eval-changed eval-changed-${c.direction}`, testid: "changed-example", "data-id": c.example_id, "data-direction": c.direction },
        h(
          "header",
          { class: "eval-changed-head" },
          h("code", {}, c.example_id),
          h("span", { class: `pill eval-dir-${c.direction}`, testid: "changed-direction" }, te(`direction.${c.direction}`)),
          h(
            "span",
            { class: "eval-scores" },
            Object.entries(c.deltas).map(([k, v]) => h("span", { class: `eval-score ${v > 0 ? "eval-score-hit" : "eval-score-miss"}`, "data-metric": k }, `${v > 0 ? "▲" : "▼"} ${k} ${fmtDelta(k, v)}`)),
          ),
        ),
        h("p", { class: "eval-text", testid: "changed-question" }, c.question),
        c.answers.length ? h("p", { class: "muted small eval-text" }, `${te("col.gold")}: ${c.answers.join(" | ")}`) : null,
        h(
          "div",
          { class: "eval-side-by-side" },
          h("div", {}, h("h3", {}, te("compare.output.a", { name: a.name })), h("div", { class: "eval-output", testid: "changed-output-a" }, c.output_a)),
          h("div", {}, h("h3", {}, te("compare.output.b", { name: b.name })), h("div", { class: "eval-output", testid: "changed-output-b" }, c.output_b)),
        ),
      ),
    );
    return h(
      "section",
      { "aria-labelledby": "eval-changed-h", class: "eval-changed-list" },
      h("div", { class: "card-head" }, h("h2", { id: "eval-changed-h", class: "eval-h2" }, te("compare.changed")), filter),
      items.length ? items : h("p", { class: "muted", testid: "changed-none" }, te("compare.changed.none")),
    );
  }
}
