// The workflow the editor holds: its nodes as written in YAML (every key kept, in order, so an
// unedited workflow saves as the same definition), its edges, where each node sits on the canvas,
// and each node's ports (branches) as the server worked them out. No DOM here.

const NODE_ID = /^[A-Za-z_][A-Za-z0-9_]{0,63}$/;
export const NODE_W = 184;
export const HEAD_H = 44;
export const ROW_H = 22;
const GAP_X = 230;
const GAP_Y = 110;

/** "a -> b", "check.yes -> b" or {source, target, handle} → {source, handle, target}. */
export function parseEdge(value) {
  if (value && typeof value === "object") return { source: value.source, handle: value.handle ?? null, target: value.target };
  const [left, right] = String(value).split("->").map((s) => s.trim());
  const dot = left.indexOf(".");
  return dot < 0
    ? { source: left, handle: null, target: right }
    : { source: left.slice(0, dot), handle: left.slice(dot + 1) || null, target: right };
}

export function edgeText(e) {
  return `${e.handle ? `${e.source}.${e.handle}` : e.source} -> ${e.target}`;
}

const clone = (value) => (value === undefined ? undefined : JSON.parse(JSON.stringify(value)));

export class FlowModel {
  /** From GET /v1/workflows/{name}: `definition`, `edges` (the graph's, implicit ones too), `layout`. */
  constructor({ name, definition, edges = null, layout = null }) {
    const def = clone(definition) || { name, nodes: [] };
    this.name = name;
    this.head = {};
    for (const [key, value] of Object.entries(def)) if (key !== "nodes" && key !== "edges") this.head[key] = value;
    if (!("name" in this.head)) this.head = { name, ...this.head };
    this.nodes = def.nodes || [];
    // Without `edges` the nodes run in the order listed: show that order, and keep the
    // definition edge-less until an edge is edited.
    this.explicitEdges = Array.isArray(def.edges);
    this.edges = (this.explicitEdges ? def.edges : edges || []).map(parseEdge);
    this.pos = new Map(Object.entries((layout && layout.nodes) || {}).map(([id, p]) => [id, { x: p.x, y: p.y }]));
    this.ports = new Map();
    this.autoLayout();
  }

  node(id) {
    return this.nodes.find((n) => n.id === id) || null;
  }

  /** The definition as the server takes it (PUT definition, or JSON as the YAML to validate). */
  toDefinition() {
    const def = { ...clone(this.head), nodes: clone(this.nodes) };
    if (this.explicitEdges) def.edges = this.edges.map(edgeText);
    return def;
  }

  layout() {
    return { nodes: Object.fromEntries([...this.pos].filter(([id]) => this.node(id))) };
  }

  /** A fresh id for a node of `type`: the type itself, then type_2, type_3… */
  freshId(type) {
    const base = NODE_ID.test(type) ? type : "node";
    if (!this.node(base)) return base;
    for (let i = 2; ; i += 1) if (!this.node(`${base}_${i}`)) return `${base}_${i}`;
  }

  addNode(type, x, y, fields = []) {
    const id = this.freshId(type);
    const data = { id, type };
    // required text settings start empty so the form shows them; the server names the rest
    for (const f of fields) if (f.required && f.kind === "string") data[f.name] = "";
    this.nodes.push(data);
    this.pos.set(id, { x: Math.max(0, Math.round(x)), y: Math.max(0, Math.round(y)) });
    return id;
  }

  removeNode(id) {
    this.nodes = this.nodes.filter((n) => n.id !== id);
    this.materialize();
    this.edges = this.edges.filter((e) => e.source !== id && e.target !== id);
    this.pos.delete(id);
    this.ports.delete(id);
  }

  /** Replace a node's settings (its id may change: edges and the position follow it). */
  setNode(id, data) {
    const i = this.nodes.findIndex((n) => n.id === id);
    if (i < 0) return;
    this.nodes[i] = data;
    if (data.id !== id) {
      for (const e of this.edges) {
        if (e.source === id) e.source = data.id;
        if (e.target === id) e.target = data.id;
      }
      if (this.pos.has(id)) {
        this.pos.set(data.id, this.pos.get(id));
        this.pos.delete(id);
      }
      if (this.ports.has(id)) {
        this.ports.set(data.id, this.ports.get(id));
        this.ports.delete(id);
      }
    }
  }

