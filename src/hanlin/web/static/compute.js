// The compute planner (#/compute/<tab>): three forms over POST /api/compute/train | finetune |
// serve, with the model picker filled from GET /api/compute/models and the GPU picker from
// GET /api/compute/gpus. A result shows the headline figures, whether it fits in memory (with
// what to change when it does not), and every formula term exactly as the API returns it.

import { request } from "./api.js";
import { h } from "./dom.js";
import { getLang, t } from "./i18n.js";

export const TABS = ["train", "finetune", "serve"];
const CUSTOM = "__custom__";

// The forms. Defaults mirror the CLI examples in docs/compute.md. `label` names the string when
// it differs from compute.f.<name>; `help` names a hint shown under the field.
const FORMS = {
  train: {
    model: "gpt3-175b",
    gpu: "A100-80G",
    fields: [
      { name: "tokens", kind: "text", value: "300B", help: "compute.h.count" },
      { name: "gpus", kind: "int", value: 1024, min: 1 },
      { name: "mfu", kind: "float", value: 0.34, min: 0.01, max: 1, step: 0.01, help: "compute.h.mfu" },
      { name: "precision", kind: "select", options: ["bf16", "fp16", "fp8", "int8"], value: "bf16" },
      { name: "price", kind: "float", optional: true, min: 0, step: 0.01, help: "compute.h.price" },
      { name: "currency", kind: "select", options: ["USD", "CNY"], value: "USD" },
    ],
    more: [
      { name: "seq", kind: "text", optional: true, help: "compute.h.seq_train" },
      { name: "tflops", kind: "float", optional: true, min: 0.1, step: 0.1, help: "compute.h.tflops" },
      { name: "tp", kind: "int", value: 1, min: 1, max: 1024 },
      { name: "pp", kind: "int", value: 1, min: 1, max: 1024 },
      { name: "zero", kind: "select", options: ["0", "1", "2", "3"], value: "1" },
      { name: "micro_batch", kind: "int", value: 1, min: 1 },
      { name: "usd_cny", kind: "float", value: 7.2, min: 0.01, step: 0.01 },
      { name: "recompute", kind: "bool", value: false },
      { name: "attention", kind: "bool", value: false, label: "compute.f.attention_flops" },
    ],
  },
  finetune: {
    model: "llama3-8b",
    gpu: "H20",
    fields: [
      { name: "method", kind: "select", options: ["lora", "qlora", "full"], value: "lora" },
      { name: "seq", kind: "text", value: "2048", help: "compute.h.context" },
      { name: "micro_batch", kind: "int", value: 2, min: 1 },
      { name: "gpus", kind: "int", value: 1, min: 1 },
      { name: "rank", kind: "int", value: 16, min: 1 },
      { name: "tokens", kind: "text", optional: true, label: "compute.f.tokens_time", help: "compute.h.count" },
    ],
    more: [
      { name: "targets", kind: "select", options: ["all-linear", "attention", "qv"], value: "all-linear" },
      { name: "optimizer", kind: "select", options: ["adamw", "adamw-8bit", "sgd"], value: "adamw" },
      { name: "precision", kind: "select", options: ["bf16-mixed", "bf16", "fp32"], value: "bf16-mixed" },
      { name: "attention", kind: "select", options: ["flash", "eager"], value: "flash", label: "compute.f.attention_kernel" },
      { name: "zero", kind: "select", options: ["0", "1", "2", "3"], value: "0" },
      { name: "tp", kind: "int", value: 1, min: 1, max: 1024 },
      { name: "pp", kind: "int", value: 1, min: 1, max: 1024 },
      { name: "mfu", kind: "float", value: 0.35, min: 0.01, max: 1, step: 0.01, help: "compute.h.mfu" },
      { name: "grad_ckpt", kind: "bool", value: true },
    ],
  },
  serve: {
    model: "qwen2.5-7b",
    gpu: "H20",
    fields: [
      { name: "context", kind: "text", value: "32k", help: "compute.h.context" },
      { name: "concurrency", kind: "int", value: 64, min: 1 },
      { name: "gpus", kind: "int", value: 1, min: 1 },
      {
        name: "quant",
        kind: "select",
        value: "int8",
        options: ["bf16", "fp16", "fp8", "int8", "int4", "awq", "gptq", "nf4", "q8_0", "q6_k", "q5_k_m",
          "q5_k_s", "q5_0", "q4_k_m", "q4_k_s", "q4_0", "iq4_xs", "q3_k_l", "q3_k_m", "q3_k_s", "q2_k", "fp32"],
      },
      { name: "kv_dtype", kind: "select", options: ["bf16", "fp16", "fp8", "int8", "q8_0", "q4_0", "fp32"], value: "bf16" },
    ],
    more: [
      { name: "bw_eff", kind: "float", value: 0.75, min: 0.01, max: 1, step: 0.01 },
      { name: "mfu", kind: "float", value: 0.5, min: 0.01, max: 1, step: 0.01, label: "compute.f.compute_eff" },
      { name: "mem_util", kind: "float", value: 0.9, min: 0.01, max: 1, step: 0.01 },
    ],
  },
};

