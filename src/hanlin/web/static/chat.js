// The chat view: conversations kept on the server (conversations.js), the model / knowledge-base
// picker, per-chat settings (system prompt, temperature, max tokens), streaming answers with a
// Stop button, copy, regenerate, edit and resend, and citations as chips that open the side panel.

import { kbNameOf, sourceNames, streamChat } from "./api.js";
import { copyText, h, toast } from "./dom.js";
import { t } from "./i18n.js";
import { ChatSettingsPanel } from "./chatsettings.js";
import { feedbackBar } from "./feedback.js";
import { guardNotice } from "./guard-notice.js";
import { renderMarkdown, stripFootnotes } from "./markdown.js";
import { fillModelPicker } from "./model-picker.js";

const MODEL_KEY = "hanlin.model";

export function isKbModel(model) {
  return typeof model === "string" && (model.startsWith("kb:") || model.startsWith("hanlin:kb:"));
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
   * @param {import("./conversations.js").ConversationStore} opts.store
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
    this.showing = 0; // the latest show(): an older load that answers late is dropped
    this.editing = null; // index of the user message being edited

    this.el = document.getElementById("chat-view");
    this.messagesEl = document.getElementById("messages");
    this.select = document.getElementById("model-select");
    this.notice = document.getElementById("model-notice");
    this.input = document.getElementById("chat-input");
    this.form = document.getElementById("composer");
    this.sendBtn = document.getElementById("chat-send");
    this.stopBtn = document.getElementById("chat-stop");
    this.settingsPanel = new ChatSettingsPanel(this);

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
      if (this.chat) this.settingsPanel.save({ model: this.select.value || null }, false);
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
    // Configured models first, grouped by provider; those without a key sit behind a toggle.
    this.pickable = fillModelPicker(this.select, models);
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

  /** Show a conversation, loaded from the server (or the empty state for a new one).
   * Resolves to false when the conversation does not exist (any more). */
  async show(id) {
    const token = ++this.showing;
    this.editing = null;
    if (!id) {
      this.chat = null;
      this.settingsPanel.fill();
      this.render();
      return true;
    }
    let chat;
    try {
      chat = await this.store.load(id);
    } catch (err) {
      // 401: the key dialog opens, and the chat is shown again once a key is saved
      if (token !== this.showing || err.status === 401) return true;
      this.chat = null;
      this.settingsPanel.fill();
      this.render();
      toast(err.status === 404 ? t("chat.not_found") : t("error.generic", { msg: err.display || err.message }), "error");
      return false;
    }
    if (token !== this.showing) return true;
    this.chat = chat;
    if (chat.settings.model) this.chooseModel(chat.settings.model);
    this.settingsPanel.fill();
    this.render();
    return true;
  }

  newChat() {
    if (this.streaming) this.stop();
    this.showing += 1;
    this.chat = null;
    this.editing = null;
    this.settingsPanel.draft = {};
    this.settingsPanel.fill();
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
      const el = h("article", { class: "msg msg-user", testid: "message-user", "data-index": index });
      if (this.editing === index) {
        el.append(this.editForm(msg, index));
        return el;
      }
      el.append(h("div", { class: "msg-who" }, t("chat.you")), h("div", { class: "msg-body" }, msg.content));
      if (!this.streaming) {
        el.append(
          h(
            "div",
            { class: "msg-actions" },
            h("button", { type: "button", class: "btn btn-ghost btn-small", testid: "edit-message", "data-action": "edit" }, t("chat.edit")),
          ),
        );
      }
      return el;
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
    const notice = !msg.pending && msg.hanlin ? guardNotice(msg.hanlin.guard) : null;
    if (notice) parts.push(notice);

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
      const actions = h("div", { class: "msg-actions" }, copy);
      if (msg.trace_id) actions.append(feedbackBar(msg, { onSaved: (m) => this.saveFeedback(m) }));
      const last = this.chat && this.chat.messages[this.chat.messages.length - 1] === msg;
      if (last && !this.streaming) {
        actions.append(
          h(
            "button",
            { type: "button", class: "btn btn-ghost btn-small", testid: "regenerate", "data-action": "regenerate" },
            t("chat.regenerate"),
          ),
        );
      }
      parts.push(actions);
    }
    el.replaceChildren(...parts);
  }

  /** A user message being edited: its text in a box, then "Save and send" or "Cancel". */
  editForm(msg, index) {
    const input = h("textarea", {
      class: "edit-input",
      testid: "edit-input",
      rows: "3",
      "aria-label": t("chat.edit.label"),
    });
    input.value = msg.content;
    const form = h(
      "form",
      { class: "edit-form", testid: "edit-form" },
      input,
      h("p", { class: "muted small" }, t("chat.edit.note")),
      h(
        "div",
        { class: "edit-actions" },
        h("button", { type: "button", class: "btn btn-ghost btn-small", testid: "edit-cancel", "data-action": "edit-cancel" }, t("chat.edit.cancel")),
        h("button", { type: "submit", class: "btn btn-primary btn-small", testid: "edit-send" }, t("chat.edit.send")),
      ),
    );
    form.addEventListener("submit", (e) => {
      e.preventDefault();
      this.editAndResend(index, input.value.trim());
    });
    input.addEventListener("keydown", (e) => {
      if (e.key === "Escape") {
        this.editing = null;
        this.render();
      }
    });
    requestAnimationFrame(() => input.focus());
    return form;
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
    const action = e.target.closest("[data-action]");
    if (action && this.chat && !this.streaming) {
      const index = Number(action.closest("[data-index]").dataset.index);
      const kind = action.dataset.action;
      if (kind === "regenerate") this.regenerate();
      else {
        this.editing = kind === "edit" ? index : null;
        this.render();
      }
      return;
    }
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
    this.controller = new AbortController(); // busy from here: a second Enter waits
    this.setStreamingUi(true);
    try {
      if (!this.chat) {
        const settings = { ...this.settingsPanel.draft, model };
        this.chat = await this.store.create({ title: text.slice(0, 60), settings });
        this.settingsPanel.draft = {};
        this.navigate(this.chat.id, { silent: true });
      } else if (this.chat.settings.model !== model) {
        this.chat.settings = await this.store.updateSettings(this.chat.id, { model });
      }
      const user = { role: "user", content: text };
      await this.store.append(this.chat.id, user);
      this.chat.messages.push(user);
    } catch (err) {
      this.controller = null;
      this.setStreamingUi(false);
      toast(t("chat.save_failed", { msg: err.display || err.message }), "error");
      return;
    }
    this.input.value = "";
    this.autosize();
    this.onChatsChanged();
    await this.answer(this.chat, this.chat.messages.length, model);
  }

  /** Answer the last assistant message again, in its place. */
  async regenerate() {
    const chat = this.chat;
    const index = chat ? chat.messages.length - 1 : -1;
    if (index < 1 || chat.messages[index].role !== "assistant" || this.streaming) return;
    if (!this.select.value) {
      toast(t("chat.model.none"), "error");
      return;
    }
    await this.answer(chat, index, this.select.value, true);
  }

  /** Replace user message `index` with `text`, drop what followed, and ask again. */
  async editAndResend(index, text) {
    const chat = this.chat;
    if (!chat || !text || this.streaming) return;
    if (!this.select.value) {
      toast(t("chat.model.none"), "error");
      return;
    }
    const user = { role: "user", content: text };
    this.controller = new AbortController(); // busy: a second click waits
    try {
      await this.store.replaceFrom(chat.id, index, [user]);
    } catch (err) {
      this.controller = null;
      toast(t("chat.save_failed", { msg: err.display || err.message }), "error");
      return;
    }
    this.editing = null;
    chat.messages.splice(index, chat.messages.length - index, user);
    this.onChatsChanged();
    await this.answer(chat, index + 1, this.select.value);
  }

  /**
   * Stream an answer to the messages before `index` into a new assistant message there (it
   * replaces message `index` and any after it), then keep it on the server: appended, or in
   * place of the old answer when `replace`.
   */
  async answer(chat, index, model, replace = false) {
    const history = chat.messages
      .slice(0, index)
      .filter((m) => !m.error && (m.role === "user" || m.content))
      .map((m) => ({ role: m.role, content: m.role === "assistant" ? displayText(m) : m.content }));
    const msg = { role: "assistant", content: "", model, pending: true };
    chat.messages.splice(index, chat.messages.length - index, msg);
    this.controller = this.controller || new AbortController();
    this.streamingMsg = msg;
    this.render();
    try {
      await streamChat(this.settingsPanel.body(model, history), {
        signal: this.controller.signal,
        onTrace: (id) => (msg.trace_id = id),
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
      });
    } catch (err) {
      if (err.name === "AbortError") msg.stopped = true;
      else msg.error = t("error.generic", { msg: err.display || err.message });
    }
    msg.pending = false;
    const kb = kbNameOf(model);
    if (kb) sourceNames(kb); // warm the cache the citation panel reads
    try {
      if (replace) await this.store.replaceFrom(chat.id, index, [msg]);
      else await this.store.append(chat.id, msg);
    } catch (err) {
      toast(t("chat.save_failed", { msg: err.display || err.message }), "error");
    }
    this.controller = null;
    this.streamingMsg = null;
    if (this.chat === chat) this.render();
    this.setStreamingUi(false);
    this.onChatsChanged();
  }

  /** Keep an answer's new feedback with the conversation (its messages from there on are
   * written again as they are; not while another answer streams in after them). */
  async saveFeedback(msg) {
    const chat = this.chat;
    const index = chat ? chat.messages.indexOf(msg) : -1;
    if (index < 0 || this.streaming) return;
    try {
      await this.store.replaceFrom(chat.id, index, chat.messages.slice(index));
    } catch (err) {
      toast(t("chat.save_failed", { msg: err.display || err.message }), "error");
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
