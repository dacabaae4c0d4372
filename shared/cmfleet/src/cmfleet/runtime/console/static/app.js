// The cmfleet dev console: plain JavaScript over the gateway's JSON API (see cmfleet/runtime/gateway/__init__.py).
"use strict";

const POLL_MS = 2000;
const MAX_LIVE_LINES = 400;
const state = {
  modules: [],
  modulesKey: "",
  functions: {}, // module -> [{name, streaming, schema, input_schema, source}]
  selected: null, // {module, fn}
  mode: "form",
  fields: [], // the generated form's fields
  jobStream: null,
  jobLogSeqs: new Set(),
  live: null,
  liveSeqs: new Set(),
  livePaused: false,
  jobsKey: "",
  metricsKey: "",
};

// -- small helpers --------------------------------------------------------------------------------------------

function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "class") el.className = v;
    else if (k === "dataset") Object.assign(el.dataset, v);
    else if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? "" : v);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

const $ = (sel) => document.querySelector(sel);
const enc = encodeURIComponent;

function fmtTime(seconds) {
  if (!seconds) return "";
  return new Date(seconds * 1000).toLocaleTimeString([], { hour12: false });
}

function fmtMs(ms) {
  if (ms === null || ms === undefined) return "–";
  return ms >= 100 ? ms.toFixed(0) : ms.toFixed(1);
}

function badge(text, kind) {
  return h("span", { class: `badge ${kind || text}` }, text);
}

// How a replica state reads where its bare name says too little.
const REPLICA_STATES = {
  building: [
    "building environment",
    "uv is creating or syncing the module's venv (.cmfleet/envs/<module>); the replica starts once it is done",
  ],
  starting: ["starting", "its process runs and has not polled for a job yet"],
};

function replicaBadge(replicaState) {
  const [text, title] = REPLICA_STATES[replicaState] || [replicaState, null];
  const el = badge(text, replicaState);
  if (title) el.title = title;
  return el;
}

async function api(path, options) {
  const resp = await fetch(path, Object.assign({ credentials: "same-origin" }, options || {}));
  if (resp.status === 401) $("#auth-error").hidden = false;
  return resp;
}

async function getJSON(path) {
  const resp = await api(path);
  if (!resp.ok) throw new Error(`${path}: HTTP ${resp.status}`);
  return resp.json();
}

// -- modules and replicas -------------------------------------------------------------------------------------

async function refreshModules() {
  const modules = await getJSON("/api/modules");
  const key = JSON.stringify(modules);
  if (key === state.modulesKey) return;
  state.modulesKey = key;
  state.modules = modules;
  renderModules();
  renderLogModuleOptions();
}

function renderModules() {
  const box = $("#modules");
  box.replaceChildren();
  for (const mod of state.modules) {
    const warm = mod.replicas.some((r) => r.state === "ready");
    const replicaRows = mod.replicas.map((r) =>
      h(
        "tr",
        { class: "replica", dataset: { replica: r.id } },
        h("td", {}, r.id),
        h("td", {}, replicaBadge(r.state)),
        h("td", { class: "num", title: "running / capacity" }, `${r.running}/${r.capacity}`),
        h("td", { class: "num", title: "restarts" }, `↻${r.restarts}`),
        // busy replicas are kept on CPUs of their own (runtime/placement.py); idle ones run anywhere
        h("td", { class: "num", title: "CPUs it is kept on while busy" }, r.cpus ? `cpu ${r.cpus.join(",")}` : ""),
      ),
    );
    // a function a plugin adds says which one (the module's own: app.py, or settings/module for another SDK's)
    const pluginOf = (fn) => {
      const origin = (mod.origins || {})[fn];
      return origin && !["app.py", "settings", "module"].includes(origin) ? origin : null;
    };
    const fnButtons = mod.functions.map((fn) =>
      h(
        "button",
        {
          type: "button",
          class: "fn" + (isSelected(mod.name, fn) ? " active" : ""),
          dataset: { module: mod.name, fn },
          title: pluginOf(fn) ? `from the plugin ${pluginOf(fn)}` : null,
          onclick: () => selectFunction(mod.name, fn),
        },
        fn,
        pluginOf(fn) ? h("span", { class: "fn-origin" }, ` · ${pluginOf(fn)}`) : null,
      ),
    );
    box.append(
      h(
        "div",
        { class: "module", dataset: { module: mod.name } },
        h(
          "div",
          { class: "module-head" },
          h("strong", {}, mod.name),
          badge(warm ? "warm" : "cold", warm ? "warm" : "cold"),
          h("span", { class: "muted small" }, `queued ${mod.queued} · running ${mod.running}`),
        ),
        h(
          "div",
          { class: "muted small" },
          `replicas ${mod.min_replicas}–${mod.max_replicas} · concurrency ${mod.concurrency}` +
            (mod.schemas_posted ? "" : " · schemas not posted yet"),
        ),
        // app.py not parsing names its file:line; a failed start (import error, environment) brings its own text
        mod.app_error || mod.start_error ? h("pre", { class: "start-error" }, mod.app_error || mod.start_error) : null,
        mod.replicas.length
          ? h("table", { class: "replicas" }, h("tbody", {}, replicaRows))
          : h("div", { class: "muted small" }, "no replica running (the next call cold-starts one)"),
        h("div", { class: "fns" }, fnButtons),
      ),
    );
  }
}

