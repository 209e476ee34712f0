// Running a workflow from the editor: the run's node events over SSE (POST …/runs, or the answer
// to a paused run's form, with stream: true), and the human-input form of a paused run drawn from
// its JSON schema (GET /v1/workflows/runs/{id}/form) and answered in the page.

import { ApiError, getApiKey, readSSE } from "./api.js";
import { h } from "./dom.js";
import { wt } from "./workflows-text.js";

function apiError(status, body, fallback) {
  const e = body && typeof body.error === "object" && body.error ? body.error : {};
  return new ApiError(status, e.message || fallback, { hint: e.hint, type: e.type, code: e.code, params: e.params });
}

/** POST `path` with `body` + stream: true; calls onEvent(event) for every engine event. Throws
 * ApiError for a refusal before the stream, or for an error event inside it. */
export async function streamEvents(path, body, onEvent, { signal } = {}) {
  const headers = { "Content-Type": "application/json", Accept: "text/event-stream" };
  const key = getApiKey();
  if (key) headers.Authorization = `Bearer ${key}`;
  let resp;
  try {
    resp = await fetch(path, { method: "POST", headers, body: JSON.stringify({ ...body, stream: true }), signal });
  } catch (err) {
    if (err.name === "AbortError") throw err;
    throw new ApiError(0, err.message || String(err), { type: "network" });
  }
  if (!resp.ok) {
    let data = null;
    try {
      data = await resp.json();
    } catch {
      /* not JSON */
    }
    if (resp.status === 401) window.dispatchEvent(new CustomEvent("hanlin:auth-required"));
    throw apiError(resp.status, data, `${resp.status} ${resp.statusText || "error"}`);
  }
  for await (const { data } of readSSE(resp.body)) {
    if (data === "[DONE]") break;
    const event = JSON.parse(data);
    if (event.error) throw apiError(event.status || 500, event, "error");
    onEvent(event);
  }
}

/** A control for one property of a form's schema; `read()` gives its value (undefined: unset). */
export function formControl(name, prop, value, kind, prefix = "answer") {
  const id = `flow-${prefix}-${name}`;
  let input;
  let read;
  if (Array.isArray(prop.enum)) {
    input = h("select", { id }, h("option", { value: "" }, "—"), prop.enum.map((o) => h("option", { value: JSON.stringify(o) }, String(o))));
    read = () => (input.value === "" ? undefined : JSON.parse(input.value));
  } else if (prop.type === "boolean") {
    input = h("input", { type: "checkbox", id, checked: value === true });
    read = () => input.checked;
  } else if (prop.type === "number" || prop.type === "integer") {
    input = h("input", { type: "number", id, step: prop.type === "integer" ? "1" : "any", value: typeof value === "number" ? String(value) : "" });
    read = () => (input.value === "" ? undefined : Number(input.value));
  } else if (prop.type === "string" || prop.type === undefined) {
    input = h(kind === "edit" ? "textarea" : "input", { id, rows: kind === "edit" ? "6" : null });
    input.value = typeof value === "string" ? value : "";
    read = () => (input.value === "" && prop.type === undefined ? undefined : input.value);
  } else {
    input = h("textarea", { id, class: "flow-json", rows: "4" });
    input.value = value === undefined || value === null ? "" : JSON.stringify(value, null, 2);
    read = () => (input.value.trim() === "" ? undefined : JSON.parse(input.value));
  }
  input.dataset.testid = `${prefix}-${name}`;
  const label = h("label", { for: id, class: "flow-field-name" }, prop.title || name);
  const box = h("div", { class: prop.type === "boolean" ? "flow-field flow-check" : "flow-field" }, label, input, prop.description ? h("span", { class: "muted small" }, prop.description) : null);
  return { box, read, name };
}

/** The form a paused run waits on, as a card; `submit(answer)` resolves once it is sent
 * (and rejects with an ApiError — a wrong answer is shown under the form). */
export function humanForm(form, submit) {
  const schema = form.schema || {};
  const props = schema.properties || {};
  const start = form.kind === "edit" ? { text: form.value } : {};
  const controls = Object.entries(props).map(([name, prop]) => formControl(name, prop || {}, start[name], form.kind));
  const status = h("div", { testid: "form-status" });
  const send = h("button", { type: "submit", class: "btn btn-primary btn-small", testid: "form-submit" }, wt("form.submit"));
  const el = h(
    "form",
    { class: "card flow-form", testid: "flow-form", "data-node": form.node },
    h("div", { class: "card-head" }, h("h2", {}, wt("form.title")), h("span", { class: "pill" }, form.node)),
    h("p", { class: "flow-form-prompt", testid: "form-prompt" }, form.prompt),
    controls.map((c) => c.box),
    Object.keys(props).length ? null : h("p", { class: "muted small" }, wt("form.free")),
    status,
    send,
  );
  const free = Object.keys(props).length ? null : h("textarea", { class: "flow-json", rows: "4", testid: "answer-json", "aria-label": wt("form.json") });
  if (free) el.insertBefore(free, status);
  el.addEventListener("submit", async (e) => {
    e.preventDefault();
    let answer = {};
    try {
      if (free) answer = free.value.trim() ? JSON.parse(free.value) : {};
      for (const c of controls) {
        const v = c.read();
        if (v !== undefined) answer[c.name] = v;
      }
    } catch (err) {
      status.replaceChildren(h("p", { class: "msg-error", role: "alert" }, wt("form.bad_json", { msg: err.message })));
      return;
    }
    send.disabled = true;
    status.replaceChildren();
    try {
      await submit(answer);
    } catch (err) {
      if (err.name !== "AbortError") status.replaceChildren(h("p", { class: "msg-error", role: "alert", testid: "form-error" }, err.display || err.message));
      send.disabled = false;
    }
  });
  return el;
}
