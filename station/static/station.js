// MonitorMe nurse station. Reads the API as any client does: the wards,
// the open alarms and each patient's latest values over REST, then the
// live stream, resumed after the last event applied on every reconnect.
"use strict";

const PER_PAGE = 20; // 5 × 4 tiles fill 1920×1080 without scrolling
const TILE_KINDS = [
  ["heart_rate", "HR", "/min", 30e3],
  ["spo2", "SpO₂", "%", 30e3],
  ["resp_rate", "RR", "/min", 60e3],
  ["bp", "BP", "mmHg", 75 * 60e3],
  ["temperature", "Temp", "°C", 15 * 60e3],
];
const RANK = { high: 0, medium: 1, low: 2 };
const MARK = { high: "!!!", medium: "!!", low: "!" };

const st = {
  token: sessionStorage.getItem("monitorme-token") || "",
  me: null, insecure: false,
  wards: { wards: [], unplaced: [] },
  ward: localStorage.getItem("monitorme-ward") || "",
  page: 0,
  patients: new Map(), // id -> {vitals:{kind:{value,ts}}, news2, silenceUntil, fetched}
  alarms: new Map(),   // alert_id -> open alarm
  lastUpdate: null,
  es: null, live: false, sound: false, audio: null,
  open: null, // patient in the patient view
};

const $ = (id) => document.getElementById(id);
const el = (tag, cls, text) => { const e = document.createElement(tag); if (cls) e.className = cls; if (text !== undefined) e.textContent = text; return e; };

async function api(path, opts = {}) {
  const headers = Object.assign({ Accept: "application/json" }, opts.headers || {});
  if (st.token && opts.method && opts.method !== "GET") headers.Authorization = "Bearer " + st.token;
  const ctl = new AbortController();
  const timer = setTimeout(() => ctl.abort(), opts.timeout || 8000);
  try {
    const res = await fetch(path, Object.assign({}, opts, { headers, signal: ctl.signal, credentials: "same-origin" }));
    if (res.status === 401) { showLogin(); throw new Error("not signed in"); }
    return res;
  } finally { clearTimeout(timer); }
}

function isTech(a) { return /_signal_lost$|^technical/.test(a.condition); }
function age(ts) {
  const s = Math.max(0, Math.round((Date.now() - ts) / 1000));
  if (s < 60) return s + " s";
  if (s < 3600) return Math.floor(s / 60) + " min";
  return Math.floor(s / 3600) + " h";
}
function hhmmss(d) { return d ? d.toLocaleTimeString([], { hour12: false }) : "never"; }
function touched() { st.lastUpdate = new Date(); }

// --- sign in ---------------------------------------------------------
function showLogin() { const d = $("login"); if (!d.open) d.showModal(); }
$("login-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const token = $("login-token").value.trim();
  const res = await fetch("/v1/session", { method: "POST", headers: { Authorization: "Bearer " + token }, credentials: "same-origin" });
  if (!res.ok) { $("login-error").textContent = "That token was refused (" + res.status + ")."; return; }
  st.token = token; sessionStorage.setItem("monitorme-token", token);
  $("login").close(); start();
});

// --- loading ----------------------------------------------------------
async function whoami() {
  const res = await fetch("/v1/whoami", { credentials: "same-origin" });
  if (res.status === 401) return null;
  return res.json();
}

async function loadWards() {
  st.wards = await (await api("/v1/wards")).json();
  const sel = $("ward");
  const names = st.wards.wards.map((w) => w.ward);
  if (!names.includes(st.ward) && st.ward !== "*") st.ward = names[0] || "*";
  sel.replaceChildren(...names.map((n) => { const o = el("option", "", "Ward " + n); o.value = n; return o; }),
    Object.assign(el("option", "", "All patients"), { value: "*" }));
  sel.value = st.ward;
}

async function loadAlarms() { st.alarms = await fetchAlarms(); }

async function loadLatest(id) {
  const p = patient(id);
  p.fetched = Date.now();
  const res = await api("/v1/patients/" + encodeURIComponent(id) + "/vitals/latest");
  if (!res.ok) return;
  const body = await res.json();
  for (const [k, r] of Object.entries(body.vitals || {})) p.vitals[k] = { value: r.value, ts: Date.parse(r.ts) };
  p.news2 = body.news2 || null;
  p.silenceUntil = body.silence ? Date.parse(body.silence.ts) + body.silence.seconds * 1000 : 0;
}

