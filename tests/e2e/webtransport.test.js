// The browser's transport ladder against the real server in real headless Chromium: WebTransport
// first, a wss WebSocket when WebTransport does not open in time, and a player resumed across
// the two.
//
//   client-web/build.sh && cargo build -p tickwire-server && \
//     TICKWIRE_BIN=target/debug/tickwire node --test tests/e2e/webtransport.test.js
//
// The server runs with --dev-cert: an https page and QUIC on the same port number over UDP,
// its self-signed certificate accepted by the page through `serverCertificateHashes`. Every
// wait is on a condition with a deadline; no fixed sleeps.
import assert from "node:assert/strict";
import { createSocket } from "node:dgram";
import { after, before, describe, test } from "node:test";

import { launchBrowser, openClient, startServer, state, waitLive } from "./harness.js";

/** Deadline of each test, generous for a loaded 2-core CI machine. */
const TEST_TIMEOUT_MS = 60_000;

/** How far (world units) the player must go for a key press to count as movement. */
const MOVED = 30;

/**
 * How long the page may take to be live on the WebSocket when WebTransport never answers: the
 * client's 2 s deadline for WebTransport's `ready`, then a WebSocket join, with room for a
 * loaded machine.
 */
const FALLBACK_LIVE_MS = 8_000;

/** The server with WebTransport: QUIC on the page's port number. */
let server;
/** A server without QUIC (`--quic-bind off`) whose port number, over UDP, is `blackHole`'s. */
let tcpOnly;
let browser;
/** A UDP socket that reads and never answers: a QUIC handshake to it can only time out. */
let blackHole;

