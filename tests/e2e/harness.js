// Helpers for the browser end-to-end tests: start the real server on a free port, launch
// Debian's headless Chromium through playwright-core (no browser download), open pages.
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve, dirname } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");
export const CHROMIUM = process.env.CHROMIUM_PATH || "/usr/bin/chromium";

/** How long the server may take to print its address (a cold start reads the static dir). */
const SERVER_START_MS = 30_000;

/** The `tickwire` binary: $TICKWIRE_BIN, else the release build, else the debug build. */
export function serverBinary() {
  if (process.env.TICKWIRE_BIN) return resolve(ROOT, process.env.TICKWIRE_BIN);
  const target = process.env.CARGO_TARGET_DIR
    ? resolve(ROOT, process.env.CARGO_TARGET_DIR)
    : join(ROOT, "target");
  for (const profile of ["release", "debug"]) {
    const bin = join(target, profile, "tickwire");
    if (existsSync(bin)) return bin;
  }
  throw new Error(`no tickwire binary under ${target}; build it with cargo build --release -p tickwire-server`);
}

/**
 * Starts `tickwire serve` on 127.0.0.1:0 with the built client and the test-only endpoints;
 * resolves to `{ url, stop, logs }` once it printed `Tickwire is listening: open http://ADDR/`
 * (`https://` with `--dev-cert`).
 */
export async function startServer(extraArgs = [], { bind = "127.0.0.1:0" } = {}) {
  const dist = join(ROOT, "client-web", "dist");
  if (!existsSync(join(dist, "index.html"))) {
    throw new Error("client-web/dist is not built; run client-web/build.sh");
  }
  const args = ["serve", "--bind", bind, "--static-dir", dist, "--debug-endpoints", ...extraArgs];
  const child = spawn(serverBinary(), args, { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] });
  const logs = [];
  child.stderr.on("data", (d) => {
    logs.push(d.toString());
    if (logs.length > 400) logs.shift();
  });
  const url = await new Promise((ok, fail) => {
    const timer = setTimeout(() => fail(new Error(`server did not start in ${SERVER_START_MS} ms:\n${logs.join("")}`)), SERVER_START_MS);
    const lines = createInterface({ input: child.stdout });
    lines.on("line", (line) => {
      const m = line.match(/Tickwire is listening: open (https?:\/\/\S+?)\/? /);
      if (m) {
        clearTimeout(timer);
        ok(m[1]);
      }
    });
    child.on("exit", (code) => {
      clearTimeout(timer);
      fail(new Error(`server exited with ${code}:\n${logs.join("")}`));
    });
  });
  const stop = async () => {
    if (child.exitCode !== null) return;
    const exited = new Promise((r) => child.once("exit", r));
    child.kill("SIGTERM");
    const timer = setTimeout(() => child.kill("SIGKILL"), 5_000);
    await exited;
    clearTimeout(timer);
  };
  return { url, stop, logs };
}

/**
 * Launches headless Chromium with a fresh profile; resolves to `{ context, close }`.
 * `webTransport: true` keeps QUIC on (WebTransport runs over it) and accepts the self-signed
 * certificate of a `--dev-cert` server's page.
 */
export async function launchBrowser({ webTransport = false } = {}) {
  const profile = mkdtempSync(join(tmpdir(), "tickwire-e2e-"));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    viewport: { width: 1280, height: 720 },
    ignoreHTTPSErrors: webTransport,
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      ...(webTransport ? [] : ["--disable-quic"]),
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      // Several pages play at once: none of them may be throttled as a background tab.
      "--disable-background-timer-throttling",
      "--disable-renderer-backgrounding",
      "--disable-backgrounding-occluded-windows",
    ],
  });
  const close = async () => {
    await context.close().catch(() => {});
    rmSync(profile, { recursive: true, force: true });
  };
  return { context, close };
}

/**
 * Opens the client at `url` in a new page and records its console errors and uncaught
 * exceptions in `page.problems`. `beforeGoto(page)` runs before the page loads (routes).
 */
export async function openClient(context, url, { beforeGoto } = {}) {
  const page = await context.newPage();
  if (beforeGoto) await beforeGoto(page);
  page.problems = [];
  page.on("console", (msg) => {
    if (msg.type() === "error") page.problems.push(`console.error: ${msg.text()}`);
  });
  page.on("pageerror", (err) => page.problems.push(`page error: ${err.message}`));
  await page.goto(url, { waitUntil: "load" });
  return page;
}

/** `window.tickwire.state()` of a page. */
export function state(page) {
  return page.evaluate(() => window.tickwire.state());
}

/** Waits until the page is live with its own entity visible; returns its state. */
export async function waitLive(page, timeout = 20_000) {
  await page.waitForFunction(
    () => {
      const s = window.tickwire && window.tickwire.state();
      return s && s.connection === "live" && s.entity !== null && s.position !== null
        && s.entities.some((e) => e.id === s.entity);
    },
    null,
    { timeout, polling: 50 },
  );
  return state(page);
}

/** Polls `check` (async, truthy when done) every 50 ms until `ms` have passed. */
export async function until(what, ms, check) {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await check().catch(() => null);
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
