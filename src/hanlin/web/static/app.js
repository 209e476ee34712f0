// Entry point: wires the sidebar (chats, knowledge bases, compute, traces, evaluations), the hash
// router (#/chat/<id>, #/kb/<name>, #/compute/<tab>, #/traces?filters, #/traces/<id>,
// #/dashboard, #/evals/…, #/workflows/<name>), the citation side panel, the language toggle and the API-key dialog.

import { AgentView } from "./agent.js";
import { api, getApiKey, request, setApiKey, sourceNames } from "./api.js";
import { ChatView } from "./chat.js";
import { ComputeView } from "./compute.js";
import { ConnectionsView } from "./connections.js";
import { ConversationStore } from "./conversations.js";
import { DashboardView } from "./dashboard.js";
import { h, toast } from "./dom.js";
import { EvalsView } from "./evals.js";
import { applyI18n, t, toggleLang } from "./i18n.js";
import { KbView } from "./kb.js";
import { PromptsView } from "./prompts.js";
import { TraceDetailView } from "./trace-detail.js";
import { TracesView } from "./traces.js";
import { WorkflowsView } from "./workflows.js";

const state = { kbs: [], models: [], agents: [], route: { view: "chat", id: null } };
const store = new ConversationStore();

const els = {
  sidebar: document.getElementById("sidebar"),
  scrim: document.getElementById("scrim"),
  menu: document.getElementById("menu-toggle"),
  chatList: document.getElementById("chat-list"),
  chatSearch: document.getElementById("chat-search"),
  chatMore: document.getElementById("chat-more"),
  kbList: document.getElementById("kb-list"),
  agentList: document.getElementById("agent-list"),
  agentView: document.getElementById("agent-view"),
  chatView: document.getElementById("chat-view"),
  kbView: document.getElementById("kb-view"),
  computeView: document.getElementById("compute-view"),
  panel: document.getElementById("citation-panel"),
  keyDialog: document.getElementById("apikey-dialog"),
  keyInput: document.getElementById("apikey-input"),
  keyButton: document.getElementById("apikey-button"),
};

// --- views ---------------------------------------------------------------------------------

const chat = new ChatView({
  store,
  openCitation,
  onChatsChanged: () => refreshChats(),
  navigate: (id, { silent } = {}) => {
    const hash = `#/chat/${encodeURIComponent(id)}`;
    if (silent) {
      history.replaceState(null, "", hash);
      state.route = { view: "chat", id };
      renderChatList();
    } else location.hash = hash;
  },
});

const kb = new KbView({
  onKbsChanged: () => Promise.all([loadKbs(), loadModels()]),
  onChat: (name) => startChatWith(`kb:${name}`),
  onDeleted: async () => {
    await Promise.all([loadKbs(), loadModels()]);
    location.hash = "#/chat";
  },
});

const compute = new ComputeView();
const settings = new ConnectionsView({ onChanged: () => loadModels() });
const agent = new AgentView();
const traces = new TracesView();
const traceDetail = new TraceDetailView();
const dashboard = new DashboardView();
const evals = new EvalsView();
const prompts = new PromptsView();
const workflows = new WorkflowsView();

/** Show the chat view with no conversation selected (a new chat starts on the first message). */
function goNewChat() {
  if (location.hash !== "#/chat") location.hash = "#/chat";
  else route();
  chat.newChat();
}

function startChatWith(model) {
  try {
    localStorage.setItem("hanlin.model", model);
  } catch {
    /* not persisted */
  }
  goNewChat();
  chat.chooseModel(model);
}

// --- data ----------------------------------------------------------------------------------

async function loadModels() {
  try {
    const res = await api.models();
    state.models = (res && res.data) || [];
  } catch (err) {
    state.models = [];
    if (err.status !== 401) toast(t("error.generic", { msg: err.display || err.message }), "error");
  }
  chat.setModels(state.models);
  prompts.setModels(state.models);
}

async function loadKbs() {
  try {
    const res = await api.listKbs();
    state.kbs = (res && res.data) || [];
  } catch (err) {
    state.kbs = [];
    if (err.status !== 401) toast(t("error.generic", { msg: err.display || err.message }), "error");
  }
  renderKbList();
}

async function loadAgents() {
  try {
    const res = await request("GET", "/v1/agents");
    state.agents = ((res && res.data) || []).filter((a) => !a.error);
  } catch (err) {
    state.agents = [];
    if (err.status !== 401 && err.status !== 403) toast(t("error.generic", { msg: err.display || err.message }), "error");
  }
  renderAgentList();
  if (state.route.view === "agent" && state.route.id) agent.show(state.route.id, state.agents);
}

