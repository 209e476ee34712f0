// The evaluation pages (#/evals/…, the sidebar's "Evaluations"): datasets — the list, importing
// a .jsonl / .csv file or building one from rated traces, one version with its examples and
// import report — here; runs (eval-runs.js), one run (eval-run.js) and the comparison of two
// (eval-compare.js). Admin only: any other key gets the API's 403, shown as a page saying so.
// Questions, answers and outputs are untrusted: they are only ever set as text (dom.js).

import { api } from "./api.js";
import { h } from "./dom.js";
import { CompareView } from "./eval-compare.js";
import { RunView } from "./eval-run.js";
import { RunsView } from "./eval-runs.js";
import { errorText, fmtTime, goldText, te } from "./evals-text.js";

const PAGE = 50;
const SHOWN_PROBLEMS = 50;

/** "← Previous · 1–50 of 120 · Next →" for a page of `total` items; `go(offset)` moves. */
export function pager(offset, limit, total, go, testid = "pager") {
  if (total <= limit && offset === 0) return null;
  const to = Math.min(total, offset + limit);
  return h(
    "div",
    { class: "eval-pager", testid },
    h("button", { type: "button", class: "btn btn-small", disabled: offset === 0, onclick: () => go(Math.max(0, offset - limit)) }, te("page.prev")),
    h("span", { class: "muted small", testid: `${testid}-range` }, te("page.range", { from: total ? offset + 1 : 0, to, total })),
    h("button", { type: "button", class: "btn btn-small", disabled: to >= total, testid: `${testid}-next`, onclick: () => go(offset + limit) }, te("page.next")),
  );
}

/** The list of a report's skipped rows (`file:line: reason`), the rest counted. */
export function problemList(problems, skipped, testid = "dataset-problem") {
  const items = problems.slice(0, SHOWN_PROBLEMS).map((p) => h("li", { testid }, p));
  const more = skipped - items.length;
  if (more > 0) items.push(h("li", { class: "muted" }, te("import.more", { n: more })));
  return h("ul", { class: "eval-problems" }, items);
}

export class EvalsView {
  constructor() {
    this.page = null;
    this.el = h("section", { id: "evals-view", class: "view traces-view evals-view", testid: "evals-view", hidden: true });
    document.getElementById("main").append(this.el);
    window.addEventListener("hanlin:lang", () => {
      if (!this.el.hidden && this.page) this.page.render();
    });
  }

  /** Show the page of `id` ("datasets", "datasets/NAME@V", "runs", "runs/ID", "compare"). */
  show(id, query = "") {
    if (this.page) this.page.stop();
    const [kind, ...rest] = (id || "").split("/");
    const arg = rest.join("/");
    const params = new URLSearchParams(query || "");
    for (const link of document.querySelectorAll("[data-evals-nav]")) {
      const here = link.dataset.evalsNav === kind;
      link.closest("li").classList.toggle("active", here);
      if (here) link.setAttribute("aria-current", "page");
      else link.removeAttribute("aria-current");
    }
    if (kind === "datasets" && arg) this.page = new DatasetPage(this.el, arg);
    else if (kind === "datasets") this.page = new DatasetsPage(this.el);
    else if (kind === "runs" && arg) this.page = new RunView(this.el, arg);
    else if (kind === "runs") this.page = new RunsView(this.el, params);
    else if (kind === "compare") this.page = new CompareView(this.el, params);
    else {
      this.page = null;
      location.hash = "#/evals/datasets";
      return;
    }
    this.page.render();
    this.page.load();
  }
}

/** Every dataset with its versions; import forms (a file, rated traces). */
class DatasetsPage {
  constructor(root) {
    this.root = root;
    this.data = null;
    this.error = null;
    this.result = null; // the last import: {ok, text, problems, skipped}
    this.busy = false;
    this.form = this.importForm();
    this.tracesForm = this.fromTracesForm();
  }

  stop() {}

  async load() {
    try {
      this.data = (await api.evalDatasets()).data;
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
      h("div", {}, h("h1", { testid: "datasets-title" }, te("datasets.title")), h("p", { class: "muted" }, te("datasets.subtitle"))),
    );
    if (this.error) {
      this.root.replaceChildren(head, h("p", { class: "msg-error", role: "alert", testid: "evals-error" }, this.error));
      return;
    }
    this.form.querySelector("button[type=submit]").disabled = this.busy;
    const cards = h("div", { class: "eval-import-grid" }, h("section", { class: "card" }, this.form, this.renderResult()), h("section", { class: "card" }, this.tracesForm));
    this.root.replaceChildren(head, cards, this.renderTable());
  }

