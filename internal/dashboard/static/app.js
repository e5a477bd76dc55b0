// Ferry's dashboard: reads GET /v1/stats and the task API with the key the
// user enters (kept in sessionStorage, sent only as a bearer header) and
// refreshes itself every two seconds. Everything is drawn with textContent
// and SVG elements: nothing from the server is parsed as HTML.
"use strict";

const REFRESH_MS = 2000;
const KEY = "ferry.key";
const $ = (sel) => document.querySelector(sel);

const state = { key: sessionStorage.getItem(KEY) || "", admin: false, tenant: "", selected: "", detail: "", timer: 0, gen: 0 };

// ---------------------------------------------------------------- API

class APIError extends Error {
  constructor(status, code, message) { super(message); this.status = status; this.code = code; }
}

async function api(method, path, tenant) {
  const headers = { Authorization: "Bearer " + state.key };
  if (tenant && state.admin) headers["Ferry-Tenant"] = tenant;
  const resp = await fetch(path, { method, headers, cache: "no-store" });
  let body = null;
  try { body = await resp.json(); } catch (e) { body = null; }
  if (!resp.ok) {
    const err = (body && body.error) || {};
    throw new APIError(resp.status, err.code || "http_" + resp.status, err.message || resp.statusText);
  }
  return body;
}

// ---------------------------------------------------------------- helpers

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") e.className = v;
    else if (k.startsWith("data-")) e.setAttribute(k, v);
    else if (k === "onclick") e.addEventListener("click", v);
    else e[k] = v;
  }
  for (const c of children) e.append(c instanceof Node ? c : String(c));
  return e;
}

function fmt(n) {
  if (n === null || n === undefined) return "–";
  if (Math.abs(n) >= 100 || Number.isInteger(n)) return Math.round(n).toLocaleString("en");
  return n.toFixed(1);
}

function ms(n) {
  if (n === null || n === undefined) return "–";
  if (n >= 1000) return (n / 1000).toFixed(n >= 10000 ? 0 : 1) + " s";
  return (n >= 10 ? Math.round(n) : n.toFixed(1)) + " ms";
}

function when(iso) {
  if (!iso) return "";
  const d = new Date(iso);
  return d.toLocaleTimeString("en-GB") + (Date.now() - d > 86400e3 ? " " + d.toLocaleDateString("en-GB") : "");
}

const SVGNS = "http://www.w3.org/2000/svg";

// chart draws lines (one per [values, className]) into svg, scaled to the
// largest value; an empty series draws a baseline.
function chart(svg, lines, w = 600, h = 140, pad = 20) {
  svg.replaceChildren();
  let top = 0;
  for (const [vals] of lines) for (const v of vals) top = Math.max(top, v);
  top = top || 1;
  const n = Math.max(...lines.map(([v]) => v.length), 1);
  const base = document.createElementNS(SVGNS, "line");
  base.setAttribute("x1", 0); base.setAttribute("x2", w); base.setAttribute("y1", h - 1); base.setAttribute("y2", h - 1);
  base.setAttribute("class", "axis");
  svg.append(base);
  for (const [vals, cls] of lines) {
    if (!vals.length) continue;
    const pts = vals.map((v, i) => {
      const x = n === 1 ? w : (i * w) / (n - 1);
      return x.toFixed(1) + "," + (h - 2 - (v / top) * (h - pad)).toFixed(1);
    });
    const pl = document.createElementNS(SVGNS, "polyline");
    pl.setAttribute("points", pts.join(" "));
    pl.setAttribute("class", cls);
    svg.append(pl);
  }
  const label = document.createElementNS(SVGNS, "text");
  label.setAttribute("x", 4); label.setAttribute("y", 12); label.setAttribute("class", "scale");
  label.textContent = "max " + fmt(top);
  svg.append(label);
}

