// Conversations kept on the server (/api/conversations), so every browser and device with the
// same API key sees the same chats. The history older versions kept in this browser's
// localStorage is imported once, then removed; chats are never written there again.

import { api } from "./api.js";

const LEGACY_KEY = "hanlin.chats";
const PAGE = 100;
// What an assistant message shows beside its text; stored as the message's `meta`.
const META_FIELDS = ["model", "citations", "hanlin", "usage", "error", "stopped", "trace_id", "feedback"];

/** A message as the UI holds it → {role, content, meta} for the server. */
export function toStored(msg) {
  const meta = {};
  for (const key of META_FIELDS) {
    const value = msg[key];
    if (value !== undefined && value !== null && value !== false && value !== "") meta[key] = value;
  }
  return { role: msg.role, content: msg.content || "", meta };
}

/** A stored message → the UI's shape ({role, content, model, citations, …}). */
export function fromStored(m) {
  return { ...(m.meta || {}), role: m.role, content: m.content };
}

/** A conversation as ChatView uses it: {id, title, settings, messages}. */
function toChat(c) {
  return {
    id: c.id,
    title: c.title,
    settings: { ...c.settings },
    messages: (c.messages || []).map(fromStored),
  };
}

export class ConversationStore {
  constructor() {
    this.items = []; // summaries, newest first: the sidebar
    this.total = 0;
    this.query = "";
  }

  list() {
    return this.items;
  }

  /** Reload the sidebar's list (the first page), optionally with a new search. */
  async refresh(query = this.query) {
    this.query = query;
    const res = await api.conversations(query, PAGE, 0);
    if (this.query !== query) return this.items; // a newer search answered first
    this.items = res.data;
    this.total = res.total;
    return this.items;
  }

  /** The next page of the list. */
  async more() {
    const res = await api.conversations(this.query, PAGE, this.items.length);
    const known = new Set(this.items.map((c) => c.id));
    this.items.push(...res.data.filter((c) => !known.has(c.id)));
    this.total = res.total;
  }

  async load(id) {
    return toChat(await api.conversation(id));
  }

  async create({ title = "", settings = {} } = {}) {
    const created = await api.createConversation({ title, settings });
    this.remember(created);
    return toChat(created);
  }

  async rename(id, title) {
    this.remember(await api.updateConversation(id, { title }), false);
  }

  /** Change some of a chat's settings; resolves to all of them. */
  async updateSettings(id, changes) {
    const summary = await api.updateConversation(id, { settings: changes });
    this.remember(summary, false);
    return summary.settings;
  }

  async remove(id) {
    await api.deleteConversation(id);
    const before = this.items.length;
    this.items = this.items.filter((c) => c.id !== id);
    this.total -= before - this.items.length;
  }

  async append(id, msg) {
    await api.appendMessage(id, toStored(msg));
    this.touch(id);
  }

  /** Replace the messages from index `start` on (regenerate, edit and resend). */
  async replaceFrom(id, start, msgs) {
    this.remember(await api.replaceMessages(id, start, msgs.map(toStored)));
  }

  /** Put a changed conversation in the list (first, when it was just used). */
  remember(summary, first = true) {
    const { messages, ...item } = summary;
    const i = this.items.findIndex((c) => c.id === item.id);
    if (i >= 0 && !first) {
      this.items[i] = item;
      return;
    }
    if (i >= 0) this.items.splice(i, 1);
    else this.total += 1;
    if (!this.query) this.items.unshift(item);
  }

  touch(id) {
    const i = this.items.findIndex((c) => c.id === id);
    if (i > 0) this.items.unshift(...this.items.splice(i, 1));
  }

  /**
   * Send the chats this browser kept in localStorage to the server, once. Each is imported
   * under its local id, so a reload half-way imports nothing twice; the ones the server refuses
   * stay in localStorage for the next load. Resolves to {imported, failed}.
   */
  async importLocal() {
    let chats;
    try {
      chats = JSON.parse(localStorage.getItem(LEGACY_KEY) || "[]");
    } catch {
      chats = [];
    }
    if (!Array.isArray(chats) || !chats.length) return { imported: 0, failed: 0 };
    const left = [];
    let imported = 0;
    for (const c of chats) {
      if (!c || !c.id || !Array.isArray(c.messages)) continue;
      const messages = c.messages
        .filter((m) => m && (m.role === "user" || m.role === "assistant"))
        .map((m) => toStored({ ...m, content: String(m.content || "") }));
      try {
        await api.createConversation({
          title: String(c.title || "").slice(0, 200),
          settings: c.model ? { model: String(c.model).slice(0, 300) } : {},
          messages,
          import_key: String(c.id).slice(0, 128),
          updated_at: Number.isFinite(c.updated) ? c.updated / 1000 : null,
        });
        imported += 1;
      } catch (err) {
        if (err.status === 401 || err.status === 403 || err.status === 0) throw err; // try later
        left.push(c); // refused as it is: kept for the next try, the rest go on
      }
    }
    try {
      if (left.length) localStorage.setItem(LEGACY_KEY, JSON.stringify(left));
      else localStorage.removeItem(LEGACY_KEY);
    } catch {
      /* storage disabled: nothing left to clean up */
    }
    return { imported, failed: left.length };
  }
}
