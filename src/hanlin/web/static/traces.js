// The trace list (#/traces?filters): every traced call, newest first, from GET /api/traces —
// filters (time range, model, knowledge base, API key, status, rating, text) kept in the
// address so a filtered list can be linked and comes back after a trace is opened, pages
// through the API's cursor ("Load older traces"). Admin only: the API says 403 otherwise.

import { api } from "./api.js";
import { h } from "./dom.js";
import { thumbIcon } from "./feedback.js";
import { t } from "./i18n.js";
import { fmtCost, fmtInt, fmtMs, fmtNs, tr } from "./traces-text.js";

const RANGES = { "1h": 3600e3, "24h": 86400e3, "7d": 7 * 86400e3, "30d": 30 * 86400e3, all: null };
const DEFAULT_RANGE = "7d";
const FIELDS = ["since", "model", "kb", "key_id", "status", "rating", "q"];
const PAGE = 50;
let lastList = "#/traces";

/** The address of the list as last shown (the trace page's way back, filters kept). */
export function lastListHash() {
  return lastList;
}

/** Milliseconds since the epoch as the API's nanoseconds, exactly (a string: past 2^53). */
export function nsOf(ms) {
  return `${Math.floor(ms)}000000`;
}

/** The filters of a query string ("since=24h&model=…"), defaults filled in. */
export function filtersOf(query) {
  const params = new URLSearchParams(query || "");
  const f = Object.fromEntries(FIELDS.map((k) => [k, params.get(k) || ""]));
  if (!(f.since in RANGES)) f.since = DEFAULT_RANGE;
  return f;
}

/** The hash of the list with these filters (defaults and empty ones left out). */
export function listHash(filters) {
  const params = new URLSearchParams();
  for (const k of FIELDS) {
    const v = (filters[k] || "").trim();
    if (v && !(k === "since" && v === DEFAULT_RANGE)) params.set(k, v);
  }
  const q = params.toString();
  return q ? `#/traces?${q}` : "#/traces";
}

export function statusPill(status) {
  const bad = status === "error";
  return h("span", { class: `pill ${bad ? "pill-failed" : "pill-done"}`, testid: "trace-status", "data-status": bad ? "error" : "ok" }, tr(`status.${status || "ok"}`));
}

export function ratingMark(rating, comment) {
  if (!rating) return h("span", { class: "muted", testid: "trace-rating", "data-rating": "" }, "–");
  const up = rating > 0;
  const label = tr(up ? "rating.up" : "rating.down");
  return h(
    "span",
    { class: `rating-mark ${up ? "rating-up" : "rating-down"}`, testid: "trace-rating", "data-rating": String(rating), title: comment ? `${label}: ${comment}` : label },
    thumbIcon(up),
    h("span", { class: "sr-only" }, label),
    comment ? h("span", { class: "rating-comment" }, comment) : null,
  );
}

export class TracesView {
  constructor() {
    this.filters = filtersOf("");
    this.rows = [];
    this.next = null;
    this.error = null;
    this.loading = false;
    this.shown = 0; // the latest show(): a page that answers after the filters changed is dropped
    this.form = null;
    this.options = { model: [], kb: [], key_id: [] };
    this.el = h("section", { id: "traces-view", class: "view traces-view", testid: "traces-view", hidden: true });
    document.getElementById("main").append(this.el);
    window.addEventListener("hanlin:lang", () => {
      if (this.el.hidden) return;
      this.form = this.renderFilters();
      this.render();
    });
  }

  /** Show the list for the filters of `query` (the part of the hash after "?"). */
  async show(query) {
    this.shown += 1;
    this.filters = filtersOf(query);
    lastList = listHash(this.filters);
    this.rows = [];
    this.next = null;
    this.error = null;
    this.loading = true;
    // the form is made anew for these filters; a field that had the focus keeps it
    const focused = this.form && this.form.contains(document.activeElement) ? document.activeElement.name : null;
    this.form = this.renderFilters();
    this.render();
    if (focused) this.form.elements[focused].focus();
    this.loadOptions();
    await this.load();
  }

