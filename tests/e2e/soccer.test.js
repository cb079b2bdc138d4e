// End-to-end tests of soccer in the browser: the real server (`--game soccer`, and the default
// arena server reached with `?game=soccer`) in real headless Chromium.
//
//   client-web/build.sh && cargo build -p tickwire-server && node --test tests/e2e/
//
// Every wait is on a condition with a deadline; no fixed sleeps.
import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";

import { ROOT, launchBrowser, openClient, startServer, state, waitLive } from "./harness.js";

/** Deadline of each test, generous for a loaded 2-core CI machine. */
const TEST_TIMEOUT_MS = 60_000;

/** How far (world units) the player must go for a key press to count as movement. */
const MOVED = 30;

/** Holds `key` on `page` until the own `which` position moved `MOVED` units along `axis` by `sign`. */
async function holdUntilMoved(page, key, axis, sign, which) {
  const start = (await state(page))[which][axis];
  await page.keyboard.down(key);
  try {
    await page.waitForFunction(
      ([axis, sign, start, moved, which]) => {
        const p = window.tickwire.state()[which];
        return p && (p[axis] - start) * sign >= moved;
      },
      [axis, sign, start, MOVED, which],
      { timeout: 10_000, polling: 50 },
    );
  } finally {
    await page.keyboard.up(key);
  }
  return start;
}

/** Waits until the page's newest snapshot is `ticks` ticks newer than now. */
async function waitTicks(page, ticks) {
  const now = (await state(page)).tick;
  await page.waitForFunction((until) => window.tickwire.state().tick >= until, now + ticks, { timeout: 10_000, polling: 20 });
}

describe("soccer in the browser (a soccer server)", { timeout: 3 * TEST_TIMEOUT_MS }, () => {
  let server;
  let browser;

  before(async () => {
    server = await startServer(["--game", "soccer"]);
    browser = await launchBrowser();
  });

  after(async () => {
    await browser?.close();
    await server?.stop();
  });

  test("plays a match: the ball and the NPCs, running, the scoreboard, a charged kick", { timeout: TEST_TIMEOUT_MS }, async () => {
    const page = await openClient(browser.context, `${server.url}/?room=e2e-soccer&name=striker`);
    try {
      const s = await waitLive(page);
      assert.equal(s.connection, "live");
      assert.equal(s.game, "soccer");
      assert.deepEqual(s.score, { goals: 0 });
      // The ball and the server's NPCs are on the pitch; the match entity (no position) is not
      // in the hook's positioned list.
      await page.waitForFunction(
        () => {
          const es = window.tickwire.state().entities;
          return es.some((e) => e.kind === "Ball") && es.filter((e) => e.kind === "Npc").length >= 2;
        },
        null,
        { timeout: 10_000, polling: 50 },
      );
      const kinds = new Set((await state(page)).entities.map((e) => e.kind));
      assert.deepEqual([...kinds].sort(), ["Ball", "Npc", "Player"]);

      // Running towards the centre moves the prediction at once and the server's position after.
      const p = (await state(page)).position;
      const [key, sign] = p.x > 0 ? ["KeyA", -1] : ["KeyD", 1];
      const start = await holdUntilMoved(page, key, "x", sign, "position");
      await page.waitForFunction(
        ([sign, start]) => {
          const p = window.tickwire.state().serverPosition;
          return p && (p.x - start) * sign > 0;
        },
        [sign, start],
        { timeout: 10_000, polling: 50 },
      );
      // Up the pitch with Shift held: sprinting still moves (and drains stamina server-side).
      await page.keyboard.down("ShiftLeft");
      try {
        const [vkey, vsign] = (await state(page)).position.y > 0 ? ["KeyS", -1] : ["KeyW", 1];
        await holdUntilMoved(page, vkey, "y", vsign, "serverPosition");
      } finally {
        await page.keyboard.up("ShiftLeft");
      }

      // The scoreboard: the score line, then the players.
      await page.waitForFunction(
        () => /^Red \d+ : \d+ Blue\n/.test(document.getElementById("scores").textContent),
        null,
        { timeout: 10_000, polling: 50 },
      );
      const board = await page.evaluate(() => document.getElementById("scores").textContent);
      assert.match(board, /Red/);
      assert.match(board, /Blue/);
      assert.match(board, /striker ★/);
      assert.match(board, /bot \d+/);
      assert.match(await page.evaluate(() => document.getElementById("help").textContent), /Space/);

      // Charge a kick (the meter shows) and take the screenshot mid-charge, then release it.
      await page.keyboard.down("Space");
      try {
        await waitTicks(page, 20);
        await page.waitForFunction(() => /RTT \d+ ms/.test(document.getElementById("stats").textContent), null, { timeout: 10_000 });
        const dir = join(ROOT, "tests", "artifacts");
        mkdirSync(dir, { recursive: true });
        const path = join(dir, "soccer.png");
        await page.screenshot({ path });
        console.log(`screenshot: ${path}`);
      } finally {
        await page.keyboard.up("Space");
      }
      // Still live and playing after the kick.
      await waitTicks(page, 10);
      assert.equal((await state(page)).connection, "live");
      assert.deepEqual(page.problems, []);
    } finally {
      await page.close();
    }
  });
});

describe("?game= picks the game of a new room (an arena server)", { timeout: 3 * TEST_TIMEOUT_MS }, () => {
  let server;
  let browser;

  before(async () => {
    server = await startServer([]);
    browser = await launchBrowser();
  });

  after(async () => {
    await browser?.close();
    await server?.stop();
  });

  test("a soccer room on a server whose default is the arena", { timeout: TEST_TIMEOUT_MS }, async () => {
    const soccer = await openClient(browser.context, `${server.url}/?game=soccer&room=e2e-soccer-by-param`);
    const arena = await openClient(browser.context, `${server.url}/?room=e2e-arena-by-default`);
    try {
      const s = await waitLive(soccer);
      assert.equal(s.game, "soccer");
      await soccer.waitForFunction(() => window.tickwire.state().entities.some((e) => e.kind === "Ball"), null, { timeout: 10_000 });
      await soccer.waitForFunction(() => /^Red \d+ : \d+ Blue/.test(document.getElementById("scores").textContent), null, { timeout: 10_000 });
      const a = await waitLive(arena);
      assert.equal(a.game, "arena", "the server's default game is untouched");
      assert.deepEqual([...soccer.problems, ...arena.problems], []);
    } finally {
      await soccer.close();
      await arena.close();
    }
  });
});