// --- number formatting (mirrors hanlin.compute.units.fmt_value, with the page's locale) -------

function locale() {
  return getLang() === "zh" ? "zh-CN" : "en-US";
}

function num(value, digits = 0) {
  return new Intl.NumberFormat(locale(), { minimumFractionDigits: digits, maximumFractionDigits: digits }).format(value);
}

/** Significant digits without trailing zeros, like Python's "{:.Ng}" (exponent "e23", no "+"). */
function sig(value, digits) {
  const abs = Math.abs(value);
  if (abs !== 0 && (abs >= 10 ** digits || abs < 1e-4)) {
    return value.toExponential(digits - 1).replace(/\.?0+e/, "e").replace("e+", "e");
  }
  return String(Number(value.toPrecision(digits)));
}

function si(value, unit = "") {
  let text;
  if (value === 0) text = "0";
  else if (Math.abs(value) >= 1e15) text = sig(value, 3);
  else {
    const scale = [[1e12, "T"], [1e9, "B"], [1e6, "M"], [1e3, "K"]].find(([s]) => Math.abs(value) >= s);
    text = scale ? `${sig(value / scale[0], 4)}${scale[1]}` : sig(value, 3);
  }
  return `${text} ${unit}`.trim();
}

function fmtBytes(n) {
  for (const [unit, scale] of [["TiB", 2 ** 40], ["GiB", 2 ** 30], ["MiB", 2 ** 20], ["KiB", 2 ** 10]]) {
    if (Math.abs(n) >= scale) return `${num(n / scale, 2)} ${unit}`;
  }
  return `${num(n, 0)} B`;
}

function fmtSeconds(s) {
  if (s >= 2 * 86400) return `${num(s / 86400, 1)} ${t("compute.unit.days")}`;
  if (s >= 2 * 3600) return `${num(s / 3600, 1)} ${t("compute.unit.h")}`;
  if (s >= 120) return `${num(s / 60, 1)} ${t("compute.unit.min")}`;
  if (s >= 1) return `${num(s, 2)} ${t("compute.unit.s")}`;
  return `${num(s * 1000, 1)} ${t("compute.unit.ms")}`;
}

/** A term's value in its unit, as `hanlin compute` prints it. */
function fmtValue(value, unit) {
  if (typeof value !== "number" || !Number.isFinite(value)) return "–";
  if (unit === "bytes") return fmtBytes(value);
  if (unit === "s") return fmtSeconds(value);
  if (unit === "USD" || unit === "CNY") return `${num(value, value >= 100 ? 0 : 2)} ${unit}`;
  if (["params", "FLOPs", "FLOP/s", "tokens"].includes(unit)) return si(value, unit);
  if (["days", "h", "GPU-h", "GPU-days", "tok/s", "seqs"].includes(unit)) {
    return value < 1e6 ? `${num(value, 1)} ${unit}` : si(value, unit);
  }
  if (unit === "x") return sig(value, 3);
  return `${sig(value, 4)} ${unit || ""}`.trim();
}

// --- the view ----------------------------------------------------------------------------------

