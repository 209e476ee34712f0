// One workflow in the visual editor (#/workflows/<name>): the palette of node types (from the
// server's registry), the canvas, the side panel; Validate (problems shown on their nodes), Save
// (PUT: the YAML, and the canvas positions beside it), and Run — the nodes light up as the run's
// events arrive, a paused run's form is answered in the page. A past run (…?run=<id>) is shown
// the same way from its history.

import { request } from "./api.js";
import { h, toast } from "./dom.js";
import { FlowCanvas } from "./flow-canvas.js";
import { FlowModel, NODE_W } from "./flow-model.js";
import { FlowPanel } from "./flow-panel.js";
import { formControl, humanForm, streamEvents } from "./flow-run.js";
import { wt } from "./workflows-text.js";

/** Children for replaceChildren, which would write null as "null": lists flattened, gaps left out. */
const kids = (...xs) => xs.flat().filter((x) => x !== null && x !== undefined && x !== false);

const enc = encodeURIComponent;
const STATUS = { done: "done", replayed: "done", failed: "failed", skipped: "skipped" };

export const flowsApi = {
  list: () => request("GET", "/v1/workflows"),
  get: (name, draft = false) => request("GET", `/v1/workflows/${enc(name)}${draft ? "?draft=true" : ""}`),
  nodes: () => request("GET", "/v1/workflows/nodes"),
  validate: (definition) => request("POST", "/v1/workflows/validate", { yaml: JSON.stringify(definition) }),
  save: (name, definition, layout) => request("PUT", `/v1/workflows/${enc(name)}`, { definition, layout }),
  runs: (name, limit = 20) => request("GET", `/v1/workflows/runs?limit=${limit}${name ? `&workflow=${enc(name)}` : ""}`),
  run: (id) => request("GET", `/v1/workflows/runs/${enc(id)}`),
  form: (id) => request("GET", `/v1/workflows/runs/${enc(id)}/form`),
};