function spark(lines) {
  const svg = document.createElementNS(SVGNS, "svg");
  svg.setAttribute("viewBox", "0 0 120 24");
  svg.setAttribute("preserveAspectRatio", "none");
  svg.setAttribute("class", "spark");
  chart(svg, lines, 120, 24, 4);
  svg.lastChild.remove(); // no scale label at this size
  return svg;
}

// ---------------------------------------------------------------- rendering

function renderTenants(stats) {
  const box = $("#tenants");
  box.replaceChildren(...stats.tenants.map((t) => el("div", { class: "tile", "data-tenant": t.name },
    el("h3", {}, t.name),
    el("p", {}, el("b", { "data-col": "queued" }, fmt(t.queued)), " queued of ", fmt(t.max_queued)),
    el("p", {}, el("b", { "data-col": "running" }, fmt(t.running)), " running, limit ", fmt(t.max_concurrency)),
  )));
  const pick = $("#tenant-select");
  if (state.admin) {
    $("#tenant-pick").hidden = false;
    const names = stats.tenants.map((t) => t.name);
    if (pick.options.length !== names.length || [...pick.options].some((o, i) => o.value !== names[i])) {
      pick.replaceChildren(...names.map((n) => el("option", { value: n }, n)));
    }
    if (!names.includes(state.tenant)) state.tenant = names[0] || "";
    pick.value = state.tenant;
  } else {
    state.tenant = stats.tenants.length ? stats.tenants[0].name : "";
  }
}

function renderFunctions(stats) {
  const rows = stats.functions.map((f) => {
    const id = f.tenant + "/" + f.function;
    const limit = f.concurrency_limit < f.max_concurrency ? fmt(f.concurrency_limit) + " of " + fmt(f.max_concurrency) : fmt(f.max_concurrency);
    const tr = el("tr", { "data-fn": id, class: id === state.selected ? "selected" : "", onclick: () => { state.selected = id; render(stats); } },
      el("td", {}, state.admin ? el("span", { class: "muted" }, f.tenant + " / ") : "", f.function),
      el("td", { class: "num", "data-col": "queued" }, fmt(f.queued)),
      el("td", { class: "num", "data-col": "running" }, fmt(f.running)),
      el("td", { class: "num", "data-col": "limit" }, limit),
      el("td", { class: "num", "data-col": "succeeded_per_min" }, fmt(f.succeeded_per_min)),
      el("td", { class: "num" + (f.failed_per_min > 0 ? " bad" : ""), "data-col": "failed_per_min" }, fmt(f.failed_per_min)),
      el("td", { class: "num", "data-col": "succeeded_15m" }, fmt(f.succeeded_15m)),
      el("td", { class: "num" + (f.failed_15m > 0 ? " bad" : ""), "data-col": "failed_15m" }, fmt(f.failed_15m)),
      el("td", { class: "num", "data-col": "wait" }, ms(f.wait_p50_ms) + " / " + ms(f.wait_p99_ms)),
      el("td", { class: "num", "data-col": "run" }, ms(f.run_p50_ms) + " / " + ms(f.run_p99_ms)),
      el("td", {}, spark([[f.series.values.succeeded_per_min, "ok"], [f.series.values.failed_per_min, "bad"]])),
    );
    return tr;
  });
  $("#functions tbody").replaceChildren(...rows);
  const f = stats.functions.find((x) => x.tenant + "/" + x.function === state.selected);
  $("#charts").hidden = !f;
  if (f) {
    $("#charts-title").textContent = f.function + (state.admin ? " (" + f.tenant + ")" : "") + ": last 15 minutes";
    const v = f.series.values;
    chart($("#chart-rates"), [[v.succeeded_per_min, "ok"], [v.failed_per_min, "bad"]]);
    chart($("#chart-depth"), [[v.queued, "q"], [v.running, "run"]]);
    chart($("#chart-wait"), [[v.wait_p99_ms, "q"]]);
  }
}

