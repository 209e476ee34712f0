// Settings → Connections (#/settings): an admin adds provider API keys, Ollama / vLLM / any
// OpenAI-compatible endpoint (with "test connection" listing its models), edits and removes
// them. Keys are sent once and shown back only masked (sk-…abcd). Talks to
// /api/settings/connections; the gateway picks changes up at once, so the model picker is
// refreshed after every change.

import { request } from "./api.js";
import { h, toast } from "./dom.js";
import { getLang } from "./i18n.js";

const BASE = "/api/settings/connections";
const enc = encodeURIComponent;
const KINDS = {
  openai_compat: { name: "", url: "" },
  ollama: { name: "ollama", url: "http://127.0.0.1:11434/v1" },
  vllm: { name: "vllm", url: "http://127.0.0.1:8000/v1" },
};

const TEXT = {
  en: {
    title: "Connections",
    subtitle: "Provider API keys and model servers. Changes apply at once; keys are stored on the server (mode 0600) and never shown again.",
    nav: "Connections",
    add: "Add an endpoint",
    kind: "Type",
    "kind.openai_compat": "OpenAI-compatible",
    "kind.ollama": "Ollama",
    "kind.vllm": "vLLM",
    name: "Name",
    url: "Base URL",
    key: "API key",
    keyOptional: "API key (optional)",
    models: "Models (one per line)",
    test: "Test connection",
    save: "Save",
    saved: "Saved “{name}”.",
    removed: "Removed “{name}”.",
    remove: "Remove",
    edit: "Edit",
    found: "{n} models found: {list}",
    none: "The endpoint lists no models.",
    providers: "Provider keys",
    endpoints: "Endpoints",
    notSet: "not set",
    fromEnv: "from {variable}",
    setKey: "Set key",
    newKey: "New key",
    denied: "Only an admin can manage connections.",
    confirmRemove: "Remove “{name}” and its stored key?",
    modelsCount: "{n} models",
    anyModel: "any model name",
  },
  zh: {
    title: "连接",
    subtitle: "提供方 API 密钥与模型服务器。更改立即生效；密钥保存在服务器上（权限 0600），保存后不再显示。",
    nav: "连接",
    add: "添加端点",
    kind: "类型",
    "kind.openai_compat": "OpenAI 兼容",
    "kind.ollama": "Ollama",
    "kind.vllm": "vLLM",
    name: "名称",
    url: "基础地址",
    key: "API 密钥",
    keyOptional: "API 密钥（可选）",
    models: "模型（每行一个）",
    test: "测试连接",
    save: "保存",
    saved: "已保存“{name}”。",
    removed: "已移除“{name}”。",
    remove: "移除",
    edit: "编辑",
    found: "找到 {n} 个模型：{list}",
    none: "该端点没有列出任何模型。",
    providers: "提供方密钥",
    endpoints: "端点",
    notSet: "未设置",
    fromEnv: "来自 {variable}",
    setKey: "设置密钥",
    newKey: "新密钥",
    denied: "只有管理员可以管理连接。",
    confirmRemove: "移除“{name}”及其保存的密钥？",
    modelsCount: "{n} 个模型",
    anyModel: "任意模型名",
  },
};

export function tr(key, vars = {}) {
  const s = (TEXT[getLang()] || TEXT.en)[key] ?? TEXT.en[key] ?? key;
  return s.replace(/\{(\w+)\}/g, (m, name) => (name in vars ? String(vars[name]) : m));
}

const field = (label, input) => h("label", { class: "conn-field" }, h("span", {}, label), input);

export class ConnectionsView {
  /** @param {{onChanged: () => void}} opts  called after a change (refresh the model picker) */
  constructor({ onChanged }) {
    this.onChanged = onChanged;
    this.rows = [];
    this.error = null;
    this.status = null; // {kind: "ok" | "error", text}
    this.draft = { kind: "openai_compat", name: "", url: "", key: "", models: "" };
    this.el = h("section", { id: "settings-view", class: "view settings-view", testid: "settings-view", hidden: true });
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
    try {
      this.rows = (await request("GET", BASE)).data || [];
      this.error = null;
    } catch (err) {
      this.rows = [];
      this.error = err.status === 403 ? tr("denied") : err.display || err.message;
    }
    this.render();
  }