/** The sidebar's conversations from the server (after importing this browser's old ones). */
async function loadChats() {
  try {
    const { imported, failed } = await store.importLocal();
    if (imported) toast(t("chat.imported", { n: imported }));
    if (failed) toast(t("chat.import_failed", { n: failed }), "error");
  } catch (err) {
    if (err.status !== 401 && err.status !== 403) toast(t("error.generic", { msg: err.display || err.message }), "error");
  }
  await refreshChats();
}

async function refreshChats() {
  try {
    await store.refresh();
  } catch (err) {
    if (err.status !== 401 && err.status !== 403) toast(t("error.generic", { msg: err.display || err.message }), "error");
  }
  renderChatList();
}

async function deleteChat(c) {
  if (!window.confirm(t("chat.delete.confirm", { title: c.title || t("chat.untitled") }))) return;
  try {
    await store.remove(c.id);
  } catch (err) {
    if (err.status !== 404) {
      toast(t("error.generic", { msg: err.display || err.message }), "error");
      return;
    }
  }
  if (chat.chat && chat.chat.id === c.id) {
    chat.stop();
    chat.chat = null;
    location.hash = "#/chat";
    chat.render();
  }
  await refreshChats();
}

/** Turn a conversation's sidebar entry into a title field; Enter saves, Escape cancels. */
function startRename(c, li) {
  const input = h("input", {
    class: "side-rename",
    testid: "chat-rename-input",
    maxlength: "200",
    "aria-label": t("chat.rename.label"),
  });
  input.value = c.title || "";
  let done = false;
  const finish = async (save) => {
    if (done) return;
    done = true;
    const title = input.value.trim();
    if (save && title !== c.title) {
      try {
        await store.rename(c.id, title);
        if (chat.chat && chat.chat.id === c.id) chat.chat.title = title;
      } catch (err) {
        toast(t("error.generic", { msg: err.display || err.message }), "error");
      }
    }
    renderChatList();
  };
  input.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.isComposing && e.keyCode !== 229) {
      e.preventDefault();
      finish(true);
    } else if (e.key === "Escape") {
      e.stopPropagation();
      finish(false);
    }
  });
  input.addEventListener("blur", () => finish(true));
  li.replaceChildren(input);
  input.focus();
  input.select();
}

// --- sidebar -------------------------------------------------------------------------------

function renderAgentList() {
  if (!state.agents.length) {
    els.agentList.replaceChildren(h("li", { class: "side-empty muted" }, t("agent.list.empty")));
    return;
  }
  els.agentList.replaceChildren(
    ...state.agents.map((a) => {
      const active = state.route.view === "agent" && state.route.id === a.name;
      return h(
        "li",
        { class: active ? "active" : null, testid: "agent-item", "data-name": a.name },
        h(
          "a",
          { href: `#/agent/${encodeURIComponent(a.name)}`, class: "side-link", "aria-current": active ? "page" : null, title: a.description || a.name },
          h("span", { class: "side-label" }, a.name),
          h("span", { class: "side-sub" }, a.mode === "planner" ? "planner" : ""),
        ),
      );
    }),
  );
}

function renderChatList() {
  const chats = store.list();
  els.chatMore.hidden = chats.length >= store.total;
  if (!chats.length) {
    const empty = store.query ? t("chat.search.none") : t("chat.list.empty");
    els.chatList.replaceChildren(h("li", { class: "side-empty muted", testid: "chat-list-empty" }, empty));
    return;
  }
  els.chatList.replaceChildren(
    ...chats.map((c) => {
      const active = state.route.view === "chat" && state.route.id === c.id;
      const link = h(
        "a",
        {
          href: `#/chat/${encodeURIComponent(c.id)}`,
          class: "side-link",
          "aria-current": active ? "page" : null,
          title: c.title || t("chat.untitled"),
        },
        h("span", { class: "side-label" }, c.title || t("chat.untitled")),
        c.settings.model ? h("span", { class: "side-sub" }, c.settings.model) : null,
      );
      const rename = h(
        "button",
        { type: "button", class: "icon-btn side-del", testid: "chat-rename", "aria-label": `${t("chat.rename")}: ${c.title || ""}`, title: t("chat.rename") },
        h("span", { "aria-hidden": "true" }, "✎"),
      );
      const del = h(
        "button",
        { type: "button", class: "icon-btn side-del", testid: "chat-delete", "aria-label": `${t("chat.delete")}: ${c.title || ""}`, title: t("chat.delete") },
        h("span", { "aria-hidden": "true" }, "✕"),
      );
      const li = h("li", { class: active ? "active" : null, testid: "chat-item", "data-id": c.id }, link, rename, del);
      rename.addEventListener("click", () => startRename(c, li));
      del.addEventListener("click", () => deleteChat(c));
      return li;
    }),
  );
}

