// The HTTP client: JSON requests, OpenAI-style SSE streaming over fetch, uploads with progress,
// and the API key (kept in localStorage, sent as a Bearer token). A 401 anywhere dispatches
// "hanlin:auth-required" so the app can ask for a key.

import { errorText } from "./error-text.js";

const KEY_STORAGE = "hanlin.apiKey";

export function getApiKey() {
  try {
    return localStorage.getItem(KEY_STORAGE) || "";
  } catch {
    return "";
  }
}

export function setApiKey(key) {
  try {
    if (key) localStorage.setItem(KEY_STORAGE, key);
    else localStorage.removeItem(KEY_STORAGE);
  } catch {
    /* storage disabled: the key cannot be kept */
  }
}

export class ApiError extends Error {
  constructor(status, message, { hint = null, type = null, code = null, params = null } = {}) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.hint = hint;
    this.type = type;
    this.code = code;
    this.params = params || {};
  }

  /** For showing to a person: the code worded in the UI's language, else message — hint. */
  get display() {
    return errorText(this);
  }
}

function authHeaders(extra = {}) {
  const headers = { ...extra };
  const key = getApiKey();
  if (key) headers.Authorization = `Bearer ${key}`;
  return headers;
}

function authRequired() {
  window.dispatchEvent(new CustomEvent("hanlin:auth-required"));
}

/** Build an ApiError from a server error body ({"error": {...}} or FastAPI's {"detail": ...}). */
function errorFrom(status, body, fallback) {
  let message = fallback;
  let extra = {};
  if (body && typeof body === "object") {
    const e = body.error;
    if (e && typeof e === "object") {
      message = e.message || fallback;
      extra = { hint: e.hint ?? null, type: e.type ?? null, code: e.code ?? null, params: e.params ?? null };
    } else if (typeof e === "string") {
      message = e;
    } else if (typeof body.detail === "string") {
      message = body.detail;
    } else if (Array.isArray(body.detail)) {
      message = body.detail.map((d) => d.msg || JSON.stringify(d)).join("; ");
    }
  }
  if (status === 401) authRequired();
  return new ApiError(status, message, extra);
}

async function errorFromResponse(resp) {
  let body = null;
  try {
    body = await resp.json();
  } catch {
    /* not JSON */
  }
  return errorFrom(resp.status, body, `${resp.status} ${resp.statusText || "error"}`);
}

/** JSON request; resolves to the parsed body (null for 204), throws ApiError. */
export async function request(method, path, body = undefined, { signal } = {}) {
  const init = { method, headers: authHeaders({ Accept: "application/json" }), signal };
  if (body instanceof FormData) {
    init.body = body; // multipart: the browser sets the type with its boundary
  } else if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let resp;
  try {
    resp = await fetch(path, init);
  } catch (err) {
    if (err.name === "AbortError") throw err;
    throw new ApiError(0, err.message || String(err), { type: "network" });
  }
  if (!resp.ok) throw await errorFromResponse(resp);
  if (resp.status === 204) return null;
  const text = await resp.text();
  return text ? JSON.parse(text) : null;
}

const enc = encodeURIComponent;