export class ComputeView {
  constructor() {
    this.root = document.getElementById("compute-view");
    this.tabList = document.getElementById("compute-tabs");
    this.panelBox = document.getElementById("compute-panels");
    this.nav = document.getElementById("compute-nav");
    this.tab = "train";
    this.models = null; // [{name, source}] once loaded
    this.gpus = null; // [GPUSpec] once loaded
    this.loading = null;
    this.results = {}; // tab → {body, data} | {body, error}
    this.seq = {};
    this.ui = {};
    this.build();
  }

  // --- building the forms ------------------------------------------------------------------

  build() {
    const tabs = TABS.map((tab) => {
      const btn = h(
        "button",
        {
          type: "button",
          role: "tab",
          id: `compute-tab-${tab}`,
          class: "compute-tab",
          "aria-controls": `compute-panel-${tab}`,
          "aria-selected": "false",
          tabindex: "-1",
          testid: `compute-tab-${tab}`,
          "data-i18n": `compute.tab.${tab}`,
        },
        t(`compute.tab.${tab}`),
      );
      btn.addEventListener("click", () => this.go(tab));
      btn.addEventListener("keydown", (e) => this.onTabKey(e, tab));
      return btn;
    });
    this.tabList.replaceChildren(...tabs);
    this.panelBox.replaceChildren(...TABS.map((tab) => this.buildPanel(tab)));
  }

  buildPanel(tab) {
    const spec = FORMS[tab];
    const ui = { fields: {} };
    this.ui[tab] = ui;

    ui.model = h("select", { id: `cp-${tab}-model`, name: "model", testid: "compute-model" });
    ui.modelCustom = h("textarea", {
      id: `cp-${tab}-model-custom`,
      rows: "3",
      spellcheck: "false",
      testid: "compute-model-custom",
      "aria-describedby": `cp-${tab}-model-custom-help`,
      "data-i18n-placeholder": "compute.model.custom.placeholder",
      placeholder: t("compute.model.custom.placeholder"),
    });
    ui.modelCustomBox = h(
      "div",
      { class: "cf-field cf-wide", hidden: true },
      h("label", { for: ui.modelCustom.id, "data-i18n": "compute.f.model_custom" }, t("compute.f.model_custom")),
      ui.modelCustom,
      h("p", { id: `cp-${tab}-model-custom-help`, class: "cf-help", "data-i18n": "compute.h.model_custom" }, t("compute.h.model_custom")),
    );
    ui.gpu = h("select", {
      id: `cp-${tab}-gpu`,
      name: "gpu",
      testid: "compute-gpu",
      "aria-describedby": `cp-${tab}-gpu-spec`,
    });
    ui.gpuSpec = h("p", { id: `cp-${tab}-gpu-spec`, class: "cf-help", testid: "compute-gpu-spec" });
    ui.gpuCustom = h("input", {
      id: `cp-${tab}-gpu-custom`,
      type: "text",
      spellcheck: "false",
      autocomplete: "off",
      testid: "compute-gpu-custom",
      "aria-describedby": `cp-${tab}-gpu-custom-help`,
    });
    ui.gpuCustomBox = h(
      "div",
      { class: "cf-field", hidden: true },
      h("label", { for: ui.gpuCustom.id, "data-i18n": "compute.f.gpu_custom" }, t("compute.f.gpu_custom")),
      ui.gpuCustom,
      h("p", { id: `cp-${tab}-gpu-custom-help`, class: "cf-help", "data-i18n": "compute.h.gpu_custom" }, t("compute.h.gpu_custom")),
    );
    this.fillModels(tab);
    this.fillGpus(tab);
    ui.model.addEventListener("change", () => this.syncCustom(tab, true));
    ui.gpu.addEventListener("change", () => this.syncCustom(tab, true));

    const pickers = [
      h(
        "div",
        { class: "cf-field" },
        h("label", { for: ui.model.id, "data-i18n": "compute.f.model" }, t("compute.f.model")),
        ui.model,
      ),
      h(
        "div",
        { class: "cf-field" },
        h("label", { for: ui.gpu.id, "data-i18n": "compute.f.gpu" }, t("compute.f.gpu")),
        ui.gpu,
        ui.gpuSpec,
      ),
      ui.gpuCustomBox,
      ui.modelCustomBox,
    ];
    const fields = spec.fields.map((f) => this.buildField(tab, f));
    const more = h(
      "details",
      { class: "cf-more" },
      h("summary", { "data-i18n": "compute.more" }, t("compute.more")),
      h("div", { class: "cf-grid" }, ...spec.more.map((f) => this.buildField(tab, f))),
    );
    ui.calc = h(
      "button",
      { type: "submit", class: "btn btn-primary", testid: "compute-calc", "data-i18n": "compute.calc" },
      t("compute.calc"),
    );
    ui.form = h(
      "form",
      { class: "compute-form", testid: "compute-form", autocomplete: "off", "aria-labelledby": `compute-tab-${tab}` },
      h("p", { class: "muted cf-intro", "data-i18n": `compute.tab.${tab}.help` }, t(`compute.tab.${tab}.help`)),
      h("div", { class: "cf-grid" }, ...pickers, ...fields),
      more,
      h("div", { class: "cf-actions" }, ui.calc),
    );
    ui.form.addEventListener("submit", (e) => {
      e.preventDefault();
      this.calculate(tab);
    });
    ui.result = h("div", { class: "compute-result", testid: "compute-result", "aria-live": "polite", "aria-busy": "false" });
    ui.panel = h(
      "section",
      {
        id: `compute-panel-${tab}`,
        role: "tabpanel",
        class: "compute-panel",
        "aria-labelledby": `compute-tab-${tab}`,
        testid: `compute-panel-${tab}`,
        hidden: true,
      },
      h("div", { class: "card" }, ui.form),
      ui.result,
    );
    this.renderResult(tab);
    return ui.panel;
  }