// lagByPartition lists the lag of each partition or queue, most behind first.
function lagByPartition(t) {
  const parts = Object.entries(t.lag_by_partition || {}).sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]));
  const shown = parts.slice(0, 4).map(([p, n]) => p + ": " + fmt(n)).join(" · ");
  return parts.length > 4 ? shown + " · +" + (parts.length - 4) + " more" : shown;
}

function renderTriggers(stats) {
  $("#triggers-card").hidden = stats.triggers.length === 0;
  $("#triggers tbody").replaceChildren(...stats.triggers.map((t) => el("tr", { "data-trigger": t.name },
    el("td", {}, t.name), el("td", {}, t.kind), el("td", {}, t.function),
    el("td", { class: "num", "data-col": "consumed_per_min" }, fmt(t.consumed_per_min)),
    el("td", { class: "num", "data-col": "invoked_per_min" }, fmt(t.invoked_per_min)),
    el("td", { class: "num" + (t.failed_per_min > 0 ? " bad" : ""), "data-col": "failed_per_min" }, fmt(t.failed_per_min)),
    el("td", { class: "num", "data-col": "in_flight" }, fmt(t.in_flight)),
    el("td", { class: "num", "data-col": "lag", title: lagByPartition(t) }, fmt(t.lag),
      t.lag_by_partition ? el("div", { class: "small muted", "data-col": "lag_by_partition" }, lagByPartition(t)) : ""),
    el("td", {}, spark([[t.series.values.consumed_per_min, "q"], [t.series.values.failed_per_min, "bad"]])),
  )));
}

function renderTasks(list) {
  const rows = list.tasks.map((t) => {
    const err = t.error || t.last_error;
    const dels = (t.deliveries || []).map((d) => d.destination + ": " + d.state).join(", ");
    const actions = el("td", { class: "actions" });
    if (t.status === "failed") {
      actions.append(el("button", { type: "button", class: "replay", onclick: (e) => { e.stopPropagation(); act("replay", t.id); } }, "Replay"));
    }
    if (t.status === "queued") {
      actions.append(el("button", { type: "button", class: "cancel", onclick: (e) => { e.stopPropagation(); act("cancel", t.id); } }, "Cancel"));
    }
    return el("tr", { "data-task": t.id, class: "clickable", onclick: () => { state.detail = t.id; loadDetail(); } },
      el("td", {}, el("code", {}, t.id.slice(0, 8) + "…")), el("td", {}, t.function),
      el("td", { "data-col": "status" }, t.status),
      el("td", { "data-col": "error" }, err ? el("span", {}, el("b", {}, err.code), " ", err.message) : ""),
      el("td", { class: "num", "data-col": "attempts" }, t.attempts), el("td", { class: "small" }, dels),
      el("td", { class: "small" }, when(t.finished_at || t.updated_at)), actions);
  });
  $("#tasks tbody").replaceChildren(...rows);
  $("#tasks-empty").hidden = rows.length > 0;
}

async function loadDetail() {
  if (!state.detail) { $("#detail").hidden = true; return; }
  let t;
  try {
    t = await api("GET", "/v1/tasks/" + encodeURIComponent(state.detail) + "?payload=true", state.tenant);
  } catch (e) {
    if (e.status === 404) { state.detail = ""; $("#detail").hidden = true; return; }
    throw e;
  }
  $("#detail").hidden = false;
  $("#detail-id").textContent = t.id;
  const fields = [["Function", t.function], ["Status", t.status], ["Attempts", t.attempts], ["Replays", t.replays || 0],
    ["Hops", t.hops], ["Created", when(t.created_at)], ["Scheduled", when(t.scheduled_at)], ["Finished", when(t.finished_at)]];
  const err = t.error || t.last_error;
  if (err) fields.push([t.error ? "Error" : "Last error", err.code + ": " + err.message]);
  if (t.output !== undefined) fields.push(["Output", JSON.stringify(t.output)]);
  $("#detail-fields").replaceChildren(...fields.filter(([, v]) => v !== "" && v !== undefined)
    .flatMap(([k, v]) => [el("dt", {}, k), el("dd", { "data-field": k.toLowerCase() }, v)]));
  let payload = "";
  if (t.payload !== undefined) payload = JSON.stringify(t.payload, null, 2);
  else if (t.payload_base64 !== undefined) payload = "base64: " + t.payload_base64;
  if (t.payload_truncated) payload += "\n… (truncated)";
  $("#detail-payload").textContent = payload;
  $("#detail-deliveries tbody").replaceChildren(...(t.deliveries || []).map((d) => el("tr", {},
    el("td", {}, d.destination + " (" + d.kind + ")"), el("td", {}, d.state), el("td", { class: "num" }, d.attempts), el("td", {}, d.last_error || ""))));
  $("#detail-replay").hidden = t.status !== "failed";
  $("#detail-cancel").hidden = t.status !== "queued";
}

