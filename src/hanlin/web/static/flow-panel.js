// The editor's side panel: the selected node's settings as a form made from its type's fields
// (GET /v1/workflows/nodes) — text, numbers, switches, choices, and JSON for lists and mappings —
// the common fields under "Advanced", the whole node as JSON for anything else; what the node did
// in the last run (status, inputs, outputs, error); or the selected edge. Everything shown is text.

import { h } from "./dom.js";
import { wt } from "./workflows-text.js";

/** Children for replaceChildren, which would write null as "null": lists flattened, gaps left out. */
const kids = (...xs) => xs.flat().filter((x) => x !== null && x !== undefined && x !== false);

const COMMON = [
  { name: "title", kind: "string" },
  { name: "timeout_s", kind: "number" },
  { name: "retry", kind: "json" },
  { name: "on_error", kind: "enum", enum: ["fail", "default", "branch"] },
  { name: "default", kind: "json" },
];

const pretty = (value) => JSON.stringify(value, null, 2);

/** One form control for `field` of `data`; `set(value)` with undefined removes the key. */
function control(field, data, set, onError) {
  const value = data[field.name];
  const id = `flow-field-${field.name}`;
  let input;
  if (field.kind === "boolean") {
    input = h("input", { type: "checkbox", id, checked: value === true });
    input.addEventListener("change", () => set(input.checked));
  } else if (field.kind === "enum") {
    input = h(
      "select",
      { id },
      h("option", { value: "" }, field.default !== null && field.default !== undefined ? `(${field.default})` : "—"),
      (field.enum || []).map((o) => h("option", { value: JSON.stringify(o), selected: value !== undefined && JSON.stringify(o) === JSON.stringify(value) }, String(o))),
    );
    input.addEventListener("change", () => set(input.value === "" ? undefined : JSON.parse(input.value)));
  } else if (field.kind === "integer" || field.kind === "number") {
    input = h("input", { type: "number", id, step: field.kind === "integer" ? "1" : "any", value: typeof value === "number" ? String(value) : "" });
    if (field.default !== null && field.default !== undefined) input.placeholder = String(field.default);
    input.addEventListener("change", () => set(input.value === "" ? undefined : Number(input.value)));
  } else if (field.kind === "string" && (value === undefined || typeof value === "string")) {
    input = h("textarea", { id, rows: String(Math.min(8, Math.max(2, (value || "").split("\n").length))), spellcheck: "false" });
    input.value = value ?? "";
    input.addEventListener("change", () => set(input.value === "" && !field.required ? undefined : input.value));
  } else {
    // lists, mappings, several shapes — or a value of another shape than the field's usual
    input = h("textarea", { id, class: "flow-json", rows: "5", spellcheck: "false" });
    input.value = value === undefined ? "" : pretty(value);
    input.addEventListener("change", () => {
      if (input.value.trim() === "") return set(undefined);
      try {
        set(JSON.parse(input.value));
        input.removeAttribute("aria-invalid");
      } catch (err) {
        input.setAttribute("aria-invalid", "true");
        onError(wt("panel.bad_json", { field: field.name, msg: err.message }));
      }
    });
  }
  input.dataset.testid = `field-${field.name}`;
  input.dataset.field = field.name;
  const label = h("label", { for: id, class: "flow-field-name" }, field.name, field.required ? h("span", { class: "flow-required", title: wt("panel.required") }, " *") : null);
  const hint = field.description ? h("span", { class: "muted small" }, field.description) : null;
  if (field.kind === "json") input.setAttribute("aria-describedby", `${id}-json`);
  return h(
    "div",
    { class: "flow-field" },
    label,
    hint,
    input,
    field.kind === "json" ? h("span", { class: "muted small", id: `${id}-json` }, wt("panel.json")) : null,
  );
}

export class FlowPanel {
  /** `on`: change(id, data, redraw) (id: the node's id before the change; redraw: the form
   * must be made again), remove(), removeEdge(). */
  constructor(on) {
    this.on = on;
    this.el = h("aside", { class: "flow-panel card", testid: "flow-panel" });
  }

  /** The panel for nothing selected: the run's inputs and result live above; here, a hint. */
  empty(extra = []) {
    this.el.replaceChildren(h("p", { class: "muted small" }, wt("panel.none")), ...extra);
  }

  showEdge(edge) {
    const del = h("button", { type: "button", class: "btn btn-danger btn-small", testid: "edge-delete" }, wt("panel.edge.delete"));
    del.addEventListener("click", () => this.on.removeEdge());
    this.el.replaceChildren(
      h("h2", {}, wt("panel.edge")),
      h("p", {}, h("code", { testid: "edge-text" }, `${edge.handle ? `${edge.source}.${edge.handle}` : edge.source} → ${edge.target}`)),
      del,
    );
  }