  buildField(tab, f) {
    const ui = this.ui[tab];
    const id = `cp-${tab}-${f.name}`;
    const labelKey = f.label || `compute.f.${f.name}`;
    const label = h("label", { for: id, "data-i18n": labelKey }, t(labelKey));
    const help = f.help
      ? h("p", { id: `${id}-help`, class: "cf-help", "data-i18n": f.help }, t(f.help))
      : null;
    let input;
    if (f.kind === "select") {
      input = h(
        "select",
        { id, name: f.name, testid: `compute-${f.name}`, "aria-describedby": help ? help.id : null },
        ...f.options.map((o) => h("option", { value: o, selected: o === f.value }, o)),
      );
    } else if (f.kind === "bool") {
      input = h("input", { type: "checkbox", id, name: f.name, checked: Boolean(f.value), testid: `compute-${f.name}` });
      ui.fields[f.name] = { spec: f, el: input };
      return h("div", { class: "cf-field cf-check" }, input, label);
    } else {
      input = h("input", {
        id,
        name: f.name,
        type: f.kind === "text" ? "text" : "number",
        inputmode: f.kind === "int" ? "numeric" : f.kind === "float" ? "decimal" : null,
        value: f.value ?? null,
        min: f.min ?? null,
        max: f.max ?? null,
        step: f.kind === "int" ? "1" : (f.step ?? null),
        required: !f.optional,
        spellcheck: f.kind === "text" ? "false" : null,
        testid: `compute-${f.name}`,
        "aria-describedby": help ? help.id : null,
      });
    }
    ui.fields[f.name] = { spec: f, el: input };
    return h("div", { class: "cf-field" }, label, input, help);
  }

  /** (Re)fill a tab's model picker, keeping the current choice. */
  fillModels(tab) {
    const sel = this.ui[tab].model;
    const current = sel.value || FORMS[tab].model;
    const known = this.models || [{ name: FORMS[tab].model, source: "" }];
    const names = known.map((m) => m.name);
    sel.replaceChildren(
      ...known.map((m) => h("option", { value: m.name, title: m.source || null }, m.name)),
      h("option", { value: CUSTOM, "data-i18n": "compute.model.custom" }, t("compute.model.custom")),
    );
    sel.value = current === CUSTOM || names.includes(current) ? current : FORMS[tab].model;
    this.syncCustom(tab, false);
  }