function patient(id) {
  let p = st.patients.get(id);
  if (!p) { p = { vitals: {}, news2: null, silenceUntil: 0, fetched: 0 }; st.patients.set(id, p); }
  return p;
}

function beds() {
  if (st.ward === "*") {
    const all = [];
    for (const w of st.wards.wards) for (const b of w.beds) all.push(Object.assign({ ward: w.ward }, b));
    for (const id of st.wards.unplaced) all.push({ ward: "", bed: "–", patient_id: id });
    return all;
  }
  const w = st.wards.wards.find((x) => x.ward === st.ward);
  return w ? w.beds.map((b) => Object.assign({ ward: w.ward }, b)) : [];
}

async function loadAll() {
  await loadWards();
  await loadAlarms();
  await Promise.all(beds().map((b) => loadLatest(b.patient_id).catch(() => {})));
  touched();
  render();
}

// --- live stream ------------------------------------------------------
// No alarm may be missed across a gap in the stream. Every (re)connect —
// the browser's own retry, a new stream after the watchdog, a restarted
// server, a sign-in, a tab woken from sleep — resumes after the last event
// this screen applied (the browser sends it on its own retries; a new
// stream names it) and re-reads the open alarms before the screen says
// "Live". Until then the banner stays and the alarm list says it may be
// incomplete. Events that arrive while the alarms are re-read are applied
// as they come and win over the re-read list, which is older than them or
// as old.
function connect() {
  if (st.es) st.es.close();
  st.syncGen = (st.syncGen || 0) + 1; // a re-read still under way is for the old stream
  setLive(false);
  const url = "/v1/stream" + (st.lastEventId ? "?last_event_id=" + encodeURIComponent(st.lastEventId) : "");
  const es = new EventSource(url);
  st.es = es;
  es.onopen = () => resync(es, false);
  es.onerror = () => { if (st.es === es) setLive(false); };
  const applied = (ev) => { if (st.es === es && ev.lastEventId) st.lastEventId = ev.lastEventId; };
  es.addEventListener("vital", (ev) => {
    const r = JSON.parse(ev.data);
    const p = patient(r.patient_id);
    const ts = Date.parse(r.ts);
    if (!p.vitals[r.kind] || p.vitals[r.kind].ts <= ts) p.vitals[r.kind] = { value: r.value, ts };
    // The score comes from the server's rules: ask again now and then.
    if (Date.now() - p.fetched > 10e3) loadLatest(r.patient_id).catch(() => {});
    applied(ev); activity();
  });
  es.addEventListener("alert", (ev) => {
    const a = JSON.parse(ev.data);
    applyAlert(a);
    if (st.streamed) st.streamed.add(a.alert_id);
    applied(ev); activity();
  });
  es.addEventListener("placement", (ev) => { applied(ev); activity(); clearTimeout(st.placeTimer); st.placeTimer = setTimeout(() => loadWards().then(render), 300); });
  // The server no longer has the events after our last one: read the
  // whole state again, and follow the stream from here.
  es.addEventListener("reset", () => { st.lastEventId = ""; resync(es, true); });
  // The server skipped readings this screen fell behind on (never an
  // alarm): read the shown beds' latest values again, now and then.
  es.addEventListener("skipped", () => {
    if (Date.now() - (st.skippedAt || 0) < 5000) return;
    st.skippedAt = Date.now();
    Promise.all(beds().map((b) => loadLatest(b.patient_id).catch(() => {}))).then(scheduleRender);
  });
}

function activity() { touched(); if (st.live) setLive(true); scheduleRender(); }

// fetchAlarms reads every open alarm, page by page.
async function fetchAlarms() {
  const next = new Map();
  let cursor = "";
  for (let i = 0; i < 20; i++) {
    const res = await api("/v1/alarms?limit=500" + (cursor ? "&cursor=" + encodeURIComponent(cursor) : ""));
    if (!res.ok) throw new Error("open alarms: " + res.status);
    const body = await res.json();
    for (const a of body.alarms) next.set(a.alert_id, a);
    if (!body.next_cursor) break;
    cursor = body.next_cursor;
  }
  return next;
}