before(async () => {
  server = await startServer(["--dev-cert"]);
  assert.match(server.url, /^https:\/\//, "--dev-cert serves the page over https");
  tcpOnly = await startServer(["--dev-cert", "--quic-bind", "off"]);
  blackHole = createSocket("udp4");
  blackHole.on("message", () => {});
  // The page's own port number: the page's Content-Security-Policy ('self') lets it try there.
  await new Promise((ok, fail) => {
    blackHole.once("error", fail);
    blackHole.bind(Number(new URL(tcpOnly.url).port), "127.0.0.1", ok);
  });
  browser = await launchBrowser({ webTransport: true });
});

after(async () => {
  await browser?.close();
  await server?.stop();
  await tcpOnly?.stop();
  blackHole?.close();
});

/** `GET /api/transport` of the server at `base`. */
async function advertised(base) {
  const res = await browser.context.request.get(`${base}/api/transport`);
  assert.equal(res.status(), 200);
  return res.json();
}

/** Makes `page` see `webtransport` (an endpoint or null) at `GET /api/transport`. */
function advertise(page, webtransport) {
  return page.route("**/api/transport", (route) =>
    route.fulfill({ json: { websocket: { path: "/ws" }, webtransport } }),
  );
}

/** An endpoint on `port` where nothing answers (its certificate hash is never checked). */
function deadEndpoint(port) {
  return { port, path: "/wt", cert_sha256: "00".repeat(32) };
}

/** Holds `key` until the server's position of the own player moved `MOVED` units along `axis`. */
async function holdUntilServerMoved(page, key, axis, sign) {
  const start = (await state(page)).serverPosition[axis];
  await page.keyboard.down(key);
  try {
    await page.waitForFunction(
      ([axis, sign, start, moved]) => {
        const p = window.tickwire.state().serverPosition;
        return p && (p[axis] - start) * sign >= moved;
      },
      [axis, sign, start, MOVED],
      { timeout: 10_000, polling: 50 },
    );
  } finally {
    await page.keyboard.up(key);
  }
}

/** The key that moves a player at `p` towards the arena's centre on `axis`, and its sign. */
function towardsCentre(p, axis) {
  if (axis === "x") return p.x > 0 ? ["KeyA", -1] : ["KeyD", 1];
  return p.y > 0 ? ["KeyS", -1] : ["KeyW", 1];
}

/** Waits until the stats block names `transport` ("WebTransport" or "WebSocket"). */
function waitHud(page, transport) {
  return page.waitForFunction(
    (t) => document.getElementById("stats").textContent.includes(`via ${t}`),
    transport,
    { timeout: 5_000 },
  );
}

/**
 * `problems` less the console errors in which Chromium reports the WebTransport session to
 * `port` that the test made fail (a CSP refusal or a failed handshake quote its URL).
 */
function unexpected(problems, port) {
  return problems.filter((p) => !p.includes(`'https://127.0.0.1:${port}/wt?`));
}

describe("transport ladder", { timeout: 5 * TEST_TIMEOUT_MS }, () => {
  test("the server advertises its WebTransport endpoint with the dev certificate's hash", { timeout: TEST_TIMEOUT_MS }, async () => {
    const ad = await advertised(server.url);
    assert.deepEqual(ad.websocket, { path: "/ws" });
    assert.equal(ad.webtransport.port, Number(new URL(server.url).port), "QUIC on the page's port number");
    assert.equal(ad.webtransport.path, "/wt");
    assert.match(ad.webtransport.cert_sha256, /^[0-9a-f]{64}$/);
    assert.equal((await advertised(tcpOnly.url)).webtransport, null);
  });

  test("plays over WebTransport: welcomed, snapshots flow, held keys move the player", { timeout: TEST_TIMEOUT_MS }, async () => {
    const page = await openClient(browser.context, `${server.url}/?room=wt-play&name=quic`);
    try {
      const s = await waitLive(page);
      assert.equal(s.transport, "webtransport", `fell back: ${s.fallback}`);
      assert.equal(s.fallback, null);
      // Snapshots keep coming (datagrams, or streams when too large).
      await page.waitForFunction((tick) => window.tickwire.state().tick > tick + 30, s.tick, { timeout: 10_000 });
      // Inputs arrive: the server's position follows the held keys.
      for (const axis of ["x", "y"]) {
        const [key, sign] = towardsCentre((await state(page)).position, axis);
        await holdUntilServerMoved(page, key, axis, sign);
      }
      // Pings and pongs on the stream: the HUD has a round-trip time.
      await page.waitForFunction(() => /RTT \d+ ms/.test(document.getElementById("stats").textContent), null, { timeout: 10_000 });
      await waitHud(page, "WebTransport");
      // Snapshots come as datagrams and inputs go as datagrams (waited for: a fast run gets
      // here after only about a second of play).
      await page.waitForFunction(() => {
        const now = window.tickwire.state();
        return now.datagramsIn > 30 && now.datagramsOut > 30;
      }, null, { timeout: 10_000 });
      const end = await state(page);
      assert.equal(end.entity, s.entity);
      assert.equal(end.transport, "webtransport");
      assert.deepEqual(page.problems, []);
    } finally {
      await page.close();
    }
  });

  test("a plain-http page reaches WebTransport on a port of its own (--quic-bind): the CSP allows it", { timeout: TEST_TIMEOUT_MS }, async () => {
    // The README's local play with WebTransport: the page on http://127.0.0.1, QUIC on another
    // UDP port with a development certificate of its own, offered by hash.
    const plain = await startServer(["--quic-bind", "127.0.0.1:0"]);
    try {
      assert.match(plain.url, /^http:\/\//);
      const ad = await advertised(plain.url);
      assert.notEqual(String(ad.webtransport.port), new URL(plain.url).port);
      const page = await openClient(browser.context, `${plain.url}/?room=wt-plain&name=plain`);
      try {
        const s = await waitLive(page);
        assert.equal(s.transport, "webtransport", `fell back: ${s.fallback}`);
        await page.waitForFunction(() => window.tickwire.state().datagramsIn > 10, null, { timeout: 10_000 });
        assert.deepEqual(page.problems, []);
      } finally {
        await page.close();
      }
    } finally {
      await plain.stop();
    }
  });

  test("falls back to a wss WebSocket when WebTransport never answers", { timeout: TEST_TIMEOUT_MS }, async () => {
    const started = Date.now();
    const page = await openClient(browser.context, `${tcpOnly.url}/?room=wt-fallback&name=tcp`, {
      beforeGoto: (p) => advertise(p, deadEndpoint(blackHole.address().port)),
    });
    try {
      const s = await waitLive(page, FALLBACK_LIVE_MS);
      const tookMs = Date.now() - started;
      assert.equal(s.transport, "websocket");
      assert.match(s.fallback, /not ready within 2000 ms/);
      assert.ok(tookMs >= 2_000, `live after ${tookMs} ms: WebTransport had its 2 s`);
      console.log(`live on the WebSocket ${tookMs} ms after the page opened (fallback: ${s.fallback})`);
      await waitHud(page, "WebSocket");
      // Playable on the fallback too.
      const [key, sign] = towardsCentre(s.position, "x");
      await holdUntilServerMoved(page, key, "x", sign);
      assert.deepEqual(unexpected(page.problems, blackHole.address().port), []);
    } finally {
      await page.close();
    }
  });

  test("a server without QUIC is joined on the WebSocket at once", { timeout: TEST_TIMEOUT_MS }, async () => {
    const page = await openClient(browser.context, `${tcpOnly.url}/?room=wt-none`);
    try {
      const s = await waitLive(page);
      assert.equal(s.transport, "websocket");
      assert.equal(s.fallback, "the server offers none");
      assert.deepEqual(page.problems, []);
    } finally {
      await page.close();
    }
  });

  test("?transport=ws skips WebTransport", { timeout: TEST_TIMEOUT_MS }, async () => {
    const page = await openClient(browser.context, `${server.url}/?room=wt-forced&transport=ws`);
    try {
      const s = await waitLive(page);
      assert.equal(s.transport, "websocket");
      assert.equal(s.fallback, null, "forced, not fallen back");
      assert.deepEqual(page.problems, []);
    } finally {
      await page.close();
    }
  });

  test("?transport=webtransport never falls back", { timeout: TEST_TIMEOUT_MS }, async () => {
    const page = await openClient(browser.context, `${tcpOnly.url}/?room=wt-only&transport=webtransport`);
    try {
      // The server offers no WebTransport: the attempt is lost and retried, never on a WebSocket.
      await page.waitForFunction(
        () => {
          const s = window.tickwire && window.tickwire.state();
          return s && s.connection === "reconnecting" && s.reason === "WebTransport: the server offers none";
        },
        null,
        { timeout: 10_000, polling: 50 },
      );
      const s = await state(page);
      assert.equal(s.transport, null);
      assert.equal(s.entity, null);
      assert.deepEqual(page.problems, []);
    } finally {
      await page.close();
    }
  });

  for (const [from, to] of [["webtransport", "websocket"], ["websocket", "webtransport"]]) {
    test(`a player dropped on ${from} resumes on ${to} as the same entity`, { timeout: TEST_TIMEOUT_MS }, async () => {
      // While the page must use the WebSocket, the server seems to offer no WebTransport, or
      // one the page cannot reach (a port its CSP does not allow).
      const page = await openClient(browser.context, `${server.url}/?room=wt-resume-${from}&name=hopper`, {
        beforeGoto: (p) => (from === "websocket" ? advertise(p, null) : undefined),
      });
      try {
        const s = await waitLive(page);
        assert.equal(s.transport, from);
        assert.equal(s.reconnects, 0);
        if (to === "websocket") {
          await advertise(page, deadEndpoint(blackHole.address().port));
        } else {
          await page.unrouteAll();
        }
        const res = await browser.context.request.post(`${server.url}/api/debug/drop?entity=${s.entity}`);
        assert.equal(res.status(), 202, await res.text());
        await page.waitForFunction(
          (to) => {
            const s = window.tickwire.state();
            return s.connection === "live" && s.reconnects === 1 && s.transport === to && s.score !== null;
          },
          to,
          { timeout: 20_000, polling: 50 },
        );
        const after = await state(page);
        assert.equal(after.entity, s.entity, "resumed as the same entity");
        console.log(`resumed on ${to} (fallback: ${after.fallback})`);
        await waitHud(page, to === "webtransport" ? "WebTransport" : "WebSocket");
        const [key, sign] = towardsCentre(after.position, "y");
        await holdUntilServerMoved(page, key, "y", sign);
      assert.deepEqual(unexpected(page.problems, blackHole.address().port), []);
      } finally {
        await page.close();
      }
    });
  }
});