  /** The form for `node` (its type's `fields`), then what it did in the run (`result`). */
  showNode(node, type, { problems = [], result = null, inputs = null, model = null } = {}) {
    const errors = h("div", { class: "flow-panel-errors", testid: "panel-errors" });
    const fail = (msg) => errors.replaceChildren(h("p", { class: "msg-error", role: "alert" }, msg));
    // fields change one at a time (on blur): each starts from the node as last changed, and the
    // form stays as it is (focus included) unless the id changes
    this.current = node;
    const change = (key) => (value) => {
      const next = { ...this.current };
      if (value === undefined) delete next[key];
      else next[key] = value;
      const before = this.current.id;
      this.current = next;
      this.on.change(before, next, false);
    };
    const idInput = h("input", { id: "flow-field-id", testid: "field-id", value: node.id, maxlength: "64", spellcheck: "false" });
    idInput.addEventListener("change", () => {
      const id = idInput.value.trim();
      if (model && !model.validId(id, this.current.id)) {
        idInput.setAttribute("aria-invalid", "true");
        fail(wt("panel.bad_id", { id }));
        return;
      }
      this.on.change(this.current.id, { ...this.current, id }, true);
    });
    const fields = (type && type.fields) || [];
    const del = h("button", { type: "button", class: "btn btn-danger btn-small", testid: "node-delete" }, wt("panel.node.delete"));
    del.addEventListener("click", () => this.on.remove());
    const raw = h("textarea", { class: "flow-json", rows: "10", spellcheck: "false", testid: "node-json", "aria-label": wt("panel.raw") });
    raw.value = pretty(node);
    const apply = h("button", { type: "button", class: "btn btn-small", testid: "node-json-apply" }, wt("panel.raw.apply"));
    apply.addEventListener("click", () => {
      let data;
      try {
        data = JSON.parse(raw.value);
      } catch (err) {
        fail(wt("panel.bad_json", { field: "node", msg: err.message }));
        return;
      }
      if (!data || typeof data !== "object" || Array.isArray(data) || typeof data.id !== "string" || typeof data.type !== "string") {
        fail(wt("panel.raw.shape"));
        return;
      }
      if (model && !model.validId(data.id, this.current.id)) {
        fail(wt("panel.bad_id", { id: data.id }));
        return;
      }
      this.on.change(this.current.id, data, true);
    });
    const known = new Set(["id", "type", ...fields.map((f) => f.name), ...COMMON.map((f) => f.name)]);
    const unknown = Object.keys(node).filter((k) => !known.has(k));
    this.el.replaceChildren(
      ...kids(
      h("div", { class: "card-head" }, h("h2", { testid: "panel-title" }, node.id), h("span", { class: "pill" }, node.type)),
      type && type.summary ? h("p", { class: "muted small" }, type.summary) : null,
      problems.length ? h("ul", { class: "flow-problems", testid: "panel-problems" }, problems.map((p) => h("li", {}, p))) : null,
      errors,
      h("div", { class: "flow-field" }, h("label", { for: "flow-field-id", class: "flow-field-name" }, wt("panel.id")), idInput),
      fields.map((f) => control(f, node, change(f.name), fail)),
      unknown.length ? h("p", { class: "muted small" }, wt("panel.unknown", { keys: unknown.join(", ") })) : null,
      h("details", { class: "flow-advanced" }, h("summary", {}, wt("panel.advanced")), COMMON.map((f) => control(f, node, change(f.name), fail))),
      h("details", { class: "flow-advanced" }, h("summary", {}, wt("panel.raw")), raw, apply),
      result ? this.result(result, inputs) : null,
      h("div", { class: "flow-panel-foot" }, del),
      ),
    );
  }

  /** What the node did in the run shown: status, time, branch, error, inputs, outputs. */
  result(r, inputs) {
    const block = (title, value, testid) => [h("h3", { class: "prompt-sub" }, title), h("pre", { class: "prompt-output", testid }, pretty(value))];
    return h(
      "section",
      { class: "flow-result", testid: "node-result" },
      h("h3", { class: "prompt-sub" }, wt("panel.run")),
      h(
        "p",
        { class: "small" },
        h("span", { class: `pill flow-pill-${r.status}`, testid: "node-status" }, wt(`status.${r.status}`)),
        r.seconds !== undefined && r.seconds !== null ? ` ${r.seconds.toFixed(2)} s` : "",
        r.branch ? ` · ${wt("panel.branch")}: ${r.branch}` : "",
      ),
      r.error ? h("p", { class: "msg-error", testid: "node-error" }, r.error) : null,
      r.text ? h("pre", { class: "prompt-output" }, r.text) : null,
      inputs && Object.keys(inputs).length ? block(wt("panel.inputs"), inputs, "node-inputs") : null,
      r.outputs ? block(wt("panel.outputs"), r.outputs, "node-outputs") : null,
    );
  }
}