  /** (Re)fill a tab's GPU picker, keeping the current choice. */
  fillGpus(tab) {
    const sel = this.ui[tab].gpu;
    const current = sel.value || FORMS[tab].gpu;
    const known = this.gpus || [{ name: FORMS[tab].gpu }];
    const names = known.map((g) => g.name);
    sel.replaceChildren(
      ...known.map((g) =>
        h("option", { value: g.name }, g.memory_gib ? `${g.name} · ${num(g.memory_gib, 0)} GiB` : g.name),
      ),
      h("option", { value: CUSTOM, "data-i18n": "compute.gpu.custom" }, t("compute.gpu.custom")),
    );
    sel.value = current === CUSTOM || names.includes(current) ? current : FORMS[tab].gpu;
    this.syncCustom(tab, false);
  }

  /** Show the free-form model / GPU fields when "custom" is chosen; describe the chosen GPU. */
  syncCustom(tab, focus) {
    const ui = this.ui[tab];
    if (!ui.modelCustomBox || !ui.gpuCustomBox) return;
    const customModel = ui.model.value === CUSTOM;
    const customGpu = ui.gpu.value === CUSTOM;
    const opening = (customModel && ui.modelCustomBox.hidden) || (customGpu && ui.gpuCustomBox.hidden);
    ui.modelCustomBox.hidden = !customModel;
    ui.gpuCustomBox.hidden = !customGpu;
    ui.gpuCustom.required = customGpu;
    if (focus && opening) (customModel && ui.modelCustom.value === "" ? ui.modelCustom : customGpu ? ui.gpuCustom : ui.modelCustom).focus();
    const g = (this.gpus || []).find((x) => x.name === ui.gpu.value);
    ui.gpuSpec.hidden = !g;
    if (g) {
      ui.gpuSpec.textContent = t("compute.gpu.spec", {
        vendor: g.vendor || "",
        mem: num(g.memory_gib, 0),
        bw: num(g.bandwidth_gbs, 0),
        tflops: num(g.bf16_tflops, 0),
      });
      ui.gpuSpec.title = g.source || "";
    }
  }

  // --- navigation --------------------------------------------------------------------------

  go(tab) {
    location.hash = `#/compute/${tab}`;
  }

  onTabKey(e, tab) {
    const i = TABS.indexOf(tab);
    const next = { ArrowRight: i + 1, ArrowLeft: i - 1, Home: 0, End: TABS.length - 1 }[e.key];
    if (next === undefined) return;
    e.preventDefault();
    const target = TABS[(next + TABS.length) % TABS.length];
    this.go(target);
    document.getElementById(`compute-tab-${target}`).focus();
  }

  /** Show the page with `tab` selected (called by the router). */
  show(tab) {
    this.tab = TABS.includes(tab) ? tab : this.tab;
    for (const name of TABS) {
      const selected = name === this.tab;
      const btn = document.getElementById(`compute-tab-${name}`);
      btn.setAttribute("aria-selected", selected ? "true" : "false");
      btn.tabIndex = selected ? 0 : -1;
      this.ui[name].panel.hidden = !selected;
    }
    this.markNav(this.tab);
    if (!this.models || !this.gpus) this.loadLists();
  }

  /** Highlight the sidebar link of `tab` (null: none, another view is shown). */
  markNav(tab) {
    if (!this.nav) return;
    for (const li of this.nav.querySelectorAll("li[data-tab]")) {
      const active = li.dataset.tab === tab;
      li.classList.toggle("active", active);
      const a = li.querySelector("a");
      if (active) a.setAttribute("aria-current", "page");
      else a.removeAttribute("aria-current");
    }
  }

  /** Fetch the model names and the GPU catalog (once; `force` reloads, e.g. after a new key). */
  loadLists(force = false) {
    if (this.loading && !force) return this.loading;
    this.loading = Promise.allSettled([
      request("GET", "/api/compute/models"),
      request("GET", "/api/compute/gpus"),
    ]).then(([models, gpus]) => {
      if (models.status === "fulfilled" && models.value) this.models = models.value.data || [];
      if (gpus.status === "fulfilled" && gpus.value) this.gpus = gpus.value.data || [];
      for (const tab of TABS) {
        this.fillModels(tab);
        this.fillGpus(tab);
      }
      if (!this.models || !this.gpus) this.loading = null; // try again on the next visit
    });
    return this.loading;
  }

