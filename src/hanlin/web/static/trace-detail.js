// One trace (#/traces/<id>) from GET /api/traces/{id}: what it was (name, status, time, tokens,
// cost, model, knowledge base, key), the waterfall of its spans, the selected span's card, and
// feedback — thumbs up / down and a comment, through POST /api/traces/{id}/rating.

import { api } from "./api.js";
import { copyText, h } from "./dom.js";
import { thumbIcon } from "./feedback.js";
import { spanCard } from "./span-view.js";
import { lastListHash, ratingMark, statusPill } from "./traces.js";
import { fmtCost, fmtInt, fmtMs, fmtNs, tr } from "./traces-text.js";
import { Waterfall } from "./waterfall.js";

export class TraceDetailView {
  constructor() {
    this.id = null;
    this.trace = null;
    this.error = null;
    this.selected = null;
    this.note = null; // {kind, text} after a rating
    this.feedback = null; // the feedback form, kept while spans are selected (a comment being typed)
    this.waterfall = new Waterfall({ onSelect: (id, focus) => this.select(id, focus) });
    this.el = h("section", { id: "trace-view", class: "view traces-view", testid: "trace-view", hidden: true });
    document.getElementById("main").append(this.el);
    window.addEventListener("hanlin:lang", () => {
      this.feedback = null;
      if (!this.el.hidden) this.render();
    });
  }

  async show(id) {
    if (id !== this.id) {
      this.waterfall.collapsed.clear();
      this.selected = null;
    }
    this.id = id;
    this.trace = null;
    this.error = null;
    this.note = null;
    this.feedback = null;
    this.render();
    try {
      const trace = await api.trace(id);
      if (this.id !== id) return;
      this.trace = trace;
      const root = trace.spans.find((s) => !s.parent_id) || trace.spans[0];
      this.selected = this.selected || root.span_id;
    } catch (err) {
      if (this.id !== id) return;
      if (err.status === 403) this.error = tr("list.denied");
      else if (err.status === 404) this.error = tr("detail.missing", { id });
      else this.error = err.display || err.message;
    }
    this.render();
  }

  select(spanId, focusId = spanId) {
    this.selected = spanId;
    this.render();
    const row = this.el.querySelector(`[data-span="${focusId}"][role="treeitem"]`);
    if (row) {
      for (const r of this.el.querySelectorAll('[role="treeitem"]')) r.tabIndex = -1;
      row.tabIndex = 0;
      row.focus();
    }
  }

  async rate(rating, comment) {
    const active = document.activeElement;
    const focused = active && this.el.contains(active) ? active.dataset.testid : null;
    try {
      const res = await api.rateTrace(this.id, rating, comment);
      Object.assign(this.trace.summary || (this.trace.summary = {}), { rating: res.rating, comment: res.comment });
      this.note = { kind: "ok", text: tr(res.rating === null ? "feedback.cleared" : "feedback.saved") };
    } catch (err) {
      this.note = { kind: "error", text: err.display || err.message };
    }
    this.feedback = null;
    this.render();
    if (focused) this.el.querySelector(`[data-testid="${focused}"]`)?.focus();
  }

  // --- rendering -------------------------------------------------------------------------------

  render() {
    const back = h("a", { href: lastListHash(), class: "btn btn-ghost btn-small trace-back", testid: "trace-back" }, tr("detail.back"));
    if (this.error) {
      this.el.replaceChildren(back, h("p", { class: "msg-error", role: "alert", testid: "trace-error" }, this.error));
      return;
    }
    if (!this.trace) {
      this.el.replaceChildren(back, h("p", { class: "muted" }, "…"));
      return;
    }
    const spans = this.trace.spans;
    const t0 = Math.min(...spans.map((s) => s.start_ns));
    const span = spans.find((s) => s.span_id === this.selected) || spans[0];
    this.el.replaceChildren(
      back,
      this.renderHead(spans),
      h(
        "div",
        { class: "trace-grid" },
        h(
          "section",
          { class: "card trace-timeline", "aria-labelledby": "wf-heading" },
          h("div", { class: "card-head" }, h("h2", { id: "wf-heading" }, tr("detail.waterfall")), h("span", { class: "muted small" }, tr(spans.length === 1 ? "detail.span" : "detail.spans", { n: spans.length }))),
          h("p", { class: "muted small" }, tr("detail.waterfall.help")),
          this.waterfall.render(spans, span.span_id),
        ),
        h("div", { class: "trace-side" }, (this.feedback ||= this.renderFeedback()), spanCard(span, t0)),
      ),
    );
  }

