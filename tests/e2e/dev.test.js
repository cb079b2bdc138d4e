// Development restarts (issue 18, item 5): `tickwire serve --dev` keeps its rooms across a
// restart, and the page reconnects by itself and plays on as the same player, with the tick
// going on from where it stopped.
//
// Every wait is on a condition with a deadline; no fixed sleeps.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";

import { launchBrowser, openClient, startServer, until, waitLive } from "./harness.js";

const TEST_TIMEOUT_MS = 60_000;

let browser;
let dir;
const servers = [];

before(async () => {
  dir = mkdtempSync(join(tmpdir(), "tickwire-dev-e2e-"));
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  for (const s of servers) await s.stop();
  rmSync(dir, { recursive: true, force: true });
});

test("a --dev restart keeps the match and the page plays on as the same player", { timeout: TEST_TIMEOUT_MS }, async () => {
  // No --jwt-secret: the guest tokens of development, signed with the secret --dev keeps.
  const args = ["--dev", "--dev-state", dir, "--npcs", "2", "--quic-bind", "off"];
  const first = await startServer(args);
  servers.push(first);
  const page = await openClient(browser.context, `${first.url}/?room=devroom`);
  await waitLive(page);
  const before = await until("a tick", 15_000, async () => {
    const s = await page.evaluate(() => window.tickwire.state());
    return s.tick !== null && s;
  });
  await first.stop();
  await until("the page noticed", 10_000, async () => (await page.evaluate(() => window.tickwire.state())).connection !== "live");
  // The rebuilt server, on the same address.
  const second = await startServer(args, { bind: new URL(first.url).host });
  servers.push(second);
  let seen = null;
  const again = await until("the page plays again", 30_000, async () => {
    const s = await page.evaluate(() => window.tickwire.state());
    seen = s;
    return s.connection === "live" && s.reconnects === 1 && s.tick !== null && s;
  }).catch((e) => {
    const { entities, ...rest } = seen ?? {};
    throw new Error(`${e.message}; the page: ${JSON.stringify(rest)}; server: ${second.logs.slice(-6).join("")}`);
  });
  assert.equal(again.entity, before.entity, "the same entity");
  assert.ok(again.tick >= before.tick, `the tick went on: ${before.tick} → ${again.tick}`);
  const rooms = await (await fetch(`${second.url}/api/rooms`)).json();
  assert.ok(rooms.rooms.some((r) => r.id === "devroom" && r.players === 1), JSON.stringify(rooms));
  await page.close();
});