  // --- calculating -------------------------------------------------------------------------

  /** The request body for a tab's form; throws {message, hint} for input it cannot send. */
  body(tab) {
    const ui = this.ui[tab];
    const body = {};
    if (ui.model.value === CUSTOM) {
      const text = ui.modelCustom.value.trim();
      if (!text) throw { message: t("compute.err.model_empty") };
      if (text.startsWith("{")) {
        try {
          body.model = JSON.parse(text);
        } catch (err) {
          throw { message: t("compute.err.json", { msg: err.message }) };
        }
      } else body.model = text;
    } else body.model = ui.model.value;
    const gpu = ui.gpu.value === CUSTOM ? ui.gpuCustom.value.trim() : ui.gpu.value;
    if (!gpu) throw { message: t("compute.err.gpu_empty") };
    body.gpu = gpu;
    for (const [name, { spec, el }] of Object.entries(ui.fields)) {
      if (spec.kind === "bool") {
        body[name] = el.checked;
        continue;
      }
      const raw = el.value.trim();
      if (raw === "") continue; // optional: the server's default
      if (spec.kind === "int") body[name] = Number.parseInt(raw, 10);
      else if (spec.kind === "float") body[name] = Number(raw);
      else if (name === "zero") body[name] = Number(raw);
      else body[name] = raw;
    }
    if (tab === "train") {
      const currency = body.currency;
      delete body.currency;
      if (body.price !== undefined) body[currency === "CNY" ? "price_cny" : "price_usd"] = body.price;
      delete body.price;
      if (body.tflops !== undefined) delete body.mfu; // a measured throughput replaces the MFU
    }
    return body;
  }

  async calculate(tab) {
    const ui = this.ui[tab];
    let body;
    try {
      body = this.body(tab);
    } catch (err) {
      this.results[tab] = { error: { message: err.message, hint: err.hint || null } };
      this.renderResult(tab);
      return;
    }
    const seq = (this.seq[tab] = (this.seq[tab] || 0) + 1);
    ui.calc.disabled = true;
    ui.calc.textContent = t("compute.calculating");
    ui.result.setAttribute("aria-busy", "true");
    let result;
    try {
      result = { body, data: await request("POST", `/api/compute/${tab}`, body) };
    } catch (err) {
      result = { body, error: { message: err.message, hint: err.hint || null, status: err.status } };
    }
    if (seq !== this.seq[tab]) return; // a newer calculation is under way
    ui.calc.disabled = false;
    ui.calc.textContent = t("compute.calc");
    ui.result.setAttribute("aria-busy", "false");
    this.results[tab] = result;
    this.renderResult(tab);
  }

  // --- results -----------------------------------------------------------------------------

  /** Re-render what depends on the language (labels with data-i18n update themselves). */
  render() {
    for (const tab of TABS) {
      this.syncCustom(tab, false);
      if (!this.ui[tab].calc.disabled) this.ui[tab].calc.textContent = t("compute.calc");
      this.renderResult(tab);
    }
  }

  renderResult(tab) {
    const box = this.ui[tab].result;
    const r = this.results[tab];
    if (!r) {
      box.replaceChildren(h("p", { class: "muted compute-empty" }, t("compute.result.empty")));
      return;
    }
    if (r.error) {
      box.replaceChildren(
        h(
          "div",
          { class: "compute-error", role: "alert", testid: "compute-error" },
          h("p", { class: "compute-error-title" }, t("compute.err.title")),
          h("p", { testid: "compute-error-message" }, r.error.message),
          r.error.hint ? h("p", { class: "compute-error-hint", testid: "compute-error-hint" }, r.error.hint) : null,
        ),
      );
      return;
    }
    const parts = { train: trainResult, finetune: finetuneResult, serve: serveResult }[tab](r.data, r.body);
    box.replaceChildren(...parts);
  }
}

// --- result builders ---------------------------------------------------------------------------

