// The knowledge-base view: stats, drag-and-drop upload with per-file progress and ingest status,
// adding URLs and syncing (background jobs, shown in the same list), the document list with a
// chunk viewer per document, and the search playground (fused / keyword / dense scores side by side).

import { api, sourceNames, uploadFile } from "./api.js";
import { h, toast } from "./dom.js";
import { reasonText } from "./error-text.js";
import { formatBytes, formatTime, t } from "./i18n.js";
import { chooseEmbedder } from "./reembed.js";

const POLL_MS = 700;
const UPLOAD_CONCURRENCY = 3;
const DOC_PAGE = 100;
const TERMINAL = new Set(["done", "failed", "cancelled"]);

/**
 * A failure reason in the UI's language, worded when it is shown (so a language switch re-words
 * it): a string as is, an API error by its code, a job's file by its reason_code.
 */
function shownReason(r) {
  if (typeof r === "string") return r;
  return r.display || reasonText(r) || r.message || "";
}

export class KbView {
  /**
   * @param {object} opts
   * @param {() => Promise<void>} opts.onKbsChanged  refresh the sidebar list and the model picker
   * @param {(kb: string) => void} opts.onChat  start a chat with kb:<name>
   * @param {() => void} opts.onDeleted  after the knowledge base was deleted
   */
  constructor({ onKbsChanged, onChat, onDeleted }) {
    this.onKbsChanged = onKbsChanged;
    this.onChat = onChat;
    this.onDeleted = onDeleted;
    this.name = null;
    this.info = null;
    this.docs = [];
    this.docsTotal = 0;
    this.uploads = new Map(); // kb name → [item]
    this.queue = [];
    this.active = 0;
    this.search = null; // {query, mode, results, ms, error}
    this.seq = 0;

    this.titleEl = document.getElementById("kb-title");
    this.statsEl = document.getElementById("kb-stats");
    this.dropzone = document.getElementById("dropzone");
    this.fileInput = document.getElementById("file-input");
    this.uploadList = document.getElementById("upload-list");
    this.docList = document.getElementById("doc-list");
    this.searchForm = document.getElementById("search-form");
    this.searchInput = document.getElementById("search-input");
    this.searchK = document.getElementById("search-k");
    this.resultsEl = document.getElementById("search-results");
    this.urlForm = document.getElementById("url-form");
    this.urlInput = document.getElementById("url-input");
    this.chunkDialog = document.getElementById("chunk-dialog");
    this.chunkTitle = document.getElementById("chunk-title");
    this.chunkList = document.getElementById("chunk-list");

    this.urlForm.addEventListener("submit", (e) => {
      e.preventDefault();
      this.addUrl();
    });
    document.getElementById("kb-sync").addEventListener("click", () => this.sync());
    document.getElementById("kb-reembed").addEventListener("click", () => this.reembed());

    document.getElementById("kb-delete").addEventListener("click", () => this.deleteKb());
    document.getElementById("kb-chat").addEventListener("click", () => this.onChat(this.name));
    document.getElementById("upload-clear").addEventListener("click", () => this.clearFinished());
    this.fileInput.addEventListener("change", () => {
      this.addFiles([...this.fileInput.files]);
      this.fileInput.value = "";
    });
    this.dropzone.addEventListener("click", (e) => {
      if (e.target !== this.fileInput && !e.target.closest("label")) this.fileInput.click();
    });
    this.dropzone.addEventListener("keydown", (e) => {
      if (e.key === "Enter" || e.key === " ") {
        e.preventDefault();
        this.fileInput.click();
      }
    });
    for (const type of ["dragenter", "dragover"]) {
      this.dropzone.addEventListener(type, (e) => {
        e.preventDefault();
        this.dropzone.classList.add("dragging");
      });
    }
    for (const type of ["dragleave", "dragend"]) {
      this.dropzone.addEventListener(type, () => this.dropzone.classList.remove("dragging"));
    }
    this.dropzone.addEventListener("drop", (e) => {
      e.preventDefault();
      this.dropzone.classList.remove("dragging");
      const files = e.dataTransfer ? [...e.dataTransfer.files] : [];
      if (files.length) this.addFiles(files);
    });
    this.searchForm.addEventListener("submit", (e) => {
      e.preventDefault();
      this.runSearch();
    });
    this.searchForm.addEventListener("change", (e) => {
      // Switching the mode re-runs the last query, so the scores can be compared directly.
      if (e.target.name === "search-mode" && this.searchInput.value.trim()) this.runSearch();
    });
  }

