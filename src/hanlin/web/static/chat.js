// The chat view: conversations kept in localStorage, the model / knowledge-base picker,
// streaming answers with a Stop button, copy, and citations as chips that open the side panel.

import { kbNameOf, sourceNames, streamChat } from "./api.js";
import { copyText, h, toast } from "./dom.js";
import { t } from "./i18n.js";
import { renderMarkdown, stripFootnotes } from "./markdown.js";

const STORE_KEY = "hanlin.chats";
const MODEL_KEY = "hanlin.model";
const MAX_CHATS = 200;

export function isKbModel(model) {
  return typeof model === "string" && (model.startsWith("kb:") || model.startsWith("hanlin:kb:"));
}

/** Conversations in localStorage: [{id, title, model, messages, updated}], newest first. */
export class ChatStore {
  constructor() {
    this.chats = [];
    try {
      const raw = JSON.parse(localStorage.getItem(STORE_KEY) || "[]");
      if (Array.isArray(raw)) this.chats = raw.filter((c) => c && c.id && Array.isArray(c.messages));
    } catch {
      this.chats = [];
    }
    // A reload mid-stream leaves a pending answer behind: it will never finish.
    for (const c of this.chats) for (const m of c.messages) if (m.pending) delete m.pending;
  }

  save() {
    this.chats.sort((a, b) => b.updated - a.updated);
    this.chats = this.chats.slice(0, MAX_CHATS);
    try {
      localStorage.setItem(STORE_KEY, JSON.stringify(this.chats));
    } catch {
      /* storage full or disabled: history lives for this page only */
    }
  }

  list() {
    return [...this.chats].sort((a, b) => b.updated - a.updated);
  }

  get(id) {
    return this.chats.find((c) => c.id === id) || null;
  }

  create(model) {
    const id = `c${Date.now().toString(36)}${Math.random().toString(36).slice(2, 7)}`;
    const chat = { id, title: "", model, messages: [], updated: Date.now() };
    this.chats.unshift(chat);
    this.save();
    return chat;
  }

  remove(id) {
    this.chats = this.chats.filter((c) => c.id !== id);
    this.save();
  }
}

/** The text shown for an assistant message: footnotes removed when citations are structured. */
export function displayText(msg) {
  const structured = (msg.citations && msg.citations.length) || msg.hanlin;
  if (structured || (msg.pending && isKbModel(msg.model))) return stripFootnotes(msg.content);
  return msg.content;
}

export class ChatView {
  /**
   * @param {object} opts
   * @param {ChatStore} opts.store
   * @param {(citation: object, opener: Element, kb: string|null) => void} opts.openCitation
   * @param {() => void} opts.onChatsChanged  sidebar refresh
   * @param {(id: string) => void} opts.navigate  go to a chat
   */
  constructor({ store, openCitation, onChatsChanged, navigate }) {
    this.store = store;
    this.openCitation = openCitation;
    this.onChatsChanged = onChatsChanged;
    this.navigate = navigate;
    this.chat = null;
    this.models = [];
    this.pickable = [];
    this.controller = null;
    this.streamingMsg = null;
    this.frame = 0;

    this.el = document.getElementById("chat-view");
    this.messagesEl = document.getElementById("messages");
    this.select = document.getElementById("model-select");
    this.notice = document.getElementById("model-notice");
    this.input = document.getElementById("chat-input");
    this.form = document.getElementById("composer");
    this.sendBtn = document.getElementById("chat-send");
    this.stopBtn = document.getElementById("chat-stop");

    this.form.addEventListener("submit", (e) => {
      e.preventDefault();
      this.send();
    });
    this.input.addEventListener("keydown", (e) => {
      // isComposing: Enter that confirms a Chinese IME candidate must not send.
      if (e.key === "Enter" && !e.shiftKey && !e.isComposing && e.keyCode !== 229) {
        e.preventDefault();
        this.send();
      }
    });
    this.input.addEventListener("input", () => this.autosize());
    this.stopBtn.addEventListener("click", () => this.stop());
    this.select.addEventListener("change", () => {
      try {
        localStorage.setItem(MODEL_KEY, this.select.value);
      } catch {
        /* not persisted */
      }
      this.updateNotice();
      if (this.chat && !this.chat.messages.length) {
        this.chat.model = this.select.value;
        this.store.save();
      }
    });
    this.messagesEl.addEventListener("click", (e) => this.onMessagesClick(e));
  }