async function act(what, id) {
  const out = $("#action-result");
  try {
    const t = what === "replay"
      ? await api("POST", "/v1/tasks/" + encodeURIComponent(id) + "/replay", state.tenant)
      : await api("DELETE", "/v1/tasks/" + encodeURIComponent(id), state.tenant);
    out.className = "ok";
    out.textContent = (what === "replay" ? "Replayed " : "Cancelled ") + t.id + ": now " + t.status + ".";
  } catch (e) {
    out.className = "error";
    out.textContent = "Could not " + what + " " + id + ": " + e.message;
  }
  refresh();
}

// ---------------------------------------------------------------- loop

let lastStats = null;

function render(stats) {
  lastStats = stats;
  renderTenants(stats);
  renderFunctions(stats);
  renderTriggers(stats);
}

async function refresh() {
  clearTimeout(state.timer);
  const gen = ++state.gen; // a newer refresh (after a click) takes over the loop
  try {
    const stats = await api("GET", "/v1/stats");
    state.admin = stats.admin;
    render(stats);
    if (state.tenant) {
      const status = $("#status-filter").value;
      renderTasks(await api("GET", "/v1/tasks?limit=50&status=" + encodeURIComponent(status), state.tenant));
      await loadDetail();
    }
    $("#updated").textContent = "updated " + new Date().toLocaleTimeString("en-GB");
    $("#updated").classList.remove("error");
  } catch (e) {
    if (e.status === 401) { signOut("That key is not known here."); return; }
    $("#updated").textContent = "update failed: " + e.message;
    $("#updated").classList.add("error");
  }
  if (gen === state.gen && state.key) state.timer = setTimeout(refresh, REFRESH_MS);
}

function show() {
  const signedIn = !!state.key;
  $("#login").hidden = signedIn;
  $("#app").hidden = !signedIn;
  $("#nav").hidden = !signedIn;
  if (signedIn) refresh();
}

function signOut(msg) {
  clearTimeout(state.timer);
  sessionStorage.removeItem(KEY);
  Object.assign(state, { key: "", admin: false, tenant: "", selected: "", detail: "" });
  $("#login-error").textContent = msg || "";
  show();
}

document.addEventListener("DOMContentLoaded", () => {
  $("#login-form").addEventListener("submit", (e) => {
    e.preventDefault();
    state.key = $("#key-input").value.trim();
    $("#key-input").value = "";
    $("#login-error").textContent = "";
    sessionStorage.setItem(KEY, state.key);
    show();
  });
  $("#sign-out").addEventListener("click", () => signOut());
  $("#tenant-select").addEventListener("change", (e) => { state.tenant = e.target.value; state.detail = ""; refresh(); });
  $("#status-filter").addEventListener("change", () => refresh());
  $("#detail-close").addEventListener("click", () => { state.detail = ""; $("#detail").hidden = true; });
  $("#detail-replay").addEventListener("click", () => act("replay", state.detail));
  $("#detail-cancel").addEventListener("click", () => act("cancel", state.detail));
  show();
});
