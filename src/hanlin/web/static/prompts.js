// The prompt registry's pages: #/prompts lists every prompt with its latest version and labels;
// #/prompts/<name> shows one — its versions, a version's text and variables, a diff of two
// versions, its labels with their history (moving one needs an admin key) — and the playground
// (prompt-playground.js). Everything the registry holds is shown as text, never as HTML.

import { request } from "./api.js";
import { h, toast } from "./dom.js";
import { formatTime } from "./i18n.js";
import { Playground } from "./prompt-playground.js";
import { pt } from "./prompts-text.js";

const enc = encodeURIComponent;

export const promptsApi = {
  list: () => request("GET", "/api/prompts"),
  get: (name) => request("GET", `/api/prompts/${enc(name)}`),
  versions: (name) => request("GET", `/api/prompts/${enc(name)}/versions`),
  diff: (name, from, to) => request("GET", `/api/prompts/${enc(name)}/diff?from=${from}&to=${to}`),
  moveLabel: (name, label, version) => request("PUT", `/api/prompts/${enc(name)}/labels/${enc(label)}`, { version }),
  create: (name, body) => request("POST", `/api/prompts/${enc(name)}/versions`, body),
  run: (name, body) => request("POST", `/api/prompts/${enc(name)}/run`, body),
};

const when = (seconds) => formatTime(seconds);

/** Label chips ("production → 2"), sorted by name. */
export function labelChips(labels, version = null) {
  const entries = Object.entries(labels || {}).filter(([, v]) => version === null || v === version);
  entries.sort(([a], [b]) => a.localeCompare(b));
  return h(
    "span",
    { class: "prompt-labels" },
    entries.map(([label, v]) =>
      h("span", { class: `pill prompt-label${label === "production" ? " pill-done" : ""}`, testid: "label-chip", "data-label": label, "data-version": String(v) }, version === null ? `${label} → ${v}` : label),
    ),
  );
}

function errorLine(err, testid = "prompts-error") {
  return h("p", { class: "msg-error", role: "alert", testid }, err.display || err.message);
}

export class PromptsView {
  constructor() {
    this.name = null;
    this.shown = 0;
    this.models = [];
    this.el = h("section", { id: "prompts-view", class: "view prompts-view", testid: "prompts-view", hidden: true });
    document.getElementById("main").append(this.el);
    this.playground = new Playground({ api: promptsApi, onSaved: (v) => this.reload(v) });
    window.addEventListener("hanlin:lang", () => {
      if (!this.el.hidden) this.render();
    });
  }

  setModels(models) {
    this.models = models || [];
    this.playground.setModels(this.models);
  }

  /** Show the list (no name) or one prompt. */
  async show(name) {
    this.shown += 1;
    const shown = this.shown;
    this.name = name || null;
    this.error = null;
    this.data = null;
    this.render();
    try {
      if (!this.name) {
        this.data = (await promptsApi.list()).data;
      } else if (this.name === this.creating) {
        this.creating = null;
        this.data = { missing: true, versions: [], labels: {}, label_history: [] };
      } else {
        this.data = await this.loadPrompt(this.name);
      }
    } catch (err) {
      if (shown !== this.shown) return;
      if (this.name && err.code === "prompt_not_found") this.data = { missing: true, versions: [], labels: {}, label_history: [] };
      else this.error = err;
    }
    if (shown !== this.shown) return;
    if (this.name && this.data) {
      this.selected = this.data.versions.length ? this.data.versions[this.data.versions.length - 1].version : null;
      this.playground.load(this.name, this.data, this.selected);
    }
    this.render();
  }

  async loadPrompt(name) {
    const [prompt, versions] = await Promise.all([promptsApi.get(name), promptsApi.versions(name)]);
    return { ...prompt, versions: versions.data };
  }

  /** After a save or a label move: reload the prompt, keeping the playground's inputs. */
  async reload(selectVersion = null) {
    try {
      this.data = await this.loadPrompt(this.name);
    } catch (err) {
      toast(err.display || err.message, "error");
      return;
    }
    if (selectVersion) this.selected = selectVersion;
    this.playground.refresh(this.data, selectVersion);
    this.render();
  }

  render() {
    if (!this.name) this.el.replaceChildren(...this.renderList());
    else this.el.replaceChildren(...this.renderPrompt());
  }

  // --- the list ------------------------------------------------------------------------------

  /** The "New prompt" form: made once, so a name being typed survives the list's refresh. */
  newForm() {
    if (!this.form) {
      const input = h("input", { name: "name", testid: "prompt-new-name", maxlength: "100", required: true });
      this.form = h("form", { class: "prompt-new", testid: "prompt-new" }, input, h("button", { type: "submit", class: "btn btn-small" }));
      this.form.addEventListener("submit", (e) => {
        e.preventDefault();
        const name = input.value.trim();
        if (!name) return;
        input.value = "";
        // a name not in the list is new: its page opens without asking the server for it
        if (!(this.data || []).some((p) => p.name === name)) this.creating = name;
        location.hash = `#/prompts/${enc(name)}`;
      });
    }
    const input = this.form.querySelector("input");
    input.placeholder = pt("list.new.placeholder");
    input.setAttribute("aria-label", pt("list.new"));
    this.form.querySelector("button").textContent = pt("list.new");
    return this.form;
  }

