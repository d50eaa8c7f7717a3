// Celeriac dashboard page. Everything shown comes from task events, which carry untrusted data
// (task arguments, results, exceptions): it only ever reaches the page as text nodes
// (textContent, createTextNode) or attribute values (setAttribute), never as HTML.
"use strict";

const READY = new Set(["SUCCESS", "FAILURE", "REVOKED", "REJECTED"]);
const RETRYABLE = new Set(["FAILURE", "REVOKED"]);
const MAX_ROWS = 500;
const SVG = "http://www.w3.org/2000/svg";

const model = { tasks: new Map(), workers: [], queues: [], series: [], counts: {}, now: 0 };
const rows = new Map(); // task id -> its <tr>, reused so buttons survive updates
let source = null;
let drawPending = false;
let selected = null;
let shownOrder = "";

const $ = (id) => document.getElementById(id);

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (key === "text") node.textContent = value;
    else if (key === "on") for (const [ev, fn] of Object.entries(value)) node.addEventListener(ev, fn);
    else node.setAttribute(key, value);
  }
  for (const child of children) node.append(child); // strings become text nodes
  return node;
}

function text(value) {
  return value === null || value === undefined ? "" : String(value);
}

function ago(stamp) {
  if (!stamp) return "";
  const s = Math.max(0, Math.round((model.now || Date.now() / 1000) - stamp));
  return s < 60 ? `${s} s ago` : s < 3600 ? `${Math.round(s / 60)} min ago` : `${Math.round(s / 3600)} h ago`;
}

function clock(stamp) {
  return stamp ? new Date(stamp * 1000).toLocaleTimeString() : "";
}

function toast(message, bad) {
  const box = $("toast");
  box.textContent = message;
  box.className = bad ? "show error" : "show";
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { box.className = ""; }, 4000);
}

// -- talking to the server ----------------------------------------------------------------------
async function post(url, body) {
  const response = await fetch(url, {
    method: "POST",
    credentials: "same-origin",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body || {}),
  });
  let answer = {};
  try { answer = await response.json(); } catch (e) { /* no body */ }
  if (response.status === 401) showLogin("the token is needed again");
  if (!response.ok) throw new Error(answer.error || `HTTP ${response.status}`);
  return answer;
}

async function act(what, url, body) {
  try {
    const answer = await post(url, body);
    const replies = answer.result && typeof answer.result === "object" ? Object.keys(answer.result).length : 0;
    toast(`${what}: done${replies ? ` (${replies} worker${replies > 1 ? "s" : ""} answered)` : ""}`);
    return answer;
  } catch (error) {
    toast(`${what}: ${error.message}`, true);
    return null;
  }
}

function showLogin(why) {
  if (source) { source.close(); source = null; }
  $("main").hidden = true;
  $("login").hidden = false;
  $("login-error").textContent = why || "";
  setConnection(false, "token needed");
}

async function start() {
  const response = await fetch("/api/info", { credentials: "same-origin" });
  if (response.status === 401) { showLogin(""); return; }
  if (!response.ok) { setConnection(false, `HTTP ${response.status}`); return; }
  const info = await response.json();
  $("broker").textContent = info.broker + (info.backend ? ` · results ${info.backend}` : "");
  $("login").hidden = true;
  $("main").hidden = false;
  listen();
}

function listen() {
  if (source) source.close();
  source = new EventSource("/api/stream");
  source.addEventListener("update", (message) => {
    merge(JSON.parse(message.data));
  });
  source.onerror = () => {
    setConnection(false, "reconnecting…");
    // EventSource retries by itself, except after a refusal (say, a token now needed).
    if (source && source.readyState === EventSource.CLOSED) setTimeout(start, 2000);
  };
}

function setConnection(ok, why) {
  const conn = $("conn");
  conn.textContent = ok ? "live" : why;
  conn.className = ok ? "conn" : "conn down";
}

function merge(change) {
  if (change.full) { model.tasks.clear(); }
  for (const task of change.tasks) model.tasks.set(task.uuid, task);
  model.workers = change.workers;
  model.queues = change.queues;
  model.series = change.series;
  model.counts = change.counts;
  model.now = change.now;
  setConnection(change.connected, change.error ? `broker: ${change.error}` : "no event stream");
  if (!drawPending) {
    drawPending = true;
    requestAnimationFrame(() => { drawPending = false; draw(); });
  }
}

// -- drawing ------------------------------------------------------------------------------------
function draw() {
  drawCards();
  drawWorkers();
  drawQueues();
  drawTasks();
  drawChart($("chart-throughput"), ["succeeded", "failed"]);
  drawChart($("chart-latency"), ["runtime", "wait"]);
  if (selected) drawDetail(selected);
}

