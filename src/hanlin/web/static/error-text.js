// Server errors and failure reasons in the UI's language. The server sends a stable `code` and
// the `params` its English message is made of ({"error": {message, code, params, hint}}; a
// file's reason_code / reason_params); this module words the known codes in English and Chinese
// and falls back to the server's English message (plus hint) for a code it does not know.

import { getLang } from "./i18n.js";

const TEXT = {
  en: {
    kb_not_found: "There is no knowledge base “{kb}”.",
    kb_exists: "A knowledge base “{kb}” already exists.",
    invalid_kb_name: "“{name}” cannot be a knowledge-base name: use letters, digits, “_”, “-” or “.”.",
    document_not_found: "There is no document “{document}” in “{kb}”.",
    model_not_found: "There is no model “{model}”.",
    not_found: "Not found.",
    already_exists: "It already exists.",
    invalid_input: "Invalid value for “{param}”.",
    invalid_request: "Invalid request field “{param}”.",
    insufficient_scope: "This API key lacks the permission “{scope}”.",
    kb_not_allowed: "This API key may not use the knowledge base “{kb}”.",
    missing_api_key: "This server needs an API key.",
    invalid_api_key: "The API key is invalid or was revoked.",
    budget_exceeded: "The daily spending limit (${limit_usd}) is used up; the call was not made.",
    rate_limit_exceeded: "Too many requests to {provider}; try again in a moment.",
    "rate_limit_exceeded.retry": "Too many requests to {provider}; try again in {retry_after} s.",
    "rate_limit_exceeded.queue": "{provider} is busy: {queue_limit} calls are already waiting. Try again shortly.",
    missing_provider_key: "{provider} is not configured: add its API key in Settings → Connections.",
    provider_auth_failed: "{provider} refused the API key: check it in Settings → Connections.",
    upstream_timeout: "{provider} did not answer in time.",
    upstream_unavailable: "{provider} is unavailable right now.",
    request_too_large: "The request is larger than the limit of {limit_mb} MB.",
    file_too_large: "“{file}” is larger than the upload limit of {limit_mb} MB.",
    too_many_files: "Too many files in one upload (at most {limit}).",
    unsupported_file_type: "This file type ({ext}) is not supported. Supported: {supported}",
    content_mismatch: "The content is {found}, not what the extension {ext} promises.",
    empty_file: "The file is empty.",
    bad_file_name: "The file name is not allowed.",
    parse_failed: "The file could not be read: {detail}",
    parse_timeout: "Parsing took longer than {limit_s} s and was stopped (the file may be crafted to stall parsers).",
    parse_memory_exceeded: "Parsing needed more than {limit_mb} MB of memory and was stopped (possibly a decompression bomb).",
    parser_died: "The parser crashed on this file (memory limit {limit_mb} MB); the file may be damaged or crafted.",
    parse_nested_too_deep: "The file is nested too deeply to parse.",
    inflate_limit: "The file decompresses to more than {limit_mb} MB (possibly a decompression bomb).",
    zip_bomb: "The file looks like a zip bomb and was refused.",
    file_unreadable: "The file cannot be read: {detail}",
    download_failed: "Downloading {url} failed.",
    blocked_url: "This address is not allowed (private or local network).",
    fetch_failed: "The address could not be fetched.",
    connection_not_found: "There is no saved connection “{name}”.",
    connection_failed: "Cannot reach {url}.",
    connection_auth_failed: "The server refused the API key (HTTP {status}).",
    connection_bad_response: "{url} did not answer with a model list: is this the OpenAI-compatible base URL (…/v1)?",
    endpoint_blocked: "This address is not allowed for a model server: {url}",
    endpoint_unresolvable: "The host of {url} cannot be resolved.",
    base_url_required: "Enter the server's base URL.",
    invalid_connection_name: "“{name}” cannot be a connection name: use lowercase letters, digits, “_”, “-” or “.”.",
    provider_not_found: "Unknown provider “{provider}”.",
    busy: "An ingestion job is writing to this knowledge base; try again when it finishes.",
    no_usable_examples: "Nothing usable to import ({skipped} rows skipped): every example needs a question.",
    run_running: "Run {run} is still running: stop it first.",
    run_not_running: "Run {run} is not running ({status}).",
    prompt_not_found: "There is no prompt “{name}”.",
    prompt_version_not_found: "Prompt “{name}” has no version {version}.",
    prompt_label_not_found: "Prompt “{name}” has no label “{label}”.",
    prompt_incompatible: "Hanlin cannot fill the variable “{variable}” of “{name}”: give it a default before it gets this label.",
    prompt_store_corrupt: "The prompt registry cannot be read: the server's administrator must move or restore its file.",
  },
  zh: {
    kb_not_found: "知识库“{kb}”不存在。",
    kb_exists: "知识库“{kb}”已存在。",
    invalid_kb_name: "“{name}”不能用作知识库名称：请使用字母、数字、“_”、“-”或“.”。",
    document_not_found: "知识库“{kb}”中没有文档“{document}”。",
    model_not_found: "模型“{model}”不存在。",
    not_found: "未找到。",
    already_exists: "已存在。",
    invalid_input: "“{param}”的值无效。",
    invalid_request: "请求字段“{param}”无效。",
    insufficient_scope: "此 API 密钥缺少“{scope}”权限。",
    kb_not_allowed: "此 API 密钥无权使用知识库“{kb}”。",
    missing_api_key: "此服务器需要 API 密钥。",
    invalid_api_key: "API 密钥无效或已被吊销。",
    budget_exceeded: "今日消费额度（${limit_usd}）已用完，本次调用未执行。",
    rate_limit_exceeded: "对 {provider} 的请求过多，请稍后再试。",
    "rate_limit_exceeded.retry": "对 {provider} 的请求过多，请 {retry_after} 秒后再试。",
    "rate_limit_exceeded.queue": "{provider} 正忙：已有 {queue_limit} 个调用在排队，请稍后再试。",
    missing_provider_key: "{provider} 尚未配置：请在“设置 → 连接”中添加其 API 密钥。",
    provider_auth_failed: "{provider} 拒绝了 API 密钥：请在“设置 → 连接”中检查。",
    upstream_timeout: "{provider} 未能及时响应。",
    upstream_unavailable: "{provider} 当前不可用。",
    request_too_large: "请求超过了 {limit_mb} MB 的上限。",
    file_too_large: "“{file}”超过了 {limit_mb} MB 的上传上限。",
    too_many_files: "一次上传的文件过多（最多 {limit} 个）。",
    unsupported_file_type: "不支持此文件类型（{ext}）。支持的类型：{supported}",
    content_mismatch: "文件内容与扩展名 {ext} 不符（实际是 {found}）。",
    empty_file: "文件为空。",
    bad_file_name: "文件名不被允许。",
    parse_failed: "无法读取该文件：{detail}",
    parse_timeout: "解析超过 {limit_s} 秒，已被终止（文件可能被刻意构造以拖垮解析器）。",
    parse_memory_exceeded: "解析所需内存超过 {limit_mb} MB，已被终止（可能是解压炸弹）。",
    parser_died: "解析进程在此文件上崩溃（内存上限 {limit_mb} MB），文件可能已损坏或被刻意构造。",
    parse_nested_too_deep: "文件嵌套层级过深，无法解析。",
    inflate_limit: "文件解压后超过 {limit_mb} MB（可能是解压炸弹）。",
    zip_bomb: "该文件疑似 ZIP 炸弹，已被拒绝。",
    file_unreadable: "无法读取该文件：{detail}",
    download_failed: "下载 {url} 失败。",
    blocked_url: "不允许访问此地址（私有或本地网络）。",
    fetch_failed: "无法获取该地址。",
    connection_not_found: "没有已保存的连接“{name}”。",
    connection_failed: "无法连接 {url}。",
    connection_auth_failed: "服务器拒绝了 API 密钥（HTTP {status}）。",
    connection_bad_response: "{url} 返回的不是模型列表：请确认这是 OpenAI 兼容的基础地址（…/v1）。",
    endpoint_blocked: "此地址不能用作模型服务器：{url}",
    endpoint_unresolvable: "无法解析 {url} 的主机名。",
    base_url_required: "请输入服务器的基础地址。",
    invalid_connection_name: "“{name}”不能用作连接名称：请使用小写字母、数字、“_”、“-”或“.”。",
    provider_not_found: "未知的提供方“{provider}”。",
    busy: "有导入任务正在写入此知识库，请在其完成后重试。",
    no_usable_examples: "没有可导入的样例（跳过了 {skipped} 行）：每个样例都需要一个问题。",
    run_running: "运行 {run} 仍在进行：请先停止它。",
    run_not_running: "运行 {run} 不在进行中（{status}）。",
    prompt_not_found: "提示词“{name}”不存在。",
    prompt_version_not_found: "提示词“{name}”没有版本 {version}。",
    prompt_label_not_found: "提示词“{name}”没有标签“{label}”。",
    prompt_incompatible: "Hanlin 无法填写“{name}”的变量“{variable}”：请先为它设置默认值，再指向此标签。",
    prompt_store_corrupt: "无法读取提示词注册表：需要服务器管理员移走或恢复其文件。",
  },
};