function isSelected(module, fn) {
  return state.selected && state.selected.module === module && state.selected.fn === fn;
}

// -- the query form -------------------------------------------------------------------------------------------

async function selectFunction(module, fn) {
  state.selected = { module, fn };
  document.querySelectorAll("button.fn").forEach((b) => {
    b.classList.toggle("active", b.dataset.module === module && b.dataset.fn === fn);
  });
  if (!state.functions[module] || !state.functions[module].some((f) => f.name === fn && f.input_schema !== null)) {
    state.functions[module] = await getJSON(`/api/modules/${enc(module)}/functions`);
  }
  const info = state.functions[module].find((f) => f.name === fn) || { name: fn, streaming: false };
  $("#query-empty").hidden = true;
  $("#query").hidden = false;
  $("#query-title").textContent = `${module}.${fn}`;
  $("#query-tags").replaceChildren(info.streaming ? badge("streaming", "tag") : "");
  clearErrors();
  buildForm(info);
  $("#raw-json").value = "{}";
  setMode("form");
}

// What kind of input a JSON Schema property gets; `nullable` when it also accepts null.
function fieldKind(schema) {
  let s = schema || {};
  let nullable = false;
  if (Array.isArray(s.anyOf)) {
    const rest = s.anyOf.filter((x) => x.type !== "null");
    nullable = rest.length < s.anyOf.length;
    if (rest.length === 1) s = rest[0];
    else if (rest.length === 2 && rest.some((x) => x.type === "number") && rest.some((x) => x.type === "string"))
      return { kind: "decimal", nullable };
    else return { kind: "json", nullable };
  }
  if (s.type === "string" && s.format === "date") return { kind: "date", nullable };
  if (s.type === "string" && s.format === "date-time") return { kind: "datetime", nullable };
  if (["string", "integer", "number", "boolean"].includes(s.type)) return { kind: s.type, nullable };
  return { kind: "json", nullable, hint: s.type === "array" ? "[ … ]" : s.type === "object" ? "{ … }" : "JSON" };
}

const KIND_LABEL = {
  string: "text",
  integer: "integer",
  number: "number",
  boolean: "boolean",
  date: "date",
  datetime: "date-time, UTC",
  decimal: "decimal",
  json: "JSON",
};

