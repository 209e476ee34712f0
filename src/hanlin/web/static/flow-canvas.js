// The editor's canvas: nodes as HTML boxes on a scrolling stage, edges as SVG curves under them.
// Pointer events move a node (drag its box), connect two (drag from an output port onto another
// node) and select a node or an edge (click); Delete removes the selection. Every change goes
// back to the editor through callbacks; the canvas draws whatever the model holds.

import { h } from "./dom.js";
import { HEAD_H, NODE_W, ROW_H } from "./flow-model.js";
import { wt } from "./workflows-text.js";

const SVG = "http://www.w3.org/2000/svg";
const svg = (tag, attrs = {}) => {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) if (v !== null && v !== undefined) el.setAttribute(k, String(v));
  return el;
};

/** Position an element through the CSSOM: the page's CSP forbids style attributes. */
const place = (el, styles) => {
  for (const [k, v] of Object.entries(styles)) el.style[k] = `${v}px`;
  return el;
};

function curve(a, b) {
  const dx = Math.max(40, Math.abs(b.x - a.x) / 2);
  return `M${a.x},${a.y} C${a.x + dx},${a.y} ${b.x - dx},${b.y} ${b.x},${b.y}`;
}

export class FlowCanvas {
  /** `on`: select({kind, id}), move(id), connect(source, handle, target), remove(). */
  constructor(on) {
    this.on = on;
    this.model = null;
    this.selected = null;
    this.status = new Map();
    this.problems = new Map();
    this.edgesEl = svg("svg", { class: "flow-edges", "aria-hidden": "true" });
    this.stage = h("div", { class: "flow-stage", testid: "flow-stage" }, this.edgesEl);
    this.el = h("div", { class: "flow-canvas", testid: "flow-canvas", tabindex: "0", role: "application" }, this.stage);
    this.el.setAttribute("aria-label", wt("canvas.label"));
    this.el.addEventListener("pointerdown", (e) => {
      if (e.target === this.el || e.target === this.stage || e.target === this.edgesEl) this.on.select(null);
    });
    this.el.addEventListener("keydown", (e) => {
      if ((e.key === "Delete" || e.key === "Backspace") && this.selected && !e.target.closest("input, textarea, select")) {
        e.preventDefault();
        this.on.remove();
      }
    });
  }

  /** Stage pixels of a point on the screen, or null when it is outside the canvas. */
  toStage(clientX, clientY) {
    const box = this.el.getBoundingClientRect();
    if (clientX < box.left || clientX > box.right || clientY < box.top || clientY > box.bottom) return null;
    return { x: clientX - box.left + this.el.scrollLeft, y: clientY - box.top + this.el.scrollTop };
  }

  render(model) {
    this.model = model;
    const { w, h: height } = model.extent();
    this.stage.style.width = `${Math.max(w, this.el.clientWidth)}px`;
    this.stage.style.height = `${Math.max(height, this.el.clientHeight)}px`;
    this.edgesEl.setAttribute("width", String(Math.max(w, this.el.clientWidth)));
    this.edgesEl.setAttribute("height", String(Math.max(height, this.el.clientHeight)));
    for (const el of [...this.stage.querySelectorAll(".flow-node")]) el.remove();
    for (const node of model.nodes) this.stage.append(this.renderNode(node));
    this.drawEdges();
  }

  renderNode(node) {
    const model = this.model;
    const p = model.pos.get(node.id) || { x: 0, y: 0 };
    const size = model.size(node.id);
    const status = this.status.get(node.id);
    const problems = this.problems.get(node.id) || [];
    const sel = this.selected && this.selected.kind === "node" && this.selected.id === node.id;
    const box = h(
      "div",
      {
        class: `flow-node${sel ? " selected" : ""}${problems.length ? " has-problem" : ""}${status ? ` status-${status}` : ""}`,
        testid: "flow-node",
        "data-node": node.id,
        "data-type": node.type,
        "data-status": status || null,
        tabindex: "0",
        role: "button",
        "aria-pressed": sel ? "true" : "false",
      },
      h("div", { class: "flow-node-head" }, h("span", { class: "flow-node-id" }, node.title || node.id), h("span", { class: "flow-node-type" }, node.type)),
    );
    place(box, { left: p.x, top: p.y, width: NODE_W, height: size.h });
    box.setAttribute("aria-label", `${node.id} (${node.type})${status ? `, ${wt(`status.${status}`)}` : ""}`);
    if (model.hasInPort(node.id)) box.append(place(h("span", { class: "flow-port flow-port-in", testid: "port-in" }), { top: HEAD_H / 2 - 6 }));
    const ports = model.outPorts(node.id);
    const single = ports.length === 1 && ports[0] === null;
    ports.forEach((handle, i) => {
      const top = single ? HEAD_H / 2 - 6 : HEAD_H + i * ROW_H + ROW_H / 2 - 6;
      if (!single) box.append(place(h("span", { class: "flow-port-label" }, handle === null ? wt("port.next") : handle), { top: HEAD_H + i * ROW_H }));
      const port = h("span", {
        class: `flow-port flow-port-out${handle === "error" ? " flow-port-error" : ""}`,
        testid: "port-out",
        "data-handle": handle ?? "",
        title: handle ?? wt("port.next"),
      });
      place(port, { top });
      port.addEventListener("pointerdown", (e) => this.startConnect(e, node.id, handle));
      box.append(port);
    });
    if (problems.length) box.append(h("div", { class: "flow-node-problem", testid: "node-problem", role: "alert" }, problems[0]));
    box.addEventListener("pointerdown", (e) => this.startMove(e, node.id, box));
    box.addEventListener("keydown", (e) => {
      if (e.key === "Enter" || e.key === " ") {
        e.preventDefault();
        this.on.select({ kind: "node", id: node.id });
      }
    });
    return box;
  }