  async show(name) {
    const changed = name !== this.name;
    this.name = name;
    if (changed) {
      this.info = null;
      this.docs = [];
      this.docsTotal = 0;
      this.search = null;
      this.searchInput.value = "";
    }
    this.render();
    await this.refresh();
  }

  /** Reload the knowledge base's info and documents. */
  async refresh() {
    const name = this.name;
    if (!name) return;
    const seq = ++this.seq;
    try {
      const [info, docs] = await Promise.all([api.getKb(name), api.documents(name, DOC_PAGE, 0)]);
      if (seq !== this.seq || name !== this.name) return;
      this.info = info;
      this.docs = (docs && docs.data) || [];
      this.docsTotal = docs && Number.isFinite(docs.total) ? docs.total : this.docs.length;
    } catch (err) {
      if (name === this.name) toast(t("error.generic", { msg: err.display || err.message }), "error");
    }
    this.render();
  }

  render() {
    if (!this.name) return;
    this.titleEl.textContent = this.name;
    const info = this.info;
    if (info) {
      const stats = info.stats || info;
      this.statsEl.textContent = t("kb.stats", {
        documents: stats.documents ?? this.docsTotal,
        chunks: stats.chunks ?? "–",
        size: formatBytes(stats.size_bytes ?? info.size_bytes),
      });
      if (info.embedding_model) {
        this.statsEl.title = t("kb.embedding", { model: info.embedding_model });
      }
    } else {
      this.statsEl.textContent = t("common.loading");
    }
    this.renderUploads();
    this.renderDocs();
    this.renderResults();
  }

  // --- uploads -----------------------------------------------------------------------------

  addFiles(files) {
    const kb = this.name;
    if (!kb) return;
    const list = this.uploads.get(kb) || [];
    for (const file of files) {
      const item = {
        key: `u${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`,
        kb,
        file,
        name: file.name,
        size: file.size,
        progress: 0,
        status: "uploading",
        reason: null,
        chunks: null,
        job: null,
        uploadId: null,
      };
      list.push(item);
      this.queue.push(item);
    }
    this.uploads.set(kb, list);
    this.renderUploads();
    this.pump();
  }

  pump() {
    while (this.active < UPLOAD_CONCURRENCY && this.queue.length) {
      const item = this.queue.shift();
      this.active += 1;
      this.upload(item).finally(() => {
        this.active -= 1;
        this.pump();
      });
    }
  }

  async upload(item) {
    try {
      const res = await uploadFile(item.kb, item.file, {
        onProgress: (p) => {
          item.progress = p;
          this.renderUploadItem(item);
        },
      });
      item.progress = 1;
      item.file = null; // the bytes are on the server now
      item.job = res && res.job;
      const entry = res && res.files && (res.files.find((f) => f.filename === item.name) || res.files[0]);
      if (entry) {
        item.uploadId = entry.upload_id;
        item.status = entry.status || "queued";
        item.reason = entry.reason ? entry : null;
      } else {
        item.status = "queued";
      }
      this.renderUploadItem(item);
      if (item.job && !TERMINAL.has(item.status)) this.poll(item);
      else this.finished(item);
    } catch (err) {
      item.status = "failed";
      item.reason = err;
      this.renderUploadItem(item);
    }
  }

  /** Poll GET /api/kb/{kb}/jobs/{job} until this file is done or failed. */
  async poll(item) {
    for (;;) {
      await new Promise((r) => setTimeout(r, POLL_MS));
      let job;
      try {
        job = await api.job(item.kb, item.job);
      } catch (err) {
        if (err.status === 404 || err.status === 401 || err.status === 403) {
          item.status = "failed";
          item.reason = err;
          this.renderUploadItem(item);
          return;
        }
        continue; // a transient error: keep polling
      }
      if (item.whole) {
        // a sync: the job as a whole, with how many of the files it found are finished
        item.status = job.status === "running" ? "running" : job.status;
        item.reason = job.error || null;
        item.progress = job.progress || null;
        this.renderUploadItem(item);
        if (TERMINAL.has(item.status)) {
          this.finished(item);
          return;
        }
        continue;
      }
      const files = (job && job.files) || [];
      const f =
        files.find((x) => item.uploadId && x.upload_id === item.uploadId) ||
        files.find((x) => x.filename === item.name) ||
        (files.length === 1 ? files[0] : null);
      if (f) {
        item.status = f.status || item.status;
        item.reason = f.reason ? f : null;
        item.chunks = f.chunks ?? item.chunks;
      } else if (job && TERMINAL.has(job.status)) {
        item.status = job.status;
      }
      if (job && job.status === "failed" && !TERMINAL.has(item.status)) {
        item.status = "failed";
        item.reason = item.reason || job.error || null;
      }
      this.renderUploadItem(item);
      if (TERMINAL.has(item.status)) {
        this.finished(item);
        return;
      }
    }
  }