/** The top-level node a run event names (`each[2].gist` belongs to `each`). */
const topNode = (path) => String(path || "").split(/[.[]/)[0];

export class FlowEditor {
  constructor() {
    this.types = null;
    this.model = null;
    this.selected = null;
    this.problems = [];
    this.checked = false; // problems are shown from the first Validate or refused Save on
    this.results = new Map();
    this.canvas = new FlowCanvas({
      select: (sel) => this.select(sel),
      move: () => this.touch(false),
      connect: (source, handle, target) => {
        if (this.model.connect(source, handle, target)) this.touch(true);
      },
      remove: () => this.removeSelected(),
    });
    this.panel = new FlowPanel({
      change: (id, data, redraw) => this.changeNode(id, data, redraw),
      remove: () => this.removeSelected(),
      removeEdge: () => this.removeSelected(),
    });
    this.palette = h("ul", { class: "flow-palette", testid: "flow-palette", "aria-label": wt("palette.title") });
    this.runBox = h("section", { class: "card flow-runbox", testid: "flow-runbox" });
    this.status = h("span", { class: "flow-dirty muted small", testid: "flow-dirty", "aria-live": "polite" });
    this.el = h("div", { class: "flow-editor", testid: "flow-editor" });
  }

  /** Open workflow `name` (new: an empty canvas under that name), optionally showing run `runId`. */
  async open(name, { isNew = false, runId = null } = {}) {
    this.name = name;
    this.isNew = isNew;
    this.selected = null;
    this.problems = [];
    this.checked = false;
    this.results = new Map();
    this.run = null;
    this.inputsSchema = null;
    this.el.replaceChildren(h("p", { class: "muted" }, "…"));
    try {
      if (!this.types) this.types = (await flowsApi.nodes()).data;
      const empty = { definition: { name, nodes: [], edges: [] }, layout: null, edges: [] };
      let shown = empty;
      if (!isNew) {
        // a name with no workflow yet opens an empty canvas, saved under that name
        // a workflow that does not check opens as written, its problems on its nodes
        shown = await flowsApi.get(name).catch((err) => {
          if (err.code === "workflow_invalid") return flowsApi.get(name, true);
          if (err.code !== "workflow_not_found") throw err;
          this.isNew = true;
          return empty;
        });
        if (shown.valid === false) {
          this.checked = true;
          this.problems = shown.problems || [];
        }
      }
      this.model = new FlowModel({ name, definition: shown.definition, edges: shown.edges, layout: shown.layout });
      this.inputsSchema = shown.inputs || null;
    } catch (err) {
      this.el.replaceChildren(this.header(), h("p", { class: "msg-error", role: "alert", testid: "flow-error" }, err.display || err.message));
      return;
    }
    this.dirty = false;
    this.layout();
    await this.check();
    if (runId) await this.showRun(runId);
  }

  type(name) {
    return (this.types || []).find((t) => t.type === name) || null;
  }

  header() {
    const back = h("a", { href: "#/workflows", class: "small", testid: "flows-back" }, wt("back"));
    const validate = h("button", { type: "button", class: "btn btn-small", testid: "flow-validate" }, wt("editor.validate"));
    validate.addEventListener("click", () => this.validate());
    const save = h("button", { type: "button", class: "btn btn-primary btn-small", testid: "flow-save" }, wt("editor.save"));
    save.addEventListener("click", () => this.save());
    return h(
      "header",
      { class: "kb-head flow-head" },
      h("div", {}, back, h("h1", { testid: "flow-title" }, this.name)),
      this.status,
      h("span", { class: "spacer" }),
      validate,
      save,
    );
  }

  layout() {
    this.renderPalette();
    this.el.replaceChildren(
      this.header(),
      h(
        "div",
        { class: "flow-body" },
        h("div", { class: "flow-side" }, h("h2", { class: "flow-side-title" }, wt("palette.title")), this.palette),
        this.canvas.el,
        h("div", { class: "flow-right" }, this.runBox, this.panel.el),
      ),
    );
    this.renderRunBox();
    this.redraw();
  }

  // --- palette ---------------------------------------------------------------------------------

  renderPalette() {
    this.palette.replaceChildren(
      ...(this.types || []).map((t) => {
        const item = h(
          "li",
          { class: "flow-palette-item", testid: "palette-item", "data-type": t.type, tabindex: "0", role: "button", title: t.error || t.summary || t.type },
          h("span", { class: "flow-palette-name" }, t.type),
          t.summary ? h("span", { class: "flow-palette-sum muted" }, t.summary) : null,
        );
        item.setAttribute("aria-label", wt("palette.add", { type: t.type }));
        item.addEventListener("pointerdown", (e) => this.dragFromPalette(e, t));
        item.addEventListener("keydown", (e) => {
          if (e.key === "Enter" || e.key === " ") {
            e.preventDefault();
            this.addNode(t, null);
          }
        });
        return item;
      }),
    );
  }

  /** Drag a type onto the canvas (a click without a drag adds it beside the others). */
  dragFromPalette(e, type) {
    if (e.button !== 0) return;
    e.preventDefault();
    const start = { x: e.clientX, y: e.clientY };
    let ghost = null;
    const move = (ev) => {
      if (!ghost && Math.abs(ev.clientX - start.x) + Math.abs(ev.clientY - start.y) < 4) return;
      if (!ghost) {
        ghost = h("div", { class: "flow-node flow-ghost", "aria-hidden": "true" }, h("div", { class: "flow-node-head" }, h("span", { class: "flow-node-id" }, type.type)));
        document.body.append(ghost);
      }
      ghost.style.left = `${ev.clientX - NODE_W / 2}px`;
      ghost.style.top = `${ev.clientY - 20}px`;
    };
    const up = (ev) => {
      document.removeEventListener("pointermove", move);
      document.removeEventListener("pointerup", up);
      if (!ghost) return this.addNode(type, null);
      ghost.remove();
      const at = this.canvas.toStage(ev.clientX, ev.clientY);
      if (at) this.addNode(type, { x: at.x - NODE_W / 2, y: at.y - 20 });
    };
    document.addEventListener("pointermove", move);
    document.addEventListener("pointerup", up);
  }

  addNode(type, at) {
    let p = at;
    if (!p) {
      const { w } = this.model.extent();
      p = { x: this.model.nodes.length ? w - 400 + 60 : 40, y: 40 };
    }
    const id = this.model.addNode(type.type, p.x, p.y, type.fields || []);
    this.selected = { kind: "node", id };
    this.touch(true);
  }

  // --- editing ---------------------------------------------------------------------------------

  select(sel) {
    this.selected = sel;
    this.redraw();
  }

  changeNode(id, data, redraw) {
    this.model.setNode(id, data);
    if (this.selected && this.selected.kind === "node" && this.selected.id === id) this.selected = { kind: "node", id: data.id };
    this.touch(true, !redraw);
  }

  removeSelected() {
    const sel = this.selected;
    if (!sel) return;
    if (sel.kind === "node") this.model.removeNode(sel.id);
    else this.model.removeEdge(sel.id);
    this.selected = null;
    this.touch(true);
    this.canvas.el.focus({ preventScroll: true });
  }

  /** Something changed: mark it unsaved, redraw, and (for a change of the graph) ask the server
   * for the nodes' ports again. `keepPanel`: the form being typed in stays as it is. */
  touch(graph, keepPanel = false) {
    this.dirty = true;
    this.redraw(keepPanel);
    if (graph) {
      clearTimeout(this.timer);
      this.timer = setTimeout(() => this.check(), 350);
    }
  }

  redraw(keepPanel = false) {
    if (!this.model) return;
    this.status.textContent = this.dirty ? wt("editor.unsaved") : "";
    const byNode = new Map();
    for (const p of this.checked ? this.problems : []) {
      const id = topNode(p.node);
      if (!this.model.node(id)) continue;
      byNode.set(id, [...(byNode.get(id) || []), p.fix ? `${p.message} — ${p.fix}` : p.message]);
    }
    this.canvas.problems = byNode;
    this.canvas.selected = this.selected;
    this.canvas.status = new Map([...this.results].map(([id, r]) => [id, r.status]));
    this.canvas.render(this.model);
    if (keepPanel) return;
    const sel = this.selected;
    const node = sel && sel.kind === "node" ? this.model.node(sel.id) : null;
    if (node) {
      const inputs = Object.fromEntries(this.model.upstream(node.id).filter((u) => this.results.get(u)?.outputs).map((u) => [u, this.results.get(u).outputs]));
      this.panel.showNode(node, this.type(node.type), { problems: byNode.get(node.id) || [], result: this.results.get(node.id) || null, inputs, model: this.model });
    } else if (sel && sel.kind === "edge" && this.model.edges[sel.id]) {
      this.panel.showEdge(this.model.edges[sel.id]);
    } else {
      const general = (this.checked ? this.problems : []).filter((p) => !this.model.node(topNode(p.node)));
      this.panel.empty(general.length ? [h("ul", { class: "flow-problems", testid: "flow-problems" }, general.map((p) => h("li", {}, p.fix ? `${p.message} — ${p.fix}` : p.message)))] : []);
    }
  }

  /** Ask the server to check the draft: each node's ports, and its problems. */
  async check() {
    if (!this.model) return null;
    const asked = this.model.toDefinition();
    let res;
    try {
      res = await flowsApi.validate(asked);
    } catch (err) {
      toast(err.display || err.message, "error");
      return null;
    }
    if (JSON.stringify(asked) !== JSON.stringify(this.model.toDefinition())) return null; // edited since
    this.model.ports = new Map(Object.entries(res.ports || {}));
    this.problems = res.problems || [];
    if (res.valid && JSON.stringify(res.inputs) !== JSON.stringify(this.inputsSchema)) {
      this.inputsSchema = res.inputs;
      if (!this.runBox.contains(document.activeElement)) this.renderRunBox();
    }
    this.redraw(this.panelBusy());
    return res;
  }

  /** Whether someone is typing in the side panel (its form is then not made again). */
  panelBusy() {
    return this.panel.el.contains(document.activeElement) && document.activeElement.matches("input, textarea, select");
  }

  async validate() {
    clearTimeout(this.timer);
    this.checked = true;
    const res = await this.check();
    if (!res) return;
    if (res.valid) toast(wt("editor.valid"));
    else toast(wt("editor.invalid", { n: res.problems.length }), "error");
    this.renderRunBox();
  }

  async save() {
    clearTimeout(this.timer);
    try {
      const res = await flowsApi.save(this.name, this.model.toDefinition(), this.model.layout());
      this.dirty = false;
      this.isNew = false;
      this.inputsSchema = res.inputs;
      this.problems = [];
      toast(res.changed ? wt("editor.saved", { name: this.name }) : wt("editor.saved.same", { name: this.name }));
      if (location.hash !== `#/workflows/${enc(this.name)}`) history.replaceState(null, "", `#/workflows/${enc(this.name)}`);
      this.redraw();
      this.renderRunBox();
      return true;
    } catch (err) {
      const problems = err.params && err.params.problems;
      if (Array.isArray(problems)) {
        this.checked = true;
        this.problems = problems.map(([node, message, fix]) => ({ node, message, fix }));
        this.redraw();
      }
      toast(err.display || err.message, "error");
      return false;
    }
  }

  // --- running ---------------------------------------------------------------------------------

  renderRunBox() {
    const schema = this.inputsSchema || { properties: {} };
    // what was typed survives a redraw (a check that came back, a save)
    const typed = {};
    for (const c of this.runControls || []) {
      try {
        typed[c.name] = c.read();
      } catch {
        /* unreadable JSON: the default instead */
      }
    }
    const controls = Object.entries(schema.properties || {}).map(([name, prop]) => formControl(name, prop, typed[name] ?? prop.default, "", "input"));
    this.runControls = controls;
    const go = h("button", { type: "submit", class: "btn btn-primary btn-small", testid: "flow-run" }, wt("run.start"));
    this.runOut = h("div", { class: "flow-run-out", testid: "flow-run-out", "aria-live": "polite" });
    this.formSlot = h("div", { testid: "flow-form-slot" });
    const form = h("form", { class: "flow-run-form" }, controls.map((c) => c.box), go);
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      const inputs = {};
      try {
        for (const c of controls) {
          const v = c.read();
          if (v !== undefined) inputs[c.name] = v;
        }
      } catch (err) {
        this.runOut.replaceChildren(h("p", { class: "msg-error", role: "alert" }, wt("form.bad_json", { msg: err.message })));
        return;
      }
      go.disabled = true;
      try {
        await this.start(inputs);
      } finally {
        go.disabled = false;
      }
    });
    this.runBox.replaceChildren(h("div", { class: "card-head" }, h("h2", {}, wt("run.title"))), form, this.runOut, this.formSlot);
    if (this.run) this.showRunState();
  }

  async start(inputs) {
    if ((this.dirty || this.isNew) && !(await this.save())) return;
    this.results = new Map();
    this.run = { id: null, status: "running", outputs: null, error: null };
    this.formSlot.replaceChildren();
    this.redraw();
    this.showRunState();
    await this.follow(`/v1/workflows/${enc(this.name)}/runs`, { inputs });
  }

  async follow(path, body) {
    try {
      await streamEvents(path, body, (event) => this.onEvent(event));
    } catch (err) {
      if (err.name === "AbortError") return;
      if (this.run && this.run.status === "running") this.run = { ...this.run, status: "failed", error: err.display || err.message };
      this.showRunState();
      throw err;
    }
  }

  onEvent(ev) {
    const id = topNode(ev.node);
    const r = this.results.get(id) || {};
    if (ev.type === "run_started") {
      this.run.id = ev.run_id;
    } else if (ev.type === "node_started" && ev.node === id) {
      this.results.set(id, { ...r, status: "running" });
    } else if (ev.type === "node_text" && ev.node === id) {
      this.results.set(id, { ...r, text: (r.text || "") + ev.text });
    } else if (ev.type === "node_retry" && ev.node === id) {
      this.results.set(id, { ...r, status: "running", error: ev.error });
    } else if (ev.type === "node_finished" && ev.node === id) {
      this.results.set(id, { ...r, status: STATUS[ev.status] || ev.status, outputs: ev.outputs, seconds: ev.seconds, branch: ev.branch, error: ev.error });
    } else if (ev.type === "run_paused") {
      this.run.status = "paused";
      const at = topNode(ev.pending && ev.pending.node);
      this.results.set(at, { ...(this.results.get(at) || {}), status: "paused" });
      this.askForm(ev.run_id);
    } else if (ev.type === "run_finished") {
      Object.assign(this.run, { status: ev.status, outputs: ev.outputs, error: ev.error });
    } else {
      return;
    }
    this.redraw(this.panelBusy());
    this.showRunState();
  }

  showRunState() {
    const run = this.run;
    if (!run || !this.runOut) return;
    const outputs = run.outputs || {};
    const answer = typeof outputs.answer === "string" ? outputs.answer : Object.keys(outputs).length ? JSON.stringify(outputs, null, 2) : "";
    this.runOut.replaceChildren(
      ...kids(
      h(
        "p",
        { class: "small" },
        h("span", { class: `pill flow-pill-${run.status}`, testid: "run-status", "data-status": run.status }, wt(`status.${run.status}`)),
        run.id ? h("span", { class: "muted" }, ` ${run.id}`) : null,
      ),
      run.error ? h("p", { class: "msg-error", testid: "run-error" }, run.error) : null,
      answer ? h("pre", { class: "prompt-output", testid: "run-output" }, answer) : null,
      ),
    );
  }

  async askForm(runId) {
    let form;
    try {
      form = await flowsApi.form(runId);
    } catch (err) {
      this.formSlot.replaceChildren(h("p", { class: "msg-error", role: "alert" }, err.display || err.message));
      return;
    }
    this.formSlot.replaceChildren(
      humanForm(form, async (answer) => {
        this.run.status = "running";
        const path = `/v1/workflows/runs/${enc(runId)}/form`;
        await streamEvents(path, { answer }, (event) => this.onEvent(event)).catch((err) => {
          if (err.status && err.status < 500) {
            this.run.status = "paused";
            this.showRunState();
          }
          throw err;
        });
        if (this.run.status !== "paused") this.formSlot.replaceChildren();
      }),
    );
  }

  /** A past run on the canvas: each step's status and outputs, and its form if it waits. */
  async showRun(runId) {
    let run;
    try {
      run = await flowsApi.run(runId);
    } catch (err) {
      toast(err.display || err.message, "error");
      return;
    }
    this.results = new Map();
    for (const step of run.history || []) {
      if (topNode(step.node) !== step.node) continue;
      this.results.set(step.node, { status: STATUS[step.status] || step.status, outputs: step.outputs, branch: step.branch, error: step.error, seconds: step.finished_at - step.started_at });
    }
    this.run = { id: run.id, status: run.status, outputs: run.outputs, error: run.error };
    if (run.form) this.results.set(topNode(run.form.node), { status: "paused" });
    this.redraw();
    this.showRunState();
    if (run.status === "paused") this.askForm(run.id);
  }
}
