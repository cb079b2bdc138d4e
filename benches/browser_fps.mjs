// Browser rendering benchmark: the real client in headless Chromium (software rendering, no
// GPU) against a server whose room holds NPCS bots with an interest radius covering the whole
// arena, so the page draws them all. Prints the frames per second the page measured, sampled
// each second, and how many entities it had on screen.
//
//   node benches/browser_fps.mjs [NPCS=200] [SECONDS=10]
//
// Needs the built client (client-web/build.sh) and a server binary (release preferred;
// $TICKWIRE_BIN overrides), as the browser end-to-end tests do.
import { startServer, launchBrowser, openClient, state, waitLive } from "../tests/e2e/harness.js";

const npcs = Number(process.argv[2] ?? 200);
const seconds = Number(process.argv[3] ?? 10);
if (!Number.isInteger(npcs) || npcs < 1 || !Number.isInteger(seconds) || seconds < 1) {
  console.error("usage: node benches/browser_fps.mjs [NPCS] [SECONDS]");
  process.exit(2);
}

const server = await startServer(["--npcs", String(npcs), "--interest-radius", "5000"]);
const { context, close } = await launchBrowser();
try {
  const page = await openClient(context, `${server.url}/?name=fps`);
  await waitLive(page);
  await page.waitForFunction((n) => window.tickwire.state().visible >= n, npcs, {
    timeout: 30_000,
    polling: 100,
  });
  const samples = [];
  for (let i = 0; i < seconds; i++) {
    await page.waitForTimeout(1_000);
    const s = await state(page);
    samples.push({ fps: s.fps, visible: s.visible });
  }
  const fps = samples.map((s) => s.fps).sort((a, b) => a - b);
  const visible = samples.map((s) => s.visible);
  console.log(`browser_fps: ${npcs} NPCs, ${seconds} s, headless Chromium (software rendering)`);
  console.log(`  visible entities   min ${Math.min(...visible)}, max ${Math.max(...visible)}`);
  console.log(`  fps                min ${fps[0].toFixed(1)}, median ${fps[fps.length >> 1].toFixed(1)}, max ${fps[fps.length - 1].toFixed(1)}`);
  if (page.problems.length) console.log(`  page problems: ${page.problems.join("; ")}`);
} finally {
  await close();
  await server.stop();
}