  autosize() {
    this.input.style.height = "auto";
    this.input.style.height = `${Math.min(this.input.scrollHeight, 220)}px`;
  }

  get streaming() {
    return this.controller !== null;
  }

  /** Fill the picker from GET /v1/models data, keeping the current choice when it still exists. */
  setModels(models) {
    this.models = models;
    const previous = this.select.value || this.preferredModel();
    this.select.replaceChildren();
    // Embedding and rerank models cannot chat; models without a configured key are listed
    // (so one sees what could be used) but cannot be picked.
    const meta = (m) => m.hanlin || {};
    const kbs = models.filter((m) => isKbModel(m.id));
    const chatModels = models.filter(
      (m) => !isKbModel(m.id) && (meta(m).kind === undefined || meta(m).kind === "chat"),
    );
    const ready = chatModels.filter((m) => meta(m).available !== false);
    const unconfigured = chatModels.filter((m) => meta(m).available === false);
    if (!kbs.length && !ready.length) {
      this.select.append(h("option", { value: "", disabled: true }, t("chat.model.none")));
    }
    const group = (label, list, disabled = false) => {
      if (!list.length) return;
      const g = h("optgroup", { label });
      for (const m of list) g.append(h("option", { value: m.id, disabled }, m.id));
      this.select.append(g);
    };
    group(t("chat.model.kbs"), kbs);
    group(t("chat.model.models"), ready);
    group(t("chat.model.unavailable"), unconfigured, true);
    this.pickable = [...kbs, ...ready].map((m) => m.id);
    this.chooseModel(previous);
  }

  preferredModel() {
    try {
      return localStorage.getItem(MODEL_KEY) || "";
    } catch {
      return "";
    }
  }

  chooseModel(id) {
    const ids = this.pickable || [];
    if (id && ids.includes(id)) this.select.value = id;
    else if (ids.length) this.select.value = (ids.find(isKbModel) || ids[0]);
    this.updateNotice();
  }

  /** Say so when the chosen model is a base model: it cannot follow instructions. */
  updateNotice() {
    const m = this.models.find((x) => x.id === this.select.value);
    const base = Boolean(m && m.hanlin && m.hanlin.base_model);
    this.notice.hidden = !base;
    this.notice.textContent = base ? t("chat.base_model", { model: m.id }) : "";
  }

  /** Show a conversation (or the empty state for a new one). */
  show(id) {
    this.chat = id ? this.store.get(id) : null;
    if (this.chat && this.chat.model) this.chooseModel(this.chat.model);
    this.render();
  }

  newChat() {
    if (this.streaming) this.stop();
    this.chat = null;
    this.render();
    this.input.focus();
  }

  render() {
    const msgs = this.chat ? this.chat.messages : [];
    this.messagesEl.replaceChildren();
    if (!msgs.length) {
      this.messagesEl.append(
        h(
          "div",
          { class: "empty-state", testid: "chat-empty" },
          h("div", { class: "empty-mark", "aria-hidden": "true" }, "翰"),
          h("h2", {}, t("chat.empty.title")),
          h("p", {}, t("chat.empty.body")),
        ),
      );
    }
    msgs.forEach((msg, i) => this.messagesEl.append(this.renderMessage(msg, i)));
    this.setStreamingUi(this.streaming);
    this.scrollToEnd(true);
  }

  renderMessage(msg, index) {
    if (msg.role === "user") {
      return h(
        "article",
        { class: "msg msg-user", testid: "message-user", "data-index": index },
        h("div", { class: "msg-who" }, t("chat.you")),
        h("div", { class: "msg-body" }, msg.content),
      );
    }
    const el = h("article", {
      class: "msg msg-assistant",
      testid: "message-assistant",
      "data-index": index,
    });
    this.fillAssistant(el, msg);
    return el;
  }