  /** Ask the server to cancel this file's job; the poll picks up the cancelled status. */
  async cancel(item) {
    item.cancelling = true;
    this.renderUploadItem(item);
    try {
      await api.cancelJob(item.kb, item.job);
    } catch (err) {
      item.cancelling = false;
      this.renderUploadItem(item);
      if (err.status !== 409) toast(err.display || err.message, "error"); // 409: it just finished
    }
  }

  /** POST the URL in the form; each URL becomes a row of the list, polled like an upload. */
  async addUrl() {
    const kb = this.name;
    const url = this.urlInput.value.trim();
    if (!kb || !url) return;
    if (!/^https?:\/\//i.test(url)) {
      toast(t("url.invalid"), "error");
      return;
    }
    let res;
    try {
      res = await api.addUrls(kb, [url]);
    } catch (err) {
      toast(t("error.generic", { msg: err.display || err.message }), "error");
      return;
    }
    this.urlInput.value = "";
    const list = this.uploads.get(kb) || [];
    for (const f of (res && res.files) || []) {
      const item = this.jobItem(kb, res.job, f.filename);
      item.uploadId = f.upload_id;
      item.status = f.status || "queued";
      item.reason = f.reason ? f : null;
      list.push(item);
      if (TERMINAL.has(item.status)) this.finished(item);
      else this.poll(item);
    }
    this.uploads.set(kb, list);
    this.renderUploads();
  }

  /** Start a sync job (every source re-read; failed files retried) and follow it in the list. */
  async sync() {
    const kb = this.name;
    if (!kb) return;
    let res;
    try {
      res = await api.sync(kb);
    } catch (err) {
      toast(t("error.generic", { msg: err.display || err.message }), "error");
      return;
    }
    const item = this.jobItem(kb, res.job, t("docs.sync.name"));
    item.whole = true;
    item.status = res.status === "running" ? "running" : res.status;
    this.uploads.set(kb, [...(this.uploads.get(kb) || []), item]);
    this.renderUploads();
    if (TERMINAL.has(item.status)) this.finished(item);
    else this.poll(item);
  }

  /** Choose a model and start a re-embed job, followed in the list with its chunk progress. */
  async reembed() {
    const kb = this.name;
    if (!kb) return;
    const model = await chooseEmbedder(kb);
    if (!model || kb !== this.name) return;
    let res;
    try {
      res = await api.reembed(kb, model);
    } catch (err) {
      toast(t("error.generic", { msg: err.display || err.message }), "error");
      return;
    }
    const item = this.jobItem(kb, res.job, t("reembed.name", { model }));
    item.whole = true;
    item.kind = "reembed";
    item.status = res.status === "running" ? "running" : res.status;
    this.uploads.set(kb, [...(this.uploads.get(kb) || []), item]);
    this.renderUploads();
    if (TERMINAL.has(item.status)) this.finished(item);
    else this.poll(item);
  }

  /** A row of the upload list for a server-side job (no bytes to send). */
  jobItem(kb, job, name) {
    return {
      key: `j${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`,
      kb,
      file: null,
      name,
      size: null,
      progress: null,
      status: "queued",
      reason: null,
      chunks: null,
      job,
      uploadId: null,
      whole: false,
    };
  }

  finished(item) {
    sourceNames(item.kb, { refresh: true }); // a new upload has a display name to look up
    if (item.kb === this.name) this.refresh();
    this.onKbsChanged();
  }

  clearFinished() {
    const list = this.uploads.get(this.name) || [];
    this.uploads.set(
      this.name,
      list.filter((i) => !TERMINAL.has(i.status)),
    );
    this.renderUploads();
  }

  renderUploads() {
    const list = this.uploads.get(this.name) || [];
    this.uploadList.replaceChildren(...list.map((item) => this.uploadItemEl(item)));
    document.getElementById("upload-clear").hidden = !list.some((i) => TERMINAL.has(i.status));
  }

