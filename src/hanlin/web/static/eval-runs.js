// The runs page (#/evals/runs[?dataset=REF]): the start-a-run form (dataset, target, metric
// groups, limit, name, generator and judge models) and every run, newest first, with its status,
// progress (polled while a run is going) and headline metrics; tick two runs to compare them.

import { api, request } from "./api.js";
import { h, toast } from "./dom.js";
import { errorText, fmtScore, fmtTime, te } from "./evals-text.js";

const POLL_MS = 1000;
const HEADLINE = ["contains", "ndcg@10", "f1", "tool_call_accuracy", "answer_correct"];
const PILLS = { done: "pill-done", failed: "pill-failed", running: "pill-parsing", interrupted: "pill-queued" };

/** A run's status as a coloured pill. */
export function statusPill(status) {
  return h("span", { class: `pill ${PILLS[status] || ""}`, testid: "run-status", "data-status": status }, te(`status.${status}`));
}

/** "contains 0.800 · ndcg@10 1.000": a run's first few headline means. */
export function headline(run) {
  const m = (run.aggregates && run.aggregates.metrics) || {};
  return HEADLINE.filter((k) => k in m)
    .slice(0, 3)
    .map((k) => `${k} ${fmtScore(k, m[k].mean)}`)
    .join(" · ");
}

/** A progress bar with "done / total". */
export function progressBar(done, total, testid = "run-progress") {
  return h(
    "span",
    { class: "eval-progress", testid, "data-done": String(done), "data-total": String(total) },
    h("progress", { max: String(Math.max(1, total)), value: String(done) }),
    h("span", { class: "small nowrap" }, `${done} / ${total}`),
  );
}

export class RunsView {
  constructor(root, params) {
    this.root = root;
    this.preset = params.get("dataset") || "";
    this.runs = null;
    this.datasets = [];
    this.targets = [];
    this.groups = [];
    this.picked = [];
    this.error = null;
    this.timer = 0;
    this.stopped = false;
    this.form = null;
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
  }

  async load() {
    await Promise.all([this.loadRuns(), this.loadChoices()]);
  }

  async loadRuns() {
    clearTimeout(this.timer);
    try {
      this.runs = (await api.evalRuns()).data;
      this.error = null;
    } catch (err) {
      this.error = errorText(err);
    }
    if (this.stopped) return;
    this.renderTable();
    if (!this.error && this.runs.some((r) => r.status === "running") && !this.root.hidden) {
      this.timer = setTimeout(() => this.loadRuns(), POLL_MS);
    }
  }

  /** What the form offers: datasets, targets (kb: models, models, agents), metric groups. */
  async loadChoices() {
    const safe = (p) => p.catch(() => null);
    const [datasets, models, agents, metrics] = await Promise.all([
      safe(api.evalDatasets()),
      safe(api.models()),
      safe(request("GET", "/v1/agents")),
      safe(api.evalMetrics()),
    ]);
    if (this.stopped) return;
    this.datasets = ((datasets && datasets.data) || []).flatMap((d) => [...d.versions].reverse().map((v) => v.ref));
    const ids = ((models && models.data) || []).filter((m) => !(m.hanlin && m.hanlin.available === false)).map((m) => m.id);
    const agentIds = ((agents && agents.data) || []).filter((a) => !a.error).map((a) => `agent:${a.name}`);
    this.targets = [...ids.filter((id) => id.startsWith("kb:")), ...agentIds, ...ids.filter((id) => !id.startsWith("kb:"))];
    this.groups = metrics ? Object.keys(metrics.groups) : [];
    this.render();
  }

  render() {
    const head = h(
      "header",
      { class: "kb-head" },
      h("div", {}, h("h1", { testid: "runs-title" }, te("runs.title")), h("p", { class: "muted" }, te("runs.subtitle"))),
    );
    this.form = this.renderForm();
    this.tableBox = h("div", { class: "eval-runs-box" });
    this.root.replaceChildren(head, h("section", { class: "card" }, this.form), this.tableBox);
    this.renderTable();
  }