  /** (Re)build an assistant message: meta line, answer, citation chips, actions. */
  fillAssistant(el, msg) {
    const mode = msg.hanlin && msg.hanlin.mode;
    const refused = mode === "refused";
    el.classList.toggle("msg-refused", refused);
    el.classList.toggle("msg-pending", Boolean(msg.pending));
    el.dataset.status = msg.pending ? "streaming" : msg.error ? "error" : "done";
    const meta = h(
      "div",
      { class: "msg-who" },
      h("span", {}, t("chat.assistant")),
      msg.model ? h("span", { class: "msg-model" }, msg.model) : null,
    );
    if (mode) {
      const notes = (msg.hanlin.notes || []).join("\n");
      meta.append(
        h(
          "span",
          {
            class: `badge badge-${mode}`,
            testid: "answer-mode",
            "data-mode": mode,
            title: notes || t(`mode.${mode}.help`),
            tabindex: "0",
          },
          t(`mode.${mode}`),
        ),
      );
    }
    const body = h("div", { class: "answer md", testid: "answer-text" });
    this.fillAnswerBody(body, msg);
    const parts = [meta];
    if (refused) {
      parts.push(
        h("div", { class: "refusal-title", testid: "refusal", role: "note" }, t("refused.title")),
      );
    }
    parts.push(body);
    if (msg.error) parts.push(h("div", { class: "msg-error", role: "alert", testid: "chat-error" }, msg.error));
    if (msg.stopped) parts.push(h("div", { class: "msg-note" }, t("chat.stopped")));

    const sources = refused ? closestSources(msg) : msg.citations || [];
    if (sources.length && !msg.pending) {
      const row = h(
        "div",
        { class: "cite-row", testid: "citation-row" },
        h("span", { class: "cite-row-label" }, refused ? t("chat.closest") : t("chat.sources")),
      );
      for (const c of sources) {
        row.append(
          h(
            "button",
            {
              type: "button",
              class: "cite-chip",
              testid: "citation-chip",
              "data-cite": c.n,
              "aria-label": t("cite.open", { n: c.n }),
              title: [c.title, ...(c.heading_path || []).slice(1)].filter(Boolean).join(" › "),
            },
            h("span", { class: "cite-n" }, `[${c.n}]`),
            h("span", { class: "cite-title" }, chipLabel(c)),
          ),
        );
      }
      parts.push(row);
    }
    if (!msg.pending && (msg.content || msg.error)) {
      const copy = h(
        "button",
        { type: "button", class: "btn btn-ghost btn-small", testid: "copy-answer" },
        t("chat.copy"),
      );
      copy.addEventListener("click", async () => {
        // The raw text keeps the footnotes, so a pasted answer still names its sources.
        if (await copyText(msg.content)) {
          copy.textContent = t("chat.copied");
          setTimeout(() => (copy.textContent = t("chat.copy")), 1500);
        }
      });
      parts.push(h("div", { class: "msg-actions" }, copy));
    }
    el.replaceChildren(...parts);
  }

  fillAnswerBody(body, msg) {
    const text = displayText(msg);
    if (msg.pending && !text) {
      body.replaceChildren(h("span", { class: "thinking" }, t("chat.thinking")));
      return;
    }
    const sources = msg.hanlin && msg.hanlin.mode === "refused" ? closestSources(msg) : msg.citations;
    // While streaming, citations are not known yet (they come with the last chunk).
    const known = msg.pending && isKbModel(msg.model) ? null : (sources || []).map((c) => c.n);
    body.innerHTML = renderMarkdown(text, { citations: known });
    if (msg.pending) {
      // The caret goes at the end of the last line of text, not on a line of its own.
      let target = body;
      while (target.lastElementChild && /^(P|UL|OL|LI|BLOCKQUOTE)$/.test(target.lastElementChild.tagName)) {
        target = target.lastElementChild;
      }
      target.append(h("span", { class: "caret", "aria-hidden": "true" }));
    }
  }

  onMessagesClick(e) {
    const btn = e.target.closest("[data-cite]");
    if (!btn || !this.chat) return;
    const article = btn.closest("[data-index]");
    const msg = article && this.chat.messages[Number(article.dataset.index)];
    if (!msg) return;
    const n = Number(btn.dataset.cite);
    const pool = msg.hanlin && msg.hanlin.mode === "refused" ? closestSources(msg) : msg.citations || [];
    const citation = pool.find((c) => c.n === n);
    if (citation) this.openCitation(citation, btn, kbNameOf(msg.model));
  }

