// A small, safe markdown renderer for chat answers. The whole text is HTML-escaped FIRST, so
// nothing in a model's output can become markup; only the constructs below are then turned
// into tags: fenced and inline code, headings, lists, quotes, rules, paragraphs, bold, italics,
// links (http/https/mailto only, rel=noopener) and [n] citation markers as clickable chips.
// Images are never rendered: `![alt](url)` shows as a link, so nothing loads from a remote host
// by itself (the server has already neutralised links to hosts outside guard.allowed_link_hosts).

const ESCAPES = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };

export function escapeHtml(s) {
  return String(s ?? "").replace(/[&<>"']/g, (c) => ESCAPES[c]);
}

const FOOTNOTE_LINE = /^\s*\[\d{1,3}\]:\s/;

/**
 * Remove the markdown footnote block the server appends for plain clients
 * ("\n\n[1]: title — source, p. 3" lines at the end). Only trailing definitions are removed.
 */
export function stripFootnotes(text) {
  const lines = String(text ?? "").split("\n");
  let end = lines.length;
  while (end > 0 && (lines[end - 1].trim() === "" || FOOTNOTE_LINE.test(lines[end - 1]))) end -= 1;
  const tail = lines.slice(end);
  if (!tail.some((l) => FOOTNOTE_LINE.test(l))) return String(text ?? "");
  return lines.slice(0, end).join("\n");
}

/** Citation numbers that appear as [n] / [n, m] markers in the text, in order of first use. */
export function citedNumbers(text) {
  const seen = [];
  for (const m of String(text ?? "").matchAll(/\[(\d{1,3}(?:\s*[,，]\s*\d{1,3})*)\](?!\()/g)) {
    for (const n of m[1].split(/\s*[,，]\s*/).map(Number)) if (!seen.includes(n)) seen.push(n);
  }
  return seen;
}

const SAFE_URL = /^(https?:\/\/|mailto:)/i;

function chip(n) {
  return (
    `<button type="button" class="cite-marker" data-cite="${n}" data-testid="citation-marker"` +
    ` aria-label="[${n}]">${n}</button>`
  );
}

/** Inline markup over already-escaped text. `cites` limits which [n] become chips (null: all). */
function inline(escaped, cites) {
  const held = [];
  const hold = (html) => {
    held.push(html);
    return `\u0000${held.length - 1}\u0000`;
  };
  let s = escaped.replace(/`([^`\n]+)`/g, (_, code) => hold(`<code>${code}</code>`));
  s = s.replace(/\[([^\]\n]+)\]\(([^)\s]+)\)/g, (m, label, url) => {
    // `url` is escaped text; &amp; in an attribute is what the browser expects.
    if (!SAFE_URL.test(url.replace(/&amp;/g, "&"))) return m;
    return hold(`<a href="${url}" target="_blank" rel="noopener noreferrer">${label}</a>`);
  });
  s = s.replace(/\[(\d{1,3}(?:\s*[,，]\s*\d{1,3})*)\]/g, (m, nums) => {
    const ns = nums.split(/\s*[,，]\s*/).map(Number);
    if (cites && !ns.every((n) => cites.has(n))) return m;
    return hold(`<span class="cite-group">${ns.map(chip).join("")}</span>`);
  });
  s = s.replace(/\*\*(?=\S)([^\n]*?\S)\*\*/g, "<strong>$1</strong>");
  s = s.replace(/__(?=\S)([^\n]*?\S)__/g, "<strong>$1</strong>");
  s = s.replace(/(^|[^*\w])\*(?=[^\s*])([^*\n]*?[^\s*])\*(?!\*)/g, "$1<em>$2</em>");
  return s.replace(/\u0000(\d+)\u0000/g, (_, i) => held[Number(i)]);
}

const LIST_ITEM = /^(\s*)([-*+]|\d{1,9}[.)])\s+(.*)$/;

/**
 * Render markdown to HTML. `options.citations`: iterable of citation numbers that exist
 * (markers for other numbers stay plain text); omit to turn every [n] into a chip.
 */
export function renderMarkdown(text, options = {}) {
  const cites = options.citations ? new Set(options.citations) : null;
  const lines = escapeHtml(text).replace(/\r\n?/g, "\n").split("\n");
  const out = [];
  let para = [];
  let list = null; // {tag, items: [string], start}
  let quote = [];

  const flushPara = () => {
    if (para.length) out.push(`<p>${para.map((l) => inline(l, cites)).join("<br>")}</p>`);
    para = [];
  };
  const flushList = () => {
    if (!list) return;
    const start = list.tag === "ol" && list.start !== 1 ? ` start="${list.start}"` : "";
    const items = list.items.map((it) => `<li>${inline(it, cites)}</li>`).join("");
    out.push(`<${list.tag}${start}>${items}</${list.tag}>`);
    list = null;
  };
  const flushQuote = () => {
    if (quote.length) out.push(`<blockquote>${renderMarkdownEscaped(quote, cites)}</blockquote>`);
    quote = [];
  };
  const flushAll = () => {
    flushPara();
    flushList();
    flushQuote();
  };

  for (let i = 0; i < lines.length; i += 1) {
    const line = lines[i];
    const fence = line.match(/^\s*(`{3,}|~{3,})\s*([\w+-]*)\s*$/);
    if (fence) {
      flushAll();
      const body = [];
      i += 1;
      while (i < lines.length && !lines[i].trim().startsWith(fence[1])) {
        body.push(lines[i]);
        i += 1;
      }
      const lang = fence[2] ? ` class="language-${fence[2]}"` : "";
      out.push(`<pre><code${lang}>${body.join("\n")}</code></pre>`);
      continue;
    }
    if (/^\s*&gt;/.test(line)) {
      flushPara();
      flushList();
      quote.push(line.replace(/^\s*&gt;\s?/, ""));
      continue;
    }
    if (quote.length && line.trim() !== "") {
      quote.push(line); // a lazy continuation line of the quote
      continue;
    }
    flushQuote();
    if (line.trim() === "") {
      flushPara();
      flushList();
      continue;
    }
    const heading = line.match(/^\s*(#{1,6})\s+(.*?)\s*#*\s*$/);
    if (heading) {
      flushPara();
      flushList();
      const level = Math.min(6, heading[1].length + 2);
      out.push(`<h${level}>${inline(heading[2], cites)}</h${level}>`);
      continue;
    }
    if (/^\s*([-*_])(\s*\1){2,}\s*$/.test(line)) {
      flushPara();
      flushList();
      out.push("<hr>");
      continue;
    }
    const item = line.match(LIST_ITEM);
    if (item) {
      flushPara();
      const tag = /\d/.test(item[2]) ? "ol" : "ul";
      if (list && list.tag !== tag) flushList();
      if (!list) list = { tag, items: [], start: tag === "ol" ? parseInt(item[2], 10) : 1 };
      list.items.push(item[3]);
      continue;
    }
    if (list && /^\s{2,}\S/.test(line)) {
      list.items[list.items.length - 1] += ` ${line.trim()}`;
      continue;
    }
    flushList();
    para.push(line.trim());
  }
  flushAll();
  return out.join("\n");
}

// Quotes hold lines that are already escaped: render them without escaping twice.
function renderMarkdownEscaped(lines, cites) {
  const unescaped = lines
    .join("\n")
    .replace(/&(lt|gt|quot|#39|amp);/g, (m, e) => ({ lt: "<", gt: ">", quot: '"', "#39": "'", amp: "&" })[e]);
  return renderMarkdown(unescaped, { citations: cites });
}