  validId(id, current = null) {
    return NODE_ID.test(id) && (id === current || !this.node(id));
  }

  /** Edges become part of the definition from the first edit of one. */
  materialize() {
    this.explicitEdges = true;
  }

  connect(source, handle, target) {
    if (!source || !target || source === target) return false;
    if (this.edges.some((e) => e.source === source && e.target === target && (e.handle || null) === (handle || null))) return false;
    this.materialize();
    this.edges.push({ source, handle: handle || null, target });
    return true;
  }

  removeEdge(index) {
    this.materialize();
    this.edges.splice(index, 1);
  }

  /** The node's ways out: its branches (from the server) or one unnamed port, and `error`
   * when it follows an error edge. */
  outPorts(id) {
    const node = this.node(id);
    const known = this.ports.get(id);
    const handles = known && Array.isArray(known.handles) ? [...known.handles] : [null];
    if (node && node.on_error === "branch") handles.push("error");
    // an edge naming a branch the server does not know yet still gets its port
    for (const e of this.edges) if (e.source === id && e.handle && !handles.includes(e.handle)) handles.push(e.handle);
    return handles;
  }

  hasInPort(id) {
    const node = this.node(id);
    return !node || node.type !== "start";
  }

  /** Canvas size of a node: a head, then one row per named port. */
  size(id) {
    const ports = this.outPorts(id);
    const rows = ports.length === 1 && ports[0] === null ? 0 : ports.length;
    return { w: NODE_W, h: HEAD_H + rows * ROW_H + (rows ? 6 : 0) };
  }

  /** Where an edge leaves (`handle` of `id`) and arrives, in canvas pixels. */
  portPoint(id, handle, side) {
    const p = this.pos.get(id) || { x: 0, y: 0 };
    if (side === "in") return { x: p.x, y: p.y + HEAD_H / 2 };
    const ports = this.outPorts(id);
    const i = ports.indexOf(handle ?? null);
    if (ports.length === 1 && ports[0] === null) return { x: p.x + NODE_W, y: p.y + HEAD_H / 2 };
    return { x: p.x + NODE_W, y: p.y + HEAD_H + Math.max(0, i) * ROW_H + ROW_H / 2 };
  }

  /** Place the nodes that have no position: columns by their depth from the start, rows in
   * the order listed. */
  autoLayout() {
    const missing = this.nodes.filter((n) => !this.pos.has(n.id));
    if (!missing.length) return;
    const depth = new Map(this.nodes.map((n) => [n.id, 0]));
    for (let round = 0; round < this.nodes.length; round += 1) {
      let moved = false;
      for (const e of this.edges) {
        if (!depth.has(e.source) || !depth.has(e.target)) continue;
        const d = depth.get(e.source) + 1;
        if (d > depth.get(e.target) && d < this.nodes.length) {
          depth.set(e.target, d);
          moved = true;
        }
      }
      if (!moved) break;
    }
    const rows = new Map();
    for (const [, p] of this.pos) rows.set(Math.round(p.x / GAP_X), (rows.get(Math.round(p.x / GAP_X)) || 0) + 1);
    for (const n of missing) {
      const col = depth.get(n.id) || 0;
      const row = rows.get(col) || 0;
      rows.set(col, row + 1);
      this.pos.set(n.id, { x: 40 + col * GAP_X, y: 40 + row * GAP_Y });
    }
  }

  /** Canvas extent: every node plus a margin to drop new ones into. */
  extent() {
    let w = 0;
    let h = 0;
    for (const n of this.nodes) {
      const p = this.pos.get(n.id);
      if (!p) continue;
      const s = this.size(n.id);
      w = Math.max(w, p.x + s.w);
      h = Math.max(h, p.y + s.h);
    }
    return { w: w + 400, h: h + 300 };
  }

  /** Nodes whose output edges lead into `id` (what it reads, for the run panel). */
  upstream(id) {
    return [...new Set(this.edges.filter((e) => e.target === id).map((e) => e.source))];
  }
}
