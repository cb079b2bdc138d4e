// All of the client is in the wasm module; its start function runs on instantiation. A file of
// its own (not an inline script), so the page's Content-Security-Policy allows only 'self'.
import init from "./tickwire_client_web.js";

init().catch((e) => {
  const s = document.getElementById("status");
  s.textContent = "failed: " + e;
  s.className = "failed";
});
