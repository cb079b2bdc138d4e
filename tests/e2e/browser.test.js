// End-to-end tests of the browser client against the real server in real headless Chromium.
//
//   client-web/build.sh && cargo build --release -p tickwire-server && node --test tests/e2e/
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

/**
 * The largest prediction correction (world units) tolerated while walking in open space: one
 * tick of walking (220 units/s at 60 Hz = 3.67). Time sync sends each input a tick or two
 * before its tick, but a loaded CI machine can still stall the page longer than that; the frame
 * that changed the keys then misses its tick (the server repeats the previous input there),
 * a correction of exactly one tick of walking. A real misprediction is a snap of tens of units.
 */
const MAX_PREDICTION_ERROR = 220 / 60 + 0.01;

let server;
let browser;

before(async () => {
  // An interest radius over the arena's diagonal (1442 units): the two-page test must see the
  // other player wherever the two spawn.
  server = await startServer(["--interest-radius", "1600"]);
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

/** Holds `key` on `page` until the own position moved `MOVED` units along `axis` by `sign`. */
async function holdUntilMoved(page, key, axis, sign, which = "position") {
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

/** The key that moves a player at `p` towards the arena's centre on `axis`, and its sign. */
function towardsCentre(p, axis) {
  if (axis === "x") return p.x > 0 ? ["KeyA", -1] : ["KeyD", 1];
  return p.y > 0 ? ["KeyS", -1] : ["KeyW", 1];
}

describe("browser client", { timeout: 5 * TEST_TIMEOUT_MS }, () => {
  test("loads without console errors, connects and shows its own entity", { timeout: TEST_TIMEOUT_MS }, async () => {
    const page = await openClient(browser.context, `${server.url}/`);
    try {
      const s = await waitLive(page);
      assert.equal(s.connection, "live");
      assert.equal(typeof s.entity, "number");
      assert.ok(s.visible >= 1, `visible ${s.visible}`);
      assert.deepEqual(s.score, { kills: 0, deaths: 0 });
      await page.waitForFunction(() => document.getElementById("status").textContent === "live", null, { timeout: 5_000 });
      // The page draws frames and says how many a second (what benches/browser_fps.mjs reads).
      await page.waitForFunction(() => window.tickwire.state().fps > 0, null, { timeout: 5_000 });
      assert.deepEqual(page.problems, []);
    } finally {
      await page.close();
    }
  });

  test("key presses move the own player in the pressed direction", { timeout: TEST_TIMEOUT_MS }, async () => {
    // A server of its own with no NPCs: a hit's knockback is a server-only effect that
    // prediction cannot know of, and this test is about walking.
    const quiet = await startServer(["--npcs", "0"]);
    const page = await openClient(browser.context, `${quiet.url}/?room=e2e-keys`);
    try {
      const s = await waitLive(page);
      for (const axis of ["x", "y"]) {
        const [key, sign] = towardsCentre((await state(page)).position, axis);
        // The prediction moves at once; the server's position confirms the input arrived.
        const start = await holdUntilMoved(page, key, axis, sign, "position");
        await page.waitForFunction(
          ([axis, sign, start]) => {
            const p = window.tickwire.state().serverPosition;
            return p && (p[axis] - start) * sign > 0;
          },
          [axis, sign, start],
          { timeout: 10_000, polling: 50 },
        );
      }
      const end = await state(page);
      assert.equal(end.entity, s.entity);
      console.log(`prediction: ${JSON.stringify(end.prediction)}`);
      // Prediction runs the server's own movement code on the same inputs: replaying the
      // unacknowledged inputs lands where the prediction already was, so nothing snaps.
      assert.ok(end.prediction.maxError < MAX_PREDICTION_ERROR, JSON.stringify(end.prediction));
      assert.deepEqual(page.problems, []);
    } finally {
      await page.close();
      await quiet.stop();
    }
  });

  test("two pages in the same room see each other move", { timeout: TEST_TIMEOUT_MS }, async () => {
    const a = await openClient(browser.context, `${server.url}/?room=e2e&name=alice`);
    const b = await openClient(browser.context, `${server.url}/?room=e2e&name=bob`);
    try {
      const sa = await waitLive(a);
      const sb = await waitLive(b);
      assert.notEqual(sa.entity, sb.entity);
      // Each sees the other's entity.
      await b.waitForFunction((id) => window.tickwire.state().entities.some((e) => e.id === id), sa.entity, { timeout: 10_000 });
      await a.waitForFunction((id) => window.tickwire.state().entities.some((e) => e.id === id), sb.entity, { timeout: 10_000 });
      const seenByB = async () => (await state(b)).entities.find((e) => e.id === sa.entity);
      const before = await seenByB();
      const [key, sign] = towardsCentre((await state(a)).position, "x");
      await a.keyboard.down(key);
      try {
        await b.waitForFunction(
          ([id, x0, sign, moved]) => {
            const e = window.tickwire.state().entities.find((e) => e.id === id);
            return e && (e.x - x0) * sign >= moved;
          },
          [sa.entity, before.x, sign, MOVED],
          { timeout: 10_000, polling: 50 },
        );
      } finally {
        await a.keyboard.up(key);
      }
      // And the other way round.
      const seenByA = (await state(a)).entities.find((e) => e.id === sb.entity);
      const [keyB, signB] = towardsCentre((await state(b)).position, "y");
      await b.keyboard.down(keyB);
      try {
        await a.waitForFunction(
          ([id, y0, sign, moved]) => {
            const e = window.tickwire.state().entities.find((e) => e.id === id);
            return e && (e.y - y0) * sign >= moved;
          },
          [sb.entity, seenByA.y, signB, MOVED],
          { timeout: 10_000, polling: 50 },
        );
      } finally {
        await b.keyboard.up(keyB);
      }
      assert.deepEqual([...a.problems, ...b.problems], []);
    } finally {
      await a.close();
      await b.close();
    }
  });

  test("a dropped connection reconnects as the same entity with the same score", { timeout: TEST_TIMEOUT_MS }, async () => {
    const page = await openClient(browser.context, `${server.url}/?room=e2e-resume&name=phoenix`);
    try {
      const s = await waitLive(page);
      assert.equal(s.reconnects, 0);
      const scoreBefore = (await state(page)).score;
      const res = await fetch(`${server.url}/api/debug/drop?entity=${s.entity}`, { method: "POST" });
      assert.equal(res.status, 202, await res.text());
      await page.waitForFunction(() => window.tickwire.state().connection === "reconnecting", null, { timeout: 10_000, polling: 10 });
      await page.waitForFunction(
        () => document.getElementById("status").textContent.startsWith("reconnecting"),
        null,
        { timeout: 5_000, polling: 10 },
      ).catch(() => {}); // The status text is refreshed at 4 Hz; the state above is what counts.
      await page.waitForFunction(
        () => {
          const s = window.tickwire.state();
          return s.connection === "live" && s.reconnects === 1 && s.score !== null;
        },
        null,
        { timeout: 20_000, polling: 50 },
      );
      const after = await state(page);
      assert.equal(after.entity, s.entity, "resumed as the same entity");
      assert.deepEqual(after.score, scoreBefore, "with the same score");
      // Still playable: input moves the resumed player.
      const [key, sign] = towardsCentre(after.position, "x");
      await holdUntilMoved(page, key, "x", sign, "serverPosition");
    } finally {
      await page.close();
    }
  });

  test("a terminal close (the player resumed elsewhere) fails with the server's reason and stays failed", { timeout: TEST_TIMEOUT_MS }, async () => {
    const first = await openClient(browser.context, `${server.url}/?room=e2e-replaced&name=twin`);
    let second;
    try {
      const s = await waitLive(first);
      assert.ok(s.resumeToken, "the welcome carried a resume token");
      second = await openClient(browser.context, `${server.url}/?room=e2e-replaced&name=twin&resume=${encodeURIComponent(s.resumeToken)}`);
      const taken = await waitLive(second);
      assert.equal(taken.entity, s.entity, "the second page took over the same entity");
      await first.waitForFunction(() => window.tickwire.state().connection === "failed", null, { timeout: 10_000, polling: 50 });
      await first.waitForFunction(
        () => document.getElementById("status").textContent.startsWith("failed: resumed on another connection"),
        null,
        { timeout: 5_000 },
      );
      // No reconnect fight: the second page stays live, the first stays failed.
      await second.waitForFunction(
        (tick) => { const s = window.tickwire.state(); return s.connection === "live" && s.tick > tick + 60; },
        taken.tick,
        { timeout: 10_000 },
      );
      const f = await state(first);
      assert.equal(f.connection, "failed");
      assert.equal(f.reconnects, 0);
    } finally {
      await first.close();
      await second?.close();
    }
  });

  test("screenshot of a live match", { timeout: TEST_TIMEOUT_MS }, async () => {
    const page = await openClient(browser.context, `${server.url}/?room=e2e-shot&name=shooter`);
    try {
      await waitLive(page);
      // Bots, pickups and the player: wait until the match is populated.
      await page.waitForFunction(() => window.tickwire.state().visible >= 6, null, { timeout: 15_000 });
      await page.mouse.move(900, 250);
      await page.mouse.down();
      const [key, sign] = towardsCentre((await state(page)).position, "x");
      await holdUntilMoved(page, key, "x", sign, "position");
      await page.waitForFunction(() => window.tickwire.state().entities.some((e) => e.kind === "Projectile"), null, { timeout: 10_000 });
      await page.mouse.up();
      await page.keyboard.press("Enter");
      await page.keyboard.type("gg from the e2e test");
      await page.keyboard.press("Enter");
      await page.waitForFunction(() => document.getElementById("log").textContent.includes("gg from the e2e test"), null, { timeout: 10_000 });
      await page.waitForFunction(() => /RTT \d+ ms/.test(document.getElementById("stats").textContent), null, { timeout: 10_000 });
      const dir = join(ROOT, "tests", "artifacts");
      mkdirSync(dir, { recursive: true });
      const path = join(dir, "live-match.png");
      await page.screenshot({ path });
      console.log(`screenshot: ${path}`);
      assert.deepEqual(page.problems, []);
    } finally {
      await page.close();
    }
  });
});