function buildForm(info) {
  const form = $("#event-form");
  form.replaceChildren();
  state.fields = [];
  const schema = info.input_schema;
  const props = schema && schema.properties ? schema.properties : null;
  if (!props || Object.keys(props).length === 0) {
    $("#query-note").textContent =
      schema === null
        ? info.source === "settings"
          ? "No schema: the module's settings declare this function (its SDK registers it by name only); " +
            "the event is free-form."
          : "The module has not posted its schemas yet: the event is free-form."
        : "Untyped event: add its fields; each value is read as JSON (10, true, [1,2]) or else sent as text.";
    form.append(h("div", { id: "kv-rows" }));
    addKvRow();
    form.append(h("button", { type: "button", id: "add-field", class: "small", onclick: () => addKvRow() }, "+ field"));
    return;
  }
  $("#query-note").textContent = info.streaming ? "Items appear as the replica sends them." : "";
  const required = new Set(schema.required || []);
  for (const [name, prop] of Object.entries(props)) {
    const { kind, nullable, hint } = fieldKind(prop);
    const isRequired = required.has(name);
    const id = `f-${name}`;
    let input;
    if (kind === "boolean" && isRequired && !nullable) {
      input = h("input", { type: "checkbox", id, name });
    } else if (kind === "boolean") {
      input = h(
        "select",
        { id, name },
        h("option", { value: "" }, "(empty)"),
        h("option", { value: "true" }, "true"),
        h("option", { value: "false" }, "false"),
      );
    } else if (kind === "json") {
      input = h("textarea", { id, name, rows: 2, placeholder: hint || "JSON", spellcheck: "false" });
    } else {
      const type = { integer: "number", number: "number", date: "date", datetime: "datetime-local" }[kind] || "text";
      input = h("input", {
        type,
        id,
        name,
        step: kind === "integer" ? "1" : kind === "number" ? "any" : kind === "datetime" ? "1" : null,
        placeholder: kind === "decimal" ? "12.50" : null,
      });
    }
    const field = h(
      "div",
      { class: "field", dataset: { path: `$.${name}`, kind } },
      h(
        "label",
        { for: id },
        h("span", { class: "name" }, name),
        isRequired ? h("span", { class: "req", title: "required" }, "*") : h("span", { class: "opt" }, "optional"),
        h("span", { class: "kind" }, KIND_LABEL[kind] + (nullable ? " or null" : "")),
      ),
      input,
      h("div", { class: "field-error" }),
    );
    form.append(field);
    state.fields.push({ name, kind, nullable, required: isRequired, input, field });
  }
}

function addKvRow(key, value) {
  const row = h(
    "div",
    { class: "kv-row field" },
    h("input", { type: "text", class: "kv-key", placeholder: "name", value: key ?? null }),
    h("input", { type: "text", class: "kv-value", placeholder: "value", value: value ?? null }),
    h("button", { type: "button", class: "small", title: "remove", onclick: () => row.remove() }, "×"),
    h("div", { class: "field-error" }),
  );
  row.querySelector(".kv-key").addEventListener("input", (e) => (row.dataset.path = `$.${e.target.value}`));
  if (key) row.dataset.path = `$.${key}`;
  $("#kv-rows").append(row);
  return row;
}

class FieldError extends Error {
  constructor(field, message) {
    super(message);
    this.field = field;
  }
}

// The event the form describes (omitting empty optional fields).
function formEvent() {
  const rows = document.querySelectorAll("#kv-rows .kv-row");
  if (rows.length || !state.fields.length) {
    const event = {};
    rows.forEach((row) => {
      const key = row.querySelector(".kv-key").value.trim();
      if (!key) return;
      const text = row.querySelector(".kv-value").value;
      try {
        event[key] = JSON.parse(text);
      } catch (_) {
        event[key] = text;
      }
    });
    return event;
  }
  const event = {};
  for (const f of state.fields) {
    if (f.input.type === "checkbox") {
      event[f.name] = f.input.checked;
      continue;
    }
    const raw = f.input.value;
    if (raw.trim() === "") {
      if (f.required && f.nullable) event[f.name] = null; // required but nullable: empty means null
      continue;
    }
    switch (f.kind) {
      case "integer":
      case "number":
        event[f.name] = Number(raw);
        break;
      case "boolean":
        event[f.name] = raw === "true";
        break;
      case "datetime": {
        // datetime-local gives local wall time without zone; the SDK wants YYYY-MM-DDTHH:MM:SSZ (UTC).
        const withSeconds = raw.length === 16 ? raw + ":00" : raw;
        event[f.name] = withSeconds + "Z";
        break;
      }
      case "json":
        try {
          event[f.name] = JSON.parse(raw);
        } catch (e) {
          throw new FieldError(f.field, `not valid JSON: ${e.message}`);
        }
        break;
      default:
        event[f.name] = raw; // string, date (YYYY-MM-DD), decimal (kept as text: exact)
    }
  }
  return event;
}

