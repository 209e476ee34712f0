// UI strings in English and Chinese, the language choice, and applying it to the page.
// Static markup names its strings with data-i18n (text), data-i18n-placeholder,
// data-i18n-title and data-i18n-aria-label; dynamic views call t() and re-render on "hanlin:lang".

const STRINGS = {
  en: {
    "app.title": "Hanlin",
    "app.tagline": "Ask your documents",
    "nav.chats": "Chats",
    "nav.kbs": "Knowledge bases",
    "nav.menu": "Toggle sidebar",
    "nav.sidebar": "Chats and knowledge bases",
    "lang.toggle": "中文",
    "lang.toggle.label": "Switch language to Chinese",
    "chat.new": "New chat",
    "chat.untitled": "New conversation",
    "chat.delete": "Delete conversation",
    "chat.empty.title": "Ask your documents",
    "chat.empty.body":
      "Pick a knowledge base (kb:…) to get answers with numbered sources, or any model to chat directly.",
    "chat.model": "Model",
    "chat.model.kbs": "Knowledge bases",
    "chat.model.models": "Models",
    "chat.model.none": "No models available",
    "chat.model.unavailable": "Not configured (no API key)",
    "chat.input.placeholder": "Ask a question… (Enter to send, Shift+Enter for a new line)",
    "chat.input.label": "Message",
    "chat.send": "Send",
    "chat.stop": "Stop",
    "chat.copy": "Copy",
    "chat.copied": "Copied",
    "chat.you": "You",
    "chat.assistant": "Assistant",
    "chat.stopped": "Stopped.",
    "chat.thinking": "Searching and thinking…",
    "chat.sources": "Sources",
    "chat.closest": "Closest sources",
    "chat.list.empty": "No conversations yet.",
    "mode.extractive": "extractive",
    "mode.generative": "generative",
    "mode.refused": "no evidence",
    "mode.extractive.help": "Answer quoted from the best evidence sentences.",
    "mode.generative.help": "Answer written by the model from the evidence.",
    "mode.refused.help": "The documents hold no evidence for this question.",
    "refused.title": "Not found in the knowledge base",
    "cite.panel": "Source",
    "cite.close": "Close source panel",
    "cite.source": "Source",
    "cite.headings": "Section",
    "cite.page": "Page",
    "cite.span": "Characters",
    "cite.score": "Score",
    "cite.snippet": "Snippet",
    "cite.open": "Open source {n}",
    "kb.list.empty": "No knowledge bases yet. Create one below.",
    "kb.create": "Create",
    "kb.create.placeholder": "new-knowledge-base",
    "kb.create.label": "New knowledge base name",
    "kb.created": "Knowledge base “{name}” created.",
    "kb.deleted": "Knowledge base “{name}” deleted.",
    "kb.delete": "Delete knowledge base",
    "kb.delete.confirm": "Delete the knowledge base “{name}” and all its documents?",
    "kb.stats": "{documents} documents · {chunks} chunks · {size}",
    "kb.embedding": "Embedding model: {model}",
    "kb.chat": "Chat with this knowledge base",
    "kb.none": "Select or create a knowledge base.",
    "upload.title": "Upload documents",
    "upload.drop": "Drop files here",
    "upload.or": "or",
    "upload.pick": "choose files",
    "upload.hint": "Markdown, text, HTML, PDF, Word, CSV/JSON, code.",
    "upload.input.label": "Files to upload",
    "upload.status.uploading": "uploading {pct}%",
    "upload.status.queued": "queued",
    "upload.status.parsing": "parsing",
    "upload.status.embedding": "embedding",
    "upload.status.done": "done",
    "upload.status.failed": "failed",
    "upload.chunks": "{n} chunks",
    "upload.clear": "Clear finished",
    "docs.title": "Documents",
    "docs.empty": "No documents yet.",
    "docs.col.title": "Title",
    "docs.col.source": "Source",
    "docs.col.chunks": "Chunks",
    "docs.col.status": "Status",
    "docs.col.updated": "Updated",
    "docs.delete": "Delete document",
    "docs.delete.confirm": "Delete “{doc}” from the knowledge base?",
    "docs.deleted": "Document deleted.",
    "docs.more": "Show more",
    "search.title": "Search playground",
    "search.placeholder": "Search this knowledge base…",
    "search.label": "Search query",
    "search.go": "Search",
    "search.mode": "Mode",
    "search.mode.hybrid": "hybrid",
    "search.mode.dense": "dense",
    "search.mode.keyword": "keyword",
    "search.k": "Results",
    "search.empty": "No results.",
    "search.fused": "fused",
    "search.keyword": "keyword",
    "search.dense": "dense",
    "search.rank": "rank {n}",
    "search.norank": "not retrieved",
    "search.took": "{n} results in {ms} ms",
    "auth.title": "API key required",
    "auth.body": "This server requires an API key. Paste a key (hk-…); it is kept in this browser only.",
    "auth.label": "API key",
    "auth.save": "Save key",
    "auth.cancel": "Cancel",
    "auth.forget": "Forget key",
    "auth.button": "API key",
    "error.network": "Cannot reach the server: {msg}",
    "error.generic": "Something went wrong: {msg}",
    "error.forbidden": "The API key lacks the permission for this action.",
    "common.loading": "Loading…",
    "common.close": "Close",
    "common.delete": "Delete",
  },
  zh: {
    "app.title": "翰林",
    "app.tagline": "向你的文档提问",
    "nav.chats": "对话",
    "nav.kbs": "知识库",
    "nav.menu": "切换侧边栏",
    "nav.sidebar": "对话与知识库",
    "lang.toggle": "English",
    "lang.toggle.label": "切换为英文界面",
    "chat.new": "新对话",
    "chat.untitled": "新的对话",
    "chat.delete": "删除对话",
    "chat.empty.title": "向你的文档提问",
    "chat.empty.body": "选择一个知识库（kb:…）获得带编号出处的回答，或选择任意模型直接对话。",
    "chat.model": "模型",
    "chat.model.kbs": "知识库",
    "chat.model.models": "模型",
    "chat.model.none": "没有可用的模型",
    "chat.model.unavailable": "未配置（缺少 API 密钥）",
    "chat.input.placeholder": "输入问题…（回车发送，Shift+回车换行）",
    "chat.input.label": "消息",
    "chat.send": "发送",
    "chat.stop": "停止",
    "chat.copy": "复制",
    "chat.copied": "已复制",
    "chat.you": "你",
    "chat.assistant": "助手",
    "chat.stopped": "已停止。",
    "chat.thinking": "正在检索与思考…",
    "chat.sources": "出处",
    "chat.closest": "最接近的出处",
    "chat.list.empty": "还没有对话。",
    "mode.extractive": "摘录式",
    "mode.generative": "生成式",
    "mode.refused": "无依据",
    "mode.extractive.help": "回答摘录自最相关的证据句子。",
    "mode.generative.help": "回答由模型根据证据写成。",
    "mode.refused.help": "文档中没有与此问题相关的依据。",
    "refused.title": "知识库中没有找到答案",
    "cite.panel": "出处",
    "cite.close": "关闭出处面板",
    "cite.source": "来源",
    "cite.headings": "章节",
    "cite.page": "页码",
    "cite.span": "字符位置",
    "cite.score": "得分",
    "cite.snippet": "片段",
    "cite.open": "打开出处 {n}",
    "kb.list.empty": "还没有知识库，请在下方创建。",
    "kb.create": "创建",
    "kb.create.placeholder": "新知识库名称",
    "kb.create.label": "新知识库名称",
    "kb.created": "已创建知识库“{name}”。",
    "kb.deleted": "已删除知识库“{name}”。",
    "kb.delete": "删除知识库",
    "kb.delete.confirm": "删除知识库“{name}”及其全部文档？",
    "kb.stats": "{documents} 个文档 · {chunks} 个片段 · {size}",
    "kb.embedding": "向量模型：{model}",
    "kb.chat": "与此知识库对话",
    "kb.none": "请选择或创建一个知识库。",
    "upload.title": "上传文档",
    "upload.drop": "将文件拖放到这里",
    "upload.or": "或",
    "upload.pick": "选择文件",
    "upload.hint": "支持 Markdown、文本、HTML、PDF、Word、CSV/JSON、代码。",
    "upload.input.label": "要上传的文件",
    "upload.status.uploading": "上传中 {pct}%",
    "upload.status.queued": "排队中",
    "upload.status.parsing": "解析中",
    "upload.status.embedding": "向量化中",
    "upload.status.done": "完成",
    "upload.status.failed": "失败",
    "upload.chunks": "{n} 个片段",
    "upload.clear": "清除已完成",
    "docs.title": "文档",
    "docs.empty": "还没有文档。",
    "docs.col.title": "标题",
    "docs.col.source": "来源",
    "docs.col.chunks": "片段",
    "docs.col.status": "状态",
    "docs.col.updated": "更新时间",
    "docs.delete": "删除文档",
    "docs.delete.confirm": "从知识库中删除“{doc}”？",
    "docs.deleted": "文档已删除。",
    "docs.more": "显示更多",
    "search.title": "检索试验台",
    "search.placeholder": "在此知识库中检索…",
    "search.label": "检索词",
    "search.go": "检索",
    "search.mode": "模式",
    "search.mode.hybrid": "混合",
    "search.mode.dense": "向量",
    "search.mode.keyword": "关键词",
    "search.k": "结果数",
    "search.empty": "没有结果。",
    "search.fused": "融合",
    "search.keyword": "关键词",
    "search.dense": "向量",
    "search.rank": "第 {n} 名",
    "search.norank": "未召回",
    "search.took": "{n} 条结果，用时 {ms} 毫秒",
    "auth.title": "需要 API 密钥",
    "auth.body": "此服务器需要 API 密钥。请粘贴密钥（hk-…），它只保存在本浏览器中。",
    "auth.label": "API 密钥",
    "auth.save": "保存密钥",
    "auth.cancel": "取消",
    "auth.forget": "清除密钥",
    "auth.button": "API 密钥",
    "error.network": "无法连接服务器：{msg}",
    "error.generic": "出错了：{msg}",
    "error.forbidden": "此 API 密钥没有执行该操作的权限。",
    "common.loading": "加载中…",
    "common.close": "关闭",
    "common.delete": "删除",
  },
};