  renderForm() {
    const field = (label, control, cls = "") => h("label", { class: cls }, h("span", {}, label), control);
    const dataset = h(
      "select",
      { name: "dataset", testid: "run-dataset", required: true },
      this.datasets.length ? this.datasets.map((ref) => h("option", { value: ref, selected: ref === this.preset }, ref)) : h("option", { value: "" }, te("form.dataset.none")),
    );
    const target = h("input", { name: "target", list: "eval-targets", required: true, maxlength: "300", testid: "run-target", autocomplete: "off" });
    target.value = this.targets.find((x) => x.startsWith("kb:")) || "";
    const models = this.targets.filter((x) => !x.startsWith("kb:") && !x.startsWith("agent:"));
    const metrics = h(
      "fieldset",
      { class: "eval-metric-groups" },
      h("legend", {}, te("form.metrics")),
      this.groups.map((g) => h("label", { class: "eval-check" }, h("input", { type: "checkbox", name: "metrics", value: g, testid: `run-metric-${g}` }), g)),
      h("span", { class: "muted small" }, te("form.metrics.help")),
    );
    const form = h(
      "form",
      { class: "eval-form", testid: "run-form", autocomplete: "off" },
      h("h2", {}, te("form.title")),
      h(
        "div",
        { class: "eval-fields" },
        field(te("form.dataset"), dataset),
        field(te("form.target"), target, "eval-wide"),
        field(te("form.limit"), h("input", { name: "limit", type: "number", min: "1", testid: "run-limit" })),
        field(te("form.name"), h("input", { name: "name", maxlength: "200", testid: "run-name" })),
        field(te("form.model"), h("input", { name: "model", list: "eval-models", maxlength: "300", testid: "run-model" })),
        field(te("form.judge"), h("input", { name: "judge", list: "eval-models", maxlength: "300", testid: "run-judge" })),
      ),
      h("p", { class: "muted small" }, te("form.target.help")),
      metrics,
      h("div", { class: "eval-actions" }, h("button", { type: "submit", class: "btn btn-primary", testid: "run-start", disabled: !this.datasets.length }, te("form.start"))),
      h("datalist", { id: "eval-targets" }, this.targets.map((x) => h("option", { value: x }))),
      h("datalist", { id: "eval-models" }, models.map((x) => h("option", { value: x }))),
    );
    form.addEventListener("submit", (e) => {
      e.preventDefault();
      this.start();
    });
    return form;
  }

  async start() {
    const f = this.form.elements;
    const body = { dataset: f.dataset.value, target: f.target.value.trim() };
    const groups = [...this.form.querySelectorAll("input[name=metrics]:checked")].map((c) => c.value);
    if (groups.length) body.metrics = groups;
    if (f.limit.value) body.limit = Number(f.limit.value);
    for (const k of ["name", "model", "judge"]) if (f[k].value.trim()) body[k] = f[k].value.trim();
    const button = this.form.querySelector("button[type=submit]");
    button.disabled = true;
    try {
      const run = await api.startEvalRun(body);
      toast(te("form.started", { id: run.id }));
      location.hash = `#/evals/runs/${encodeURIComponent(run.id)}`;
    } catch (err) {
      toast(errorText(err), "error");
      button.disabled = false;
    }
  }

  renderTable() {
    if (!this.tableBox) return;
    if (this.error) {
      this.tableBox.replaceChildren(h("p", { class: "msg-error", role: "alert", testid: "evals-error" }, this.error));
      return;
    }
    if (!this.runs) {
      this.tableBox.replaceChildren(h("p", { class: "muted" }, "…"));
      return;
    }
    if (!this.runs.length) {
      this.tableBox.replaceChildren(h("div", { class: "empty-state", testid: "runs-empty" }, h("p", {}, te("runs.empty"))));
      return;
    }
    this.picked = this.picked.filter((id) => this.runs.some((r) => r.id === id));
    const compare = h("button", { type: "button", class: "btn btn-small", testid: "compare-picked", disabled: this.picked.length !== 2, onclick: () => this.comparePicked() }, te("runs.compare"));
    const cols = ["pick", "name", "dataset", "target", "status", "progress", "headline", "created"];
    const rows = this.runs.map((r) => {
      const pick = h("input", { type: "checkbox", testid: "run-pick", "aria-label": `${te("runs.col.pick")} ${r.name}`, checked: this.picked.includes(r.id) });
      pick.addEventListener("change", () => {
        this.picked = this.picked.filter((id) => id !== r.id);
        if (pick.checked) this.picked = [...this.picked, r.id].slice(-2);
        this.renderTable();
      });
      const done = r.live ? r.live.done : r.done;
      return h(
        "tr",
        { testid: "run-row", "data-id": r.id, "data-status": r.status },
        h("td", {}, pick),
        h("td", {}, h("a", { href: `#/evals/runs/${encodeURIComponent(r.id)}`, class: "trace-link", testid: "run-link" }, r.name), h("div", { class: "muted small" }, h("code", {}, r.id))),
        h("td", {}, h("a", { href: `#/evals/datasets/${encodeURIComponent(r.dataset)}` }, r.dataset)),
        h("td", { class: "trace-cell-wrap" }, r.target),
        h("td", {}, statusPill(r.status)),
        h("td", {}, progressBar(done, r.total)),
        h("td", { class: "small", testid: "run-headline" }, headline(r)),
        h("td", { class: "nowrap" }, fmtTime(r.created_at)),
      );
    });
    this.tableBox.replaceChildren(
      h(
        "section",
        { class: "card" },
        h("div", { class: "card-head" }, h("span", { class: "muted small" }, te("runs.compare.help")), compare),
        h(
          "div",
          { class: "doc-list" },
          h(
            "table",
            { class: "doc-table", testid: "run-table" },
            h("thead", {}, h("tr", {}, cols.map((c) => h("th", { scope: "col" }, te(`runs.col.${c}`))))),
            h("tbody", {}, rows),
          ),
        ),
      ),
    );
  }

  comparePicked() {
    const [x, y] = this.picked.map((id) => this.runs.find((r) => r.id === id));
    const [a, b] = x.created_at <= y.created_at ? [x, y] : [y, x]; // the older one is the baseline
    location.hash = `#/evals/compare?${new URLSearchParams({ a: a.id, b: b.id })}`;
  }
}