/** The template key for a code and its params (some codes read differently with a param). */
function variant(code, params) {
  if (code === "rate_limit_exceeded" && params.queue_limit) return "rate_limit_exceeded.queue";
  if (code === "rate_limit_exceeded" && params.retry_after) return "rate_limit_exceeded.retry";
  return code;
}

/**
 * The text for `code` with `params` in the UI's language, or null when the code is unknown or
 * a placeholder has no value (the caller then shows the server's English message).
 */
export function codeText(code, params = {}) {
  if (!code) return null;
  const key = variant(code, params || {});
  const template = TEXT[getLang()]?.[key] ?? TEXT.en[key];
  if (!template) return null;
  let missing = false;
  const text = template.replace(/\{(\w+)\}/g, (m, name) => {
    const value = params ? params[name] : undefined;
    if (value === undefined || value === null || value === "") {
      missing = true;
      return m;
    }
    return Array.isArray(value) ? value.join(", ") : String(value);
  });
  return missing ? null : text;
}

/** An API error for a person: its code worded in the UI's language, else message — hint. */
export function errorText(err) {
  const known = codeText(err.code, err.params);
  if (known) return known;
  return err.hint ? `${err.message} — ${err.hint}` : err.message;
}

/** A file's failure reason ({reason, reason_code, reason_params}) in the UI's language. */
export function reasonText(file) {
  if (!file) return null;
  return codeText(file.reason_code, file.reason_params) || file.reason || null;
}