// Fill the form from an event (switching from the JSON tab); what does not fit stays in the JSON.
function fillForm(event) {
  if (!event || typeof event !== "object" || Array.isArray(event)) return;
  if (!state.fields.length) {
    $("#kv-rows").replaceChildren();
    for (const [k, v] of Object.entries(event)) addKvRow(k, typeof v === "string" ? v : JSON.stringify(v));
    if (!Object.keys(event).length) addKvRow();
    return;
  }
  for (const f of state.fields) {
    const v = event[f.name];
    if (f.input.type === "checkbox") f.input.checked = v === true;
    else if (v === undefined || v === null) f.input.value = "";
    else if (f.kind === "json") f.input.value = JSON.stringify(v);
    else if (f.kind === "datetime") f.input.value = String(v).replace(/Z$/, "").slice(0, 19);
    else f.input.value = String(v);
  }
}

function setMode(mode) {
  if (mode === "json" && state.mode !== "json") {
    try {
      $("#raw-json").value = JSON.stringify(formEvent(), null, 2);
    } catch (_) {
      /* keep the previous JSON: a field of the form is not valid JSON yet */
    }
  } else if (mode === "form" && state.mode !== "form") {
    try {
      fillForm(JSON.parse($("#raw-json").value || "{}"));
    } catch (_) {
      /* invalid JSON: the form keeps its values */
    }
  }
  state.mode = mode;
  $("#tab-form").classList.toggle("active", mode === "form");
  $("#tab-json").classList.toggle("active", mode === "json");
  $("#event-form").hidden = mode !== "form";
  $("#raw-json").hidden = mode !== "json";
}

function currentEvent() {
  if (state.mode === "json") {
    const text = $("#raw-json").value.trim() || "{}";
    try {
      return JSON.parse(text);
    } catch (e) {
      throw new Error(`the JSON is not valid: ${e.message}`);
    }
  }
  return formEvent();
}

// -- errors ---------------------------------------------------------------------------------------------------

function clearErrors() {
  const box = $("#errors");
  box.hidden = true;
  box.replaceChildren();
  document.querySelectorAll(".field.invalid").forEach((f) => f.classList.remove("invalid"));
  document.querySelectorAll(".field-error").forEach((e) => (e.textContent = ""));
}

function showError(message, items) {
  const box = $("#errors");
  box.hidden = false;
  // replaceChildren() would print a null child as the text "null": only the nodes there are
  box.replaceChildren(...[h("strong", {}, message), items && items.length ? h("ul", {}, items) : null].filter(Boolean));
}

// A failed call in the shape of cmfleet.errors: {error (one line), traceback (the module's frames), hint}.
function isFailure(body) {
  return !!body && typeof body === "object" && !Array.isArray(body) && typeof body.error === "string";
}

function failureItems(body) {
  return isFailure(body) && body.hint ? [h("li", { class: "hint" }, "hint: " + body.hint)] : [];
}

function failureText(body) {
  return isFailure(body) ? [body.traceback, body.error].filter(Boolean).join("\n") : body;
}

// A 422's field errors next to their fields (by JSON path); the others listed under the form.
function showFieldErrors(body) {
  const unplaced = [];
  const fields = [...document.querySelectorAll("#event-form .field")];
  for (const err of body.fields || []) {
    const field =
      state.mode === "form"
        ? fields.find((f) => {
            const p = f.dataset.path;
            return p && (err.path === p || err.path.startsWith(p + ".") || err.path.startsWith(p + "["));
          })
        : null;
    if (field) {
      field.classList.add("invalid");
      const box = field.querySelector(".field-error");
      box.textContent = (box.textContent ? box.textContent + "; " : "") + err.message;
    } else {
      unplaced.push(h("li", {}, h("code", {}, err.path), " ", err.message));
    }
  }
  const n = (body.fields || []).length;
  showError(`The event does not match the schema (${n} problem${n === 1 ? "" : "s"}).`, unplaced);
}

// -- run ------------------------------------------------------------------------------------------------------

