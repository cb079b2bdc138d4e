// The live network inspector (issue 18, item 1): GET /inspect in headless Chromium shows a
// room with bots playing in it, one row per client, and its numbers and charts move as the
// stream brings new ones.
//
// Every wait is on a condition with a deadline; no fixed sleeps.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";

import { launchBrowser, serverBinary, startServer, until } from "./harness.js";

let server;
let browser;
let bots;
let dir;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), "tickwire-inspect-"));
  // Dev mode (no --jwt-secret): the inspector is on.
  server = await startServer(["--npcs", "2", "--quic-bind", "off"]);
  browser = await launchBrowser();
});

after(async () => {
  bots?.kill("SIGKILL");
  await browser?.close();
  await server?.stop();
  rmSync(dir, { recursive: true, force: true });
});

test("the inspector shows a room with bots and its numbers move", { timeout: 60_000 }, async () => {
  const ws = `${server.url.replace(/^http/, "ws")}/ws`;
  bots = spawn(serverBinary(), [
    "bots", "--url", ws, "--count", "3", "--duration", "30", "--room", "watched",
    "--behavior", "fight", "--report", join(dir, "bots.json"),
  ], { stdio: "ignore" });
  const page = await browser.context.newPage();
  const problems = [];
  page.on("console", (m) => m.type() === "error" && problems.push(m.text()));
  page.on("pageerror", (e) => problems.push(e.message));
  await page.goto(`${server.url}/inspect`, { waitUntil: "load" });
  const room = async () => page.evaluate(() => {
    const r = window.tickwireInspector.last?.rooms.find((x) => x.id === "watched");
    return r ? { tick: r.tick, clients: r.clients.length, out: r.clients.map((c) => c.bytes_out_per_sec), updates: window.tickwireInspector.updates } : null;
  });
  const first = await until("the room with its three bots", 20_000, async () => {
    const r = await room();
    return r && r.clients === 3 && r.out.every((b) => b > 0) && r;
  });
  const later = await until("newer numbers", 10_000, async () => {
    const r = await room();
    return r && r.tick > first.tick && r.updates >= first.updates + 2 && r;
  });
  assert.ok(later.tick > first.tick);
  const rows = await page.$$eval('section[data-room="watched"] table:not(.components) tbody tr', (trs) => trs.map((tr) => tr.textContent));
  const costs = await until("where the bytes go", 10_000, async () => {
    const names = await page.$$eval('section[data-room="watched"] .components tbody tr td:first-child', (tds) => tds.map((td) => td.textContent));
    return names.length > 0 && names;
  });
  assert.equal(costs[0], "Position", costs.join(", "));
  assert.equal(rows.length, 3, rows.join("\n"));
  assert.ok(rows.every((r) => /bot-\d/.test(r) && /websocket/.test(r)), rows.join("\n"));
  // The charts drew something: coloured pixels besides the grey grid.
  const painted = await page.$$eval('section[data-room="watched"] canvas', (canvases) => canvases.map((c) => {
    const data = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
    let coloured = 0;
    for (let i = 0; i < data.length; i += 4) {
      const [r, g, b, a] = [data[i], data[i + 1], data[i + 2], data[i + 3]];
      if (a > 0 && (Math.abs(r - g) > 40 || Math.abs(g - b) > 40)) coloured += 1;
    }
    return coloured;
  }));
  assert.ok(painted[0] > 50, `the bytes chart has lines: ${painted}`);
  assert.ok(painted[2] > 50, `the stages chart has lines: ${painted}`);
  const facts = await page.$eval('section[data-room="watched"] .facts', (e) => e.textContent);
  assert.match(facts, /tick µs: inputs \d+, simulate \d+, events \d+, replicate \d+/, facts);
  assert.deepEqual(problems, []);
  if (process.env.TICKWIRE_SCREENSHOT) {
    await page.setViewportSize({ width: 1240, height: 760 });
    await page.screenshot({ path: process.env.TICKWIRE_SCREENSHOT });
  }
  await page.close();
});