/** A headline figure; `value` (the raw number) goes in data-value for scripts and tests. */
function stat(key, labelKey, shown, value, sub = null) {
  return h(
    "div",
    { class: "stat", testid: "compute-stat", "data-key": key, "data-value": Number.isFinite(value) ? String(value) : null },
    h("dt", {}, t(labelKey)),
    h("dd", { class: "stat-value" }, shown),
    sub ? h("dd", { class: "stat-sub" }, sub) : null,
  );
}

function stats(...items) {
  return h("dl", { class: "stats", testid: "compute-stats" }, ...items.filter(Boolean));
}

/** Fits / does not fit, with what to change when it does not. */
function fit(fits, detail, hint) {
  if (fits === null || fits === undefined) return null;
  return h(
    "div",
    { class: `compute-fit ${fits ? "fit-yes" : "fit-no"}`, testid: "compute-fit", "data-fits": String(fits) },
    h(
      "p",
      { class: "fit-line" },
      h("span", { "aria-hidden": "true", class: "fit-mark" }, fits ? "✓" : "✗"),
      h("strong", {}, t(fits ? "compute.fit.yes" : "compute.fit.no")),
      ` ${detail}`,
    ),
    !fits && hint ? h("p", { class: "fit-hint", testid: "compute-fit-hint" }, hint) : null,
  );
}

/** The formula terms as the API returns them: name, formula, value. */
function termTable(section, titleKey, terms, assumptions) {
  const rows = (terms || []).map((term) =>
    h(
      "tr",
      { class: term.total ? "term-total" : null, testid: "compute-term-row" },
      h("th", { scope: "row", class: "term-name" }, term.name),
      h("td", { class: "term-formula" }, term.formula),
      h(
        "td",
        { class: "num nowrap", title: `${term.value} ${term.unit || ""}`.trim(), "data-value": String(term.value) },
        fmtValue(term.value, term.unit),
      ),
    ),
  );
  const table = h(
    "table",
    { class: "doc-table term-table", testid: "compute-terms", "data-section": section },
    h("caption", {}, t(titleKey)),
    h(
      "thead",
      {},
      h(
        "tr",
        {},
        h("th", { scope: "col" }, t("compute.col.name")),
        h("th", { scope: "col" }, t("compute.col.formula")),
        h("th", { scope: "col", class: "num" }, t("compute.col.value")),
      ),
    ),
    h("tbody", {}, ...rows),
  );
  const notes = (assumptions || []).length
    ? h(
        "div",
        { class: "compute-notes" },
        h("h4", {}, t("compute.assumptions")),
        h("ul", {}, ...assumptions.map((a) => h("li", {}, a))),
      )
    : null;
  return h("section", { class: "card compute-terms" }, h("div", { class: "doc-list" }, table), notes);
}

function trainingStats(tr, { withCost = true } = {}) {
  const cost = [];
  if (!withCost) {
    /* the route takes no price */
  } else if (tr.cost_usd === null || tr.cost_usd === undefined) {
    cost.push(stat("cost", "compute.s.cost", "–", NaN, t("compute.s.cost.none")));
  } else {
    cost.push(stat("cost_usd", "compute.s.cost_usd", `$${num(tr.cost_usd, 0)}`, tr.cost_usd));
    cost.push(stat("cost_cny", "compute.s.cost_cny", `¥${num(tr.cost_cny, 0)}`, tr.cost_cny));
  }
  return [
    stat("flops", "compute.s.flops", si(tr.flops, "FLOPs"), tr.flops),
    stat("days", "compute.s.days", `${num(tr.seconds / 86400, 1)} ${t("compute.unit.days")}`, tr.seconds / 86400,
      t("compute.s.on", { gpus: num(tr.gpus, 0), gpu: tr.gpu })),
    stat("gpu_days", "compute.s.gpu_days", num(tr.gpu_days, 0), tr.gpu_days,
      t("compute.s.gpu_hours", { n: num(tr.gpu_hours, 0) })),
    stat("throughput", "compute.s.throughput", `${num(tr.achieved_flops_per_gpu / 1e12, 1)} TFLOP/s`,
      tr.achieved_flops_per_gpu, t("compute.s.mfu", { pct: num(tr.mfu * 100, 1) })),
    ...cost,
  ];
}