  renderList() {
    const head = h("header", { class: "kb-head" }, h("div", {}, h("h1", { testid: "prompts-title" }, pt("list.title")), h("p", { class: "muted" }, pt("list.subtitle"))));
    const form = this.newForm();
    if (this.error) return [head, form, errorLine(this.error)];
    if (!this.data) return [head, form, h("p", { class: "muted" }, "…")];
    if (!this.data.length) return [head, form, h("p", { class: "muted", testid: "prompts-empty" }, pt("list.empty"))];
    const table = h(
      "table",
      { class: "doc-table", testid: "prompt-table" },
      h("thead", {}, h("tr", {}, ["name", "latest", "labels", "updated"].map((c) => h("th", { scope: "col" }, pt(`col.${c}`))))),
      h(
        "tbody",
        {},
        this.data.map((p) =>
          h(
            "tr",
            { testid: "prompt-row", "data-name": p.name },
            h("td", {}, h("a", { href: `#/prompts/${enc(p.name)}`, class: "trace-link", testid: "prompt-link" }, p.name)),
            h("td", { class: "num" }, String(p.latest)),
            h("td", {}, labelChips(p.labels)),
            h("td", { class: "nowrap" }, when(p.updated_at)),
          ),
        ),
      ),
    );
    return [head, form, h("div", { class: "card" }, h("div", { class: "doc-list" }, table))];
  }

  // --- one prompt ----------------------------------------------------------------------------

  renderPrompt() {
    const head = h(
      "header",
      { class: "kb-head" },
      h("div", {}, h("a", { href: "#/prompts", class: "small", testid: "prompts-back" }, pt("back")), h("h1", { testid: "prompt-title" }, this.name)),
      h("span", { class: "spacer" }),
      this.data ? h("span", { testid: "prompt-labels" }, labelChips(this.data.labels)) : null,
    );
    if (this.error) return [head, errorLine(this.error)];
    if (!this.data) return [head, h("p", { class: "muted" }, "…")];
    if (this.data.missing) return [head, h("p", { class: "muted", testid: "prompt-new-note" }, pt("new.note", { name: this.name })), this.playground.el];
    const grid = h("div", { class: "prompt-grid" }, this.renderVersions(), this.renderVersion(), this.renderDiff(), this.renderLabels());
    return [head, grid, this.playground.el];
  }

  version(n) {
    return this.data.versions.find((v) => v.version === n) || null;
  }

  renderVersions() {
    const rows = [...this.data.versions].reverse().map((v) => {
      const view = h("button", { type: "button", class: "btn btn-ghost btn-small", testid: "version-view", "aria-pressed": v.version === this.selected ? "true" : "false" }, pt("versions.view"));
      view.addEventListener("click", () => {
        this.selected = v.version;
        this.render();
      });
      const use = h("button", { type: "button", class: "btn btn-ghost btn-small", testid: "version-use" }, pt("versions.use"));
      use.addEventListener("click", () => {
        this.playground.choose(v.version);
        this.playground.el.scrollIntoView({ block: "start" });
      });
      return h(
        "tr",
        { testid: "version-row", "data-version": String(v.version), class: v.version === this.selected ? "prompt-selected" : null },
        h("td", { class: "num" }, String(v.version)),
        h("td", { testid: "version-labels" }, labelChips(this.data.labels, v.version)),
        h("td", {}, v.author),
        h("td", { class: "nowrap" }, when(v.created_at)),
        h("td", { class: "prompt-message" }, v.message || "–"),
        h("td", { class: "nowrap" }, view, use),
      );
    });
    const table = h(
      "table",
      { class: "doc-table", testid: "version-table" },
      h("thead", {}, h("tr", {}, ["version", "labels", "author", "created", "message"].map((c) => h("th", { scope: "col" }, pt(`col.${c}`))), h("th", {}))),
      h("tbody", {}, rows),
    );
    return h("section", { class: "card prompt-wide", "aria-label": pt("versions.title") }, h("div", { class: "card-head" }, h("h2", {}, pt("versions.title"))), h("div", { class: "doc-list" }, table));
  }

