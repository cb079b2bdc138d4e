// The live inspector: reads GET /api/inspect/stream (server-sent events, twice a second) and
// shows every room, its clients and their links, with a minute of history drawn on canvases.
// No dependency: the charts are drawn here.
"use strict";

const HISTORY = 120; // samples kept per client: a minute at two a second
const COLOURS = ["#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2", "#4b5563", "#db2777"];
const history = new Map(); // "room/client" → { name, out: [], rtt: [] }
const sections = new Map(); // room id → its section
const stageHistory = new Map(); // room id → { stage name → [µs] }
const state = { updates: 0, last: null };
window.tickwireInspector = state;

function track(room, c) {
  const key = `${room}/${c.client}`;
  let h = history.get(key);
  if (!h) {
    h = { name: c.name, out: [], rtt: [] };
    history.set(key, h);
  }
  h.out.push(c.bytes_out_per_sec);
  h.rtt.push(c.rtt_ms);
  if (h.out.length > HISTORY) h.out.shift();
  if (h.rtt.length > HISTORY) h.rtt.shift();
  return h;
}

function niceTop(v) {
  if (!(v > 0)) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  return [1, 2, 5, 10].map((m) => m * p).find((c) => c >= v);
}

function draw(canvas, lines) {
  const ctx = canvas.getContext("2d");
  const { width: w, height: h } = canvas;
  const left = 44, top = 8, bottom = 16;
  ctx.clearRect(0, 0, w, h);
  const values = lines.flatMap((l) => l.values.filter((v) => v !== null && v !== undefined));
  const max = niceTop(Math.max(0, ...values));
  ctx.font = "11px system-ui, sans-serif";
  ctx.fillStyle = "#6b7280";
  ctx.strokeStyle = "#e5e7eb";
  for (let i = 0; i <= 4; i++) {
    const y = top + (h - top - bottom) * (1 - i / 4);
    ctx.beginPath();
    ctx.moveTo(left, y);
    ctx.lineTo(w - 4, y);
    ctx.stroke();
    ctx.fillText(String(Math.round((max * i) / 4 * 100) / 100), 2, y + 4);
  }
  const x = (i) => left + ((w - left - 4) * i) / (HISTORY - 1);
  const y = (v) => top + (h - top - bottom) * (1 - Math.min(v / max, 1));
  lines.forEach((line, n) => {
    ctx.strokeStyle = COLOURS[n % COLOURS.length];
    ctx.lineWidth = 1.6;
    ctx.beginPath();
    let pen = false;
    const offset = HISTORY - line.values.length;
    line.values.forEach((v, i) => {
      if (v === null || v === undefined) {
        pen = false;
        return;
      }
      if (pen) ctx.lineTo(x(offset + i), y(v));
      else ctx.moveTo(x(offset + i), y(v));
      pen = true;
    });
    ctx.stroke();
    ctx.fillStyle = COLOURS[n % COLOURS.length];
    ctx.fillText(line.name, left + 8 + 90 * n, h - 3);
  });
}

function cell(row, text) {
  const td = document.createElement("td");
  td.textContent = text;
  row.appendChild(td);
}

function fixed(v, digits) {
  return v === null || v === undefined ? "–" : Number(v).toFixed(digits);
}

function render(data) {
  state.updates += 1;
  state.last = data;
  const seen = new Set();
  const main = document.getElementById("rooms");
  for (const room of data.rooms) {
    seen.add(room.id);
    let section = sections.get(room.id);
    if (!section) {
      section = document.getElementById("room").content.firstElementChild.cloneNode(true);
      section.dataset.room = room.id;
      main.appendChild(section);
      sections.set(room.id, section);
    }
    section.querySelector(".id").textContent = room.id;
    const stageText = room.stages_us.map((s) => `${s.stage} ${s.mean_us.toFixed(0)}`).join(", ");
    section.querySelector(".facts").textContent =
      `${room.game} · tick ${room.tick} at ${room.tick_rate} Hz · ${room.players} players · ${room.entities} entities · tick µs: ${stageText}`;
    const costs = section.querySelector(".components tbody");
    costs.replaceChildren();
    for (const c of room.components) {
      const row = document.createElement("tr");
      cell(row, c.component);
      cell(row, c.bits);
      cell(row, `${(c.share * 100).toFixed(1)} %`);
      cell(row, fixed(c.bytes_per_sec, 0));
      const td = document.createElement("td");
      td.style.textAlign = "left";
      const bar = document.createElement("span");
      bar.className = "bar";
      bar.style.width = `${Math.round(c.share * 160)}px`;
      td.appendChild(bar);
      row.appendChild(td);
      costs.appendChild(row);
    }
    const body = section.querySelector("table:not(.components) tbody");
    body.replaceChildren();
    const lines = [];
    for (const c of room.clients) {
      const h = track(room.id, c);
      const row = document.createElement("tr");
      cell(row, c.name);
      cell(row, `#${c.entity}`);
      cell(row, c.transport || "in-process");
      cell(row, fixed(c.rtt_ms, 2));
      cell(row, c.ack_lag_ticks ?? "–");
      cell(row, c.input_buffer);
      cell(row, c.inputs_late);
      cell(row, fixed(c.bytes_in_per_sec, 0));
      cell(row, fixed(c.bytes_out_per_sec, 0));
      const g = c.governor;
      cell(row, g ? `${g.max_stale_ticks} ticks, ${g.left_out_last} out` : "–");
      body.appendChild(row);
      lines.push(h);
    }
    draw(section.querySelector("canvas.bytes"), lines.map((h) => ({ name: h.name, values: h.out })));
    draw(section.querySelector("canvas.rtt"), lines.map((h) => ({ name: h.name, values: h.rtt })));
    let stages = stageHistory.get(room.id);
    if (!stages) {
      stages = new Map();
      stageHistory.set(room.id, stages);
    }
    for (const s of room.stages_us) {
      const values = stages.get(s.stage) ?? [];
      values.push(s.mean_us);
      if (values.length > HISTORY) values.shift();
      stages.set(s.stage, values);
    }
    draw(section.querySelector("canvas.stages"), [...stages].map(([name, values]) => ({ name, values })));
  }
  for (const [id, section] of sections) {
    if (!seen.has(id)) {
      section.remove();
      sections.delete(id);
      stageHistory.delete(id);
    }
  }
  const now = new Date().toLocaleTimeString();
  document.getElementById("status").textContent =
    `${data.rooms.length} rooms · ${data.clients} clients · updated ${now}`;
}

const token = new URLSearchParams(location.search).get("token");
const source = new EventSource(`/api/inspect/stream${token ? `?token=${encodeURIComponent(token)}` : ""}`);
source.onmessage = (event) => render(JSON.parse(event.data));
source.onerror = () => {
  document.getElementById("status").textContent = "reconnecting…";
};
