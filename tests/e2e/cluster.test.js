// The browser client in a cluster (issue 17): two `tickwire serve --redis` instances on a real
// redis-server; the page asks GET /api/matchmake and plays on whichever instance it is sent
// to, across origins (the instances trust each other's pages).
//
// Every wait is on a condition with a deadline; no fixed sleeps.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createServer, connect } from "node:net";
import { after, before, describe, test } from "node:test";

import { launchBrowser, openClient, startServer, until, waitLive } from "./harness.js";

const TEST_TIMEOUT_MS = 60_000;
const SECRET = "tickwire-e2e-cluster-secret-of-32-bytes+";

/** A port that was free a moment ago. */
function freePort() {
  return new Promise((ok, fail) => {
    const s = createServer();
    s.once("error", fail);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => ok(port));
    });
  });
}

/** Starts redis-server on a free port (scripts/setup.sh installs it); resolves once it answers. */
async function startRedis() {
  const port = await freePort();
  const child = spawn("redis-server", ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"], {
    stdio: "ignore",
  });
  await until("redis-server", 10_000, () => new Promise((ok) => {
    const socket = connect(port, "127.0.0.1");
    socket.once("data", (d) => { socket.destroy(); ok(d.toString().startsWith("+PONG")); });
    socket.once("error", () => ok(false));
    socket.write("PING\r\n");
  }));
  return { url: `redis://127.0.0.1:${port}`, stop: () => child.kill("SIGKILL") };
}

async function rooms(base) {
  const r = await fetch(`${base}/api/rooms`);
  return r.json();
}

/** Waits until `page` is live; on the deadline, fails with what the page and the cluster say. */
async function live(page) {
  try {
    await waitLive(page);
  } catch (e) {
    const s = await page.evaluate(() => window.tickwire.state());
    const seen = { connection: s.connection, status: s.status, problems: page.problems };
    throw new Error(`${e.message}; the page: ${JSON.stringify(seen)}; rooms: ${JSON.stringify(await rooms(a.url))}`);
  }
}

let redis;
let a;
let b;
let browser;

before(async () => {
  redis = await startRedis();
  // Rooms of one: the second player's room opens on the instance with fewer players, so one
  // of the two pages plays on the instance that did not serve it.
  const args = ["--redis", redis.url, "--jwt-secret", SECRET, "--presence-ttl", "2", "--room-capacity", "1", "--npcs", "2", "--quic-bind", "off"];
  a = await startServer(args);
  b = await startServer(args);
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await a?.stop();
  await b?.stop();
  redis?.stop();
});

describe("browser client in a cluster", { timeout: 3 * TEST_TIMEOUT_MS }, () => {
  test("pages served by one instance matchmake and play on both", { timeout: TEST_TIMEOUT_MS }, async () => {
    await until("a sees b", 15_000, async () => (await rooms(a.url)).instances.length === 2);
    const first = await openClient(browser.context, `${a.url}/`);
    await live(first);
    // The first player is counted before the second asks: its instance is then the fuller.
    await until("the first player counted", 15_000, async () => (await rooms(a.url)).instances.some((i) => i.players === 1));
    const second = await openClient(browser.context, `${a.url}/`);
    await live(second);
    const answer = await until("both players counted", 15_000, async () => {
      const r = await rooms(a.url);
      return r.instances.every((i) => i.players === 1) && r;
    });
    const hosts = new Set(answer.rooms.filter((r) => r.players === 1).map((r) => r.url));
    assert.equal(hosts.size, 2, JSON.stringify(answer));
    for (const page of [first, second]) {
      assert.deepEqual(page.problems, []);
      await page.close();
    }
  });

  // Issue 17, item 4: a rolling restart. The page plays a named room on a; a is stopped; the
  // page follows the room to b by itself and goes on as the same player.
  test("a page follows its room to another instance when its own stops", { timeout: TEST_TIMEOUT_MS }, async () => {
    await until("a sees b", 15_000, async () => (await rooms(a.url)).instances.length === 2);
    const page = await openClient(browser.context, `${a.url}/?room=roll`);
    await live(page);
    const before = await until("a tick", 15_000, async () => {
      const s = await page.evaluate(() => window.tickwire.state());
      return s.tick !== null && s;
    });
    assert.equal(before.server, null, "it plays on the instance that served it");
    await a.stop();
    const bWs = `${b.url.replace(/^http/, "ws")}/ws`;
    let seen = null;
    const after = await until("the page plays on b", 20_000, async () => {
      const s = await page.evaluate(() => window.tickwire.state());
      seen = s;
      return s.connection === "live" && s.server === bWs && s.tick !== null && s.reconnects === 1 && s;
    }).catch((e) => {
      const { entities, ...rest } = seen ?? {};
      throw new Error(`${e.message}; the page: ${JSON.stringify(rest)}; problems: ${JSON.stringify(page.problems)}; a: ${a.logs.slice(-8).join("")}`);
    });
    assert.equal(after.entity, before.entity, "the same entity");
    assert.ok(after.tick >= before.tick, `the tick went on: ${before.tick} → ${after.tick}`);
    const listed = await rooms(b.url);
    assert.ok(listed.rooms.some((r) => r.id === "roll" && r.players === 1), JSON.stringify(listed));
    assert.deepEqual(page.problems, []);
    await page.close();
  });
});