const STORAGE_KEY = "hanlin.lang";
export const LANGS = ["en", "zh"];

function initialLang() {
  try {
    const saved = localStorage.getItem(STORAGE_KEY);
    if (LANGS.includes(saved)) return saved;
  } catch {
    /* storage disabled: fall through to the browser's language */
  }
  const nav = (navigator.languages && navigator.languages[0]) || navigator.language || "en";
  return nav.toLowerCase().startsWith("zh") ? "zh" : "en";
}

let current = initialLang();

export function getLang() {
  return current;
}

/** Translate `key`, filling `{name}` placeholders from `vars`; falls back to English, then the key. */
export function t(key, vars = {}) {
  const s = STRINGS[current][key] ?? STRINGS.en[key] ?? key;
  return s.replace(/\{(\w+)\}/g, (m, name) => (name in vars ? String(vars[name]) : m));
}

export function applyI18n(root = document) {
  document.documentElement.lang = current === "zh" ? "zh-CN" : "en";
  document.title = `${t("app.title")} · ${t("app.tagline")}`;
  for (const el of root.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
  for (const attr of ["placeholder", "title", "aria-label"]) {
    for (const el of root.querySelectorAll(`[data-i18n-${attr}]`)) {
      el.setAttribute(attr, t(el.getAttribute(`data-i18n-${attr}`)));
    }
  }
}

export function setLang(lang) {
  if (!LANGS.includes(lang)) return;
  current = lang;
  try {
    localStorage.setItem(STORAGE_KEY, lang);
  } catch {
    /* not persisted; the choice still holds for this page */
  }
  applyI18n();
  window.dispatchEvent(new CustomEvent("hanlin:lang", { detail: { lang } }));
}

export function toggleLang() {
  setLang(current === "en" ? "zh" : "en");
}

/** Human-readable byte size. */
export function formatBytes(n) {
  if (!Number.isFinite(n)) return "–";
  const units = ["B", "KB", "MB", "GB", "TB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i += 1;
  }
  return `${n.toFixed(i === 0 ? 0 : 1)} ${units[i]}`;
}

/** Local date-time for an epoch (seconds) or ISO string. */
export function formatTime(value) {
  if (value === null || value === undefined || value === "") return "–";
  const d = typeof value === "number" ? new Date(value * 1000) : new Date(value);
  if (Number.isNaN(d.getTime())) return String(value);
  return d.toLocaleString(current === "zh" ? "zh-CN" : "en-GB", {
    year: "numeric",
    month: "2-digit",
    day: "2-digit",
    hour: "2-digit",
    minute: "2-digit",
  });
}