  renderHead(spans) {
    const s = this.trace.summary || {};
    const root = spans.find((x) => !x.parent_id) || spans[0];
    const copy = h("button", { type: "button", class: "btn btn-ghost btn-small", testid: "trace-copy-id" }, tr("detail.copy"));
    copy.addEventListener("click", async () => {
      if (await copyText(this.id)) copy.textContent = tr("detail.copied");
    });
    const facts = [
      [tr("detail.start"), fmtNs(s.start_ns ?? root.start_ns)],
      [tr("col.duration"), fmtMs(s.duration_ms ?? (root.end_ns - root.start_ns) / 1e6)],
      [tr("col.tokens"), `${fmtInt(s.input_tokens)} / ${fmtInt(s.output_tokens)}`],
      [tr("col.cost"), fmtCost(s.cost_usd)],
      [tr("col.model"), s.model],
      [tr("col.kb"), s.kb],
      [tr("filter.key"), s.key_id],
    ].filter(([, v]) => v);
    return h(
      "header",
      { class: "trace-head" },
      h("div", { class: "kb-head" }, h("h1", { testid: "trace-title" }, s.name || root.name), statusPill(s.status || root.status), s.rating ? ratingMark(s.rating, null) : null),
      h("dl", { class: "trace-facts", testid: "trace-facts" }, facts.map(([k, v]) => h("div", {}, h("dt", {}, k), h("dd", {}, v)))),
      h("p", { class: "muted small trace-id" }, `${tr("detail.id")}: `, h("code", { testid: "trace-id" }, this.id), " ", copy),
    );
  }

  renderFeedback() {
    const s = this.trace.summary || {};
    const comment = h("textarea", { id: "trace-comment", rows: "2", maxlength: "4000", testid: "trace-comment", placeholder: tr("feedback.comment.placeholder") });
    comment.value = s.comment || "";
    const thumb = (value, label) =>
      h(
        "button",
        {
          type: "button",
          class: `btn thumb ${s.rating === value ? "thumb-on" : ""}`,
          testid: value > 0 ? "trace-thumb-up" : "trace-thumb-down",
          "aria-pressed": s.rating === value ? "true" : "false",
          "aria-label": tr(label),
          title: tr(label),
          onclick: () => this.rate(s.rating === value ? null : value, comment.value.trim()),
        },
        thumbIcon(value > 0),
      );
    const save = h("button", { type: "submit", class: "btn btn-primary btn-small", testid: "trace-feedback-save" }, tr("feedback.save"));
    const form = h(
      "form",
      { class: "card trace-feedback", testid: "trace-feedback", "aria-labelledby": "feedback-heading" },
      h("div", { class: "card-head" }, h("h2", { id: "feedback-heading" }, tr("feedback.title")), h("span", { class: "thumbs" }, thumb(1, "feedback.up"), thumb(-1, "feedback.down"))),
      h("label", { for: "trace-comment", class: "sr-only" }, tr("feedback.comment")),
      comment,
      h(
        "div",
        { class: "dialog-actions" },
        this.note ? h("span", { class: this.note.kind === "error" ? "msg-error small" : "conn-ok small", role: this.note.kind === "error" ? "alert" : "status", testid: "trace-feedback-note" }, this.note.text) : null,
        h("span", { class: "spacer" }),
        save,
      ),
    );
    form.addEventListener("submit", (e) => {
      e.preventDefault();
      this.rate(s.rating ?? null, comment.value.trim());
    });
    return form;
  }
}