  renderVersion() {
    const v = this.version(this.selected);
    if (!v) return null;
    const vars = v.variables.length
      ? h(
          "ul",
          { class: "prompt-vars", testid: "version-variables" },
          v.variables.map((x) => {
            let kind = pt("version.required");
            if (!x.required) kind = x.default === null || x.default === undefined ? pt("version.optional.empty") : pt("version.optional", { value: JSON.stringify(x.default) });
            return h("li", {}, h("code", {}, `{${x.name}}`), ` ${x.type}, ${kind}`, x.description ? ` — ${x.description}` : "");
          }),
        )
      : h("p", { class: "muted small" }, pt("version.none"));
    const config = v.config ? Object.entries(v.config).filter(([, value]) => value !== null) : [];
    return h(
      "section",
      { class: "card", testid: "version-card", "data-version": String(v.version) },
      h("div", { class: "card-head" }, h("h2", {}, pt("version.title", { n: v.version })), labelChips(this.data.labels, v.version)),
      h("p", { class: "muted small" }, pt("version.by", { author: v.author, when: when(v.created_at) }), " · ", h("code", {}, v.hash.slice(0, 19))),
      h("pre", { class: "prompt-text", testid: "version-text" }, v.text),
      h("h3", { class: "prompt-sub" }, pt("version.variables")),
      vars,
      config.length ? h("h3", { class: "prompt-sub" }, pt("version.config")) : null,
      config.length ? h("p", { class: "small" }, config.map(([k, value]) => `${k}: ${value}`).join(" · ")) : null,
    );
  }

  renderDiff() {
    const versions = this.data.versions.map((v) => v.version);
    const select = (testid, value) =>
      h("select", { testid }, versions.map((n) => h("option", { value: String(n), selected: n === value }, String(n))));
    const last = versions[versions.length - 1];
    const from = select("diff-from", versions.length > 1 ? versions[versions.length - 2] : last);
    const to = select("diff-to", last);
    const out = h("div", { testid: "diff-output" });
    const run = h("button", { type: "button", class: "btn btn-small", testid: "diff-run" }, pt("diff.run"));
    run.addEventListener("click", async () => {
      try {
        const res = await promptsApi.diff(this.name, from.value, to.value);
        out.replaceChildren(res.diff ? diffView(res.diff) : h("p", { class: "muted small" }, pt("diff.same")));
      } catch (err) {
        out.replaceChildren(errorLine(err, "diff-error"));
      }
    });
    return h(
      "section",
      { class: "card" },
      h("div", { class: "card-head" }, h("h2", {}, pt("diff.title"))),
      h("div", { class: "prompt-row" }, h("label", {}, pt("diff.from"), " ", from), h("label", {}, pt("diff.to"), " ", to), run),
      out,
    );
  }

  renderLabels() {
    const labels = this.data.labels || {};
    const name = h("input", { testid: "label-name", list: "prompt-label-names", maxlength: "40", value: "production", "aria-label": pt("labels.label") });
    const names = h("datalist", { id: "prompt-label-names" }, Object.keys(labels).map((l) => h("option", { value: l })));
    const versions = this.data.versions.map((v) => v.version);
    const version = h("select", { testid: "label-version", "aria-label": pt("labels.version") }, versions.map((n) => h("option", { value: String(n), selected: n === this.selected }, String(n))));
    const move = h("button", { type: "button", class: "btn btn-primary btn-small", testid: "label-move" }, pt("labels.move"));
    const status = h("div", { testid: "label-status" });
    move.addEventListener("click", async () => {
      const label = name.value.trim();
      if (!label) return;
      try {
        await promptsApi.moveLabel(this.name, label, Number(version.value));
        toast(pt("labels.moved", { label, version: version.value }));
        await this.reload();
      } catch (err) {
        status.replaceChildren(errorLine(err, "label-error"));
      }
    });
    const history = [...(this.data.label_history || [])].reverse().slice(0, 20);
    return h(
      "section",
      { class: "card" },
      h("div", { class: "card-head" }, h("h2", {}, pt("labels.title"))),
      h("p", { class: "muted small" }, pt("labels.admin")),
      h("div", { class: "prompt-row" }, h("label", {}, pt("labels.label"), " ", name), names, h("label", {}, pt("labels.version"), " ", version), move),
      status,
      history.length ? h("h3", { class: "prompt-sub" }, pt("labels.history")) : null,
      h(
        "ul",
        { class: "prompt-history", testid: "label-history" },
        history.map((m) =>
          h("li", {}, h("strong", {}, m.label), ` → ${m.version}`, m.previous !== null ? ` (${pt("labels.was", { n: m.previous })})` : "", h("span", { class: "muted small" }, ` · ${m.actor} · ${when(m.at)}`)),
        ),
      ),
    );
  }
}

/** A unified diff as lines coloured by their first character (text only). */
export function diffView(text) {
  return h(
    "pre",
    { class: "prompt-diff", testid: "diff-text" },
    text.split("\n").map((line) => {
      const kind = { "+": "diff-add", "-": "diff-del", "@": "diff-hunk" }[line[0]] || null;
      return h("span", { class: kind }, `${line}\n`);
    }),
  );
}