  renderUploadItem(item) {
    if (item.kb !== this.name) return;
    const old = this.uploadList.querySelector(`[data-key="${item.key}"]`);
    if (old) old.replaceWith(this.uploadItemEl(item));
    else this.renderUploads();
    document.getElementById("upload-clear").hidden = !(this.uploads.get(this.name) || []).some((i) =>
      TERMINAL.has(i.status),
    );
  }

  uploadItemEl(item) {
    const statusText =
      item.status === "uploading"
        ? t("upload.status.uploading", { pct: Math.round(item.progress * 100) })
        : t(`upload.status.${item.status}`);
    const busy = !TERMINAL.has(item.status);
    const bar =
      item.status === "uploading"
        ? h("progress", { max: "100", value: String(Math.round(item.progress * 100)), "aria-label": statusText })
        : busy
          ? h("progress", { "aria-label": statusText }) // indeterminate while the server works
          : null;
    return h(
      "li",
      {
        class: `upload-item status-${item.status}`,
        testid: "upload-item",
        "data-key": item.key,
        "data-status": item.status,
        "data-filename": item.name,
        "data-kind":
          item.kind || (item.whole ? "sync" : item.uploadId && item.uploadId.startsWith("url_") ? "url" : "file"),
      },
      h(
        "div",
        { class: "upload-line" },
        h("span", { class: "upload-name", title: item.name }, item.name),
        item.size === null ? null : h("span", { class: "upload-size" }, formatBytes(item.size)),
        h("span", { class: `pill pill-${item.status}`, testid: "upload-status" }, statusText),
        item.job && busy
          ? h(
              "button",
              {
                type: "button",
                class: "btn btn-ghost btn-small upload-cancel",
                testid: "upload-cancel",
                "aria-label": t("upload.cancel.label", { name: item.name }),
                disabled: item.cancelling || false,
                onclick: () => this.cancel(item),
              },
              t("upload.cancel"),
            )
          : null,
      ),
      bar,
      item.status === "done" && item.chunks !== null
        ? h("div", { class: "upload-detail" }, t("upload.chunks", { n: item.chunks }))
        : null,
      item.whole && item.progress && item.progress.total
        ? h(
            "div",
            { class: "upload-detail", testid: "job-progress" },
            t(item.kind === "reembed" ? "reembed.progress" : "upload.progress", item.progress),
          )
        : null,
      item.reason ? h("div", { class: "upload-reason", testid: "upload-reason" }, shownReason(item.reason)) : null,
    );
  }

  // --- documents ---------------------------------------------------------------------------

  renderDocs() {
    if (!this.docs.length) {
      this.docList.replaceChildren(h("p", { class: "muted", testid: "docs-empty" }, t("docs.empty")));
      return;
    }
    const head = h(
      "tr",
      {},
      ...["docs.col.title", "docs.col.chunks", "docs.col.status", "docs.col.updated"].map((k) =>
        h("th", { scope: "col" }, t(k)),
      ),
      h("th", { scope: "col" }, h("span", { class: "sr-only" }, t("common.actions"))),
    );
    const rows = this.docs.map((d) => {
      const status = d.status || "done";
      // Rows of files still being ingested, or that failed, have no document key yet.
      const label = d.title || d.source || d.doc;
      const actions = [];
      // A stored document's title opens its chunk viewer.
      const title = d.doc
        ? h(
            "button",
            {
              type: "button",
              class: "link doc-open",
              testid: "doc-chunks",
              title: t("docs.chunks.label", { doc: label }),
              onclick: () => this.openChunks(d),
            },
            label,
          )
        : label;
      if (d.doc) {
        const del = h(
          "button",
          {
            type: "button",
            class: "btn btn-ghost btn-small danger",
            testid: "doc-delete",
            "aria-label": `${t("docs.delete")}: ${d.title || d.source}`,
            title: t("docs.delete"),
          },
          "✕",
        );
        del.addEventListener("click", () => this.deleteDoc(d));
        actions.push(del);
      } else if (status === "failed") {
        actions.push(
          h(
            "button",
            {
              type: "button",
              class: "btn btn-ghost btn-small",
              testid: "doc-retry",
              title: t("docs.retry.title"),
              onclick: () => this.sync(),
            },
            t("docs.retry"),
          ),
        );
        if (d.file) {
          actions.push(
            h(
              "button",
              {
                type: "button",
                class: "btn btn-ghost btn-small danger",
                testid: "doc-forget",
                title: t("docs.forget.label", { name: label }),
                "aria-label": t("docs.forget.label", { name: label }),
                onclick: () => this.forgetFailed(d),
              },
              t("docs.forget"),
            ),
          );
        }
      }
      return h(
        "tr",
        { testid: "doc-row", "data-doc": d.doc, "data-status": status },
        h(
          "td",
          { class: "doc-title" },
          h("div", {}, title),
          h("div", { class: "doc-source muted", title: d.source }, d.source || d.doc),
          d.reason ? h("div", { class: "upload-reason", testid: "doc-reason" }, reasonText(d)) : null,
        ),
        h("td", { class: "num" }, d.chunks ?? "–"),
        h("td", {}, h("span", { class: `pill pill-${status}`, testid: "doc-status" }, statusLabel(status))),
        h("td", { class: "nowrap" }, formatTime(d.updated_at)),
        h("td", {}, h("div", { class: "doc-actions" }, ...actions)),
      );
    });
    const table = h(
      "table",
      { class: "doc-table" },
      h("thead", {}, head),
      h("tbody", {}, ...rows),
    );
    const parts = [table];
    if (this.docsTotal > this.docs.length) {
      const more = h("button", { type: "button", class: "btn btn-ghost" }, t("docs.more"));
      more.addEventListener("click", async () => {
        try {
          const page = await api.documents(this.name, DOC_PAGE, this.docs.length);
          this.docs.push(...((page && page.data) || []));
          this.renderDocs();
        } catch (err) {
          toast(t("error.generic", { msg: err.display || err.message }), "error");
        }
      });
      parts.push(more);
    }
    this.docList.replaceChildren(...parts);
  }

