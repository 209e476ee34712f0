// The chat's own settings (system prompt, temperature, max tokens; the model is saved here too):
// a panel under the model picker, kept with the conversation on the server — or, before a chat's
// first message, kept for the chat that message starts — and applied to every request it sends.

import { toast } from "./dom.js";
import { t } from "./i18n.js";

export class ChatSettingsPanel {
  /** @param {import("./chat.js").ChatView} view  whose chat (or none yet) the panel edits */
  constructor(view) {
    this.view = view;
    this.draft = {}; // settings chosen before the chat's first message
    this.button = document.getElementById("chat-settings-toggle");
    this.form = document.getElementById("chat-settings");
    this.systemInput = document.getElementById("setting-system");
    this.temperatureInput = document.getElementById("setting-temperature");
    this.maxTokensInput = document.getElementById("setting-max-tokens");
    this.button.addEventListener("click", () => this.toggle());
    this.form.addEventListener("submit", (e) => {
      e.preventDefault();
      this.submit();
    });
  }

  get current() {
    return this.view.chat ? this.view.chat.settings : this.draft;
  }

  toggle(open = this.form.hidden) {
    this.form.hidden = !open;
    this.button.setAttribute("aria-expanded", open ? "true" : "false");
    if (open) {
      this.fill();
      this.systemInput.focus();
    }
  }

  /** Show the current chat's settings (the button gets a dot when any is not the default). */
  fill() {
    const s = this.current;
    this.systemInput.value = s.system_prompt || "";
    this.temperatureInput.value = s.temperature ?? "";
    this.maxTokensInput.value = s.max_tokens ?? "";
    const custom = Boolean(s.system_prompt) || s.temperature != null || s.max_tokens != null;
    this.button.classList.toggle("is-set", custom);
  }

  async submit() {
    if (!this.form.reportValidity()) {
      toast(t("chat.settings.invalid"), "error");
      return;
    }
    const number = (input) => (input.value.trim() === "" ? null : Number(input.value));
    const changes = {
      system_prompt: this.systemInput.value.trim() || null,
      temperature: number(this.temperatureInput),
      max_tokens: number(this.maxTokensInput),
    };
    if (await this.save(changes)) {
      toast(t(this.view.chat ? "chat.settings.saved" : "chat.settings.new"));
      this.toggle(false);
    }
  }

  /** Keep `changes` with the chat on the server (or for the next new chat); true when saved. */
  async save(changes, show = true) {
    const chat = this.view.chat;
    if (!chat) {
      Object.assign(this.draft, changes);
      this.fill();
      return true;
    }
    try {
      chat.settings = await this.view.store.updateSettings(chat.id, changes);
    } catch (err) {
      toast(t("chat.save_failed", { msg: err.display || err.message }), "error");
      return false;
    }
    if (show && this.view.chat === chat) this.fill();
    return true;
  }

  /** The body of a chat completion over `history`, with these settings. */
  body(model, history) {
    const s = this.current;
    const body = { model, messages: [...history] };
    if (s.system_prompt) body.messages.unshift({ role: "system", content: s.system_prompt });
    if (s.temperature != null) body.temperature = s.temperature;
    if (s.max_tokens != null) body.max_tokens = s.max_tokens;
    return body;
  }
}