export const api = {
  models: () => request("GET", "/v1/models?all=true"),
  health: () => request("GET", "/api/health"),
  listKbs: () => request("GET", "/api/kb"),
  getKb: (name) => request("GET", `/api/kb/${enc(name)}`),
  createKb: (name) => request("POST", "/api/kb", { name }),
  deleteKb: (name) => request("DELETE", `/api/kb/${enc(name)}`),
  documents: (name, limit = 100, offset = 0) =>
    request("GET", `/api/kb/${enc(name)}/documents?limit=${limit}&offset=${offset}`),
  // Document keys are often absolute paths: pass them as a query parameter, not in the path.
  deleteDocument: (name, doc) => request("DELETE", `/api/kb/${enc(name)}/documents?doc=${enc(doc)}`),
  documentChunks: (name, doc) =>
    request("GET", `/api/kb/${enc(name)}/documents/chunks?doc=${enc(doc)}`),
  addUrls: (name, urls) => request("POST", `/api/kb/${enc(name)}/urls`, { urls }),
  sync: (name) => request("POST", `/api/kb/${enc(name)}/sync`),
  job: (name, job) => request("GET", `/api/kb/${enc(name)}/jobs/${enc(job)}`),
  cancelJob: (name, job) => request("POST", `/api/kb/${enc(name)}/jobs/${enc(job)}/cancel`),
  deleteFailed: (name, file) => request("DELETE", `/api/kb/${enc(name)}/failed?file=${enc(file)}`),
  embedders: (name) => request("GET", `/api/kb/${enc(name)}/embedders`),
  reembed: (name, model) => request("POST", `/api/kb/${enc(name)}/reembed`, { model }),
  search: (name, query, mode, k) =>
    request("POST", `/api/kb/${enc(name)}/search`, { query, mode, k }),
  conversations: (q = "", limit = 100, offset = 0) =>
    request("GET", `/api/conversations?limit=${limit}&offset=${offset}${q ? `&q=${enc(q)}` : ""}`),
  conversation: (id) => request("GET", `/api/conversations/${enc(id)}`),
  createConversation: (body) => request("POST", "/api/conversations", body),
  updateConversation: (id, body) => request("PATCH", `/api/conversations/${enc(id)}`, body),
  deleteConversation: (id) => request("DELETE", `/api/conversations/${enc(id)}`),
  appendMessage: (id, message) =>
    request("POST", `/api/conversations/${enc(id)}/messages`, message),
  replaceMessages: (id, start, messages) =>
    request("PUT", `/api/conversations/${enc(id)}/messages`, { start, messages }),
  traces: (params) => request("GET", `/api/traces?${new URLSearchParams(params)}`),
  trace: (id) => request("GET", `/api/traces/${enc(id)}`),
  traceStats: (params) => request("GET", `/api/traces/stats?${new URLSearchParams(params)}`),
  rateTrace: (id, rating, comment) =>
    request("POST", `/api/traces/${enc(id)}/rating`, { rating, comment: comment || null }),
  evalDatasets: () => request("GET", "/api/evals/datasets"),
  evalDataset: (ref, offset = 0, limit = 50) =>
    request("GET", `/api/evals/datasets/${enc(ref)}?offset=${offset}&limit=${limit}`),
  importEvalDataset: (file, name) => {
    const form = new FormData();
    form.append("file", file);
    return request("POST", `/api/evals/datasets${name ? `?name=${enc(name)}` : ""}`, form);
  },
  evalFromTraces: (body) => request("POST", "/api/evals/datasets/from-traces", body),
  evalMetrics: () => request("GET", "/api/evals/metrics"),
  evalRuns: (limit = 200) => request("GET", `/api/evals/runs?limit=${limit}`),
  evalRun: (id) => request("GET", `/api/evals/runs/${enc(id)}`),
  evalResults: (id, params) =>
    request("GET", `/api/evals/runs/${enc(id)}/results?${new URLSearchParams(params)}`),
  startEvalRun: (body) => request("POST", "/api/evals/runs", body),
  cancelEvalRun: (id) => request("POST", `/api/evals/runs/${enc(id)}/cancel`),
  resumeEvalRun: (id) => request("POST", `/api/evals/runs/${enc(id)}/resume`),
  deleteEvalRun: (id) => request("DELETE", `/api/evals/runs/${enc(id)}`),
  compareEvalRuns: (a, b, top = 50) =>
    request("GET", `/api/evals/compare?${new URLSearchParams({ a, b, top })}`),
};