  importForm() {
    const form = h(
      "form",
      { class: "eval-form", testid: "dataset-import-form", autocomplete: "off" },
      h("h2", {}, te("import.title")),
      h("p", { class: "muted small" }, te("import.help")),
      h("label", {}, h("span", {}, te("import.file")), h("input", { type: "file", name: "file", accept: ".jsonl,.csv,.json,.ndjson", testid: "dataset-file" })),
      h("label", {}, h("span", {}, te("import.name")), h("input", { name: "name", maxlength: "100", testid: "dataset-name", pattern: "[A-Za-z0-9][A-Za-z0-9._-]*" })),
      h("div", { class: "eval-actions" }, h("button", { type: "submit", class: "btn btn-primary btn-small", testid: "dataset-import" }, te("import.go"))),
    );
    form.addEventListener("submit", (e) => {
      e.preventDefault();
      this.importFile();
    });
    return form;
  }

  async importFile() {
    const file = this.form.elements.file.files[0];
    if (!file) {
      this.result = { ok: false, text: te("import.pick"), problems: [], skipped: 0 };
      this.render();
      return;
    }
    this.busy = true;
    this.result = { ok: true, text: te("import.busy"), problems: [], skipped: 0 };
    this.render();
    try {
      const res = await api.importEvalDataset(file, this.form.elements.name.value.trim());
      this.showImported(res);
      this.form.reset();
    } catch (err) {
      const p = err.params || {};
      this.result = { ok: false, text: errorText(err), problems: p.problems || [], skipped: p.skipped || 0 };
    }
    this.busy = false;
    await this.load();
  }

  showImported(res) {
    const d = res.dataset;
    this.result = {
      ok: true,
      ref: d.ref,
      text: te(res.created ? "import.stored" : "import.same", { ref: d.ref, n: d.count }),
      problems: res.report.problems,
      skipped: res.report.skipped,
    };
  }

  renderResult() {
    const r = this.result;
    if (!r) return null;
    return h(
      "div",
      { class: `eval-result ${r.ok ? "" : "eval-result-bad"}`, testid: "dataset-import-result", role: r.ok ? "status" : "alert" },
      h("p", {}, r.ref ? h("a", { href: `#/evals/datasets/${encodeURIComponent(r.ref)}`, testid: "dataset-import-link" }, r.text) : r.text),
      r.skipped ? h("p", { class: "small" }, te("import.skipped", { n: r.skipped })) : null,
      r.skipped ? problemList(r.problems, r.skipped) : null,
    );
  }

  fromTracesForm() {
    const field = (label, control) => h("label", {}, h("span", {}, label), control);
    const since = h("select", { name: "since" }, ["7d", "30d", "all"].map((k) => h("option", { value: k }, te(`traces.since.${k}`))));
    const form = h(
      "form",
      { class: "eval-form", testid: "traces-import-form", autocomplete: "off" },
      h("h2", {}, te("traces.title")),
      h("p", { class: "muted small" }, te("traces.help")),
      h(
        "div",
        { class: "eval-fields" },
        field(te("traces.name"), h("input", { name: "name", required: true, maxlength: "100", pattern: "[A-Za-z0-9][A-Za-z0-9._-]*", testid: "traces-name" })),
        field(te("traces.rated"), h("select", { name: "rated" }, ["", "up", "down"].map((k) => h("option", { value: k }, te(`traces.rated.${k || "any"}`))))),
        field(te("traces.since"), since),
        field(te("traces.kb"), h("input", { name: "kb", maxlength: "64" })),
        field(te("traces.model"), h("input", { name: "model", maxlength: "300" })),
        field(te("traces.q"), h("input", { name: "q", maxlength: "200" })),
        field(te("traces.limit"), h("input", { name: "limit", type: "number", min: "1", max: "5000", value: "500" })),
      ),
      h("div", { class: "eval-actions" }, h("button", { type: "submit", class: "btn btn-small", testid: "traces-import" }, te("traces.go"))),
    );
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      const f = form.elements;
      const days = { "7d": 7, "30d": 30 }[f.since.value];
      const body = { name: f.name.value.trim(), limit: Number(f.limit.value) || 500 };
      if (f.rated.value) body.rated = f.rated.value;
      if (days) body.since_ns = `${Math.floor(Date.now() - days * 86400e3)}000000`;
      for (const k of ["kb", "model", "q"]) if (f[k].value.trim()) body[k] = f[k].value.trim();
      try {
        this.showImported(await api.evalFromTraces(body));
      } catch (err) {
        this.result = { ok: false, text: errorText(err), problems: (err.params || {}).problems || [], skipped: (err.params || {}).skipped || 0 };
      }
      await this.load();
    });
    return form;
  }

  renderTable() {
    if (!this.data) return h("p", { class: "muted" }, "…");
    if (!this.data.length) return h("div", { class: "empty-state", testid: "datasets-empty" }, h("p", {}, te("datasets.empty")));
    const cols = ["name", "versions", "count", "skipped", "created"];
    const rows = this.data.map((d) => {
      const newest = d.versions[d.versions.length - 1];
      const link = (v) => h("a", { href: `#/evals/datasets/${encodeURIComponent(v.ref)}`, testid: "dataset-version-link" }, `@${v.version}`);
      return h(
        "tr",
        { testid: "dataset-row", "data-name": d.name },
        h("td", {}, h("a", { href: `#/evals/datasets/${encodeURIComponent(newest.ref)}`, class: "trace-link", testid: "dataset-link" }, d.name)),
        h("td", {}, h("span", { class: "eval-versions" }, d.versions.map(link))),
        h("td", { class: "num" }, String(newest.count)),
        h("td", { class: "num", testid: "dataset-skipped" }, String(newest.report.skipped)),
        h("td", { class: "nowrap" }, fmtTime(newest.created_at)),
      );
    });
    return h(
      "div",
      { class: "card doc-list" },
      h(
        "table",
        { class: "doc-table", testid: "dataset-table" },
        h("thead", {}, h("tr", {}, cols.map((c) => h("th", { scope: "col", class: ["count", "skipped"].includes(c) ? "num" : null }, te(`datasets.col.${c}`))))),
        h("tbody", {}, rows),
      ),
    );
  }
}