  setStatus(kind, text) {
    this.status = { kind, text };
    this.render();
  }

  async changed(message) {
    toast(message);
    await this.load();
    this.onChanged();
  }

  // --- actions ---------------------------------------------------------------------------------

  async test(body) {
    try {
      const res = await request("POST", `${BASE}/test`, body);
      const models = res.models || [];
      if (!body.name) this.draft.models = models.join("\n");
      this.setStatus("ok", models.length ? tr("found", { n: models.length, list: models.slice(0, 8).join(", ") }) : tr("none"));
    } catch (err) {
      this.setStatus("error", err.display || err.message);
    }
  }

  async save(name, body) {
    try {
      await request("PUT", `${BASE}/${enc(name)}`, body);
      this.status = null;
      await this.changed(tr("saved", { name }));
      return true;
    } catch (err) {
      this.setStatus("error", err.display || err.message);
      return false;
    }
  }

  async remove(name) {
    if (!window.confirm(tr("confirmRemove", { name }))) return;
    try {
      await request("DELETE", `${BASE}/${enc(name)}`);
      await this.changed(tr("removed", { name }));
    } catch (err) {
      this.setStatus("error", err.display || err.message);
    }
  }

  // --- rendering -------------------------------------------------------------------------------

  render() {
    const head = h(
      "header",
      { class: "kb-head" },
      h("div", {}, h("h1", { testid: "settings-title" }, tr("title")), h("p", { class: "muted" }, tr("subtitle"))),
    );
    if (this.error) {
      this.el.replaceChildren(head, h("p", { class: "msg-error", role: "alert", testid: "conn-error" }, this.error));
      return;
    }
    const status = this.status
      ? h("p", { class: this.status.kind === "error" ? "msg-error" : "conn-ok", role: this.status.kind === "error" ? "alert" : "status", testid: "conn-status" }, this.status.text)
      : null;
    const providers = this.rows.filter((r) => r.kind === "provider");
    const endpoints = this.rows.filter((r) => r.kind !== "provider");
    this.el.replaceChildren(
      ...[head, this.renderForm(), status].filter(Boolean),
      h("section", { class: "card conn-card" }, h("h2", {}, tr("endpoints")), h("ul", { class: "conn-list", testid: "conn-endpoints" }, endpoints.map((r) => this.renderEndpoint(r)))),
      h("section", { class: "card conn-card" }, h("h2", {}, tr("providers")), h("ul", { class: "conn-list", testid: "conn-providers" }, providers.map((r) => this.renderProvider(r)))),
    );
  }