/** GET `path` with the API key and save the response as a file named `filename`. */
export async function download(path, filename) {
  let resp;
  try {
    resp = await fetch(path, { headers: authHeaders() });
  } catch (err) {
    throw new ApiError(0, err.message || String(err), { type: "network" });
  }
  if (!resp.ok) throw await errorFromResponse(resp);
  const url = URL.createObjectURL(await resp.blob());
  const link = document.createElement("a");
  link.href = url;
  link.download = filename;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

const sourceNameCache = new Map(); // kb name → Promise<Map<uri, display name>>

/**
 * A knowledge base's source URIs mapped to their display names (from GET /api/kb/{name}).
 * Uploads are stored under generated file names; a citation or search hit that names such a
 * file is shown with the name it was uploaded as. Cached per knowledge base; `refresh` reloads.
 */
export function sourceNames(kb, { refresh = false } = {}) {
  if (refresh || !sourceNameCache.has(kb)) {
    const names = api
      .getKb(kb)
      .then((info) => new Map(((info && info.sources) || []).filter((s) => s.uri && s.name).map((s) => [s.uri, s.name])))
      .catch(() => {
        sourceNameCache.delete(kb);
        return new Map();
      });
    sourceNameCache.set(kb, names);
  }
  return sourceNameCache.get(kb);
}

/** The knowledge base a chat model answers from: "kb:name" or "hanlin:kb:name@model". */
export function kbNameOf(model) {
  const m = /^(?:hanlin:)?kb:([^@]+)/.exec(model || "");
  return m ? m[1] : null;
}

/**
 * Split an SSE byte stream into events. Yields {event, data} with `data` the joined data lines.
 * Handles CRLF, comments and events split across network chunks.
 */
export async function* readSSE(body) {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  let event = "message";
  let data = [];
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true });
      let nl;
      while ((nl = buffer.indexOf("\n")) >= 0) {
        let line = buffer.slice(0, nl);
        buffer = buffer.slice(nl + 1);
        if (line.endsWith("\r")) line = line.slice(0, -1);
        if (line === "") {
          if (data.length) yield { event, data: data.join("\n") };
          event = "message";
          data = [];
        } else if (line.startsWith(":")) {
          continue;
        } else {
          const colon = line.indexOf(":");
          const field = colon < 0 ? line : line.slice(0, colon);
          let val = colon < 0 ? "" : line.slice(colon + 1);
          if (val.startsWith(" ")) val = val.slice(1);
          if (field === "data") data.push(val);
          else if (field === "event") event = val;
        }
      }
    }
    if (data.length) yield { event, data: data.join("\n") };
  } finally {
    reader.releaseLock();
  }
}

/**
 * POST /v1/chat/completions with stream: true; calls onChunk(chunk) for every parsed chunk, and
 * onTrace(id) first with the answer's trace id (the X-Trace-Id header) when the server traces.
 * Resolves when the stream ends ([DONE] or EOF); throws ApiError, or AbortError when stopped.
 */
export async function streamChat(body, { signal, onChunk, onTrace }) {
  let resp;
  try {
    resp = await fetch("/v1/chat/completions", {
      method: "POST",
      headers: authHeaders({ "Content-Type": "application/json", Accept: "text/event-stream" }),
      body: JSON.stringify({ ...body, stream: true, stream_options: { include_usage: true } }),
      signal,
    });
  } catch (err) {
    if (err.name === "AbortError") throw err;
    throw new ApiError(0, err.message || String(err), { type: "network" });
  }
  if (!resp.ok) throw await errorFromResponse(resp);
  const traceId = resp.headers.get("X-Trace-Id");
  if (traceId && onTrace) onTrace(traceId);
  for await (const { data } of readSSE(resp.body)) {
    if (data === "[DONE]") return;
    let chunk;
    try {
      chunk = JSON.parse(data);
    } catch {
      continue; // a keep-alive or a line we do not understand
    }
    if (chunk.error) throw errorFrom(chunk.error.status || 500, chunk, "stream error");
    onChunk(chunk);
  }
}

/**
 * Upload one file with XMLHttpRequest (fetch has no upload progress).
 * onProgress(fraction 0..1) while sending; resolves to the 202 body ({job, files}).
 */
export function uploadFile(kbName, file, { onProgress, signal } = {}) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", `/api/kb/${enc(kbName)}/files`);
    const key = getApiKey();
    if (key) xhr.setRequestHeader("Authorization", `Bearer ${key}`);
    xhr.setRequestHeader("Accept", "application/json");
    xhr.responseType = "text";
    xhr.upload.addEventListener("progress", (e) => {
      if (e.lengthComputable && onProgress) onProgress(e.loaded / e.total);
    });
    xhr.addEventListener("load", () => {
      let body = null;
      try {
        body = xhr.responseText ? JSON.parse(xhr.responseText) : null;
      } catch {
        /* not JSON */
      }
      if (xhr.status >= 200 && xhr.status < 300) resolve(body);
      else reject(errorFrom(xhr.status, body, `${xhr.status} ${xhr.statusText || "error"}`));
    });
    xhr.addEventListener("error", () => reject(new ApiError(0, "upload failed", { type: "network" })));
    xhr.addEventListener("abort", () => reject(new DOMException("aborted", "AbortError")));
    if (signal) signal.addEventListener("abort", () => xhr.abort(), { once: true });
    const form = new FormData();
    form.append("files", file, file.name);
    xhr.send(form);
  });
}
