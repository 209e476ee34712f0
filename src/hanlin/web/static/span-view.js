// One span as the trace page's side card shows it: status and timing, the error, model, tokens
// and cost, then what it recorded — the messages in and out of a model call, a search's query
// and hits, a tool call's arguments and result — and every attribute. Recorded content is
// untrusted (prompts, model output, tool results): it is only ever set as text.

import { h } from "./dom.js";
import { statusPill } from "./traces.js";
import { fmtCost, fmtInt, fmtMs, tr } from "./traces-text.js";

/** Parse recorded JSON text; the text itself when it is not JSON. */
function parsed(value) {
  if (typeof value !== "string") return value;
  const text = value.trim();
  if (!/^[[{"]/.test(text)) return value;
  try {
    return JSON.parse(text);
  } catch {
    return value;
  }
}

const pretty = (v) => (typeof v === "string" ? v : JSON.stringify(v, null, 2));
const block = (text, testid = null) => h("pre", { class: "trace-text", testid }, text);

/** A list of chat messages ({role, content, tool_calls}), or null when `value` is not one. */
function messages(value, testid) {
  const list = parsed(value);
  if (!Array.isArray(list) || !list.every((m) => m && typeof m === "object" && "role" in m)) return null;
  return h(
    "ol",
    { class: "trace-messages", testid },
    list.map((m) =>
      h(
        "li",
        { class: `trace-message trace-role-${String(m.role).replace(/[^a-z_]/g, "")}` },
        h("span", { class: "trace-role" }, String(m.role)),
        m.content !== undefined && m.content !== null && m.content !== "" ? block(pretty(m.content), "span-message") : null,
        Array.isArray(m.tool_calls) && m.tool_calls.length
          ? h(
              "div",
              { class: "trace-tool-calls" },
              h("span", { class: "muted small" }, tr("span.tool_calls")),
              m.tool_calls.map((c) => block(`${c.name || ""}(${pretty(parsed(c.arguments ?? ""))})`)),
            )
          : null,
      ),
    ),
  );
}

/** Search hits ({source, score}) as a small table, or null. */
function hits(value) {
  const list = parsed(value);
  if (!Array.isArray(list)) return null;
  return h(
    "ol",
    { class: "trace-hits", testid: "span-hits" },
    list.map((x) => h("li", {}, h("code", {}, String(x.source ?? pretty(x))), typeof x.score === "number" ? h("span", { class: "muted small" }, ` ${x.score.toFixed(4)}`) : null)),
  );
}

const CONTENT = [
  ["hanlin.question", "span.question", (v) => block(pretty(v), "span-question")],
  ["hanlin.query", "span.query", (v) => block(pretty(v), "span-query")],
  ["gen_ai.input.messages", "span.input", (v) => messages(v, "span-input") || block(pretty(parsed(v)), "span-input")],
  ["gen_ai.output.messages", "span.output", (v) => messages(v, "span-output") || block(pretty(parsed(v)), "span-output")],
  ["hanlin.search.hits", "span.hits", (v) => hits(v) || block(pretty(v))],
  ["gen_ai.tool.call.arguments", "span.arguments", (v) => block(pretty(parsed(v)), "span-arguments")],
  ["gen_ai.tool.call.result", "span.result", (v) => block(pretty(parsed(v)), "span-result")],
];

/** The card of span `s` of a trace that started at `t0` (ns). */
export function spanCard(s, t0) {
  const a = s.attributes || {};
  const ms = (s.end_ns - s.start_ns) / 1e6;
  const facts = [
    ["span.operation", s.operation],
    ["span.model", s.model],
    ["span.provider", s.provider],
    ["span.kb", s.kb],
    ["span.key", s.key_id],
    ["span.tokens", s.input_tokens || s.output_tokens ? `${fmtInt(s.input_tokens)} / ${fmtInt(s.output_tokens)}` : null],
    ["span.cost", s.cost_usd ? fmtCost(s.cost_usd) : null],
  ].filter(([, v]) => v);
  const sections = CONTENT.filter(([key]) => key in a).map(([key, label, show]) =>
    h("section", { class: "trace-section" }, h("h3", {}, tr(label)), show(a[key])),
  );
  const shownKeys = Object.keys(a).sort();
  return h(
    "article",
    { class: "card span-card", testid: "span-card", "data-span": s.span_id, "aria-live": "polite" },
    h("div", { class: "card-head" }, h("h2", { testid: "span-name" }, s.name), statusPill(s.status)),
    h("p", { class: "muted small", testid: "span-timing" }, tr("span.timing", { duration: fmtMs(ms), offset: fmtMs((s.start_ns - t0) / 1e6) })),
    s.status === "error" ? h("div", { class: "msg-error", role: "alert", testid: "span-error" }, h("strong", {}, `${tr("span.error")}: `), s.error || "") : null,
    facts.length ? h("dl", { class: "span-facts" }, facts.flatMap(([k, v]) => [h("dt", {}, tr(k)), h("dd", {}, String(v))])) : null,
    ...sections,
    sections.length ? null : h("p", { class: "muted small" }, tr("span.none")),
    h(
      "details",
      { class: "span-attributes" },
      h("summary", {}, tr("span.attributes", { n: shownKeys.length })),
      h("dl", { class: "span-attr-list", testid: "span-attributes" }, shownKeys.flatMap((k) => [h("dt", {}, h("code", {}, k)), h("dd", {}, block(pretty(a[k])))])),
    ),
  );
}