// resync re-reads the open alarms (and with full, everything) for the
// stream es, then says Live. An alarm the stream touched meanwhile keeps
// the stream's state; one the list has and the screen lacks was raised in
// the gap; one the screen has and the list lacks ended in the gap.
async function resync(es, full) {
  const gen = (st.syncGen = (st.syncGen || 0) + 1);
  setLive(false);
  st.streamed = new Set();
  try {
    if (full) await loadWards();
    const list = await fetchAlarms();
    if (gen !== st.syncGen || st.es !== es) return; // a newer stream took over
    for (const [id, a] of list) if (!st.streamed.has(id)) st.alarms.set(id, Object.assign({}, st.alarms.get(id) || {}, a));
    for (const id of [...st.alarms.keys()]) if (!list.has(id) && !st.streamed.has(id)) st.alarms.delete(id);
    st.streamed = null;
    st.synced = Date.now();
    if (full) await Promise.all(beds().map((b) => loadLatest(b.patient_id).catch(() => {})));
    if (gen !== st.syncGen || st.es !== es) return;
    if (es.readyState === EventSource.OPEN) { touched(); setLive(true); }
  } catch { /* not live: the watchdog connects again */ }
  render();
}

function setLive(on) {
  st.live = on;
  $("lost").hidden = on;
  $("lost-since").textContent = hhmmss(st.lastUpdate);
  $("alarms-incomplete").hidden = on;
  document.body.dataset.live = on ? "1" : "0";
  const s = $("status");
  s.classList.toggle("live", on);
  s.textContent = on ? "Live · updated " + hhmmss(st.lastUpdate) : "Not live · last update " + hhmmss(st.lastUpdate);
}

// The stream can hang without an error when the network goes: a check
// every 5 s (every second while not live) finds out, and a new stream
// resumes where the old one ended. A stream that is not open and re-read
// is replaced as soon as the server answers again: one opened while the
// network hung may never open.
async function watchdog() {
  try {
    const res = await fetch("/healthz", { cache: "no-store", signal: AbortSignal.timeout(st.live ? 4000 : 900) });
    if (!res.ok) throw new Error("unhealthy");
    const syncing = st.es && st.es.readyState === EventSource.OPEN && st.streamed;
    if (st.me && !st.live && !syncing) connect();
  } catch {
    setLive(false);
    if (st.es) { st.es.close(); st.es = null; }
  }
  setTimeout(watchdog, st.live ? 5000 : 1000);
}

// A tab the browser put to sleep, or a machine that slept, may hold a
// stream that died without a word: connect again when it wakes.
document.addEventListener("visibilitychange", () => { if (!document.hidden && st.me) connect(); });
window.addEventListener("pageshow", (ev) => { if (ev.persisted && st.me) connect(); });
window.addEventListener("online", () => { if (st.me) connect(); });
document.addEventListener("resume", () => { if (st.me) connect(); }); // a frozen tab thawed (Page Lifecycle)

function applyAlert(a) {
  const prev = st.alarms.get(a.alert_id);
  if (a.state === "resolved") { st.alarms.delete(a.alert_id); return; }
  const raised = prev ? prev.raised_at : a.ts;
  const isNew = !prev && a.priority === "high" && a.state !== "acknowledged";
  // Every event says where the patient is (a transfer's "updated" event
  // moves an open alarm, a discharge's to no ward): take it as it is.
  st.alarms.set(a.alert_id, Object.assign({}, a, { raised_at: raised, ward: a.ward || "" }));
  if (isNew && st.sound) beep();
}

// --- actions ----------------------------------------------------------
async function acknowledge(a, button) {
  button.disabled = true;
  const body = st.insecure ? JSON.stringify({ by: "station" }) : "";
  const res = await api("/v1/alerts/" + a.alert_id + "/ack", { method: "POST", body, headers: { "Content-Type": "application/json" } }).catch(() => null);
  if (!res || res.status !== 202) { button.disabled = false; button.textContent = "Ack failed — retry"; return; }
  const body2 = await res.json();
  const cur = st.alarms.get(a.alert_id);
  if (cur) { cur.state = "acknowledged"; cur.acked_by = body2.ack.by; }
  render();
}

