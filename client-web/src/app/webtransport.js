// The browser's WebTransport for the wasm shell: `webtransport.rs` imports this module through
// wasm-bindgen, which copies it into dist/snippets/ (so the page's CSP, 'self', allows it).
//
// It only moves bytes. The Rust side frames what it sends on the stream, unframes what it
// receives (tickwire_shared::stream_frame) and decides what goes as a datagram; this file opens
// the session within a deadline, reads the one bidirectional stream, the datagrams and the
// unidirectional streams, answers heartbeats, and reports the end of the session once.

/** Whether this browser (in this context: WebTransport needs a secure one) has WebTransport. */
export function webTransportSupported() {
  return typeof WebTransport === "function";
}

/** What `onData` is handed: a whole server message (a datagram). */
const DATAGRAM = 0;
/** What `onData` is handed: bytes read from the bidirectional stream (framed messages). */
const STREAM_CHUNK = 1;
/** What `onData` is handed: everything a unidirectional stream carried (one framed message). */
const UNI_STREAM = 2;

/** The close code of a session that ended without a close of its own (like a WebSocket's). */
const ABNORMAL = 1006;

/** How long the end of the session waits for the stream's last bytes (the `Disconnect`). */
const DRAIN_MS = 200;

const sleep = (ms) => new Promise((ok) => setTimeout(ok, ms));

/**
 * One WebTransport session. It opens once the session is ready and the server's stream arrived
 * (`isOpen()`), calls `onData(kind, bytes)` for what it receives, and `onClose(code, reason,
 * opened)` once at the end (`opened` false: it never opened, within `deadlineMs` or at all).
 * Nothing is called during the constructor or after `close()`.
 */
export class WtLink {
  constructor(url, certSha256, deadlineMs, maxStreamBytes, onData, onClose) {
    this.handlers = { onData, onClose };
    this.maxStreamBytes = maxStreamBytes;
    this.transport = null;
    this.writer = null;
    this.datagramWriter = null;
    this.opened = false;
    this.run(url, certSha256, deadlineMs);
  }

  async run(url, certSha256, deadlineMs) {
    // Not one callback before the constructor returned to the shell (which holds its state).
    await null;
    if (!this.handlers) return;
    let timer;
    let stream;
    try {
      const options = certSha256
        ? { serverCertificateHashes: [{ algorithm: "sha-256", value: certSha256 }] }
        : {};
      const transport = new WebTransport(url, options);
      this.transport = transport;
      // Settled below; a rejection must never surface as an unhandled one.
      transport.closed.catch(() => {});
      const deadline = new Promise((_, fail) => {
        timer = setTimeout(() => fail(new Error(`WebTransport not ready within ${deadlineMs} ms`)), deadlineMs);
      });
      const firstStream = (async () => {
        await transport.ready;
        const reader = transport.incomingBidirectionalStreams.getReader();
        const { value, done } = await reader.read();
        reader.releaseLock();
        if (done) throw new Error("the session closed before its stream opened");
        return value;
      })();
      firstStream.catch(() => {});
      stream = await Promise.race([firstStream, deadline]);
    } catch (e) {
      clearTimeout(timer);
      // Chromium's messages quote the URL: not its query, which holds the player's tokens.
      this.end(ABNORMAL, describe(e).split(url).join(url.split("?")[0]));
      return;
    }
    clearTimeout(timer);
    if (!this.handlers) return;
    const transport = this.transport;
    this.writer = stream.writable.getWriter();
    const datagrams = transport.datagrams;
    const writable = typeof datagrams.createWritable === "function" ? datagrams.createWritable() : datagrams.writable;
    this.datagramWriter = writable.getWriter();
    this.opened = true;
    const streamRead = this.readStream(stream.readable);
    this.readDatagrams(datagrams.readable);
    this.readUniStreams(transport.incomingUnidirectionalStreams);
    let code = ABNORMAL;
    let reason = "";
    try {
      const info = await transport.closed;
      code = info.closeCode ?? 0;
      reason = info.reason ?? "";
    } catch (e) {
      reason = describe(e);
    }
    // The server says `Disconnect` on the stream just before it closes: let it arrive first.
    await Promise.race([streamRead, sleep(DRAIN_MS)]);
    this.end(code, reason);
  }

  /** Hands `bytes` to the shell unless it closed this link. */
  emit(kind, bytes) {
    if (this.handlers) this.handlers.onData(kind, bytes);
  }

  /** Reports the end once. */
  end(code, reason) {
    const handlers = this.handlers;
    this.handlers = null;
    try {
      this.transport?.close();
    } catch {
      // Already closed.
    }
    if (handlers) handlers.onClose(code, reason, this.opened);
  }

  async readStream(readable) {
    const reader = readable.getReader();
    for (;;) {
      let chunk;
      try {
        chunk = await reader.read();
      } catch {
        return; // The session ended.
      }
      if (chunk.done) return;
      this.emit(STREAM_CHUNK, chunk.value);
    }
  }

  async readDatagrams(readable) {
    const reader = readable.getReader();
    for (;;) {
      let datagram;
      try {
        datagram = await reader.read();
      } catch {
        return;
      }
      if (datagram.done) return;
      if (datagram.value.byteLength === 0) {
        // A heartbeat: answered, or the server's idle timeout ends the session.
        this.sendDatagram(new Uint8Array(0));
      } else {
        this.emit(DATAGRAM, datagram.value);
      }
    }
  }

  async readUniStreams(incoming) {
    const reader = incoming.getReader();
    for (;;) {
      let next;
      try {
        next = await reader.read();
      } catch {
        return;
      }
      if (next.done) return;
      this.readWhole(next.value);
    }
  }

  /** One unidirectional stream: one framed message, then FIN. A reset one is dropped. */
  async readWhole(readable) {
    const reader = readable.getReader();
    const chunks = [];
    let size = 0;
    for (;;) {
      let chunk;
      try {
        chunk = await reader.read();
      } catch {
        return; // Reset: a newer snapshot superseded it.
      }
      if (chunk.done) break;
      size += chunk.value.byteLength;
      if (size > this.maxStreamBytes) {
        reader.cancel().catch(() => {});
        return;
      }
      chunks.push(chunk.value);
    }
    const whole = new Uint8Array(size);
    let at = 0;
    for (const c of chunks) {
      whole.set(c, at);
      at += c.byteLength;
    }
    this.emit(UNI_STREAM, whole);
  }

  /** Whether the session is open for sending. */
  isOpen() {
    return this.handlers !== null && this.writer !== null;
  }

  /** The largest datagram the session takes now (0 before it opened). */
  maxDatagramSize() {
    return this.opened ? this.transport.datagrams.maxDatagramSize || 0 : 0;
  }

  /** Queues bytes (already framed) on the stream. */
  sendReliable(bytes) {
    if (!this.isOpen()) return;
    this.writer.write(bytes.slice()).catch(() => {});
  }

  /** Sends one datagram (dropped if the browser's queue is full). */
  sendDatagram(bytes) {
    if (!this.isOpen()) return;
    this.datagramWriter.write(bytes.slice()).catch(() => {});
  }

  /** Ends the session; no callback runs after this. */
  close() {
    this.handlers = null;
    try {
      this.transport?.close();
    } catch {
      // Already closed.
    }
  }
}

function describe(e) {
  return e && e.message ? e.message : String(e);
}