  drawEdges(temp = null) {
    const model = this.model;
    const items = [];
    model.edges.forEach((e, i) => {
      if (!model.node(e.source) || !model.node(e.target)) return;
      const d = curve(model.portPoint(e.source, e.handle, "out"), model.portPoint(e.target, null, "in"));
      const sel = this.selected && this.selected.kind === "edge" && this.selected.id === i;
      const status = this.status.get(e.target);
      const g = svg("g", { class: `flow-edge${sel ? " selected" : ""}${e.handle === "error" ? " flow-edge-error" : ""}${status && status !== "skipped" ? " flow-edge-ran" : ""}` });
      g.append(svg("path", { d, class: "flow-edge-line", "marker-end": "url(#flow-arrow)" }));
      const hit = svg("path", { d, class: "flow-edge-hit", "data-testid": "flow-edge", "data-source": e.source, "data-target": e.target, "data-handle": e.handle ?? "" });
      hit.addEventListener("pointerdown", (ev) => {
        ev.stopPropagation();
        this.el.focus({ preventScroll: true });
        this.on.select({ kind: "edge", id: i });
      });
      g.append(hit);
      items.push(g);
    });
    if (temp) items.push(svg("path", { d: curve(temp.from, temp.to), class: "flow-edge-line flow-edge-temp" }));
    const defs = svg("defs");
    const marker = svg("marker", { id: "flow-arrow", viewBox: "0 0 10 10", refX: "9", refY: "5", markerWidth: "7", markerHeight: "7", orient: "auto-start-reverse" });
    marker.append(svg("path", { d: "M0,0 L10,5 L0,10 z", class: "flow-arrow" }));
    defs.append(marker);
    this.edgesEl.replaceChildren(defs, ...items);
  }

  startMove(e, id, box) {
    if (e.button !== 0 || e.target.closest(".flow-port")) return;
    e.preventDefault();
    this.el.focus({ preventScroll: true });
    const start = { x: e.clientX, y: e.clientY };
    const from = { ...(this.model.pos.get(id) || { x: 0, y: 0 }) };
    let moved = false;
    const move = (ev) => {
      const dx = ev.clientX - start.x;
      const dy = ev.clientY - start.y;
      if (!moved && Math.abs(dx) + Math.abs(dy) < 4) return;
      moved = true;
      const p = { x: Math.max(0, Math.round(from.x + dx)), y: Math.max(0, Math.round(from.y + dy)) };
      this.model.pos.set(id, p);
      box.style.left = `${p.x}px`;
      box.style.top = `${p.y}px`;
      this.drawEdges();
    };
    const up = () => {
      document.removeEventListener("pointermove", move);
      document.removeEventListener("pointerup", up);
      if (moved) this.on.move(id);
      else this.on.select({ kind: "node", id });
    };
    document.addEventListener("pointermove", move);
    document.addEventListener("pointerup", up);
  }

  startConnect(e, id, handle) {
    if (e.button !== 0) return;
    e.preventDefault();
    e.stopPropagation();
    const from = this.model.portPoint(id, handle, "out");
    this.el.classList.add("connecting");
    const move = (ev) => {
      const to = this.toStage(ev.clientX, ev.clientY);
      if (to) this.drawEdges({ from, to });
    };
    const up = (ev) => {
      document.removeEventListener("pointermove", move);
      document.removeEventListener("pointerup", up);
      this.el.classList.remove("connecting");
      const hit = document.elementFromPoint(ev.clientX, ev.clientY);
      const target = hit && hit.closest(".flow-node");
      this.drawEdges();
      if (target && target.dataset.node !== id) this.on.connect(id, handle, target.dataset.node);
    };
    document.addEventListener("pointermove", move);
    document.addEventListener("pointerup", up);
  }
}
