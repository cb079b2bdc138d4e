// `tickwire bots --html` (issue 18, item 6): a run against a real server writes a one-page
// report whose charts (round trip, snapshot rate, corrections by cause, bytes per client, the
// server's tick time) headless Chromium draws from the file, with a line for every second.
//
// Every wait is on a condition with a deadline; no fixed sleeps.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { promisify } from "node:util";
import { after, before, test } from "node:test";

import { launchBrowser, serverBinary, startServer } from "./harness.js";

let server;
let browser;
let dir;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), "tickwire-report-"));
  server = await startServer(["--npcs", "2", "--quic-bind", "off"]);
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await server?.stop();
  rmSync(dir, { recursive: true, force: true });
});

test("bots write an HTML report whose charts draw every second of the run", { timeout: 90_000 }, async () => {
  const json = join(dir, "run.json");
  const html = join(dir, "run.html");
  const ws = `${server.url.replace(/^http/, "ws")}/ws`;
  await promisify(execFile)(serverBinary(), [
    "bots", "--url", ws, "--count", "3", "--duration", "5", "--behavior", "fight",
    "--report", json, "--html", html,
  ], { timeout: 60_000 });
  const report = JSON.parse(readFileSync(json, "utf8"));
  assert.ok(report.timeline.length >= 4, `a point a second: ${report.timeline.length}`);

  const page = await browser.context.newPage();
  await page.goto(pathToFileURL(html).href, { waitUntil: "load" });
  const charts = await page.$$eval("figure.chart", (figures) => figures.map((f) => {
    const box = f.querySelector("svg").getBoundingClientRect();
    const lines = [...f.querySelectorAll("polyline")].map((p) => p.points.numberOfItems);
    return { id: f.dataset.series, points: Number(f.dataset.points), width: box.width, height: box.height, lines };
  }));
  assert.deepEqual(charts.map((c) => c.id), ["rtt", "snapshots", "corrections", "bytes", "tick"]);
  for (const c of charts) {
    assert.ok(c.width > 300 && c.height > 100, `${c.id} is drawn: ${JSON.stringify(c)}`);
    assert.ok(c.points >= 3, `${c.id} has a value for most seconds: ${JSON.stringify(c)}`);
    assert.ok(c.lines.some((n) => n >= 2), `${c.id} draws a line: ${JSON.stringify(c)}`);
  }
  const text = await page.evaluate(() => document.body.innerText);
  assert.match(text, /3 requested, 3 connected/);
  await page.close();
});
