// The Workflows section: #/workflows lists the server's workflows (valid or with their problems)
// and the recent runs; #/workflows/<name> opens one in the visual editor (flow-editor.js), and
// #/workflows/<name>?run=<id> shows a run on it. "New workflow" opens an empty canvas under a
// name, saved when the editor saves it.

import { h } from "./dom.js";
import { FlowEditor, flowsApi } from "./flow-editor.js";
import { formatTime } from "./i18n.js";
import { wt } from "./workflows-text.js";

const enc = encodeURIComponent;
const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/;

function errorLine(err) {
  return h("p", { class: "msg-error", role: "alert", testid: "flows-error" }, err.display || err.message);
}

export class WorkflowsView {
  constructor() {
    this.editor = new FlowEditor();
    this.shown = 0;
    this.creating = null;
    this.el = h("section", { id: "workflows-view", class: "view workflows-view", testid: "workflows-view", hidden: true });
    document.getElementById("main").append(this.el);
    window.addEventListener("hanlin:lang", () => {
      if (!this.el.hidden && !this.name) this.render();
    });
  }

  /** Show the list (no name) or the editor for `name`; `query` may name a run to show. */
  async show(name, query = "") {
    this.shown += 1;
    const shown = this.shown;
    this.name = name || null;
    if (this.name) {
      const runId = new URLSearchParams(query).get("run");
      const isNew = this.creating === this.name;
      this.creating = null;
      this.el.classList.add("editing");
      this.el.replaceChildren(this.editor.el);
      await this.editor.open(this.name, { isNew, runId });
      return;
    }
    this.el.classList.remove("editing");
    this.data = null;
    this.error = null;
    this.render();
    try {
      const [flows, runs] = await Promise.all([flowsApi.list(), flowsApi.runs(null, 20)]);
      this.data = { flows: flows.data, runs: runs.data };
    } catch (err) {
      this.error = err;
    }
    if (shown === this.shown) this.render();
  }

  /** The "New workflow" form: made once, so a name being typed survives the list's refresh. */
  newForm() {
    if (this.form) {
      const [input, button] = this.form.querySelectorAll("input, button");
      input.placeholder = wt("list.new.placeholder");
      input.setAttribute("aria-label", wt("list.new"));
      button.textContent = wt("list.new");
      return this.form;
    }
    const input = h("input", { name: "name", testid: "flow-new-name", maxlength: "100", required: true, placeholder: wt("list.new.placeholder"), "aria-label": wt("list.new") });
    const note = h("span", { class: "msg-error small", role: "alert" });
    const form = h("form", { class: "prompt-new", testid: "flow-new" }, input, h("button", { type: "submit", class: "btn btn-small" }, wt("list.new")), note);
    this.form = form;
    form.addEventListener("submit", (e) => {
      e.preventDefault();
      const name = input.value.trim();
      if (!NAME.test(name)) {
        note.textContent = wt("list.new.bad");
        return;
      }
      if (!((this.data && this.data.flows) || []).some((f) => f.name === name)) this.creating = name;
      input.value = "";
      note.textContent = "";
      location.hash = `#/workflows/${enc(name)}`;
    });
    return form;
  }

  render() {
    const head = h("header", { class: "kb-head" }, h("div", {}, h("h1", { testid: "flows-title" }, wt("list.title")), h("p", { class: "muted" }, wt("list.subtitle"))));
    const form = this.newForm();
    if (this.error) return this.el.replaceChildren(head, form, errorLine(this.error));
    if (!this.data) return this.el.replaceChildren(head, form, h("p", { class: "muted" }, "…"));
    const { flows, runs } = this.data;
    const list = flows.length
      ? h(
          "table",
          { class: "doc-table", testid: "flow-table" },
          h("thead", {}, h("tr", {}, ["name", "description", "inputs", "state"].map((c) => h("th", { scope: "col" }, wt(`col.${c}`))))),
          h(
            "tbody",
            {},
            flows.map((f) =>
              h(
                "tr",
                { testid: "flow-row", "data-name": f.name },
                h("td", {}, h("a", { href: `#/workflows/${enc(f.name)}`, class: "trace-link", testid: "flow-link" }, f.name)),
                h("td", {}, f.description || ""),
                h("td", { class: "small" }, f.inputs ? Object.keys(f.inputs.properties || {}).join(", ") : "–"),
                h("td", {}, f.valid ? h("span", { class: "pill pill-done" }, wt("state.valid")) : h("span", { class: "pill pill-failed", title: f.error || "", testid: "flow-invalid" }, wt("state.invalid"))),
              ),
            ),
          ),
        )
      : h("p", { class: "muted", testid: "flows-empty" }, wt("list.empty"));
    const runTable = runs.length
      ? h(
          "table",
          { class: "doc-table", testid: "run-table" },
          h("thead", {}, h("tr", {}, ["run", "workflow", "status", "steps", "started"].map((c) => h("th", { scope: "col" }, wt(`col.${c}`))))),
          h(
            "tbody",
            {},
            runs.map((r) =>
              h(
                "tr",
                { testid: "run-row", "data-run": r.id },
                h("td", {}, h("a", { href: `#/workflows/${enc(r.workflow)}?run=${enc(r.id)}`, class: "trace-link", testid: "run-link" }, r.id)),
                h("td", {}, r.workflow),
                h("td", {}, h("span", { class: `pill flow-pill-${r.status}` }, wt(`status.${r.status}`))),
                h("td", { class: "num" }, String(r.steps)),
                h("td", { class: "nowrap" }, formatTime(r.created_at)),
              ),
            ),
          ),
        )
      : h("p", { class: "muted small", testid: "runs-empty" }, wt("runs.empty"));
    this.el.replaceChildren(
      head,
      form,
      h("section", { class: "card" }, h("div", { class: "doc-list" }, list)),
      h("section", { class: "card" }, h("div", { class: "card-head" }, h("h2", {}, wt("runs.title"))), h("div", { class: "doc-list" }, runTable)),
    );
  }
}
