// The agent view (#/agent/<name>): give an agent a goal and watch it work — its text, tool calls
// and results, plans and subtasks — and approve or deny calls with side effects as they come.
// Runs stream from POST /v1/agents/{name}/runs; approvals go to /v1/agents/runs/{run}/approvals.

import { ApiError, getApiKey, readSSE, request } from "./api.js";
import { h, toast } from "./dom.js";
import { t } from "./i18n.js";

const enc = encodeURIComponent;

function headers() {
  const out = { "Content-Type": "application/json", Accept: "text/event-stream" };
  const key = getApiKey();
  if (key) out.Authorization = `Bearer ${key}`;
  return out;
}

export class AgentView {
  constructor() {
    this.name = null;
    this.controller = null;
    this.runId = null;
    this.textEl = null;
    this.els = {
      title: document.getElementById("agent-title"),
      desc: document.getElementById("agent-desc"),
      form: document.getElementById("agent-form"),
      input: document.getElementById("agent-input"),
      run: document.getElementById("agent-run"),
      stop: document.getElementById("agent-stop"),
      log: document.getElementById("agent-log"),
    };
    this.els.form.addEventListener("submit", (e) => {
      e.preventDefault();
      this.start();
    });
    this.els.input.addEventListener("keydown", (e) => {
      if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
        e.preventDefault();
        this.start();
      }
    });
    this.els.stop.addEventListener("click", () => this.stop());
  }

  /** Show the agent `name` (from the sidebar list `agents`). */
  show(name, agents) {
    if (this.name !== name) {
      this.stop();
      this.els.log.replaceChildren();
    }
    this.name = name;
    const info = (agents || []).find((a) => a.name === name);
    this.els.title.textContent = name;
    const tools = info && info.tools && info.tools.length ? ` · ${t("agent.tools")}: ${info.tools.join(", ")}` : "";
    this.els.desc.textContent = info ? `${info.description || ""}${tools}` : "";
  }

  stop() {
    if (this.controller) this.controller.abort();
    this.controller = null;
    this.setBusy(false);
  }

  setBusy(busy) {
    this.els.run.hidden = busy;
    this.els.stop.hidden = !busy;
    this.els.input.disabled = busy;
    this.els.log.setAttribute("aria-busy", busy ? "true" : "false");
  }

  add(node) {
    this.els.log.append(node);
    node.scrollIntoView({ block: "end" });
    return node;
  }

  async start() {
    const goal = this.els.input.value.trim();
    if (!goal || this.controller || !this.name) return;
    this.els.input.value = "";
    this.add(h("div", { class: "agent-goal", testid: "agent-goal" }, goal));
    this.textEl = null;
    this.controller = new AbortController();
    this.setBusy(true);
    try {
      const resp = await fetch(`/v1/agents/${enc(this.name)}/runs`, {
        method: "POST",
        headers: headers(),
        body: JSON.stringify({ input: goal, stream: true }),
        signal: this.controller.signal,
      });
      if (!resp.ok) {
        let body = null;
        try {
          body = await resp.json();
        } catch {
          /* not JSON */
        }
        const e = (body && body.error) || {};
        throw new ApiError(resp.status, e.message || `${resp.status}`, { hint: e.hint });
      }
      for await (const { data } of readSSE(resp.body)) {
        if (data === "[DONE]") break;
        let event;
        try {
          event = JSON.parse(data);
        } catch {
          continue;
        }
        this.onEvent(event);
      }
    } catch (err) {
      if (err.name !== "AbortError") {
        this.add(h("div", { class: "agent-error", role: "alert", testid: "agent-error" }, err.display || err.message));
      }
    } finally {
      this.controller = null;
      this.setBusy(false);
      this.els.input.focus();
    }
  }

  onEvent(e) {
    if (e.type !== "text") this.textEl = null;
    switch (e.type) {
      case "run":
        this.runId = e.run_id;
        break;
      case "notice":
        this.add(
          h(
            "div",
            { class: "agent-notice", role: "note", testid: "agent-notice", "data-code": e.code },
            e.code === "base_model" ? t("agent.base_model", { model: e.model }) : e.text,
          ),
        );
        break;
      case "text":
        if (!this.textEl) this.textEl = this.add(h("div", { class: "agent-text", testid: "agent-text" }));
        this.textEl.textContent += e.text;
        break;
      case "tool_call":
        this.add(
          h(
            "div",
            { class: "agent-call", testid: "agent-call", "data-tool": e.name },
            h("span", { class: "agent-arrow", "aria-hidden": "true" }, "→ "),
            h("code", {}, e.name),
            h("span", { class: "muted" }, ` ${e.arguments}`),
          ),
        );
        break;
      case "tool_result":
        this.add(
          h(
            "details",
            { class: `agent-result${e.is_error ? " is-error" : ""}`, testid: "agent-result", "data-tool": e.name },
            h("summary", {}, `← ${e.name} · ${e.seconds.toFixed(2)} s${e.is_error ? ` · ${t("agent.error")}` : ""}`),
            h("pre", {}, e.content),
          ),
        );
        break;
      case "approval_request":
        this.add(this.approvalCard(e));
        break;
      case "plan":
        this.add(
          h(
            "ol",
            { class: "agent-plan", testid: "agent-plan", "aria-label": t("agent.plan") },
            ...(e.subtasks || []).map((s) => h("li", { "data-status": s.status || "" }, s.title || s.id)),
          ),
        );
        break;
      case "subtask":
        this.add(h("div", { class: "agent-subtask muted", testid: "agent-subtask" }, `${e.status}: ${e.title}`));
        break;
      case "final":
        this.add(
          h(
            "div",
            { class: `agent-final${e.stop_reason === "answer" ? "" : " is-error"}`, testid: "agent-final", "data-stop": e.stop_reason },
            `${t(`agent.stop.${e.stop_reason}`)} · ${e.steps} ${t("agent.steps")} · ${e.usage.total_tokens} tokens`,
            e.error ? h("div", { class: "small" }, e.error) : null,
          ),
        );
        break;
      default:
        break;
    }
  }

  approvalCard(e) {
    const args = JSON.stringify(e.arguments, null, 2);
    const status = h("span", { class: "agent-decision", testid: "agent-decision" });
    const decide = async (approved) => {
      allow.disabled = deny.disabled = true;
      try {
        await request("POST", `/v1/agents/runs/${enc(e.run_id)}/approvals/${enc(e.id)}`, { approved });
        status.textContent = approved ? t("agent.approved") : t("agent.denied");
      } catch (err) {
        allow.disabled = deny.disabled = false;
        toast(t("error.generic", { msg: err.display || err.message }), "error");
      }
    };
    const allow = h("button", { type: "button", class: "btn btn-primary btn-small", testid: "agent-approve", onclick: () => decide(true) }, t("agent.approve"));
    const deny = h("button", { type: "button", class: "btn btn-danger btn-small", testid: "agent-deny", onclick: () => decide(false) }, t("agent.deny"));
    return h(
      "div",
      { class: "agent-approval", role: "group", testid: "agent-approval", "aria-label": t("agent.approval") },
      h("p", {}, t("agent.approval.ask", { tool: e.tool, effects: (e.side_effects || []).join(", ") })),
      h("pre", {}, args),
      h("div", { class: "agent-approval-actions" }, allow, deny, status),
    );
  }
}