async function run() {
  if (!state.selected) return;
  clearErrors();
  let event;
  try {
    event = currentEvent();
  } catch (e) {
    if (e instanceof FieldError) {
      e.field.classList.add("invalid");
      e.field.querySelector(".field-error").textContent = e.message;
    }
    showError(e.message);
    return;
  }
  const { module, fn } = state.selected;
  const info = (state.functions[module] || []).find((f) => f.name === fn) || {};
  const button = $("#run");
  button.disabled = true;
  $("#run-status").textContent = "running…";
  resetResult();
  try {
    const url = `/api/modules/${enc(module)}/functions/${enc(fn)}` + (info.streaming ? "?stream=1" : "");
    const resp = await api(url, {
      method: "POST",
      headers: {
        "Content-Type": "application/json",
        Accept: info.streaming ? "application/x-ndjson" : "application/json",
      },
      body: JSON.stringify(event),
    });
    const jobId = resp.headers.get("X-Cmfleet-Job-Id");
    if (jobId) showJobMeta({ id: jobId, state: "running", replica: resp.headers.get("X-Cmfleet-Replica") });
    const type = resp.headers.get("Content-Type") || "";
    if (resp.ok && type.includes("application/x-ndjson")) {
      await readStream(resp);
    } else {
      const text = await resp.text();
      const body = jsonOrText(text);
      if (resp.ok) {
        showResult(body);
      } else if (resp.status === 422 && body && body.fields) {
        showFieldErrors(body);
      } else {
        const message = body && body.error ? body.error : `HTTP ${resp.status}`;
        const known = body && Array.isArray(body.known) ? body.known : [];
        const items = known.length ? [h("li", {}, "known: " + known.join(", "))] : failureItems(body);
        showError(`${resp.status}: ${message}`, items);
        if (jobId) showResult(failureText(body), true);
      }
    }
    if (jobId) await openJob(jobId, { keepResult: true });
    $("#run-status").textContent = "";
  } catch (e) {
    showError(`the call failed: ${e.message}`);
    $("#run-status").textContent = "";
  } finally {
    button.disabled = false;
    refreshJobs().catch(() => {});
    refreshMetrics().catch(() => {});
  }
}

// the keys of the gateway's closing line when the job fails mid-stream
const CLOSING_KEYS = ["error", "traceback", "hint", "job_id", "state"];

async function readStream(resp) {
  const reader = resp.body.getReader();
  const decoder = new TextDecoder();
  const items = [];
  let buffer = "";
  const pre = $("#result-body");
  $("#result").hidden = false;
  const render = () => {
    pre.textContent = JSON.stringify(items, null, 2);
    $("#run-status").textContent = `${items.length} item${items.length === 1 ? "" : "s"} so far…`;
  };
  render();
  for (;;) {
    const { value, done } = await reader.read();
    if (value) buffer += decoder.decode(value, { stream: true });
    let nl;
    while ((nl = buffer.indexOf("\n")) >= 0) {
      const line = buffer.slice(0, nl).trim();
      buffer = buffer.slice(nl + 1);
      if (!line) continue;
      const item = JSON.parse(line);
      // the gateway's closing line when the job fails mid-stream
      const keys = isFailure(item) ? Object.keys(item) : [];
      if (keys.includes("job_id") && keys.includes("state") && keys.every((k) => CLOSING_KEYS.includes(k))) {
        showError(`${item.state}: ${item.error}`, failureItems(item));
        continue;
      }
      items.push(item);
      render();
    }
    if (done) break;
  }
  pre.classList.remove("error");
  return items;
}

function resetResult() {
  $("#result").hidden = false;
  $("#result-body").textContent = "";
  $("#result-body").classList.remove("error");
  for (const id of ["job-id", "job-state", "job-duration", "job-replica", "job-cold"]) $("#" + id).textContent = "";
  $("#job-logs").replaceChildren(h("p", { class: "muted" }, "none yet"));
}

function showResult(body, isError) {
  $("#result").hidden = false;
  const pre = $("#result-body");
  pre.textContent = typeof body === "string" ? body : JSON.stringify(body, null, 2);
  pre.classList.toggle("error", !!isError);
}

function showJobMeta(job) {
  $("#result").hidden = false;
  $("#job-id").textContent = job.id;
  $("#job-state").replaceChildren(job.state ? badge(job.state) : "");
  $("#job-duration").textContent = job.duration_ms !== undefined && job.duration_ms !== null ? `${job.duration_ms} ms` : "";
  $("#job-replica").textContent = job.replica || "";
  $("#job-cold").textContent = job.cold_start === undefined ? "" : job.cold_start ? "yes (a replica was started for it)" : "no";
}

// Show a job: its record, its result (unless just shown by run) and its log lines, live.
// A response body as JSON when it parses, else the raw text (errors from proxies, plain-text bodies).
function jsonOrText(text) {
  try {
    return JSON.parse(text);
  } catch (_) {
    return text;
  }
}

