// The prompt playground (on #/prompts/<name>): start from a version, edit its template (an edited
// one runs as an unsaved draft), fill the variables — a form made from the declared variables
// and the template's {fields} — pick any gateway model, run it (POST /api/prompts/{name}/run:
// the output, tokens, latency and cost come back), and save the text as a new version (admin).

import { h, toast } from "./dom.js";
import { fillModelPicker } from "./model-picker.js";
import { pt, templateFields } from "./prompts-text.js";
import { fmtCost, fmtInt, fmtMs } from "./traces-text.js";

const MODEL_KEY = "hanlin.prompts.model";
const isKb = (id) => /^(?:hanlin:)?(?:kb|agent):/.test(id || "");

function remembered() {
  try {
    return localStorage.getItem(MODEL_KEY) || "";
  } catch {
    return "";
  }
}

function remember(model) {
  try {
    localStorage.setItem(MODEL_KEY, model);
  } catch {
    /* not kept */
  }
}

export class Playground {
  constructor({ api, onSaved }) {
    this.api = api;
    this.onSaved = onSaved;
    this.name = null;
    this.data = null;
    this.base = null; // the version the text started from (null: a new prompt)
    this.values = {}; // variable name → what was typed (kept across versions and edits)
    this.shape = "";
    this.models = [];
    this.last = null; // the last run's answer, shown again after a language switch
    this.build();
    window.addEventListener("hanlin:lang", () => this.relabel());
  }

  /** Build the form again in the page's new language, keeping what was typed and shown. */
  relabel() {
    const old = this.el;
    const keep = {
      text: this.text.value,
      input: this.input.value,
      temperature: this.temperature.value,
      maxTokens: this.maxTokens.value,
      model: this.model.value,
      message: this.saveMessage.value,
      label: this.saveLabel.value,
    };
    this.shape = "";
    this.build();
    this.setModels(this.models);
    if (this.data) this.refresh(this.data);
    this.text.value = keep.text;
    this.input.value = keep.input;
    this.temperature.value = keep.temperature;
    this.maxTokens.value = keep.maxTokens;
    if (keep.model) this.model.value = keep.model;
    this.saveMessage.value = keep.message;
    this.saveLabel.value = keep.label;
    this.edited();
    if (this.last) this.showResult(this.last);
    if (old.isConnected) old.replaceWith(this.el);
  }

  build() {
    const field = (label, control, cls = "") => h("label", { class: `prompt-field ${cls}` }, h("span", {}, label), control);
    this.versionSelect = h("select", { testid: "pg-version" });
    this.versionSelect.addEventListener("change", () => this.choose(Number(this.versionSelect.value)));
    this.text = h("textarea", { class: "prompt-textarea", testid: "pg-text", rows: "8", spellcheck: "false", maxlength: "100000" });
    this.text.addEventListener("input", () => this.edited());
    this.draftMark = h("span", { class: "pill pill-queued", testid: "pg-draft", hidden: true }, pt("pg.draft"));
    this.vars = h("div", { class: "prompt-vars-form", testid: "pg-vars" });
    this.model = h("select", { id: "pg-model", testid: "pg-model" });
    this.model.addEventListener("change", () => remember(this.model.value));
    this.input = h("textarea", { testid: "pg-input", rows: "2", maxlength: "100000" });
    this.temperature = h("input", { type: "number", min: "0", max: "2", step: "0.1", testid: "pg-temperature", placeholder: pt("pg.default") });
    this.maxTokens = h("input", { type: "number", min: "1", step: "1", testid: "pg-max-tokens", placeholder: pt("pg.default") });
    this.runButton = h("button", { type: "submit", class: "btn btn-primary", testid: "pg-run" }, pt("pg.run"));
    this.result = h("div", { class: "prompt-result", testid: "pg-result", "aria-live": "polite" });
    this.saveMessage = h("input", { testid: "pg-save-message", maxlength: "2000", placeholder: pt("pg.save.message"), "aria-label": pt("pg.save.message") });
    this.saveLabel = h("input", { testid: "pg-save-label", maxlength: "40", placeholder: "staging", "aria-label": pt("pg.save.label") });
    this.saveButton = h("button", { type: "button", class: "btn", testid: "pg-save" }, pt("pg.save"));
    this.saveStatus = h("div", { testid: "pg-save-status" });
    this.saveButton.addEventListener("click", () => this.save());
    const form = h(
      "form",
      { class: "prompt-pg-form", testid: "pg-form" },
      h("div", { class: "prompt-row" }, field(pt("pg.version"), this.versionSelect), this.draftMark),
      field(pt("pg.text"), this.text, "prompt-wide-field"),
      h("h3", { class: "prompt-sub" }, pt("pg.variables")),
      this.vars,
      h("div", { class: "prompt-row" }, h("div", { class: "prompt-field prompt-model" }, h("label", { for: "pg-model" }, pt("pg.model")), h("div", { class: "prompt-row" }, this.model))),
      field(pt("pg.input"), this.input, "prompt-wide-field"),
      h("div", { class: "prompt-row" }, field(pt("pg.temperature"), this.temperature), field(pt("pg.max_tokens"), this.maxTokens), this.runButton),
    );
    form.addEventListener("submit", (e) => {
      e.preventDefault();
      this.run();
    });
    const save = h(
      "div",
      { class: "prompt-save" },
      h("h3", { class: "prompt-sub" }, pt("pg.save.title")),
      h("div", { class: "prompt-row" }, this.saveMessage, this.saveLabel, this.saveButton),
      this.saveStatus,
    );
    this.el = h(
      "section",
      { class: "card prompt-playground", testid: "playground", "aria-labelledby": "pg-heading" },
      h("div", { class: "card-head" }, h("h2", { id: "pg-heading" }, pt("pg.title"))),
      h("p", { class: "muted small" }, pt("pg.intro")),
      form,
      this.result,
      save,
    );
  }

