// The replay viewer (issue 18, item 3): GET /replay in headless Chromium lists the recordings
// of --record's directory, replays one (the server checks every tick's hash), plays it,
// pauses, seeks and changes speed; a recording loaded from disk plays too.
//
// Every wait is on a condition with a deadline; no fixed sleeps.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";

import { launchBrowser, serverBinary, startServer, until } from "./harness.js";

let server;
let browser;
let dir;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), "tickwire-replay-"));
  // A whole match recorded in-process: 30 s of play at 60 Hz, six NPCs.
  execFileSync(serverBinary(), ["match", "--bots", "6", "--ticks", "1800", "--seed", "4", "--record", join(dir, "arena-match.twrec")]);
  // Dev mode (no --jwt-secret): the inspector, and so the viewer, is on.
  server = await startServer(["--npcs", "0", "--quic-bind", "off", "--record", dir]);
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await server?.stop();
  rmSync(dir, { recursive: true, force: true });
});

const shown = (page) => page.evaluate(() => ({
  tick: Number(document.body.dataset.tick),
  state: document.body.dataset.state,
  frames: window.tickwireReplay.data?.frames.length ?? 0,
}));

test("a recording plays with pause, seek and speed", { timeout: 60_000 }, async () => {
  const page = await browser.context.newPage();
  const problems = [];
  page.on("console", (m) => m.type() === "error" && problems.push(m.text()));
  page.on("pageerror", (e) => problems.push(e.message));
  await page.goto(`${server.url}/replay`, { waitUntil: "load" });
  const link = page.locator("#files a", { hasText: "arena-match.twrec" });
  await link.waitFor({ timeout: 10_000 });
  await link.click();
  const first = await until("the replay loaded and playing", 20_000, async () => {
    const s = await shown(page);
    return s.frames === 1800 && s.state === "playing" && s.tick > 0 && s;
  });
  const verdict = await page.textContent("#verdict");
  assert.match(verdict, /every tick's state hash matches the recording \(1800 ticks, 3 checkpoints compared\)/, verdict);
  const moving = await until("the ticks move on", 10_000, async () => {
    const s = await shown(page);
    return s.tick > first.tick + 10 && s;
  });
  // Pause: the tick stays.
  await page.click("#play");
  const paused = await until("paused", 5_000, async () => {
    const s = await shown(page);
    return s.state === "paused" && s;
  });
  const still = await page.evaluate(() => new Promise((ok) => {
    // Two animation frames later the tick is the same.
    requestAnimationFrame(() => requestAnimationFrame(() => ok(Number(document.body.dataset.tick))));
  }));
  assert.equal(still, paused.tick);
  assert.ok(paused.tick >= moving.tick);
  // Seek to the frame of tick 1500.
  await page.$eval("#seek", (e) => {
    e.value = "1499";
    e.dispatchEvent(new Event("input"));
  });
  await until("at tick 1500", 5_000, async () => (await shown(page)).tick === 1500);
  // Dots on the field: the six NPCs.
  const painted = await page.$eval("#field", (c) => {
    const data = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
    let coloured = 0;
    for (let i = 0; i < data.length; i += 4) {
      if (data[i + 3] > 0 && Math.abs(data[i] - data[i + 2]) > 60) coloured += 1;
    }
    return coloured;
  });
  assert.ok(painted > 200, `entities drawn: ${painted} coloured pixels`);
  // Eight times the speed: from tick 60, a second of wall clock covers several hundred ticks.
  await page.selectOption("#speed", "8");
  await page.$eval("#seek", (e) => {
    e.value = "59";
    e.dispatchEvent(new Event("input"));
  });
  await page.click("#play");
  const fast = await until("fast play", 10_000, async () => {
    const s = await shown(page);
    return s.tick > 600 && s;
  });
  assert.ok(fast.tick > 600);
  assert.deepEqual(problems, []);
  if (process.env.TICKWIRE_SCREENSHOT) {
    await page.click("#play");
    await page.setViewportSize({ width: 1000, height: 820 });
    await page.screenshot({ path: process.env.TICKWIRE_SCREENSHOT });
  }
  await page.close();
});

test("a recording loaded from disk plays too", { timeout: 60_000 }, async () => {
  const page = await browser.context.newPage();
  await page.goto(`${server.url}/replay`, { waitUntil: "load" });
  await page.setInputFiles("#upload", join(dir, "arena-match.twrec"));
  const s = await until("the uploaded replay", 20_000, async () => {
    const x = await shown(page);
    return x.frames === 1800 && x;
  });
  assert.ok(s.frames === 1800);
  const status = await page.textContent("#status");
  assert.match(status, /arena-match\.twrec: arena, room match, seed 4, 1800 ticks at 60 Hz/, status);
  await page.close();
});