async function openJob(id, opts) {
  const job = await getJSON(`/api/jobs/${enc(id)}`);
  showJobMeta(job);
  if (!(opts && opts.keepResult)) {
    clearErrors();
    const resp = await api(`/api/jobs/${enc(id)}/result`);
    const text = await resp.text();
    const body = jsonOrText(text);
    showResult(resp.status === 202 ? `(${job.state})` : resp.status >= 400 ? failureText(body) : body, resp.status >= 400);
  }
  watchJobLogs(id);
}

function logLine(rec, withModule) {
  const line = h(
    "div",
    { class: `log-line level-${(rec.level || "INFO").toLowerCase()}`, dataset: { seq: rec.seq } },
    h("span", { class: "t" }, fmtTime(rec.time)),
    withModule ? h("span", { class: "src" }, `${rec.module}/${rec.replica}`) : null,
    h("span", { class: "lvl" }, rec.level),
    h("span", { class: "msg" }, rec.message),
    rec.params ? h("span", { class: "params" }, JSON.stringify(rec.params)) : null,
    rec.job_id
      ? h("a", { class: "job-link", href: "#", title: rec.job_id, onclick: (e) => (e.preventDefault(), openJob(rec.job_id)) }, rec.job_id.slice(0, 8))
      : null,
  );
  return line;
}

async function watchJobLogs(id) {
  if (state.jobStream) state.jobStream.close();
  state.jobLogSeqs = new Set();
  const box = $("#job-logs");
  const add = (rec) => {
    if (state.jobLogSeqs.has(rec.seq)) return;
    if (!state.jobLogSeqs.size) box.replaceChildren();
    state.jobLogSeqs.add(rec.seq);
    box.append(logLine(rec, true));
  };
  // Lines may still be on their way from the replica: stream them, and read what is already there.
  const stream = new EventSource(`/api/logs/stream?job=${enc(id)}`);
  stream.onmessage = (e) => add(JSON.parse(e.data));
  state.jobStream = stream;
  const records = await getJSON(`/api/logs?job=${enc(id)}&limit=500`);
  records.forEach(add);
}

// -- recent jobs ----------------------------------------------------------------------------------------------

async function refreshJobs() {
  const jobs = await getJSON("/api/jobs?limit=30");
  const key = JSON.stringify(jobs);
  if (key === state.jobsKey) return;
  state.jobsKey = key;
  const rows = jobs.map((j) =>
    h(
      "tr",
      { dataset: { job: j.id }, title: j.error || j.id, onclick: () => openJob(j.id) },
      h("td", {}, fmtTime(j.submitted_at)),
      h("td", { class: "fn-name" }, `${j.module}.${j.function}`),
      h("td", {}, badge(j.state)),
      h("td", {}, j.replica || ""),
      h("td", { class: "num" }, fmtMs(j.duration_ms)),
      h("td", {}, j.cold_start ? "cold" : ""),
    ),
  );
  $("#jobs tbody").replaceChildren(...(rows.length ? rows : [h("tr", {}, h("td", { colspan: 6, class: "muted" }, "no job yet"))]));
}

// -- metrics --------------------------------------------------------------------------------------------------

async function refreshMetrics() {
  const m = await getJSON("/console/api/metrics");
  const key = JSON.stringify(m);
  if (key === state.metricsKey) return;
  state.metricsKey = key;
  const rows = [];
  const cells = (s) => [
    h("td", { class: "num calls" }, s.calls),
    h("td", { class: "num err-count" + (s.errors ? " bad" : "") }, s.errors),
    h("td", { class: "num" }, fmtMs(s.p50_ms)),
    h("td", { class: "num" }, fmtMs(s.p95_ms)),
  ];
  for (const mod of m.modules) {
    rows.push(h("tr", { class: "metric-module", dataset: { module: mod.module } }, h("th", {}, mod.module), cells(mod)));
    for (const fn of mod.functions) {
      rows.push(
        h(
          "tr",
          { class: "metric-function", dataset: { module: mod.module, fn: fn.function } },
          h("td", { class: "indent" }, fn.function),
          cells(fn),
        ),
      );
    }
  }
  $("#metrics tbody").replaceChildren(...rows);
  const custom = m.custom.map((c) =>
    h(
      "tr",
      { dataset: { module: c.module, metric: c.name } },
      h("td", {}, c.module),
      h("td", {}, c.name),
      h("td", {}, c.type),
      h("td", { class: "mono" }, Object.entries(c.values).map(([k, v]) => `${k}=${v}`).join("  ")),
    ),
  );
  $("#custom-metrics tbody").replaceChildren(
    ...(custom.length ? custom : [h("tr", {}, h("td", { colspan: 4, class: "muted" }, "no metric line yet"))]),
  );
}