/** One dataset version: its facts, versions, import report and a page of examples. */
class DatasetPage {
  constructor(root, ref) {
    this.root = root;
    this.ref = ref;
    this.offset = 0;
    this.data = null;
    this.error = null;
  }

  stop() {}

  async load() {
    try {
      this.data = await api.evalDataset(this.ref, this.offset, PAGE);
      this.error = null;
    } catch (err) {
      this.error = errorText(err);
    }
    this.render();
  }

  render() {
    const back = h("a", { class: "btn btn-ghost btn-small trace-back", href: "#/evals/datasets" }, te("dataset.back"));
    if (this.error || !this.data) {
      const body = this.error ? h("p", { class: "msg-error", role: "alert", testid: "evals-error" }, this.error) : h("p", { class: "muted" }, "…");
      this.root.replaceChildren(back, body);
      return;
    }
    const { dataset: d, versions, examples, total, offset } = this.data;
    const head = h(
      "header",
      { class: "kb-head" },
      h("div", {}, h("h1", { testid: "dataset-title" }, d.ref), h("p", { class: "muted", testid: "dataset-count" }, te("dataset.count", { n: d.count }))),
      h("span", { class: "spacer" }),
      h("a", { class: "btn btn-primary", href: `#/evals/runs?dataset=${encodeURIComponent(d.ref)}`, testid: "dataset-run" }, te("dataset.run")),
    );
    const fact = (label, value) => h("div", {}, h("dt", {}, label), h("dd", {}, value));
    const facts = h(
      "dl",
      { class: "trace-facts" },
      fact(te("dataset.source"), d.source),
      fact(te("dataset.hash"), h("code", {}, d.hash.slice(0, 12))),
      fact(te("dataset.created"), fmtTime(d.created_at)),
      fact(
        te("dataset.versions"),
        h("span", { class: "eval-versions" }, versions.map((v) => (v.version === d.version ? h("strong", {}, `@${v.version}`) : h("a", { href: `#/evals/datasets/${encodeURIComponent(v.ref)}` }, `@${v.version}`)))),
      ),
    );
    const r = d.report;
    const report = h(
      "section",
      { class: "card", testid: "dataset-report" },
      h("h2", {}, te("dataset.report")),
      r.skipped ? h("p", { class: "small" }, te("dataset.report.skipped", { n: r.skipped })) : h("p", { class: "muted small" }, te("dataset.report.none")),
      r.skipped ? problemList(r.problems, r.skipped) : null,
      r.notes.length ? h("ul", { class: "muted small" }, r.notes.map((n) => h("li", {}, n))) : null,
    );
    const table = h(
      "table",
      { class: "doc-table", testid: "example-table" },
      h("thead", {}, h("tr", {}, ["id", "question", "gold"].map((c) => h("th", { scope: "col" }, te(`col.${c}`))))),
      h(
        "tbody",
        {},
        examples.map((ex) =>
          h(
            "tr",
            { testid: "example-row", "data-id": ex.id },
            h("td", { class: "nowrap" }, h("code", {}, ex.id)),
            h("td", { class: "eval-text", testid: "example-question" }, ex.question),
            h("td", { class: "eval-text", testid: "example-gold" }, goldText(ex)),
          ),
        ),
      ),
    );
    const go = (o) => {
      this.offset = o;
      this.load();
    };
    this.root.replaceChildren(
      back,
      head,
      facts,
      report,
      h("section", { class: "card" }, h("div", { class: "card-head" }, h("h2", {}, te("dataset.examples"))), h("div", { class: "doc-list" }, table), pager(offset, PAGE, total, go, "examples-pager")),
    );
  }
}
