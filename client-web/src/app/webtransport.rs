//! The shell's WebTransport link: `webtransport.js` (a small hand-written module; web-sys's
//! WebTransport bindings need `--cfg=web_sys_unstable_apis` and bring more glue) opens the
//! session and moves bytes; this side frames reliable messages, routes each outgoing message
//! ([`route`]) and unframes what arrives ([`Unframer`]).

use std::cell::Cell;

use js_sys::Uint8Array;
use tickwire_shared::codec::MAX_SERVER_MESSAGE_BYTES;
use tickwire_shared::stream_frame::{FRAME_HEADER_BYTES, FrameTooLarge, framed};
use wasm_bindgen::prelude::*;

use crate::transport::{
    ABNORMAL_CLOSE_CODE, Arrival, Route, Unframer, WEBTRANSPORT_READY_DEADLINE_MS, route,
};

#[wasm_bindgen(module = "/src/app/webtransport.js")]
extern "C" {
    /// Whether the page's context has WebTransport.
    #[wasm_bindgen(js_name = webTransportSupported)]
    pub(super) fn supported() -> bool;

    /// The JS side of one session.
    type WtLink;

    #[wasm_bindgen(constructor)]
    fn new(
        url: &str,
        cert_sha256: Option<Vec<u8>>,
        deadline_ms: f64,
        max_stream_bytes: f64,
        on_data: &JsValue,
        on_close: &JsValue,
    ) -> WtLink;

    #[wasm_bindgen(method, js_name = isOpen)]
    fn is_open(this: &WtLink) -> bool;

    #[wasm_bindgen(method, js_name = maxDatagramSize)]
    fn max_datagram_size(this: &WtLink) -> f64;

    #[wasm_bindgen(method, js_name = sendReliable)]
    fn send_reliable(this: &WtLink, bytes: &[u8]);

    #[wasm_bindgen(method, js_name = sendDatagram)]
    fn send_datagram(this: &WtLink, bytes: &[u8]);

    #[wasm_bindgen(method)]
    fn close(this: &WtLink);
}

/// One WebTransport session of the shell.
pub(super) struct Link {
    js: WtLink,
    unframer: Unframer,
    /// Datagrams received and sent (heartbeats aside), for the test hook.
    datagrams_in: u64,
    datagrams_out: Cell<u64>,
    _on_data: Closure<dyn FnMut(u8, Uint8Array)>,
    _on_close: Closure<dyn FnMut(u32, String, bool)>,
}

impl Link {
    /// Opens a session to `url`, accepting a self-signed certificate of hash `cert_sha256`.
    /// `on_data` gets what arrives; `on_close(code, reason, opened)` the end of the session
    /// (`opened` false: it never opened, in time or at all). Neither runs before this returns.
    pub(super) fn open(
        url: &str,
        cert_sha256: Option<[u8; 32]>,
        mut on_data: impl FnMut(Arrival, Vec<u8>) + 'static,
        mut on_close: impl FnMut(u16, String, bool) + 'static,
    ) -> Link {
        let on_data = Closure::<dyn FnMut(u8, Uint8Array)>::new(move |kind, bytes: Uint8Array| {
            if let Some(kind) = Arrival::from_kind(kind) {
                on_data(kind, bytes.to_vec());
            }
        });
        let on_close =
            Closure::<dyn FnMut(u32, String, bool)>::new(move |code, reason: String, opened| {
                // WebTransport's codes are 32-bit; the server's are WebSocket close codes.
                on_close(u16::try_from(code).unwrap_or(ABNORMAL_CLOSE_CODE), reason, opened);
            });
        let js = WtLink::new(
            url,
            cert_sha256.map(|h| h.to_vec()),
            WEBTRANSPORT_READY_DEADLINE_MS,
            (FRAME_HEADER_BYTES + MAX_SERVER_MESSAGE_BYTES) as f64,
            on_data.as_ref(),
            on_close.as_ref(),
        );
        Link {
            js,
            unframer: Unframer::default(),
            datagrams_in: 0,
            datagrams_out: Cell::new(0),
            _on_data: on_data,
            _on_close: on_close,
        }
    }

    /// Whether messages can be sent.
    pub(super) fn is_open(&self) -> bool {
        self.js.is_open()
    }

    /// Sends one encoded client message on its route.
    pub(super) fn send(&self, bytes: &[u8]) {
        let max = self.js.max_datagram_size();
        let max = if max.is_finite() && max > 0.0 { max as usize } else { 0 };
        match route(bytes, max) {
            Route::Datagram => {
                self.js.send_datagram(bytes);
                self.datagrams_out.set(self.datagrams_out.get() + 1);
            }
            Route::Stream => self.js.send_reliable(&framed(bytes)),
        }
    }

    /// The whole server messages in what arrived ([`Unframer::messages`]).
    pub(super) fn unframe(
        &mut self,
        arrival: Arrival,
        bytes: Vec<u8>,
    ) -> Result<Vec<Vec<u8>>, FrameTooLarge> {
        if arrival == Arrival::Datagram {
            self.datagrams_in += 1;
        }
        self.unframer.messages(arrival, bytes)
    }

    /// Datagrams received and sent so far (heartbeats aside).
    pub(super) fn datagrams(&self) -> (u64, u64) {
        (self.datagrams_in, self.datagrams_out.get())
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        // Detaches the callbacks before the closures above are freed.
        self.js.close();
    }
}