  setModels(models) {
    this.models = models || [];
    const chat = this.models.filter((m) => !isKb(m.id));
    const keep = this.model.value;
    const ids = fillModelPicker(this.model, chat);
    const want = [keep, remembered(), this.base?.config?.model].find((m) => m && ids.includes(m));
    if (want) this.model.value = want;
  }

  /** Show prompt `name` (its data from the registry), starting from version `selected`. */
  load(name, data, selected) {
    if (name !== this.name) {
      this.base = null;
      this.values = {};
      this.last = null;
      this.result.replaceChildren();
      this.saveStatus.replaceChildren();
    }
    this.name = name;
    this.refresh(data, selected);
  }

  refresh(data, selected = null) {
    this.data = data;
    const versions = data.versions || [];
    this.versionSelect.replaceChildren(
      ...[...versions].reverse().map((v) => {
        const labels = Object.entries(data.labels || {}).filter(([, n]) => n === v.version).map(([l]) => l);
        return h("option", { value: String(v.version) }, labels.length ? `${v.version} (${labels.join(", ")})` : String(v.version));
      }),
    );
    this.versionSelect.disabled = !versions.length;
    if (selected !== null || !this.base) this.choose(selected ?? (versions.length ? versions[versions.length - 1].version : null));
    else this.versionSelect.value = String(this.base.version);
  }

  /** Start from version `n`: its text, variables and config. */
  choose(n) {
    this.base = (this.data.versions || []).find((v) => v.version === n) || null;
    if (this.base) this.versionSelect.value = String(n);
    this.text.value = this.base ? this.base.text : "";
    const config = this.base?.config || {};
    this.temperature.value = config.temperature ?? "";
    this.maxTokens.value = config.max_tokens ?? "";
    if (config.model && [...this.model.options].some((o) => o.value === config.model && !o.disabled)) this.model.value = config.model;
    this.edited();
  }

  /** The variables of the text as it is now: declared ones as declared, new fields as text. */
  declared() {
    const known = new Map((this.base?.variables || []).map((v) => [v.name, v]));
    return templateFields(this.text.value).map((name) => known.get(name) || { name, type: "str", required: true, default: null, description: "" });
  }

  isDraft() {
    return !this.base || this.text.value !== this.base.text;
  }

  edited() {
    this.draftMark.hidden = !(this.base && this.isDraft());
    const vars = this.declared();
    const shape = JSON.stringify(vars.map((v) => [v.name, v.type, v.required, v.default]));
    if (shape !== this.shape) {
      this.shape = shape;
      this.renderVars(vars);
    }
  }

  renderVars(vars) {
    if (!vars.length) {
      this.vars.replaceChildren(h("p", { class: "muted small" }, pt("pg.novars")));
      return;
    }
    this.vars.replaceChildren(
      ...vars.map((v) => {
        const id = `pg-var-${v.name}`;
        const saved = this.values[v.name];
        let control;
        if (v.type === "bool") {
          control = h("input", { type: "checkbox", id, testid: id });
          control.checked = saved === true || (saved === undefined && v.default === true);
          control.addEventListener("change", () => (this.values[v.name] = control.checked));
        } else {
          const multi = v.type === "list" || (v.type === "str" && /context|text|document|sources|history/i.test(v.name));
          control = multi ? h("textarea", { id, testid: id, rows: "3" }) : h("input", { id, testid: id, type: v.type === "int" || v.type === "float" ? "number" : "text", step: v.type === "float" ? "any" : null });
          control.value = typeof saved === "string" ? saved : "";
          if (v.default !== null && v.default !== undefined) control.placeholder = Array.isArray(v.default) ? v.default.join("\n") : String(v.default);
          control.addEventListener("input", () => (this.values[v.name] = control.value));
        }
        const kind = v.required ? pt("version.required") : pt("version.optional.empty");
        return h(
          "label",
          { class: "prompt-field", for: id },
          h("span", {}, h("code", {}, `{${v.name}}`), ` ${v.type} · ${kind}`, v.description ? ` — ${v.description}` : ""),
          control,
        );
      }),
    );
  }