function memoryStat(mem) {
  return stat("memory", "compute.s.mem_gpu", fmtBytes(mem.total_bytes), mem.total_bytes,
    mem.gpu_memory_bytes ? t("compute.s.of_gpu", { have: fmtBytes(mem.gpu_memory_bytes), gpu: mem.gpu }) : null);
}

function memoryFit(mem, hintKey) {
  const detail = t(mem.fits ? "compute.fit.gpu.yes" : "compute.fit.gpu.no", {
    need: fmtBytes(mem.total_bytes),
    have: fmtBytes(mem.gpu_memory_bytes),
    gpu: mem.gpu,
  });
  return fit(mem.fits, detail, t(hintKey));
}

function trainResult(data) {
  const tr = data.training;
  const mem = data.memory;
  return [
    stats(...trainingStats(tr), memoryStat(mem)),
    memoryFit(mem, "compute.hint.train"),
    termTable("training", "compute.t.training", tr.terms, tr.assumptions),
    termTable("memory", "compute.t.memory", mem.terms, mem.assumptions),
  ].filter(Boolean);
}

function finetuneResult(data) {
  const mem = data.memory;
  const tr = data.training;
  return [
    stats(
      memoryStat(mem),
      stat("allocated", "compute.s.allocated", fmtBytes(mem.allocated_bytes), mem.allocated_bytes),
      stat("trainable", "compute.s.trainable", si(mem.trainable_params), mem.trainable_params),
      ...(tr ? trainingStats(tr, { withCost: false }) : []),
    ),
    memoryFit(mem, "compute.hint.finetune"),
    termTable("memory", "compute.t.memory", mem.terms, mem.assumptions),
    tr ? termTable("training", "compute.t.time", tr.terms, tr.assumptions) : null,
  ].filter(Boolean);
}

function serveResult(data, body) {
  const d = data;
  const where = t("compute.s.on", { gpus: num(d.gpus, 0), gpu: d.gpu });
  const detail = t(d.fits ? "compute.fit.serve.yes" : "compute.fit.serve.no", {
    need: fmtBytes(d.memory_needed_bytes),
    have: fmtBytes(d.memory_available_bytes),
  });
  const hint = t("compute.hint.serve", { n: num(d.max_concurrency, 0), context: body.context || "4k" });
  return [
    stats(
      stat("memory_needed", "compute.s.mem_needed", fmtBytes(d.memory_needed_bytes), d.memory_needed_bytes,
        t("compute.s.usable", { have: fmtBytes(d.memory_available_bytes), where })),
      stat("weights", "compute.s.weights", fmtBytes(d.weights_bytes), d.weights_bytes),
      stat("kv_per_token", "compute.s.kv_token", fmtBytes(d.kv_bytes_per_token), d.kv_bytes_per_token),
      stat("kv_per_sequence", "compute.s.kv_seq", fmtBytes(d.kv_bytes_per_sequence), d.kv_bytes_per_sequence),
      stat("kv_total", "compute.s.kv_total", fmtBytes(d.kv_bytes_total), d.kv_bytes_total,
        t("compute.s.kv_total.sub", { n: num(body.concurrency || 1, 0) })),
      stat("max_concurrency", "compute.s.max_conc", num(d.max_concurrency, 0), d.max_concurrency,
        t("compute.s.max_conc.sub", { context: body.context || "4k" })),
      stat("decode_total", "compute.s.decode", num(d.decode_tokens_per_s_total, 0), d.decode_tokens_per_s_total,
        t("compute.s.decode.sub", { n: num(d.decode_tokens_per_s_per_sequence, 1) })),
      stat("prefill", "compute.s.prefill", num(d.prefill_tokens_per_s, 0), d.prefill_tokens_per_s),
      stat("ttft", "compute.s.ttft", fmtSeconds(d.time_to_first_token_s), d.time_to_first_token_s),
    ),
    fit(d.fits, detail, hint),
    termTable("serve", "compute.t.serve", d.terms, d.assumptions),
  ].filter(Boolean);
}
