// The chat's model picker: knowledge bases, then the models that can run now grouped by
// provider; the dozens of models whose provider has no key stay out of the list behind a
// "N not configured" toggle, next to a link to Settings → Connections where they are set up.

import { h } from "./dom.js";
import { getLang, t } from "./i18n.js";

const TEXT = {
  en: { more: "+{n} not configured", less: "Hide not configured", setup: "Connections…", setupTitle: "Add provider keys, Ollama, vLLM or other endpoints" },
  zh: { more: "另有 {n} 个未配置", less: "隐藏未配置", setup: "连接…", setupTitle: "添加提供方密钥、Ollama、vLLM 或其他端点" },
};

function text(key, vars = {}) {
  const s = (TEXT[getLang()] || TEXT.en)[key] ?? TEXT.en[key];
  return s.replace(/\{(\w+)\}/g, (m, name) => (name in vars ? String(vars[name]) : m));
}

const isKb = (id) => /^(?:hanlin:)?kb:/.test(id || "");
const meta = (m) => m.hanlin || {};
const state = new WeakMap(); // select → {models, showAll, more, setup}

function controls(select) {
  let s = state.get(select);
  if (s) return s;
  const more = h("button", { type: "button", class: "btn btn-ghost btn-small", testid: "model-more", "aria-expanded": "false", hidden: true });
  const setup = h("a", { href: "#/settings", class: "model-setup small", testid: "model-setup" });
  select.after(more, setup);
  s = { models: [], showAll: false, more, setup };
  more.addEventListener("click", () => {
    s.showAll = !s.showAll;
    const value = select.value;
    fill(select, s);
    select.value = value;
    more.focus();
  });
  state.set(select, s);
  return s;
}

function fill(select, s) {
  const chat = s.models.filter((m) => !isKb(m.id) && (meta(m).kind === undefined || meta(m).kind === "chat"));
  const kbs = s.models.filter((m) => isKb(m.id));
  const ready = chat.filter((m) => meta(m).available !== false);
  const unconfigured = chat.filter((m) => meta(m).available === false);
  select.replaceChildren();
  if (!kbs.length && !ready.length) select.append(h("option", { value: "", disabled: true }, t("chat.model.none")));
  const group = (label, list, disabled = false) => {
    if (!list.length) return;
    const g = h("optgroup", { label, "data-group": label });
    for (const m of list) g.append(h("option", { value: m.id, disabled }, m.id));
    select.append(g);
  };
  group(t("chat.model.kbs"), kbs);
  const byOwner = new Map();
  for (const m of ready) {
    const owner = m.owned_by && m.owned_by !== "hanlin" ? m.owned_by : t("chat.model.models");
    if (!byOwner.has(owner)) byOwner.set(owner, []);
    byOwner.get(owner).push(m);
  }
  for (const [owner, list] of byOwner) group(owner, list);
  if (s.showAll) group(`${t("chat.model.unavailable")} (${unconfigured.length})`, unconfigured, true);
  s.more.hidden = !unconfigured.length;
  s.more.textContent = s.showAll ? text("less") : text("more", { n: unconfigured.length });
  s.more.setAttribute("aria-expanded", s.showAll ? "true" : "false");
  s.setup.textContent = text("setup");
  s.setup.title = text("setupTitle");
  return [...kbs, ...ready].map((m) => m.id);
}

/** Fill `select` from GET /v1/models data; returns the ids that can be picked. */
export function fillModelPicker(select, models) {
  const s = controls(select);
  s.models = models;
  return fill(select, s);
}