function drawCards() {
  const c = model.counts;
  $("n-workers").textContent = model.workers.filter((w) => w.status === "online").length;
  $("n-active").textContent = c.STARTED || 0;
  $("n-waiting").textContent = (c.PENDING || 0) + (c.RECEIVED || 0) + (c.RETRY || 0);
  $("n-succeeded").textContent = c.SUCCESS || 0;
  $("n-failed").textContent = c.FAILURE || 0;
  $("n-revoked").textContent = c.REVOKED || 0;
}

function fillSelect(select, values) {
  const current = select.value;
  const wanted = ["", ...values];
  const have = Array.from(select.options).map((o) => o.value);
  if (have.join("\n") === wanted.join("\n")) return;
  const first = select.options[0].textContent;
  select.replaceChildren(...wanted.map((v, i) => el("option", { value: v, text: i ? v : first })));
  select.value = wanted.includes(current) ? current : "";
}

function drawWorkers() {
  const body = $("workers").tBodies[0];
  const names = model.workers.map((w) => w.hostname).sort();
  body.replaceChildren(...model.workers
    .slice()
    .sort((a, b) => a.hostname.localeCompare(b.hostname))
    .map((w) => el("tr", { "data-worker": w.hostname },
      el("td", { class: "mono", text: w.hostname }),
      el("td", { class: `status ${w.status}`, text: w.status }),
      el("td", { text: (w.loadavg || []).join(" ") }),
      el("td", { text: text(w.processed) }),
      el("td", { text: text(w.active) }),
      el("td", { text: ago(w.last_seen) }),
      el("td", { text: text(w.software) }),
      el("td", {},
        el("button", {
          type: "button",
          "data-action": "shutdown",
          text: "Shut down",
          on: { click: () => shutdown(w.hostname) },
        })),
    )));
  fillSelect($("rate-worker"), names);
  fillSelect($("worker-filter"), names);
}

function drawQueues() {
  const fixed = (v, n) => (v === null || v === undefined ? "?" : Number(v).toFixed(n));
  $("queues").tBodies[0].replaceChildren(...model.queues.map((q) => el("tr", { "data-queue": q.name },
    el("td", { class: "mono", text: q.name }),
    el("td", { text: q.length === null ? "?" : text(q.length) }),
    el("td", { text: fixed(q.sent_rate, 1) }),
    el("td", { text: fixed(q.change, 2) }),
  )));
}

function matches(task, needle, state, worker) {
  if (state && task.state !== state) return false;
  if (worker && task.worker !== worker) return false;
  if (!needle) return true;
  return [task.uuid, task.name, task.args, task.kwargs, task.worker]
    .some((h) => h && h.toLowerCase().includes(needle));
}

function latest(task) {
  const t = task.timestamps || {};
  return Math.max(0, ...Object.values(t));
}

function drawTasks() {
  const needle = $("search").value.trim().toLowerCase();
  const state = $("state-filter").value;
  const worker = $("worker-filter").value;
  const found = [];
  for (const task of model.tasks.values()) if (matches(task, needle, state, worker)) found.push(task);
  found.sort((a, b) => latest(b) - latest(a));
  const shown = found.slice(0, MAX_ROWS);
  $("task-count").textContent = `${found.length} of ${model.tasks.size} tasks` +
    (found.length > MAX_ROWS ? ` (newest ${MAX_ROWS} shown)` : "");
  for (const task of shown) updateRow(task);
  const order = shown.map((t) => t.uuid).join(",");
  if (order !== shownOrder) {
    shownOrder = order;
    $("tasks").tBodies[0].replaceChildren(...shown.map((t) => rows.get(t.uuid)));
  }
  for (const id of rows.keys()) if (!model.tasks.has(id)) rows.delete(id);
}

function button(action, label, handler) {
  return el("button", { type: "button", "data-action": action, text: label, on: { click: (e) => { e.stopPropagation(); handler(); } } });
}

function updateRow(task) {
  let row = rows.get(task.uuid);
  if (!row) {
    const id = task.uuid;
    row = el("tr", { class: "task", "data-task-id": id, on: { click: () => { selected = id; drawDetail(id); } } },
      el("td", { class: "mono uuid", title: id, text: id.slice(0, 8) }),
      el("td", { class: "name" }),
      el("td", { class: "state" }),
      el("td", { class: "args" }),
      el("td", { class: "args kwargs" }),
      el("td", { class: "mono worker" }),
      el("td", { class: "received" }),
      el("td", { class: "runtime" }),
      el("td", { class: "actions" },
        button("revoke", "Revoke", () => revoke(id, false)),
        button("terminate", "Terminate", () => revoke(id, true)),
        button("retry", "Retry", () => retry(id))),
    );
    rows.set(id, row);
  }
  const cells = row.cells;
  const set = (cell, value) => { if (cell.textContent !== value) cell.textContent = value; };
  set(cells[1], text(task.name));
  set(cells[2], task.state);
  cells[2].className = `state ${task.state}`;
  set(cells[3], text(task.args));
  cells[3].title = text(task.args);
  set(cells[4], text(task.kwargs));
  cells[4].title = text(task.kwargs);
  set(cells[5], text(task.worker));
  set(cells[6], clock(task.timestamps.received || task.timestamps.sent));
  set(cells[7], task.runtime === null ? "" : `${task.runtime.toFixed(3)} s`);
  const [revokeButton, terminateButton, retryButton] = cells[8].children;
  revokeButton.hidden = READY.has(task.state);
  terminateButton.hidden = task.state !== "STARTED";
  retryButton.hidden = !RETRYABLE.has(task.state);
}