  /** The values to send: typed as declared; an empty optional one is left to its default. */
  typedValues() {
    const out = {};
    for (const v of this.declared()) {
      const raw = this.values[v.name];
      if (v.type === "bool") {
        if (raw !== undefined || v.required) out[v.name] = raw === true;
        continue;
      }
      const text = typeof raw === "string" ? raw : "";
      if (!text && !v.required) continue;
      if (v.type === "int" || v.type === "float") {
        const n = Number(text);
        if (!text.trim() || !Number.isFinite(n) || (v.type === "int" && !Number.isInteger(n))) throw new Error(pt("pg.bad_number", { name: v.name }));
        out[v.name] = n;
      } else if (v.type === "list") out[v.name] = text.split("\n").map((s) => s.trim()).filter(Boolean);
      else out[v.name] = text;
    }
    return out;
  }

  /** Declarations to send with a draft or a new version: those the base declared, still used. */
  declarations() {
    const used = new Set(templateFields(this.text.value));
    return (this.base?.variables || []).filter((v) => used.has(v.name));
  }

  async run() {
    let body;
    try {
      body = { variables: this.typedValues(), model: this.model.value || null };
    } catch (err) {
      this.result.replaceChildren(h("p", { class: "msg-error", role: "alert", testid: "pg-error" }, err.message));
      return;
    }
    if (this.isDraft()) Object.assign(body, { text: this.text.value, declare: this.declarations() });
    else body.version = this.base.version;
    if (this.input.value.trim()) body.input = this.input.value;
    if (this.temperature.value !== "") body.temperature = Number(this.temperature.value);
    if (this.maxTokens.value !== "") body.max_tokens = Number(this.maxTokens.value);
    this.runButton.disabled = true;
    this.runButton.textContent = pt("pg.running");
    this.result.setAttribute("aria-busy", "true");
    try {
      const res = await this.api.run(this.name, body);
      this.showResult(res);
    } catch (err) {
      this.result.replaceChildren(h("p", { class: "msg-error", role: "alert", testid: "pg-error" }, err.display || err.message));
    } finally {
      this.runButton.disabled = false;
      this.runButton.textContent = pt("pg.run");
      this.result.setAttribute("aria-busy", "false");
    }
  }

  showResult(res) {
    this.last = res;
    const u = res.usage || {};
    const stat = (label, value, testid) => h("div", { class: "stat" }, h("span", { class: "muted small" }, label), h("span", { class: "stat-value", testid }, value));
    this.result.replaceChildren(
      h("h3", { class: "prompt-sub" }, pt("pg.output"), res.version ? ` · ${this.name}@${res.version}` : ""),
      h("pre", { class: "prompt-output", testid: "pg-output" }, res.output || ""),
      h(
        "div",
        { class: "stats prompt-stats" },
        stat(pt("pg.tokens"), `${fmtInt(u.prompt_tokens)} / ${fmtInt(u.completion_tokens)}`, "pg-tokens"),
        stat(pt("pg.latency"), fmtMs(res.latency_ms), "pg-latency"),
        stat(pt("pg.cost"), fmtCost(res.cost ? res.cost.usd : 0), "pg-cost"),
        stat(pt("pg.served"), res.served_by || res.model, "pg-served"),
      ),
      res.trace_id ? h("a", { href: `#/traces/${res.trace_id}`, class: "small", testid: "pg-trace" }, pt("pg.trace")) : null,
    );
  }

  async save() {
    const body = { text: this.text.value, variables: this.declarations(), message: this.saveMessage.value.trim() };
    const label = this.saveLabel.value.trim();
    if (label) body.label = label;
    if (this.base?.config) body.config = this.base.config;
    try {
      const res = await this.api.create(this.name, body);
      const n = res.version.version;
      toast(pt(res.created ? "pg.saved" : "pg.same", { n }));
      this.saveStatus.replaceChildren(h("p", { class: "muted small", testid: "pg-saved" }, pt(res.created ? "pg.saved" : "pg.same", { n })));
      this.saveMessage.value = "";
      await this.onSaved(n);
    } catch (err) {
      this.saveStatus.replaceChildren(h("p", { class: "msg-error", role: "alert", testid: "pg-save-error" }, err.display || err.message));
    }
  }
}