async function pauseAudio(id) {
  const body = JSON.stringify(st.insecure ? { seconds: 120, by: "station" } : { seconds: 120 });
  const res = await api("/v1/patients/" + encodeURIComponent(id) + "/silence", { method: "POST", body, headers: { "Content-Type": "application/json" } }).catch(() => null);
  if (res && res.status === 202) { const b = await res.json(); patient(id).silenceUntil = Date.parse(b.until); }
  renderPatient();
}

function beep() {
  if (!st.audio) return;
  // IEC 60601-1-8's high priority burst: 2 × 5 pulses, here in short.
  const ctx = st.audio;
  for (let i = 0; i < 5; i++) {
    const o = ctx.createOscillator(), g = ctx.createGain();
    o.frequency.value = 880; g.gain.value = 0.15;
    o.connect(g).connect(ctx.destination);
    const t = ctx.currentTime + i * 0.2;
    o.start(t); o.stop(t + 0.12);
  }
}

$("sound").addEventListener("click", () => {
  st.sound = !st.sound;
  if (st.sound && !st.audio) st.audio = new AudioContext();
  $("sound").textContent = st.sound ? "Sound on" : "Sound off";
  $("sound").setAttribute("aria-pressed", String(st.sound));
});
$("ward").addEventListener("change", async (ev) => {
  st.ward = ev.target.value; st.page = 0; localStorage.setItem("monitorme-ward", st.ward);
  await Promise.all(beds().map((b) => loadLatest(b.patient_id).catch(() => {})));
  render();
});

// --- rendering --------------------------------------------------------
let renderQueued = false;
function scheduleRender() { if (!renderQueued) { renderQueued = true; requestAnimationFrame(() => { renderQueued = false; render(); }); } }

function sortedAlarms(filter) {
  return [...st.alarms.values()].filter(filter || (() => true)).sort((a, b) =>
    (RANK[a.priority] - RANK[b.priority]) ||
    ((a.state === "acknowledged") - (b.state === "acknowledged")) ||
    (Date.parse(a.raised_at) - Date.parse(b.raised_at)));
}

function worst(id) {
  const open = sortedAlarms((a) => a.patient_id === id);
  return { top: open[0], tech: open.some(isTech), escalated: open.find((a) => a.state === "escalated") };
}

// render rebuilds the screen; keyboard focus stays on the same tile or
// alarm button, so the page stays operable without a mouse.
function render() {
  const f = document.activeElement;
  const keep = f && (f.dataset.patient ? '.tile[data-patient="' + CSS.escape(f.dataset.patient) + '"]'
    : f.closest && f.closest("[data-alert]") ? '[data-alert="' + CSS.escape(f.closest("[data-alert]").dataset.alert) + '"] button' : null);
  draw();
  if (keep && !st.open) { const n = document.querySelector(keep); if (n) n.focus(); }
}

function draw() {
  const list = beds();
  const pages = Math.max(1, Math.ceil(list.length / PER_PAGE));
  st.page = Math.min(st.page, pages - 1);
  $("pages").replaceChildren(...(pages > 1 ? [...Array(pages).keys()].map((i) => {
    const b = el("button", "", "Beds " + (i * PER_PAGE + 1) + "–" + Math.min(list.length, (i + 1) * PER_PAGE));
    b.type = "button"; b.setAttribute("aria-current", String(i === st.page));
    b.onclick = () => { st.page = i; render(); };
    // A page with an unacknowledged high alarm says so.
    if (list.slice(i * PER_PAGE, (i + 1) * PER_PAGE).some((x) => { const w = worst(x.patient_id).top; return w && w.priority === "high" && w.state !== "acknowledged"; })) b.textContent += " !!!";
    return b;
  }) : []));
  const grid = $("grid");
  const shown = list.slice(st.page * PER_PAGE, (st.page + 1) * PER_PAGE);
  grid.replaceChildren(...shown.map(tile));
  if (shown.length === 0) grid.replaceChildren(el("p", "note", st.ward === "*" ? "No patients yet." : "No patient is admitted to this ward."));
  const alarms = sortedAlarms((a) => st.ward === "*" || a.ward === st.ward || list.some((b) => b.patient_id === a.patient_id));
  $("alarm-count").textContent = "(" + alarms.length + ")";
  $("alarm-list").replaceChildren(...alarms.map((a) => alarmItem(a, list)));
  setLive(st.live);
  if (st.open) renderPatient();
}