  async deleteDoc(d) {
    if (!window.confirm(t("docs.delete.confirm", { doc: d.title || d.source || d.doc }))) return;
    try {
      await api.deleteDocument(this.name, d.doc);
      toast(t("docs.deleted"));
    } catch (err) {
      toast(t("error.generic", { msg: err.display || err.message }), "error");
    }
    await this.refresh();
    this.onKbsChanged();
  }

  /** Delete a failed file (its failure, source and stored upload): no sync retries it. */
  async forgetFailed(d) {
    const name = d.title || d.source || d.file;
    if (!window.confirm(t("docs.forget.confirm", { name }))) return;
    try {
      await api.deleteFailed(this.name, d.file);
      toast(t("docs.forgotten"));
    } catch (err) {
      toast(t("error.generic", { msg: err.display || err.message }), "error");
    }
    await this.refresh();
    this.onKbsChanged();
  }

  /** The chunk viewer: a document's chunks in order, with their headings, pages and offsets. */
  async openChunks(d) {
    const name = this.name;
    this.chunkTitle.textContent = t("chunks.title", { doc: d.title || d.source || d.doc });
    this.chunkList.replaceChildren(h("li", { class: "muted" }, t("common.loading")));
    if (!this.chunkDialog.open) this.chunkDialog.showModal();
    let res;
    try {
      res = await api.documentChunks(name, d.doc);
    } catch (err) {
      this.chunkList.replaceChildren(h("li", { class: "msg-error", role: "alert" }, err.display || err.message));
      return;
    }
    const chunks = (res && res.data) || [];
    if (!chunks.length) {
      this.chunkList.replaceChildren(h("li", { class: "muted" }, t("chunks.empty")));
      return;
    }
    this.chunkList.replaceChildren(
      ...chunks.map((c) => {
        const meta = [t("chunks.meta", { ord: c.ord, start: c.char_start, end: c.char_end })];
        if (c.page) meta.push(t("chunks.page", { page: c.page }));
        if (c.heading_path && c.heading_path.length) meta.push(c.heading_path.join(" › "));
        return h(
          "li",
          { class: "chunk", testid: "chunk", "data-ord": String(c.ord) },
          h("div", { class: "chunk-meta" }, meta.join(" · ")),
          h("p", { class: "chunk-text" }, c.text || ""),
        );
      }),
    );
  }

  async deleteKb() {
    const name = this.name;
    if (!name || !window.confirm(t("kb.delete.confirm", { name }))) return;
    try {
      await api.deleteKb(name);
      this.uploads.delete(name);
      toast(t("kb.deleted", { name }));
      this.name = null;
      this.onDeleted();
    } catch (err) {
      toast(t("error.generic", { msg: err.display || err.message }), "error");
    }
  }