  renderForm() {
    const d = this.draft;
    const kind = h("select", { testid: "conn-kind" }, Object.keys(KINDS).map((k) => h("option", { value: k, selected: d.kind === k }, tr(`kind.${k}`))));
    const name = h("input", { testid: "conn-name", required: true, maxlength: "40", placeholder: "my-server", autocomplete: "off" });
    const url = h("input", { testid: "conn-url", type: "url", required: true, placeholder: "http://127.0.0.1:11434/v1", autocomplete: "off" });
    const key = h("input", { testid: "conn-key", type: "password", autocomplete: "off", spellcheck: "false", placeholder: "sk-…" });
    const models = h("textarea", { testid: "conn-models", rows: "3" });
    name.value = d.name;
    url.value = d.url;
    key.value = d.key;
    models.value = d.models;
    const sync = () => Object.assign(d, { kind: kind.value, name: name.value.trim(), url: url.value.trim(), key: key.value.trim(), models: models.value });
    for (const el of [name, url, key, models]) el.addEventListener("input", sync);
    kind.addEventListener("change", () => {
      const preset = KINDS[kind.value];
      Object.assign(d, { kind: kind.value, name: preset.name || d.name, url: preset.url || d.url });
      this.render();
    });
    const testBtn = h("button", { type: "button", class: "btn", testid: "conn-test" }, tr("test"));
    testBtn.addEventListener("click", () => {
      sync();
      this.test({ base_url: d.url, api_key: d.key || null });
    });
    const form = h(
      "form",
      { class: "card conn-form", testid: "conn-form", autocomplete: "off" },
      h("h2", {}, tr("add")),
      h("div", { class: "conn-grid" }, field(tr("kind"), kind), field(tr("name"), name), field(tr("url"), url), field(tr("keyOptional"), key)),
      field(tr("models"), models),
      h("div", { class: "dialog-actions" }, testBtn, h("button", { type: "submit", class: "btn btn-primary", testid: "conn-save" }, tr("save"))),
    );
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      sync();
      const body = { base_url: d.url, models: d.models.split(/[\n,]/).map((m) => m.trim()).filter(Boolean) };
      if (d.key) body.api_key = d.key;
      if (await this.save(d.name, body)) {
        this.draft = { kind: "openai_compat", name: "", url: "", key: "", models: "" };
        this.render();
      }
    });
    return form;
  }

  keyBadge(r) {
    if (!r.key) return h("span", { class: "pill pill-failed", testid: "conn-key-status" }, tr("notSet"));
    const from = r.key.source === "env" ? ` (${tr("fromEnv", { variable: r.key.variable })})` : "";
    return h("code", { testid: "conn-key-status" }, r.key.masked + from);
  }

  renderProvider(r) {
    const input = h("input", { type: "password", class: "conn-key-input", testid: "conn-provider-key", autocomplete: "off", spellcheck: "false", placeholder: tr("newKey"), "aria-label": `${tr("key")}: ${r.name}` });
    const set = h("button", { type: "button", class: "btn btn-small", testid: "conn-provider-save" }, tr("setKey"));
    set.addEventListener("click", () => {
      if (input.value.trim()) this.save(r.name, { api_key: input.value.trim() });
    });
    return h(
      "li",
      { class: "conn-row", testid: "conn-provider", "data-name": r.name },
      h("div", { class: "conn-main" }, h("strong", {}, r.name), h("span", { class: "muted small" }, r.description || "")),
      this.keyBadge(r),
      input,
      set,
      r.removable ? this.removeButton(r) : null,
    );
  }

  renderEndpoint(r) {
    const test = h("button", { type: "button", class: "btn btn-small", testid: "conn-row-test" }, tr("test"));
    test.addEventListener("click", () => this.test({ name: r.name }));
    const edit = h("button", { type: "button", class: "btn btn-ghost btn-small", testid: "conn-edit" }, tr("edit"));
    edit.addEventListener("click", () => {
      const kind = KINDS[r.name] ? r.name : "openai_compat";
      this.draft = { kind, name: r.name, url: r.base_url || "", key: "", models: (r.models || []).join("\n") };
      this.status = null;
      this.render();
      this.el.querySelector("[data-testid=conn-url]").focus();
    });
    const models = r.models.length ? tr("modelsCount", { n: r.models.length }) : tr("anyModel");
    return h(
      "li",
      { class: "conn-row", testid: "conn-endpoint", "data-name": r.name },
      h("div", { class: "conn-main" }, h("strong", {}, r.name), h("code", { class: "small" }, r.base_url), h("span", { class: "muted small" }, models)),
      r.needs_key ? this.keyBadge(r) : null,
      test,
      edit,
      r.removable ? this.removeButton(r) : null,
    );
  }

  removeButton(r) {
    const btn = h("button", { type: "button", class: "btn btn-danger btn-small", testid: "conn-remove", "aria-label": `${tr("remove")}: ${r.name}` }, tr("remove"));
    btn.addEventListener("click", () => this.remove(r.name));
    return btn;
  }
}