function tile(b) {
  const p = patient(b.patient_id);
  const w = worst(b.patient_id);
  const t = el("button", "tile");
  t.type = "button";
  t.dataset.patient = b.patient_id;
  t.setAttribute("aria-label", "Bed " + b.bed + ", " + (b.name || b.patient_id) + (w.top ? ", " + w.top.priority + " priority alarm: " + w.top.message : ""));
  if (w.top) {
    t.classList.add("alarm-" + w.top.priority);
    if (w.top.state === "acknowledged") t.classList.add("acked");
    t.dataset.alarm = w.top.priority;
  }
  if (w.tech) t.classList.add("alarm-tech");
  const head = el("div", "head");
  head.append(el("span", "bed", b.bed), el("span", "name", b.name || b.patient_id));
  const marks = [];
  if (w.top) marks.push(MARK[w.top.priority]);
  if (w.tech) marks.push("TECH");
  if (w.escalated) marks.push("ESC " + (w.escalated.escalation_level || ""));
  head.append(el("span", "mark", marks.join(" ")));
  t.append(head);
  const vit = el("div", "vitals");
  for (const [kind, label, unit, staleAfter] of TILE_KINDS) {
    let text = "—", ts = 0;
    if (kind === "bp") {
      const s = p.vitals.bp_systolic, d = p.vitals.bp_diastolic;
      if (s) { text = Math.round(s.value) + "/" + (d ? Math.round(d.value) : "—"); ts = s.ts; }
    } else if (p.vitals[kind]) {
      const v = p.vitals[kind].value;
      text = kind === "temperature" ? v.toFixed(1) : String(Math.round(v));
      ts = p.vitals[kind].ts;
    }
    const stale = ts && Date.now() - ts > staleAfter;
    const row = [el("span", "k", label + " " + unit), el("span", "v", text), el("span", "age", ts ? age(ts) : "")];
    const wrap = el("div", stale ? "row stale" : "row");
    wrap.dataset.kind = kind;
    wrap.append(...row);
    vit.append(wrap);
  }
  t.append(vit);
  const n = p.news2;
  const news = el("span", "news2 " + (n ? "band-" + n.band : ""), n ? "NEWS2 " + n.score + " · " + n.band : "NEWS2 —");
  t.append(news);
  t.addEventListener("click", () => openPatient(b));
  return t;
}

function alarmItem(a, list) {
  const li = el("li", "alarm p-" + a.priority + (isTech(a) ? " tech" : "") + (a.state === "acknowledged" ? " acked" : ""));
  li.dataset.alert = a.alert_id;
  const bed = list.find((b) => b.patient_id === a.patient_id);
  const l1 = el("div", "line1");
  l1.append(el("span", "", (isTech(a) ? "TECH " : MARK[a.priority] + " ") + (bed ? "Bed " + bed.bed : a.patient_id)), el("span", "", a.condition.replaceAll("_", " ")));
  if (a.state === "escalated") l1.append(el("span", "tag", "ESCALATED " + (a.escalation_level || "") + (a.notify ? " → " + a.notify : "")));
  if (a.state === "acknowledged") l1.append(el("span", "tag", "ACK " + (a.acked_by || "")));
  if (a.state === "resolved-unacknowledged") l1.append(el("span", "tag", "RESOLVED, NOT ACKED"));
  if (a.state !== "acknowledged") {
    const ack = el("button", "ack", "Acknowledge");
    ack.type = "button";
    ack.setAttribute("aria-label", "Acknowledge " + a.priority + " priority " + a.condition + " of " + (bed ? "bed " + bed.bed : a.patient_id));
    ack.onclick = () => acknowledge(a, ack);
    l1.append(ack);
  }
  li.append(l1, el("div", "line2", a.message + " · raised " + age(Date.parse(a.raised_at)) + " ago"));
  return li;
}

// --- patient view -----------------------------------------------------
function openPatient(b) {
  st.open = b;
  $("patient-title").textContent = "Bed " + b.bed + " · " + (b.name || b.patient_id) + " (" + b.patient_id + ")";
  renderPatient();
  $("patient").showModal();
  loadTrends(b.patient_id);
}
$("patient-close").addEventListener("click", () => { $("patient").close(); });
$("patient").addEventListener("close", () => { st.open = null; });
$("pause").addEventListener("click", () => { if (st.open) pauseAudio(st.open.patient_id); });