function renderKbList() {
  if (!state.kbs.length) {
    els.kbList.replaceChildren(h("li", { class: "side-empty muted" }, t("kb.list.empty")));
    return;
  }
  els.kbList.replaceChildren(
    ...state.kbs.map((k) => {
      const active = state.route.view === "kb" && state.route.id === k.name;
      return h(
        "li",
        { class: active ? "active" : null, testid: "kb-item", "data-name": k.name },
        h(
          "a",
          { href: `#/kb/${encodeURIComponent(k.name)}`, class: "side-link", "aria-current": active ? "page" : null },
          h("span", { class: "side-label" }, k.name),
          h("span", { class: "side-count", title: t("docs.title") }, String(k.documents ?? "")),
        ),
      );
    }),
  );
}

function setSidebar(open) {
  els.sidebar.classList.toggle("open", open);
  els.scrim.hidden = !open;
  els.menu.setAttribute("aria-expanded", open ? "true" : "false");
}

// --- routing -------------------------------------------------------------------------------

function parseHash() {
  const [path, query = ""] = location.hash.replace(/^#\/?/, "").split("?");
  const parts = path.split("/");
  const views = ["kb", "compute", "agent", "settings", "traces", "dashboard", "evals", "prompts", "workflows"];
  const view = views.includes(parts[0]) ? parts[0] : "chat";
  const id = parts[1] ? decodeURIComponent(parts.slice(1).join("/")) : null;
  return { view, id, query };
}

/** Mark the sidebar's trace links: the one of the page shown is the current page. */
function markTraceNav(view) {
  for (const link of document.querySelectorAll("[data-nav]")) {
    const here = link.dataset.nav === view;
    link.closest("li").classList.toggle("active", here);
    if (here) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
}

function route() {
  state.route = parseHash();
  setSidebar(false);
  closeCitation();
  const { view, id } = state.route;
  els.chatView.hidden = view !== "chat";
  els.kbView.hidden = view !== "kb";
  els.computeView.hidden = view !== "compute";
  els.agentView.hidden = view !== "agent";
  settings.el.hidden = view !== "settings";
  traces.el.hidden = !(view === "traces" && !id);
  traceDetail.el.hidden = !(view === "traces" && id);
  dashboard.el.hidden = view !== "dashboard";
  evals.el.hidden = view !== "evals";
  prompts.el.hidden = view !== "prompts";
  workflows.el.hidden = view !== "workflows";
  markTraceNav(view);
  if (view !== "compute") compute.markNav(null);
  if (view === "agent" && id) {
    agent.show(id, state.agents);
  } else if (view === "agent") {
    location.hash = "#/chat";
    return;
  } else if (view === "settings") {
    settings.show();
  } else if (view === "traces" && id) {
    traceDetail.show(id);
  } else if (view === "traces") {
    traces.show(state.route.query);
  } else if (view === "dashboard") {
    dashboard.show();
  } else if (view === "evals") {
    evals.show(id, state.route.query);
  } else if (view === "prompts") {
    prompts.show(id);
  } else if (view === "workflows") {
    workflows.show(id, state.route.query);
  } else if (view === "compute") {
    compute.show(id);
  } else if (view === "kb" && id) {
    kb.show(id);
  } else if (view === "kb") {
    location.hash = "#/chat";
    return;
  } else if (!chat.streaming || !chat.chat || chat.chat.id !== id) {
    chat.show(id).then((found) => {
      if (!found && location.hash !== "#/chat") location.hash = "#/chat";
    });
  }
  renderChatList();
  renderKbList();
  renderAgentList();
}

// --- citation panel ------------------------------------------------------------------------

let panelOpener = null;
let panelCitation = null;

async function openCitation(c, opener, kbName) {
  const names = kbName ? await sourceNames(kbName) : null;
  const shown = names && names.get(c.source) ? { ...c, source: names.get(c.source) } : c;
  panelOpener = opener || null;
  panelCitation = shown;
  fillCitation(shown);
  els.panel.hidden = false;
  document.body.classList.add("panel-open");
  els.panel.focus();
}

function fillCitation(c) {
  const setField = (id, value) => {
    const dd = document.getElementById(id);
    const dt = document.getElementById(`${id}-label`);
    const empty = value === null || value === undefined || value === "";
    dd.hidden = empty;
    if (dt) dt.hidden = empty;
    if (!empty && typeof value === "string") dd.textContent = value;
    else if (!empty) dd.replaceChildren(value);
  };
  document.getElementById("citation-n").textContent = `[${c.n}]`;
  document.getElementById("citation-title").textContent = c.title || c.doc || c.source || "";
  const src = c.source || c.doc || "";
  setField(
    "citation-source",
    /^https?:\/\//i.test(src)
      ? h("a", { href: src, target: "_blank", rel: "noopener noreferrer" }, src)
      : h("code", {}, src),
  );
  setField("citation-headings", Array.isArray(c.heading_path) ? c.heading_path.join(" › ") : "");
  let page = "";
  if (c.page) page = c.page_end && c.page_end !== c.page ? `${c.page}–${c.page_end}` : String(c.page);
  setField("citation-page", page);
  setField(
    "citation-span",
    Number.isFinite(c.char_start) && Number.isFinite(c.char_end) ? `${c.char_start}–${c.char_end}` : "",
  );
  setField("citation-score", typeof c.score === "number" ? c.score.toFixed(4) : "");
  document.getElementById("citation-snippet").textContent = c.snippet || c.text || "";
}

function closeCitation() {
  if (els.panel.hidden) return;
  els.panel.hidden = true;
  panelCitation = null;
  document.body.classList.remove("panel-open");
  if (panelOpener && document.contains(panelOpener)) panelOpener.focus();
  panelOpener = null;
}

// --- API key dialog ------------------------------------------------------------------------

function askForKey() {
  els.keyButton.hidden = false;
  if (els.keyDialog.open) return;
  els.keyInput.value = getApiKey();
  els.keyDialog.showModal();
  els.keyInput.focus();
}

async function reloadAll() {
  await Promise.all([loadKbs(), loadModels(), loadAgents(), loadChats()]);
  if (state.route.view === "chat" && state.route.id && !chat.streaming) chat.show(state.route.id);
  if (state.route.view === "kb" && state.route.id) kb.refresh();
  if (state.route.view === "compute") compute.loadLists(true);
  if (["traces", "dashboard", "evals", "prompts", "workflows"].includes(state.route.view)) route();
}

// --- wiring --------------------------------------------------------------------------------

function init() {
  applyI18n();
  if (getApiKey()) els.keyButton.hidden = false;

  document.getElementById("lang-toggle").addEventListener("click", toggleLang);
  document.getElementById("new-chat").addEventListener("click", () => {
    goNewChat();
    renderChatList();
    setSidebar(false);
  });
  els.menu.addEventListener("click", () => setSidebar(!els.sidebar.classList.contains("open")));
  els.scrim.addEventListener("click", () => setSidebar(false));
  document.getElementById("citation-close").addEventListener("click", closeCitation);
  document.addEventListener("keydown", (e) => {
    if (e.key === "Escape") {
      closeCitation();
      setSidebar(false);
    }
  });

  document.getElementById("kb-create-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    const input = document.getElementById("kb-name-input");
    const name = input.value.trim();
    if (!name) return;
    try {
      await api.createKb(name);
      input.value = "";
      toast(t("kb.created", { name }));
      await Promise.all([loadKbs(), loadModels()]);
      location.hash = `#/kb/${encodeURIComponent(name)}`;
    } catch (err) {
      toast(t("error.generic", { msg: err.display || err.message }), "error");
    }
  });

  els.keyButton.addEventListener("click", askForKey);
  document.getElementById("apikey-form").addEventListener("submit", () => {
    setApiKey(els.keyInput.value.trim());
    reloadAll();
  });
  document.getElementById("apikey-cancel").addEventListener("click", () => els.keyDialog.close());
  document.getElementById("apikey-forget").addEventListener("click", () => {
    setApiKey("");
    els.keyInput.value = "";
    els.keyDialog.close();
  });
  window.addEventListener("hanlin:auth-required", askForKey);

  window.addEventListener("hanlin:lang", () => {
    renderChatList();
    renderKbList();
    renderAgentList();
    chat.setModels(state.models);
    if (state.route.view === "chat") chat.render();
    else if (state.route.view === "compute") compute.render();
    else if (state.route.view === "agent") agent.show(state.route.id, state.agents);
    else if (state.route.view === "kb") kb.render();
    if (panelCitation) fillCitation(panelCitation);
  });

  window.addEventListener("hashchange", route);
  // Chats made in another tab or on another device show up when this tab is looked at again.
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "visible" && !chat.streaming) refreshChats();
  });
  let searchTimer = 0;
  els.chatSearch.addEventListener("input", () => {
    clearTimeout(searchTimer);
    searchTimer = setTimeout(async () => {
      try {
        await store.refresh(els.chatSearch.value.trim());
      } catch (err) {
        toast(t("error.generic", { msg: err.display || err.message }), "error");
      }
      renderChatList();
    }, 200);
  });
  els.chatMore.addEventListener("click", async () => {
    try {
      await store.more();
    } catch (err) {
      toast(t("error.generic", { msg: err.display || err.message }), "error");
    }
    renderChatList();
  });

  route();
  reloadAll();
}

init();
