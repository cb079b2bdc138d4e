// The replay viewer: asks the server to replay a recording (GET /api/replay?file=NAME, or
// POST /api/replay with a file loaded here), then plays the positions it sends back with
// pause, speed and seek. Any game shows: entities are dots coloured by their set of components.
"use strict";

const COLOURS = ["#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2", "#4b5563", "#db2777"];
const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
const token = params.get("token");
const auth = token ? { Authorization: `Bearer ${token}` } : {};
// What the tests read: the tick shown, whether it plays, the frames loaded.
const view = { data: null, index: 0, playing: true, speed: 1, last: null, carry: 0, tick: 0 };
window.tickwireReplay = view;

function status(text) {
  $("status").textContent = text;
}

async function listFiles() {
  const res = await fetch("/api/replays", { headers: auth });
  if (!res.ok) return status(`cannot list recordings: ${res.status} ${await res.text()}`);
  const { recording, files } = await res.json();
  const ul = $("files");
  ul.replaceChildren();
  if (!recording) status("this server does not record (start it with --record DIR); load a file");
  else if (!files.length) status("no recordings yet");
  else status(`${files.length} recording(s)`);
  for (const f of files) {
    const a = document.createElement("a");
    const q = new URLSearchParams({ file: f.name });
    if (token) q.set("token", token);
    a.href = `/replay?${q}`;
    a.textContent = `${f.name} (${Math.round(f.bytes / 1024)} KiB)`;
    const li = document.createElement("li");
    li.append(a);
    ul.append(li);
  }
}

async function load(res, name) {
  if (!res.ok) return status(`cannot replay ${name}: ${res.status} ${await res.text()}`);
  const data = await res.json();
  view.data = data;
  show(name);
}

function show(name) {
  const { report, frames, kinds } = view.data;
  $("pick").hidden = true;
  $("viewer").hidden = false;
  status(`${name}: ${report.game}, room ${report.room}, seed ${report.seed}, ${report.ticks} ticks at ${report.tick_rate} Hz`);
  const verdict = $("verdict");
  if (report.equal) {
    verdict.className = "ok";
    verdict.textContent = `every tick's state hash matches the recording (${report.ticks} ticks, ${report.checkpoints} checkpoints compared)${report.complete ? "" : "; the recording was cut short"}`;
  } else {
    const d = report.divergence;
    const lines = [`the replay parts from the recording at tick ${d.tick}`];
    for (const c of d.components) lines.push(`· ${c.detail}`);
    if (d.checkpoint) {
      lines.push(`at the checkpoint of tick ${d.checkpoint[0]}:`);
      for (const x of d.checkpoint[1].slice(0, 12)) lines.push(`· ${x.component}: ${x.detail}`);
    }
    verdict.className = "bad";
    verdict.textContent = lines.join("\n");
  }
  const legend = $("legend");
  legend.replaceChildren();
  kinds.forEach((k, i) => {
    const li = document.createElement("li");
    const dot = document.createElement("span");
    dot.style.background = COLOURS[i % COLOURS.length];
    li.append(dot, k.join(" + ") || "(nothing replicated)");
    legend.append(li);
  });
  const body = $("hashes").tBodies[0];
  body.replaceChildren();
  for (const p of report.intervals) {
    const tr = document.createElement("tr");
    for (const v of [p.tick, p.recorded, p.replayed]) {
      const td = document.createElement("td");
      td.textContent = v;
      if (p.recorded !== p.replayed) td.className = "differs";
      tr.append(td);
    }
    body.append(tr);
  }
  $("seek").max = String(Math.max(0, frames.length - 1));
  seek(0);
  requestAnimationFrame(frame);
}

function seek(i) {
  const frames = view.data.frames;
  view.index = Math.max(0, Math.min(frames.length - 1, i));
  view.carry = 0;
  draw();
}

function draw() {
  const { frames, bounds } = view.data;
  const canvas = $("field");
  const ctx = canvas.getContext("2d");
  const { width: w, height: h } = canvas;
  ctx.clearRect(0, 0, w, h);
  const f = frames[view.index];
  if (!f) return;
  const [tick, points] = f;
  view.tick = tick;
  document.body.dataset.tick = String(tick);
  $("tick").textContent = `tick ${tick}`;
  $("seek").value = String(view.index);
  const pad = 20;
  const spanX = Math.max(1, bounds[2] - bounds[0]);
  const spanY = Math.max(1, bounds[3] - bounds[1]);
  const scale = Math.min((w - 2 * pad) / spanX, (h - 2 * pad) / spanY);
  ctx.font = "10px system-ui, sans-serif";
  for (const [id, x, y, kind] of points) {
    const px = pad + (x - bounds[0]) * scale;
    const py = h - pad - (y - bounds[1]) * scale;
    ctx.fillStyle = COLOURS[kind % COLOURS.length];
    ctx.beginPath();
    ctx.arc(px, py, 5, 0, Math.PI * 2);
    ctx.fill();
    ctx.fillStyle = "#6b7280";
    ctx.fillText(String(id), px + 7, py + 3);
  }
}

function frame(now) {
  if (view.last !== null && view.playing) {
    const { report, stride, frames } = view.data;
    view.carry += ((now - view.last) / 1000) * report.tick_rate * view.speed / stride;
    const step = Math.floor(view.carry);
    if (step > 0) {
      view.carry -= step;
      if (view.index + step >= frames.length - 1) {
        seek(frames.length - 1);
        setPlaying(false);
      } else {
        view.index += step;
        draw();
      }
    }
  }
  view.last = now;
  requestAnimationFrame(frame);
}

function setPlaying(on) {
  view.playing = on;
  document.body.dataset.state = on ? "playing" : "paused";
  $("play").textContent = on ? "pause" : "play";
}

$("play").addEventListener("click", () => {
  if (!view.data) return;
  if (!view.playing && view.index >= view.data.frames.length - 1) seek(0);
  setPlaying(!view.playing);
});
$("speed").addEventListener("change", (e) => {
  view.speed = Number(e.target.value);
});
$("seek").addEventListener("input", (e) => seek(Number(e.target.value)));
$("upload").addEventListener("change", async (e) => {
  const file = e.target.files[0];
  if (!file) return;
  status(`replaying ${file.name}…`);
  const res = await fetch("/api/replay", { method: "POST", headers: auth, body: file });
  await load(res, file.name);
});

setPlaying(true);
const file = params.get("file");
if (file) {
  status(`replaying ${file}…`);
  fetch(`/api/replay?${new URLSearchParams({ file })}`, { headers: auth }).then((res) => load(res, file));
} else {
  listFiles();
}