  setStreamingUi(on) {
    this.sendBtn.hidden = on;
    this.stopBtn.hidden = !on;
    this.messagesEl.setAttribute("aria-busy", on ? "true" : "false");
  }

  scrollToEnd(force = false) {
    const el = this.messagesEl;
    const nearBottom = el.scrollHeight - el.scrollTop - el.clientHeight < 120;
    if (force || nearBottom) el.scrollTop = el.scrollHeight;
  }

  stop() {
    if (this.controller) this.controller.abort();
  }

  async send() {
    const text = this.input.value.trim();
    if (!text || this.streaming) return;
    const model = this.select.value;
    if (!model) {
      toast(t("chat.model.none"), "error");
      return;
    }
    if (!this.chat) {
      this.chat = this.store.create(model);
      this.navigate(this.chat.id, { silent: true });
    }
    const chat = this.chat;
    chat.model = model;
    if (!chat.title) chat.title = text.slice(0, 60);
    const history = chat.messages
      .filter((m) => !m.error && (m.role === "user" || m.content))
      .map((m) => ({ role: m.role, content: m.role === "assistant" ? displayText(m) : m.content }));
    chat.messages.push({ role: "user", content: text });
    const msg = { role: "assistant", content: "", model, pending: true };
    chat.messages.push(msg);
    chat.updated = Date.now();
    this.store.save();
    this.onChatsChanged();
    this.input.value = "";
    this.autosize();

    this.controller = new AbortController();
    this.streamingMsg = msg;
    this.render();
    try {
      await streamChat(
        { model, messages: [...history, { role: "user", content: text }] },
        {
          signal: this.controller.signal,
          onChunk: (chunk) => {
            const choice = chunk.choices && chunk.choices[0];
            const delta = choice && choice.delta && choice.delta.content;
            if (delta) msg.content += delta;
            const citations = chunk.citations ?? (choice && choice.citations);
            if (Array.isArray(citations)) msg.citations = citations;
            const meta = chunk.hanlin ?? (choice && choice.hanlin);
            if (meta) msg.hanlin = meta;
            if (chunk.usage) msg.usage = chunk.usage;
            this.scheduleUpdate(msg);
          },
        },
      );
    } catch (err) {
      if (err.name === "AbortError") msg.stopped = true;
      else msg.error = t("error.generic", { msg: err.display || err.message });
    } finally {
      msg.pending = false;
      const kb = kbNameOf(model);
      if (kb) sourceNames(kb); // warm the cache the citation panel reads
      this.controller = null;
      this.streamingMsg = null;
      chat.updated = Date.now();
      this.store.save();
      if (this.chat === chat) this.updateMessage(msg, true);
      this.setStreamingUi(false);
      this.onChatsChanged();
    }
  }

  scheduleUpdate(msg) {
    if (this.frame) return;
    this.frame = requestAnimationFrame(() => {
      this.frame = 0;
      this.updateMessage(msg, false);
    });
  }

  updateMessage(msg, full) {
    if (!this.chat) return;
    const index = this.chat.messages.indexOf(msg);
    const el = this.messagesEl.querySelector(`[data-index="${index}"]`);
    if (!el) return;
    if (full) this.fillAssistant(el, msg);
    else this.fillAnswerBody(el.querySelector(".answer"), msg);
    this.scrollToEnd();
  }
}

/** "Section · Title" (the section tells apart chips from one document), or just the title. */
function chipLabel(c) {
  const title = c.title || c.source || c.doc || "";
  const path = Array.isArray(c.heading_path) ? c.heading_path : [];
  const section = path.length ? path[path.length - 1] : "";
  return section && section !== title ? `${section} · ${title}` : title;
}

/** A refusal's closest sources (from the evidence), numbered like citations. */
function closestSources(msg) {
  const evidence = (msg.hanlin && msg.hanlin.evidence) || [];
  if (!evidence.length) return msg.citations || [];
  return evidence.map((e, i) => {
    const c = e.citation || e;
    return { ...c, n: i + 1, score: e.score ?? c.score };
  });
}
