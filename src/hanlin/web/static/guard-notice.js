// The small notice under an answer saying what the guard did and why (the server's
// `hanlin.guard` field: counts and rule ids, never the personal data itself), in English and
// Chinese following the page's language (i18n.js).

import { h } from "./dom.js";
import { getLang } from "./i18n.js";

const TEXT = {
  en: {
    title: "Guard",
    masked: "Personal data was masked before the question left for the model: {items}.",
    blocked: "The answer was withheld by the content policy (rule {rule}).",
    links: "{n} link(s) or image(s) to sites not on the allow-list were removed from the answer.",
    terms: "Terms were masked by the content policy: {rules}.",
    flags: "Flagged by the content policy: {rules}.",
    injection: "{n} source(s) held instructions aimed at the model ({rules}); they were {mode}.",
    unchecked: "The guard model was unavailable: this answer was not checked by it.",
    "mode.flag": "treated as data only",
    "mode.strip": "removed from the sources",
    "mode.drop": "left out",
  },
  zh: {
    title: "安全防护",
    masked: "问题发送给模型之前，个人信息已被遮蔽：{items}。",
    blocked: "回答已被内容策略拦截（规则 {rule}）。",
    links: "已从回答中移除 {n} 个指向未允许网站的链接或图片。",
    terms: "内容策略已遮蔽以下词语类别：{rules}。",
    flags: "内容策略标记：{rules}。",
    injection: "{n} 个来源含有针对模型的指令（{rules}），已{mode}。",
    unchecked: "安全分类模型不可用：此回答未经其检查。",
    "mode.flag": "仅作为资料处理",
    "mode.strip": "从来源中删除",
    "mode.drop": "排除",
  },
};

function gt(key, vars = {}) {
  const s = TEXT[getLang()]?.[key] ?? TEXT.en[key] ?? key;
  return s.replace(/\{(\w+)\}/g, (m, name) => (name in vars ? String(vars[name]) : m));
}

/** The lines of a notice for `guard` (the `hanlin.guard` object of an answer). */
export function guardLines(guard) {
  if (!guard || typeof guard !== "object") return [];
  const lines = [];
  const masked = Object.entries(guard.masked || {});
  if (masked.length) {
    const items = masked.map(([kind, n]) => `${kind} × ${n}`).join(", ");
    lines.push(["masked", gt("masked", { items })]);
  }
  if (guard.blocked) lines.push(["blocked", gt("blocked", { rule: guard.blocked })]);
  if (guard.links_removed) lines.push(["links", gt("links", { n: guard.links_removed })]);
  const terms = Object.keys(guard.terms_masked || {});
  if (terms.length) lines.push(["terms", gt("terms", { rules: terms.join(", ") })]);
  if ((guard.flags || []).length) lines.push(["flags", gt("flags", { rules: guard.flags.join(", ") })]);
  const inj = guard.injection;
  if (inj && inj.sources) {
    const mode = gt(`mode.${inj.mode}`);
    lines.push(["injection", gt("injection", { n: inj.sources, rules: (inj.rules || []).join(", "), mode })]);
  }
  if (guard.unchecked) lines.push(["unchecked", gt("unchecked")]);
  return lines;
}

/** The notice element, or null when the guard did nothing worth saying. */
export function guardNotice(guard) {
  const lines = guardLines(guard);
  if (!lines.length) return null;
  return h(
    "div",
    { class: "guard-notice", role: "note", testid: "guard-notice" },
    h("span", { class: "guard-notice-title" }, gt("title")),
    ...lines.map(([kind, text]) => h("div", { class: "guard-notice-line", "data-kind": kind }, text)),
  );
}
