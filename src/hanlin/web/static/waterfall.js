// A trace's spans as a waterfall: the span tree in start order, one row per span, its bar placed
// by when the span started and sized by how long it took, against the whole trace's time.
// The rows are an ARIA tree: ↑/↓ move, → / ← expand and collapse, Home / End, Enter or a click
// selects a span (onSelect), and the toggle beside a parent folds its children.

import { h } from "./dom.js";
import { fmtMs, tr } from "./traces-text.js";

/**
 * The spans as a depth-first list of {span, depth, children}: roots are spans whose parent is
 * not in the trace; siblings are in start order.
 */
export function spanTree(spans) {
  const ids = new Set(spans.map((s) => s.span_id));
  const kids = new Map();
  const ordered = [...spans].sort((a, b) => a.start_ns - b.start_ns || (a.span_id < b.span_id ? -1 : 1));
  for (const s of ordered) {
    const parent = s.parent_id && ids.has(s.parent_id) ? s.parent_id : null;
    if (!kids.has(parent)) kids.set(parent, []);
    kids.get(parent).push(s);
  }
  const out = [];
  const walk = (parent, depth) => {
    for (const s of kids.get(parent) || []) {
      out.push({ span: s, depth, children: (kids.get(s.span_id) || []).length });
      walk(s.span_id, depth + 1);
    }
  };
  walk(null, 0);
  return out;
}

/** The kind of bar a span gets (its colour): error, model call, retrieval, tool, or a step. */
function barKind(s) {
  if (s.status === "error") return "error";
  const op = s.operation || "";
  if (["chat", "text_completion", "embeddings", "rerank", "generate_content"].includes(op)) return "llm";
  if (op === "retrieve") return "retrieve";
  if (op === "execute_tool") return "tool";
  return "step";
}

export class Waterfall {
  /** @param {{onSelect: (spanId: string) => void}} opts */
  constructor({ onSelect }) {
    this.onSelect = onSelect;
    this.collapsed = new Set();
    this.rows = [];
    this.selected = null;
  }

  /** The waterfall of `spans` with `selected` (a span id) marked. */
  render(spans, selected) {
    this.rows = spanTree(spans);
    this.selected = selected;
    const t0 = Math.min(...spans.map((s) => s.start_ns));
    const t1 = Math.max(...spans.map((s) => s.end_ns));
    const total = Math.max(1, t1 - t0);
    const axis = h(
      "div",
      { class: "wf-axis", "aria-hidden": "true" },
      h("span", { class: "wf-axis-label" }),
      h("span", { class: "wf-axis-track" }, [0, 0.25, 0.5, 0.75].map((f) => this.tick(f, (f * total) / 1e6))),
      h("span", { class: "wf-ms", testid: "wf-total" }, fmtMs(total / 1e6)),
    );
    const tree = h("ul", { class: "waterfall", role: "tree", "aria-label": tr("detail.waterfall"), testid: "waterfall" });
    const hidden = new Set();
    for (const row of this.rows) {
      const s = row.span;
      if (s.parent_id && (hidden.has(s.parent_id) || this.collapsed.has(s.parent_id))) {
        hidden.add(s.span_id);
        continue;
      }
      tree.append(this.row(row, t0, total));
    }
    tree.addEventListener("keydown", (e) => this.onKey(e, tree));
    const current = tree.querySelector('[aria-selected="true"]') || tree.firstElementChild;
    if (current) current.tabIndex = 0;
    return h("div", { class: "wf" }, axis, tree);
  }

  tick(fraction, ms) {
    const tick = h("span", { class: "wf-tick" }, fraction ? fmtMs(ms) : "0");
    tick.style.left = `${fraction * 100}%`; // CSSOM, allowed by the page's CSP
    return tick;
  }

  row({ span: s, depth, children }, t0, total) {
    const left = ((s.start_ns - t0) / total) * 100;
    const width = ((s.end_ns - s.start_ns) / total) * 100;
    const ms = (s.end_ns - s.start_ns) / 1e6;
    const open = !this.collapsed.has(s.span_id);
    const toggle = children
      ? h(
          "span",
          { class: "wf-toggle", "data-toggle": s.span_id, "aria-hidden": "true", title: tr(open ? "detail.collapse" : "detail.expand", { name: s.name }) },
          open ? "▾" : "▸",
        )
      : h("span", { class: "wf-toggle", "aria-hidden": "true" });
    const label = h(
      "span",
      { class: "wf-label" },
      toggle,
      h("span", { class: "wf-name", testid: "wf-name" }, s.name),
      s.status === "error" ? h("span", { class: "pill pill-failed" }, tr("status.error")) : null,
    );
    label.style.paddingLeft = `${depth * 14}px`;
    const bar = h("span", {
      class: `wf-bar wf-${barKind(s)}`,
      testid: "wf-bar",
      "data-left": left.toFixed(3),
      "data-width": width.toFixed(3),
    });
    bar.style.left = `${left}%`;
    bar.style.width = `${width}%`;
    const item = h(
      "li",
      {
        role: "treeitem",
        class: "wf-row",
        testid: "wf-row",
        tabindex: "-1",
        "data-span": s.span_id,
        "data-depth": String(depth),
        "aria-level": String(depth + 1),
        "aria-selected": s.span_id === this.selected ? "true" : "false",
        "aria-expanded": children ? String(open) : null,
        "aria-label": `${s.name}, ${fmtMs(ms)}${s.status === "error" ? `, ${tr("status.error")}` : ""}`,
      },
      label,
      h("span", { class: "wf-track" }, bar),
      h("span", { class: "wf-ms" }, fmtMs(ms)),
    );
    item.addEventListener("click", (e) => {
      if (e.target.closest("[data-toggle]")) this.toggle(s.span_id);
      else this.onSelect(s.span_id);
    });
    return item;
  }

  toggle(spanId, open = null) {
    const isOpen = !this.collapsed.has(spanId);
    if (open === isOpen) return;
    if (isOpen) this.collapsed.add(spanId);
    else this.collapsed.delete(spanId);
    this.onSelect(this.selected, spanId);
  }

  onKey(e, tree) {
    const items = [...tree.querySelectorAll('[role="treeitem"]')];
    const i = items.indexOf(document.activeElement);
    if (i < 0) return;
    const item = items[i];
    const id = item.dataset.span;
    const move = (j) => {
      const next = items[Math.max(0, Math.min(items.length - 1, j))];
      item.tabIndex = -1;
      next.tabIndex = 0;
      next.focus();
    };
    const keys = {
      ArrowDown: () => move(i + 1),
      ArrowUp: () => move(i - 1),
      Home: () => move(0),
      End: () => move(items.length - 1),
      ArrowRight: () => item.getAttribute("aria-expanded") === "false" && this.toggle(id, true),
      ArrowLeft: () => {
        if (item.getAttribute("aria-expanded") === "true") this.toggle(id, false);
        else {
          const level = Number(item.getAttribute("aria-level"));
          const parent = items.slice(0, i).reverse().find((x) => Number(x.getAttribute("aria-level")) < level);
          if (parent) move(items.indexOf(parent));
        }
      },
      Enter: () => this.onSelect(id),
      " ": () => this.onSelect(id),
    };
    if (keys[e.key]) {
      e.preventDefault();
      keys[e.key]();
    }
  }
}