function renderPatient() {
  const b = st.open;
  if (!b) return;
  const p = patient(b.patient_id);
  const now = $("patient-now");
  now.replaceChildren(...Object.entries(p.vitals).sort().map(([k, v]) => el("span", "", k.replaceAll("_", " ") + " " + (Math.round(v.value * 10) / 10) + " (" + age(v.ts) + ")")));
  if (p.news2) now.append(el("span", "news2 band-" + p.news2.band, "NEWS2 " + p.news2.score + " · " + p.news2.band + (p.news2.response ? " — " + p.news2.response : "")));
  const left = Math.round((p.silenceUntil - Date.now()) / 1000);
  $("pause-left").textContent = left > 0 ? "Audio paused: " + Math.floor(left / 60) + ":" + String(left % 60).padStart(2, "0") + " left (high priority alarms still sound)" : "";
  $("patient-alarms").replaceChildren(...sortedAlarms((a) => a.patient_id === b.patient_id).map((a) => alarmItem(a, [b])));
}

async function loadTrends(id) {
  const box = $("trends");
  box.replaceChildren(el("p", "note", "Loading…"));
  const to = new Date(), from = new Date(to - 24 * 3600e3);
  let res;
  try { res = await api("/v1/patients/" + encodeURIComponent(id) + "/vitals?step=15m&from=" + from.toISOString() + "&to=" + to.toISOString()); } catch { box.replaceChildren(el("p", "note", "History did not answer.")); return; }
  if (res.status === 501) { box.replaceChildren(el("p", "note", "Trends need the history store (ClickHouse), which this deployment does not have: live values only.")); return; }
  if (!res.ok) { box.replaceChildren(el("p", "note", "History is unavailable right now (" + res.status + ").")); return; }
  const body = await res.json();
  if (!body.series.length) { box.replaceChildren(el("p", "note", "No history in the last 24 hours.")); return; }
  box.replaceChildren(...body.series.map((s) => trend(s, from, to)));
}

function trend(s, from, to) {
  const div = el("div", "trend");
  div.append(el("h4", "", s.kind.replaceAll("_", " ") + " (" + s.unit + ")"));
  const W = 480, H = 90, ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("viewBox", "0 0 " + W + " " + H);
  svg.setAttribute("role", "img");
  const pts = s.buckets || [];
  const lo = Math.min(...pts.map((b) => b.min)), hi = Math.max(...pts.map((b) => b.max));
  const x = (t) => (Date.parse(t) - from) / (to - from) * W;
  const y = (v) => H - 4 - (hi === lo ? 0.5 : (v - lo) / (hi - lo)) * (H - 8);
  const band = pts.map((b) => x(b.ts) + "," + y(b.max)).concat(pts.slice().reverse().map((b) => x(b.ts) + "," + y(b.min)));
  const poly = document.createElementNS(ns, "polygon"); poly.setAttribute("class", "band"); poly.setAttribute("points", band.join(" "));
  const line = document.createElementNS(ns, "polyline"); line.setAttribute("class", "avg"); line.setAttribute("points", pts.map((b) => x(b.ts) + "," + y(b.avg)).join(" "));
  svg.append(poly, line);
  svg.setAttribute("aria-label", s.kind + " from " + lo + " to " + hi + " " + s.unit + " over 24 hours");
  div.append(svg, el("div", "note", "min " + lo + " · max " + hi));
  return div;
}

// An error is shown, not swallowed: a screen that silently stopped
// updating is worse than one that says so.
function showError(e) {
  const msg = (e && (e.message || e.reason && e.reason.message)) || String(e);
  if (msg === "not signed in") return;
  $("user").textContent = "Error: " + msg;
  document.body.dataset.error = msg;
}
window.addEventListener("error", (e) => showError(e.error || e.message));
window.addEventListener("unhandledrejection", (e) => showError(e.reason));

// --- start ------------------------------------------------------------
async function start() {
  st.me = await whoami();
  if (!st.me) { showLogin(); return; }
  st.insecure = st.me.method === "none";
  $("user").textContent = st.me.subject + (st.insecure ? " (no authentication)" : "");
  await loadAll();
  connect();
}
setInterval(() => { scheduleRender(); }, 1000);
setTimeout(watchdog, 5000);
start();
