// Protocol diff at the handshake (issue 18, item 4): a page whose build of the game differs
// from the server's is refused with what differs, in words, instead of a bare mismatch. The
// "other build" is made by rewriting one quantization in the server's Welcome on its way to
// the page (playwright's WebSocket routing): the server says Health is sent in 0..=199.
//
// Every wait is on a condition with a deadline; no fixed sleeps.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";

import { launchBrowser, openClient, startServer, state, until } from "./harness.js";

let server;
let browser;

before(async () => {
  server = await startServer(["--npcs", "0", "--quic-bind", "off"]);
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

test("a page whose game differs from the server's says what differs", { timeout: 60_000 }, async () => {
  const rewrite = (page) => page.routeWebSocket(/\/ws/, (ws) => {
    const upstream = ws.connectToServer();
    upstream.onMessage((message) => {
      if (typeof message !== "string") {
        const at = message.indexOf("0..=255");
        if (at >= 0) {
          message = Buffer.from(message);
          message.write("0..=199", at);
        }
      }
      ws.send(message);
    });
    ws.onMessage((message) => upstream.send(message));
  });
  const page = await openClient(browser.context, `${server.url}/`, { beforeGoto: rewrite });
  const refused = await until("the page refuses the server", 20_000, async () => {
    const s = await state(page);
    return s.connection.startsWith("failed") && s;
  });
  assert.match(refused.reason, /this client's arena differs from the server's/, refused.reason);
  assert.match(
    refused.reason,
    /component Health: field health quantized as f32 rounded, in 0\.\.=255 here, as f32 rounded, in 0\.\.=199 on the server/,
    refused.reason,
  );
  // People read it on the page.
  await until("the page shows it", 10_000, async () =>
    /component Health: field health quantized/.test(await page.evaluate(() => document.body.innerText)));
  await page.close();
});