  params(before = null) {
    const f = this.filters;
    const p = { limit: String(PAGE) };
    if (RANGES[f.since]) p.since_ns = nsOf(Date.now() - RANGES[f.since]);
    for (const k of ["model", "kb", "key_id", "status", "q"]) if (f[k]) p[k] = f[k];
    if (f.rating) p.rating = f.rating;
    if (before) p.before = before;
    return p;
  }

  async load(before = null) {
    const shown = this.shown;
    this.loading = true;
    try {
      const page = await api.traces(this.params(before));
      // an empty list: nothing traced at all, or nothing that matches?
      const any = page.traces.length > 0 || before || (await api.traces({ limit: "1" })).traces.length > 0;
      if (shown !== this.shown) return;
      this.rows = before ? this.rows.concat(page.traces) : page.traces;
      this.next = page.next;
      this.anyTraces = Boolean(any);
      this.error = null;
    } catch (err) {
      if (shown !== this.shown) return;
      this.error = err.status === 403 ? tr("list.denied") : err.display || err.message;
    }
    this.loading = false;
    this.render();
  }

  /** Names to suggest in the model / knowledge base / key fields: the groups of the stats. */
  async loadOptions() {
    const since = { since_ns: nsOf(Date.now() - 90 * 86400e3) };
    const groups = async (by, spans) => {
      try {
        const res = await api.traceStats({ ...since, by, spans });
        return [...new Set(res.rows.map((r) => r.group).filter(Boolean))].sort();
      } catch {
        return [];
      }
    };
    const [model, kb, key_id] = await Promise.all([groups("model", "llm"), groups("kb", "root"), groups("key_id", "root")]);
    this.options = { model, kb, key_id };
    for (const [k, names] of Object.entries(this.options)) {
      const list = this.el.querySelector(`#traces-options-${k}`);
      if (list) list.replaceChildren(...names.map((v) => h("option", { value: v })));
    }
  }

  // --- rendering -------------------------------------------------------------------------------

  render() {
    const head = h(
      "header",
      { class: "kb-head" },
      h("div", {}, h("h1", { testid: "traces-title" }, tr("list.title")), h("p", { class: "muted" }, tr("list.subtitle"))),
      h("span", { class: "spacer" }),
      h("a", { class: "btn btn-ghost btn-small", href: "#/dashboard" }, tr("nav.dashboard")),
    );
    const body = this.error
      ? h("p", { class: "msg-error", role: "alert", testid: "traces-error" }, this.error)
      : this.renderTable();
    this.el.replaceChildren(head, this.form, body);
  }

  renderFilters() {
    const f = this.filters;
    const field = (label, control) => h("label", { class: "trace-filter" }, h("span", {}, label), control);
    const select = (key, options) =>
      h("select", { name: key, testid: `filter-${key}` }, options.map(([v, label]) => h("option", { value: v, selected: f[key] === v }, label)));
    const text = (key, placeholder = "") => {
      const input = h("input", { name: key, testid: `filter-${key}`, list: `traces-options-${key}`, autocomplete: "off", maxlength: "200", placeholder });
      input.value = f[key];
      return input;
    };
    const lists = ["model", "kb", "key_id"].map((k) => h("datalist", { id: `traces-options-${k}` }, this.options[k].map((v) => h("option", { value: v }))));
    const form = h(
      "form",
      { class: "card trace-filters", testid: "trace-filters", role: "search", "aria-label": tr("filter.legend") },
      field(tr("filter.since"), select("since", Object.keys(RANGES).map((k) => [k, tr(`filter.since.${k}`)]))),
      field(tr("filter.model"), text("model")),
      field(tr("filter.kb"), text("kb")),
      field(tr("filter.key"), text("key_id")),
      field(tr("filter.status"), select("status", [["", tr("filter.any")], ["ok", tr("status.ok")], ["error", tr("status.error")]])),
      field(tr("filter.rating"), select("rating", [["", tr("filter.any")], ["1", tr("rating.up")], ["-1", tr("rating.down")]])),
      field(tr("filter.text"), text("q", tr("filter.text.placeholder"))),
      h(
        "div",
        { class: "trace-filter-actions" },
        h("button", { type: "submit", class: "btn btn-primary btn-small", testid: "filter-apply" }, tr("filter.apply")),
        h("a", { class: "btn btn-ghost btn-small", href: "#/traces", testid: "filter-reset" }, tr("filter.reset")),
      ),
      ...lists,
    );
    form.addEventListener("submit", (e) => {
      e.preventDefault();
      const data = new FormData(form);
      const next = listHash(Object.fromEntries(FIELDS.map((k) => [k, String(data.get(k) || "")])));
      if (location.hash === next) this.show(next.split("?")[1] || "");
      else location.hash = next;
    });
    // a choice in a drop-down applies at once
    for (const s of form.querySelectorAll("select")) s.addEventListener("change", () => form.requestSubmit());
    return form;
  }