function drawDetail(id) {
  const task = model.tasks.get(id);
  if (!task) return;
  $("detail").hidden = false;
  $("detail-id").textContent = id;
  const fields = [
    ["name", task.name], ["state", task.state], ["worker", task.worker], ["queue", task.queue],
    ["args", task.args], ["kwargs", task.kwargs], ["result", task.result],
    ["exception", task.exception], ["retries", task.retries], ["eta", task.eta],
    ["expires", task.expires], ["runtime", task.runtime === null ? null : `${task.runtime.toFixed(4)} s`], ["parent", task.parent_id],
    ["root", task.root_id], ["retried as", task.retried_as],
    ...Object.entries(task.timestamps).map(([k, v]) => [k, clock(v)]),
  ].filter(([, v]) => v !== null && v !== undefined && v !== "");
  $("detail-fields").replaceChildren(...fields.flatMap(([k, v]) => [el("dt", { text: k }), el("dd", { text: text(v) })]));
  $("detail-traceback").textContent = text(task.traceback);
  $("detail-traceback").hidden = !task.traceback;
}

function drawChart(svg, keys) {
  const width = 600, height = 150, pad = 24;
  const points = model.series;
  const end = model.now || Date.now() / 1000;
  const begin = end - 300;
  let top = 0;
  for (const p of points) for (const key of keys) if (p[key] !== null) top = Math.max(top, p[key]);
  top = top > 0 ? top * 1.1 : 1;
  const x = (t) => pad + ((t - begin) / (end - begin)) * (width - pad);
  const y = (v) => height - 14 - (v / top) * (height - 24);
  const nodes = [];
  for (const f of [0, 0.5, 1]) {
    const line = document.createElementNS(SVG, "line");
    for (const [k, v] of [["x1", pad], ["x2", width], ["y1", y(top * f)], ["y2", y(top * f)]]) line.setAttribute(k, v);
    line.setAttribute("class", "grid");
    const label = document.createElementNS(SVG, "text");
    label.setAttribute("x", 0);
    label.setAttribute("y", y(top * f) + 3);
    label.textContent = (top * f).toPrecision(2);
    nodes.push(line, label);
  }
  for (const key of keys) {
    const coords = points.filter((p) => p[key] !== null && p.t >= begin)
      .map((p) => `${x(p.t).toFixed(1)},${y(p[key]).toFixed(1)}`);
    if (!coords.length) continue;
    const path = document.createElementNS(SVG, "polyline");
    path.setAttribute("points", coords.join(" "));
    path.setAttribute("class", `series ${key}`);
    path.setAttribute("data-series", key);
    nodes.push(path);
  }
  svg.replaceChildren(...nodes);
}

// -- actions ------------------------------------------------------------------------------------
function revoke(id, terminate) {
  act(terminate ? "terminate" : "revoke", `/api/tasks/${encodeURIComponent(id)}/revoke`, { terminate });
}

async function retry(id) {
  const answer = await act("retry", `/api/tasks/${encodeURIComponent(id)}/retry`, {});
  if (answer) toast(`retry: sent as ${answer.result.task_id}`);
}

function shutdown(hostname) {
  if (!window.confirm(`Shut down ${hostname}? It finishes its running tasks first.`)) return;
  act(`shut down ${hostname}`, `/api/workers/${encodeURIComponent(hostname)}/shutdown`, {});
}

document.addEventListener("DOMContentLoaded", () => {
  $("login-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      await post("/api/login", { token: $("token").value });
      $("token").value = "";
      start();
    } catch (error) {
      $("login-error").textContent = error.message;
    }
  });
  $("rate-form").addEventListener("submit", (event) => {
    event.preventDefault();
    act("rate limit", "/api/rate-limit", {
      task_name: $("rate-task").value.trim(),
      rate: $("rate-value").value.trim(),
      worker: $("rate-worker").value || null,
    });
  });
  for (const id of ["search", "state-filter", "worker-filter"]) {
    $(id).addEventListener("input", () => { drawTasks(); });
  }
  $("detail-close").addEventListener("click", () => { selected = null; $("detail").hidden = true; });
  start().catch((error) => setConnection(false, error.message));
});