// -- live logs ------------------------------------------------------------------------------------------------

function renderLogModuleOptions() {
  const select = $("#log-module");
  const current = select.value;
  const names = state.modules.map((m) => m.name);
  const have = [...select.options].map((o) => o.value).filter(Boolean);
  if (JSON.stringify(have) === JSON.stringify(names)) return;
  select.replaceChildren(h("option", { value: "" }, "all"), ...names.map((n) => h("option", { value: n }, n)));
  select.value = names.includes(current) ? current : "";
}

function startLiveLogs() {
  if (state.live) state.live.close();
  const module = $("#log-module").value;
  const box = $("#live-logs");
  box.replaceChildren();
  state.liveSeqs = new Set();
  const add = (rec) => {
    if (state.livePaused || state.liveSeqs.has(rec.seq)) return;
    state.liveSeqs.add(rec.seq);
    const stick = box.scrollTop + box.clientHeight >= box.scrollHeight - 20;
    box.append(logLine(rec, true));
    while (box.childElementCount > MAX_LIVE_LINES) box.firstElementChild.remove();
    if (stick) box.scrollTop = box.scrollHeight;
  };
  const query = module ? `?module=${enc(module)}` : "";
  const stream = new EventSource(`/api/logs/stream${query}`);
  stream.onopen = () => ($("#log-status").textContent = "live");
  stream.onerror = () => ($("#log-status").textContent = "reconnecting…");
  stream.onmessage = (e) => add(JSON.parse(e.data));
  state.live = stream;
  getJSON(`/api/logs?limit=100${module ? "&module=" + enc(module) : ""}`)
    .then((records) => {
      // the backlog goes before the lines the stream already delivered
      const first = box.firstElementChild;
      for (const rec of records) {
        if (state.liveSeqs.has(rec.seq)) continue;
        state.liveSeqs.add(rec.seq);
        box.insertBefore(logLine(rec, true), first);
      }
      box.scrollTop = box.scrollHeight;
    })
    .catch(() => {});
}

// -- health and start-up --------------------------------------------------------------------------------------

async function refreshHealth() {
  const health = await getJSON("/api/health");
  const ready = health.replicas.ready || 0;
  const jobs = health.jobs;
  const failed = (jobs.failed || 0) + (jobs.timed_out || 0) + (jobs.lost || 0);
  $("#health").textContent =
    `${health.modules} module${health.modules === 1 ? "" : "s"} · ${ready} replica${ready === 1 ? "" : "s"} ready · ` +
    `${jobs.succeeded || 0} succeeded · ${failed} failed · up ${Math.round(health.uptime_s)} s`;
}

async function poll() {
  try {
    await Promise.all([refreshModules(), refreshJobs(), refreshMetrics(), refreshHealth()]);
  } catch (e) {
    $("#health").textContent = `cannot reach the runtime (${e.message})`;
  }
  setTimeout(poll, POLL_MS);
}

function start() {
  // The gateway turned ?token= into a cookie: keep the token out of the address bar, history and screenshots.
  const url = new URL(location.href);
  if (url.searchParams.has("token")) {
    url.searchParams.delete("token");
    history.replaceState(null, "", url.pathname + url.search + url.hash);
  }
  $("#tab-form").addEventListener("click", () => setMode("form"));
  $("#tab-json").addEventListener("click", () => setMode("json"));
  $("#run").addEventListener("click", run);
  $("#event-form").addEventListener("submit", (e) => (e.preventDefault(), run()));
  $("#log-module").addEventListener("change", startLiveLogs);
  $("#log-pause").addEventListener("click", (e) => {
    state.livePaused = !state.livePaused;
    e.target.textContent = state.livePaused ? "Resume" : "Pause";
  });
  $("#log-clear").addEventListener("click", () => $("#live-logs").replaceChildren());
  poll();
  startLiveLogs();
}

document.addEventListener("DOMContentLoaded", start);