  renderTable() {
    if (!this.rows.length) {
      if (this.loading) return h("p", { class: "muted", testid: "traces-loading" }, "…");
      const none = !this.anyTraces;
      return h(
        "div",
        { class: "empty-state trace-empty", testid: "traces-empty", "data-empty": none ? "none" : "filtered" },
        h("h2", {}, tr(none ? "list.empty.title" : "list.none.title")),
        h("p", {}, tr(none ? "list.empty.body" : "list.none.body")),
        none
          ? h("a", { class: "btn btn-primary", href: "#/chat" }, t("nav.chats"))
          : h("a", { class: "btn", href: "#/traces?since=all" }, tr("filter.reset")),
      );
    }
    const cols = ["time", "name", "model", "kb", "duration", "tokens", "cost", "status", "rating"];
    const num = new Set(["duration", "tokens", "cost"]);
    const table = h(
      "table",
      { class: "doc-table trace-table", testid: "trace-table" },
      h("thead", {}, h("tr", {}, cols.map((c) => h("th", { scope: "col", class: num.has(c) ? "num" : null }, tr(`col.${c}`))))),
      h("tbody", {}, this.rows.map((row) => this.renderRow(row))),
    );
    const more = this.next
      ? h("button", { type: "button", class: "btn btn-small", testid: "traces-more", onclick: () => this.load(this.next) }, tr("list.more"))
      : null;
    return h(
      "div",
      { class: "card trace-list" },
      h("div", { class: "card-head" }, h("span", { class: "muted small", testid: "traces-count" }, tr("list.count", { n: this.rows.length })), h("button", { type: "button", class: "btn btn-ghost btn-small", testid: "traces-refresh", onclick: () => this.show(location.hash.split("?")[1] || "") }, tr("list.refresh"))),
      h("div", { class: "doc-list" }, table),
      more,
    );
  }

  renderRow(t) {
    const href = `#/traces/${t.trace_id}`;
    const tr_ = h(
      "tr",
      { testid: "trace-row", "data-trace": t.trace_id, "data-status": t.status, class: t.status === "error" ? "trace-row-error" : null },
      h("td", { class: "nowrap" }, fmtNs(t.start_ns)),
      h("td", {}, h("a", { href, class: "trace-link", testid: "trace-link" }, t.name)),
      h("td", { class: "trace-cell-wrap" }, t.model || "–"),
      h("td", {}, t.kb || "–"),
      h("td", { class: "num", "data-ms": t.duration_ms }, fmtMs(t.duration_ms)),
      h("td", { class: "num nowrap" }, `${fmtInt(t.input_tokens)} / ${fmtInt(t.output_tokens)}`),
      h("td", { class: "num" }, fmtCost(t.cost_usd)),
      h("td", {}, statusPill(t.status)),
      h("td", {}, ratingMark(t.rating, t.comment)),
    );
    // the whole row opens the trace; the link in it is what the keyboard reaches
    tr_.addEventListener("click", (e) => {
      if (!e.target.closest("a")) location.hash = href;
    });
    return tr_;
  }
}
