// Thumbs up / down and an optional comment under a chat answer. They rate the answer's trace
// (the X-Trace-Id the server sent with it) through POST /api/traces/{id}/rating — any key may
// rate the traces of its own calls — and what was sent is kept with the message
// (`msg.feedback`), so the choice is still shown after a reload.

import { api } from "./api.js";
import { h, toast } from "./dom.js";
import { tr } from "./traces-text.js";

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const SVG = "http://www.w3.org/2000/svg";
const HAND = "M5.5 7.3 8.6 1.9c.8-.7 2.1-.3 2 1L10.2 6h3.4c1 0 1.7 1 1.4 1.9l-1.6 5.9c-.2.7-.8 1.2-1.5 1.2H5.5Z";

/** A thumbs-up (or, turned over, thumbs-down) icon drawn in the text colour, any font or none. */
export function thumbIcon(up) {
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("viewBox", "0 0 16 16");
  svg.setAttribute("class", "thumb-icon");
  svg.setAttribute("aria-hidden", "true");
  const g = document.createElementNS(SVG, "g");
  if (!up) g.setAttribute("transform", "rotate(180 8 8)");
  const cuff = document.createElementNS(SVG, "rect");
  for (const [k, v] of Object.entries({ x: 1, y: 7, width: 3, height: 8, rx: 0.6 })) cuff.setAttribute(k, String(v));
  const hand = document.createElementNS(SVG, "path");
  hand.setAttribute("d", HAND);
  g.append(cuff, hand);
  svg.append(g);
  return svg;
}

/** Rate a trace; its spans reach the store a moment after the answer, so a 404 is retried. */
export async function rateTrace(traceId, rating, comment) {
  for (let attempt = 0; ; attempt += 1) {
    try {
      return await api.rateTrace(traceId, rating, comment);
    } catch (err) {
      if (err.status !== 404 || attempt >= 8) throw err;
      await sleep(400);
    }
  }
}

/**
 * The feedback row of an answer `msg` (which has a `trace_id`); `onSaved(msg)` keeps the
 * message once its feedback changed.
 */
export function feedbackBar(msg, { onSaved }) {
  const bar = h("div", { class: "feedback", testid: "feedback", "data-trace": msg.trace_id });
  const current = () => (msg.feedback && msg.feedback.rating) || null;

  const send = async (rating, comment) => {
    try {
      await rateTrace(msg.trace_id, rating, comment);
    } catch (err) {
      toast(err.display || err.message, "error");
      return false;
    }
    msg.feedback = rating === null && !comment ? null : { rating, comment: comment || null };
    onSaved(msg);
    return true;
  };

  const commentForm = () => {
    const input = h("input", { class: "feedback-input", testid: "feedback-comment", maxlength: "4000", "aria-label": tr("feedback.comment"), placeholder: tr("feedback.comment.placeholder") });
    input.value = (msg.feedback && msg.feedback.comment) || "";
    const form = h(
      "form",
      { class: "feedback-form", testid: "feedback-form" },
      input,
      h("button", { type: "submit", class: "btn btn-primary btn-small", testid: "feedback-send" }, tr("feedback.send")),
      h("button", { type: "button", class: "btn btn-ghost btn-small", testid: "feedback-close", onclick: () => draw(false) }, tr("feedback.skip")),
    );
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      if (await send(current(), input.value.trim())) {
        toast(tr("feedback.thanks"));
        draw(false);
      }
    });
    input.addEventListener("keydown", (e) => {
      if (e.key === "Escape") {
        e.stopPropagation();
        draw(false);
      }
    });
    requestAnimationFrame(() => input.focus());
    return form;
  };

  const thumb = (value, label) =>
    h(
      "button",
      {
        type: "button",
        class: `icon-btn thumb ${current() === value ? "thumb-on" : ""}`,
        testid: value > 0 ? "feedback-up" : "feedback-down",
        "aria-pressed": current() === value ? "true" : "false",
        "aria-label": tr(label),
        title: tr(label),
        onclick: async () => {
          const rating = current() === value ? null : value;
          if (!(await send(rating, (msg.feedback && msg.feedback.comment) || null))) return;
          draw(rating !== null);
          if (rating === null) bar.querySelector(`[data-testid="${value > 0 ? "feedback-up" : "feedback-down"}"]`).focus();
        },
      },
      thumbIcon(value > 0),
    );

  function draw(withComment) {
    const note = msg.feedback && msg.feedback.comment && !withComment;
    bar.replaceChildren(
      ...[
        thumb(1, "feedback.up"),
        thumb(-1, "feedback.down"),
        note ? h("span", { class: "feedback-note muted small", testid: "feedback-note" }, msg.feedback.comment) : null,
        withComment ? commentForm() : null,
        h("a", { class: "feedback-trace small", href: `#/traces/${msg.trace_id}`, testid: "feedback-trace" }, tr("feedback.view")),
      ].filter(Boolean),
    );
  }
  draw(false);
  return bar;
}
