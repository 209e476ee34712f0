// The words of the prompt pages (list, one prompt, the playground) in English and Chinese,
// following the page's language (i18n.js).

import { getLang } from "./i18n.js";

const TEXT = {
  en: {
    "list.title": "Prompts",
    "list.subtitle": "Named templates with versions that never change and labels that move. RAG and agents read theirs by label.",
    "list.empty": "No prompts yet.",
    "list.new": "New prompt",
    "list.new.placeholder": "name, e.g. support.greeting",
    "list.open": "Open",
    "col.name": "Name",
    "col.latest": "Latest",
    "col.labels": "Labels",
    "col.updated": "Updated",
    "col.version": "Version",
    "col.author": "Author",
    "col.created": "Created",
    "col.message": "Message",
    "back": "← All prompts",
    "new.note": "“{name}” has no versions yet: write its first one in the playground and save it.",
    "versions.title": "Versions",
    "versions.view": "View",
    "versions.use": "Open in playground",
    "version.title": "Version {n}",
    "version.by": "by {author}, {when}",
    "version.variables": "Variables",
    "version.none": "No variables.",
    "version.required": "required",
    "version.optional": "optional, default {value}",
    "version.optional.empty": "optional",
    "version.config": "Model config",
    "diff.title": "Diff",
    "diff.from": "From",
    "diff.to": "To",
    "diff.run": "Show diff",
    "diff.same": "These versions hold the same text, variables and config.",
    "labels.title": "Labels",
    "labels.label": "Label",
    "labels.version": "Version",
    "labels.move": "Move label",
    "labels.moved": "{label} now points at version {version}.",
    "labels.history": "History",
    "labels.was": "was {n}",
    "labels.admin": "Moving a label changes what every reader of it uses from its next answer: it needs an admin key.",
    "pg.title": "Playground",
    "pg.intro": "Fill the variables, pick a model and run. Edit the text to try a draft; save it as a new version when it works.",
    "pg.version": "Start from",
    "pg.text": "Template",
    "pg.draft": "Edited: runs as an unsaved draft",
    "pg.variables": "Variables",
    "pg.novars": "This template has no variables.",
    "pg.model": "Model",
    "pg.input": "User message (optional: the template becomes the system prompt)",
    "pg.temperature": "Temperature",
    "pg.max_tokens": "Max tokens",
    "pg.default": "default",
    "pg.run": "Run",
    "pg.running": "Running…",
    "pg.output": "Output",
    "pg.tokens": "Tokens in / out",
    "pg.latency": "Latency",
    "pg.cost": "Cost",
    "pg.served": "Served by",
    "pg.trace": "View trace",
    "pg.save.title": "Save as a new version",
    "pg.save.message": "What changed and why",
    "pg.save.label": "Then point label (optional)",
    "pg.save": "Save version",
    "pg.saved": "Saved as version {n}.",
    "pg.same": "Identical to version {n}: nothing saved.",
    "pg.bad_number": "“{name}” needs a number.",
    "pg.true": "true",
  },
  zh: {
    "list.title": "提示词",
    "list.subtitle": "具名模板：版本一经保存不再改变，标签可以移动。RAG 和智能体按标签读取各自的提示词。",
    "list.empty": "还没有提示词。",
    "list.new": "新建提示词",
    "list.new.placeholder": "名称，例如 support.greeting",
    "list.open": "打开",
    "col.name": "名称",
    "col.latest": "最新版本",
    "col.labels": "标签",
    "col.updated": "更新时间",
    "col.version": "版本",
    "col.author": "作者",
    "col.created": "创建时间",
    "col.message": "说明",
    "back": "← 全部提示词",
    "new.note": "“{name}”还没有版本：在下方试验场写出第一个版本并保存。",
    "versions.title": "版本",
    "versions.view": "查看",
    "versions.use": "在试验场中打开",
    "version.title": "版本 {n}",
    "version.by": "{author}，{when}",
    "version.variables": "变量",
    "version.none": "没有变量。",
    "version.required": "必填",
    "version.optional": "可选，默认 {value}",
    "version.optional.empty": "可选",
    "version.config": "模型配置",
    "diff.title": "差异",
    "diff.from": "从",
    "diff.to": "到",
    "diff.run": "显示差异",
    "diff.same": "这两个版本的文本、变量和配置完全相同。",
    "labels.title": "标签",
    "labels.label": "标签",
    "labels.version": "版本",
    "labels.move": "移动标签",
    "labels.moved": "{label} 现在指向版本 {version}。",
    "labels.history": "历史",
    "labels.was": "原为 {n}",
    "labels.admin": "移动标签会改变所有读取该标签之处的下一次回答，需要管理员密钥。",
    "pg.title": "试验场",
    "pg.intro": "填写变量、选择模型并运行。修改文本即可试验草稿；效果满意后保存为新版本。",
    "pg.version": "起始版本",
    "pg.text": "模板",
    "pg.draft": "已修改：将作为未保存的草稿运行",
    "pg.variables": "变量",
    "pg.novars": "此模板没有变量。",
    "pg.model": "模型",
    "pg.input": "用户消息（可选：模板将作为系统提示词）",
    "pg.temperature": "温度",
    "pg.max_tokens": "最大 token 数",
    "pg.default": "默认",
    "pg.run": "运行",
    "pg.running": "运行中…",
    "pg.output": "输出",
    "pg.tokens": "输入 / 输出 token",
    "pg.latency": "延迟",
    "pg.cost": "费用",
    "pg.served": "服务方",
    "pg.trace": "查看追踪",
    "pg.save.title": "保存为新版本",
    "pg.save.message": "改了什么、为什么",
    "pg.save.label": "随后指向标签（可选）",
    "pg.save": "保存版本",
    "pg.saved": "已保存为版本 {n}。",
    "pg.same": "与版本 {n} 完全相同：未保存。",
    "pg.bad_number": "“{name}”需要一个数字。",
    "pg.true": "是",
  },
};

/** A string of the prompt pages in the page's language, with {placeholders} filled. */
export function pt(key, vars = {}) {
  const s = (TEXT[getLang()] || TEXT.en)[key] ?? TEXT.en[key] ?? key;
  return s.replace(/\{(\w+)\}/g, (m, name) => (name in vars ? String(vars[name]) : m));
}

/**
 * The field names of a template (Python str.format: {name} or {name:spec}; {{ and }} are
 * literal braces), in order of first use — what the playground's variable form shows.
 */
export function templateFields(text) {
  const out = [];
  let i = 0;
  while (i < text.length) {
    const ch = text[i];
    if (ch === "{" && text[i + 1] === "{") i += 2;
    else if (ch === "}" && text[i + 1] === "}") i += 2;
    else if (ch === "{") {
      const end = text.indexOf("}", i);
      if (end < 0) break;
      const name = text.slice(i + 1, end).split(/[:!]/)[0];
      if (/^[A-Za-z_][A-Za-z0-9_]*$/.test(name) && !out.includes(name)) out.push(name);
      i = end + 1;
    } else i += 1;
  }
  return out;
}