  // --- search playground -------------------------------------------------------------------

  /** An uploaded file's name instead of the generated name it is stored under. */
  sourceLabel(source) {
    const sources = (this.info && this.info.sources) || [];
    const found = sources.find((s) => s.uri === source && s.name);
    return found ? found.name : source || "";
  }

  async runSearch() {
    const query = this.searchInput.value.trim();
    if (!query || !this.name) return;
    const mode = this.searchForm.querySelector('input[name="search-mode"]:checked').value;
    const k = Number(this.searchK.value) || 10;
    const started = performance.now();
    this.search = { query, mode, results: null, ms: 0, error: null };
    this.renderResults();
    const search = this.search;
    try {
      const res = await api.search(this.name, query, mode, k);
      search.results = (res && res.data) || [];
    } catch (err) {
      search.error = err.display || err.message;
    }
    search.ms = Math.round(performance.now() - started);
    if (this.search === search) this.renderResults();
  }

  renderResults() {
    const s = this.search;
    if (!s) {
      this.resultsEl.replaceChildren();
      return;
    }
    if (s.error) {
      this.resultsEl.replaceChildren(h("p", { class: "msg-error", role: "alert" }, s.error));
      return;
    }
    if (!s.results) {
      this.resultsEl.replaceChildren(h("p", { class: "muted" }, t("common.loading")));
      return;
    }
    if (!s.results.length) {
      this.resultsEl.replaceChildren(h("p", { class: "muted", testid: "search-empty" }, t("search.empty")));
      return;
    }
    const max = { fused: 0, keyword: 0, dense: 0 };
    for (const r of s.results) {
      const sc = r.scores || {};
      max.fused = Math.max(max.fused, r.score || 0);
      max.keyword = Math.max(max.keyword, sc.keyword || 0);
      max.dense = Math.max(max.dense, sc.dense || 0);
    }
    const items = s.results.map((r, i) => {
      const sc = r.scores || {};
      const ranks = r.ranks || {};
      const headings = Array.isArray(r.heading_path) ? r.heading_path.join(" › ") : "";
      const text = r.text || "";
      return h(
        "li",
        { class: "result", testid: "search-result" },
        h(
          "div",
          { class: "result-head" },
          h("span", { class: "result-rank" }, `#${i + 1}`),
          h("span", { class: "result-title" }, r.title || r.doc || ""),
          headings ? h("span", { class: "result-headings muted" }, headings) : null,
          r.page ? h("span", { class: "muted" }, `p. ${r.page}`) : null,
        ),
        h("p", { class: "result-text" }, text.length > 420 ? `${text.slice(0, 420)}…` : text),
        h(
          "div",
          { class: "scores", role: "group", "aria-label": "scores" },
          scoreCell("fused", r.score, max.fused, null, "score-fused"),
          scoreCell("keyword", sc.keyword, max.keyword, ranks.keyword, "score-keyword"),
          scoreCell("dense", sc.dense, max.dense, ranks.dense, "score-dense"),
        ),
        h("div", { class: "result-source muted" }, this.sourceLabel(r.source)),
      );
    });
    this.resultsEl.replaceChildren(
      h("p", { class: "muted small", testid: "search-summary" }, t("search.took", { n: s.results.length, ms: s.ms })),
      h("ol", { class: "results" }, ...items),
    );
  }
}

function statusLabel(status) {
  const key = `upload.status.${status}`;
  const label = t(key);
  return label === key ? status : label;
}

function scoreCell(kind, value, max, rank, testid) {
  const has = typeof value === "number" && Number.isFinite(value);
  const width = has && max > 0 ? Math.max(2, Math.round((value / max) * 100)) : 0;
  const fill = h("span");
  fill.style.width = `${width}%`; // CSSOM, not a style attribute: fine under a strict CSP
  let rankText = "";
  if (kind !== "fused") rankText = rank ? t("search.rank", { n: rank }) : t("search.norank");
  return h(
    "div",
    { class: `score score-${kind}`, testid, "data-value": has ? String(value) : "" },
    h("span", { class: "score-label" }, t(`search.${kind}`)),
    h("span", { class: "score-value" }, has ? value.toFixed(4) : "–"),
    h("span", { class: "score-bar", "aria-hidden": "true" }, fill),
    rankText ? h("span", { class: "score-rank muted" }, rankText) : null,
  );
}
