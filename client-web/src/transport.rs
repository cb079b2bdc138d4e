//! The transport ladder as plain data: which transports a connection attempt tries and in which
//! order, what the server advertises at `GET /api/transport`, the WebTransport URL, and which
//! outgoing messages go as datagrams. No browser types, so it is tested natively; the browser
//! glue is in `app/net.rs` and `app/webtransport.rs`.
//!
//! Every attempt (the first connection and each reconnect) climbs the ladder anew: WebTransport
//! first when the browser has it and the server advertises it, the WebSocket when WebTransport
//! is missing or not ready within [`WEBTRANSPORT_READY_DEADLINE_MS`]. The page query
//! `?transport=ws` or `?transport=webtransport` forces one rung.

use tickwire_shared::codec::MAX_SERVER_MESSAGE_BYTES;
use tickwire_shared::stream_frame::{
    FrameDecoder, FrameTooLarge, WEBTRANSPORT_PATH, is_unreliable_client_message,
};

/// How long WebTransport may take to become ready (the session accepted and its stream open)
/// before the attempt falls back to the WebSocket: a QUIC handshake on a working path takes
/// one or two round trips, so 2 s means UDP is blocked or lost, and a blocked path costs a
/// reconnect no more than that.
pub const WEBTRANSPORT_READY_DEADLINE_MS: f64 = 2_000.0;

/// How long `GET /api/transport` may take before the attempt goes on without it (on the
/// WebSocket): the same budget as WebTransport's handshake.
pub const ADVERTISEMENT_DEADLINE_MS: u32 = 2_000;

/// The close code a session reports when it ended without a close of its own (the browser's
/// abnormal closure, as for a WebSocket).
pub const ABNORMAL_CLOSE_CODE: u16 = 1006;

/// A way to reach the server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    /// QUIC through the browser's WebTransport: inputs and snapshots as datagrams.
    WebTransport,
    /// The WebSocket at `/ws` (`wss:` on an https page).
    WebSocket,
}

impl Transport {
    /// The label `window.tickwire.state().transport` reports.
    #[must_use]
    pub fn label(self) -> &'static str {
        match self {
            Transport::WebTransport => "webtransport",
            Transport::WebSocket => "websocket",
        }
    }

    /// The name the HUD shows.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Transport::WebTransport => "WebTransport",
            Transport::WebSocket => "WebSocket",
        }
    }
}

/// What the page query `?transport=` asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Preference {
    /// The ladder: WebTransport, else the WebSocket.
    Auto,
    /// Only this transport (for tests and debugging): no fallback.
    Only(Transport),
}

impl Preference {
    /// Reads the page query's `transport` value: `ws`/`websocket` or `wt`/`webtransport`
    /// (any case); anything else, or nothing, is [`Preference::Auto`].
    #[must_use]
    pub fn from_query(value: Option<&str>) -> Preference {
        match value.map(|v| v.trim().to_ascii_lowercase()).as_deref() {
            Some("ws" | "websocket") => Preference::Only(Transport::WebSocket),
            Some("wt" | "webtransport") => Preference::Only(Transport::WebTransport),
            _ => Preference::Auto,
        }
    }
}

/// The rungs one connection attempt may try, in order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ladder {
    /// WebTransport, then the WebSocket if WebTransport fails before its session opens.
    WebTransportThenWebSocket,
    /// WebTransport only (forced).
    WebTransportOnly,
    /// The WebSocket only (forced, or the browser has no WebTransport).
    WebSocketOnly,
}

impl Ladder {
    /// The ladder for `preference` in a browser that has WebTransport (`supported`) or not. A
    /// forced WebTransport is tried even where it is missing, so the failure says why.
    #[must_use]
    pub fn new(preference: Preference, supported: bool) -> Ladder {
        match preference {
            Preference::Only(Transport::WebSocket) => Ladder::WebSocketOnly,
            Preference::Only(Transport::WebTransport) => Ladder::WebTransportOnly,
            Preference::Auto if supported => Ladder::WebTransportThenWebSocket,
            Preference::Auto => Ladder::WebSocketOnly,
        }
    }

    /// The first rung.
    #[must_use]
    pub fn first(self) -> Transport {
        match self {
            Ladder::WebTransportThenWebSocket | Ladder::WebTransportOnly => Transport::WebTransport,
            Ladder::WebSocketOnly => Transport::WebSocket,
        }
    }

    /// The rung after `failed` failed before its session opened; `None` when there is none
    /// (the attempt is lost and the reconnect backoff takes over). A session that opened and
    /// then ended is a lost connection, never a reason to fall back.
    #[must_use]
    pub fn after(self, failed: Transport) -> Option<Transport> {
        match (self, failed) {
            (Ladder::WebTransportThenWebSocket, Transport::WebTransport) => {
                Some(Transport::WebSocket)
            }
            _ => None,
        }
    }
}

/// The server's WebTransport endpoint, from `GET /api/transport`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WebTransportEndpoint {
    /// The UDP port of its QUIC endpoint.
    pub port: u16,
    /// The session's path.
    pub path: String,
    /// The SHA-256 of a self-signed certificate the browser must accept by its hash
    /// (`serverCertificateHashes`); `None` for a certificate the browser trusts anyway.
    pub cert_sha256: Option<[u8; 32]>,
}

/// Why an advertised endpoint is unusable.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AdvertisementError {
    /// The port is not a whole number in `1..=65535` (not printed: formatting any `f64` would
    /// cost the module kilobytes).
    #[error("the advertised WebTransport port is not in 1..=65535")]
    BadPort,
    /// The path does not start with `/` or has characters a URL path must not.
    #[error("the advertised WebTransport path {0:?} is not a path")]
    BadPath(String),
    /// The certificate hash is not 64 hex digits.
    #[error("the advertised certificate hash {0:?} is not 64 hex digits")]
    BadHash(String),
}

impl WebTransportEndpoint {
    /// The endpoint from the advertisement's fields as JSON gave them: `port` a number, `path`
    /// a string (`/wt` when missing) and `cert_sha256` 64 hex digits or missing.
    ///
    /// # Errors
    ///
    /// When a field is out of range or malformed.
    pub fn from_fields(
        port: f64,
        path: Option<&str>,
        cert_sha256: Option<&str>,
    ) -> Result<WebTransportEndpoint, AdvertisementError> {
        if !(port.fract() == 0.0 && (1.0..=65_535.0).contains(&port)) {
            return Err(AdvertisementError::BadPort);
        }
        let path = path.unwrap_or(WEBTRANSPORT_PATH);
        let plain = |c: char| c.is_ascii_graphic() && !matches!(c, '?' | '#' | '\\');
        if !path.starts_with('/') || !path.chars().all(plain) {
            return Err(AdvertisementError::BadPath(path.to_owned()));
        }
        let cert_sha256 = cert_sha256
            .map(|hex| parse_sha256_hex(hex).ok_or_else(|| AdvertisementError::BadHash(hex.into())))
            .transpose()?;
        Ok(WebTransportEndpoint { port: port as u16, path: path.to_owned(), cert_sha256 })
    }

    /// The session's URL on `hostname` (as `location.hostname` gives it, brackets around an
    /// IPv6 address included) with the join query `query`.
    #[must_use]
    pub fn url(&self, hostname: &str, query: &str) -> String {
        format!("https://{hostname}:{}{}?{query}", self.port, self.path)
    }
}

/// 64 hex digits (either case) as 32 bytes.
#[must_use]
pub fn parse_sha256_hex(hex: &str) -> Option<[u8; 32]> {
    let digits = hex.as_bytes();
    if digits.len() != 64 {
        return None;
    }
    let nibble = |d: u8| char::from(d).to_digit(16).map(|v| v as u8);
    let mut out = [0; 32];
    for (byte, pair) in out.iter_mut().zip(digits.chunks_exact(2)) {
        *byte = nibble(pair[0])? << 4 | nibble(pair[1])?;
    }
    Some(out)
}

/// How an outgoing message travels over WebTransport.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route {
    /// As one datagram, unreliably.
    Datagram,
    /// Framed on the session's bidirectional stream, reliably and in order.
    Stream,
}

/// The route of the encoded client message `bytes` when datagrams of at most
/// `max_datagram_size` bytes fit: inputs as datagrams when they fit, everything else (and an
/// input too large) on the stream.
#[must_use]
pub fn route(bytes: &[u8], max_datagram_size: usize) -> Route {
    if is_unreliable_client_message(bytes) && bytes.len() <= max_datagram_size {
        Route::Datagram
    } else {
        Route::Stream
    }
}

/// What arrived on a WebTransport session (the kinds `app/webtransport.js` hands over).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arrival {
    /// A datagram: one whole message.
    Datagram,
    /// Bytes read from the bidirectional stream: framed messages, cut anywhere.
    StreamChunk,
    /// Everything one unidirectional stream carried: one framed message.
    UniStream,
}

impl Arrival {
    /// The arrival of kind `kind` (0, 1 or 2, in the order above).
    #[must_use]
    pub fn from_kind(kind: u8) -> Option<Arrival> {
        Some(match kind {
            0 => Arrival::Datagram,
            1 => Arrival::StreamChunk,
            2 => Arrival::UniStream,
            _ => return None,
        })
    }
}

/// Turns what arrives on one WebTransport session into whole server messages of at most
/// [`MAX_SERVER_MESSAGE_BYTES`].
#[derive(Debug, Clone)]
pub struct Unframer {
    stream: FrameDecoder,
    /// Whether the stream delivered a message (the `Welcome`) yet: a snapshot that overtakes
    /// it (a datagram, a unidirectional stream) means nothing and is dropped, as if lost.
    started: bool,
}

impl Default for Unframer {
    fn default() -> Unframer {
        Unframer { stream: FrameDecoder::new(MAX_SERVER_MESSAGE_BYTES), started: false }
    }
}

impl Unframer {
    /// The whole messages in `bytes`: the datagram itself, the messages a stream chunk
    /// completed, or the unidirectional stream's one message (none when that stream was cut
    /// short or malformed: a lost snapshot, not a broken session).
    ///
    /// # Errors
    ///
    /// When the bidirectional stream announced a message over the limit: its framing is lost,
    /// so the session is unusable.
    pub fn messages(
        &mut self,
        arrival: Arrival,
        bytes: Vec<u8>,
    ) -> Result<Vec<Vec<u8>>, FrameTooLarge> {
        match arrival {
            Arrival::Datagram | Arrival::UniStream if !self.started => Ok(Vec::new()),
            Arrival::Datagram => Ok(vec![bytes]),
            Arrival::StreamChunk => {
                self.stream.push(&bytes);
                let mut messages = Vec::new();
                while let Some(m) = self.stream.next_frame()? {
                    messages.push(m);
                }
                self.started |= !messages.is_empty();
                Ok(messages)
            }
            Arrival::UniStream => {
                let mut one = FrameDecoder::new(MAX_SERVER_MESSAGE_BYTES);
                one.push(&bytes);
                Ok(one.next_frame().ok().flatten().into_iter().collect())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use tickwire_shared::codec;
    use tickwire_shared::protocol::{ClientMessage, InputBatch};

    use super::*;

    #[test]
    fn snapshots_that_overtake_the_welcome_are_dropped() {
        let mut u = Unframer::default();
        assert!(u.messages(Arrival::Datagram, vec![1, 2]).unwrap().is_empty());
        let uni = tickwire_shared::stream_frame::framed(&[3]);
        assert!(u.messages(Arrival::UniStream, uni.clone()).unwrap().is_empty());
        // Half a frame on the stream is not a message yet.
        let welcome = tickwire_shared::stream_frame::framed(&[9, 9]);
        assert!(u.messages(Arrival::StreamChunk, welcome[..3].to_vec()).unwrap().is_empty());
        assert!(u.messages(Arrival::Datagram, vec![1]).unwrap().is_empty());
        assert_eq!(u.messages(Arrival::StreamChunk, welcome[3..].to_vec()).unwrap(), [vec![9, 9]]);
        assert_eq!(u.messages(Arrival::Datagram, vec![1, 2]).unwrap(), [vec![1, 2]]);
        assert_eq!(u.messages(Arrival::UniStream, uni).unwrap(), [vec![3]]);
    }

    #[test]
    fn the_query_forces_a_rung_or_leaves_the_ladder() {
        let ws = Preference::Only(Transport::WebSocket);
        let wt = Preference::Only(Transport::WebTransport);
        for (query, want) in [
            (None, Preference::Auto),
            (Some(""), Preference::Auto),
            (Some("ws"), ws),
            (Some("WebSocket"), ws),
            (Some("wt"), wt),
            (Some(" webtransport "), wt),
            (Some("carrier-pigeon"), Preference::Auto),
        ] {
            assert_eq!(Preference::from_query(query), want, "{query:?}");
        }
    }

    #[test]
    fn the_ladder_tries_webtransport_first_and_falls_back_only_when_not_forced() {
        use Transport::{WebSocket, WebTransport};
        // (preference, browser has WebTransport, first rung, rung after a WebTransport failure)
        for (preference, supported, first, after_wt) in [
            (Preference::Auto, true, WebTransport, Some(WebSocket)),
            (Preference::Auto, false, WebSocket, None),
            (Preference::Only(WebSocket), true, WebSocket, None),
            (Preference::Only(WebTransport), true, WebTransport, None),
            (Preference::Only(WebTransport), false, WebTransport, None),
        ] {
            let ladder = Ladder::new(preference, supported);
            assert_eq!(ladder.first(), first, "{preference:?} {supported}");
            assert_eq!(ladder.after(WebTransport), after_wt, "{preference:?} {supported}");
            assert_eq!(ladder.after(WebSocket), None, "the WebSocket is the last rung");
        }
    }

    #[test]
    fn advertised_endpoints_are_checked_and_make_urls() {
        let hash = "00112233445566778899aabbccddeeff00112233445566778899AABBCCDDEEFF";
        let e = WebTransportEndpoint::from_fields(18443.0, Some("/wt"), Some(hash)).unwrap();
        let bytes = e.cert_sha256.unwrap();
        assert_eq!((bytes[0], bytes[1], bytes[15], bytes[31]), (0x00, 0x11, 0xff, 0xff));
        assert_eq!(e.url("127.0.0.1", "v=7&token=t"), "https://127.0.0.1:18443/wt?v=7&token=t");
        assert_eq!(e.url("[::1]", "v=7"), "https://[::1]:18443/wt?v=7");
        let default = WebTransportEndpoint::from_fields(443.0, None, None).unwrap();
        assert_eq!((default.path.as_str(), default.cert_sha256), ("/wt", None));

        for port in [0.0, -1.0, 65_536.0, 1.5, f64::NAN] {
            assert!(WebTransportEndpoint::from_fields(port, None, None).is_err(), "{port}");
        }
        for path in ["wt", "/w t", "/wt?x=1", "/wt#x", ""] {
            let err = WebTransportEndpoint::from_fields(1.0, Some(path), None);
            assert_eq!(err, Err(AdvertisementError::BadPath(path.into())));
        }
        for bad in ["", "00", &hash[1..], &format!("{}zz", &hash[2..])] {
            assert_eq!(parse_sha256_hex(bad), None, "{bad:?}");
            let err = WebTransportEndpoint::from_fields(1.0, None, Some(bad));
            assert_eq!(err, Err(AdvertisementError::BadHash(bad.into())));
        }
    }

    #[test]
    fn inputs_go_as_datagrams_when_they_fit_everything_else_on_the_stream() {
        let input = ClientMessage::Input(InputBatch {
            ack: None,
            first_seq: 7,
            frames: vec![3; 40],
            view: None,
        });
        let input = codec::encode_client(&input).unwrap();
        let ping = codec::encode_client(&ClientMessage::Ping { id: 1, client_time_us: 2 }).unwrap();
        let chat = codec::encode_client(&ClientMessage::Chat { text: "gg".into() }).unwrap();
        let leave = codec::encode_client(&ClientMessage::Leave).unwrap();
        assert_eq!(route(&input, 1200), Route::Datagram);
        assert_eq!(route(&input, input.len()), Route::Datagram);
        assert_eq!(route(&input, input.len() - 1), Route::Stream, "too large for a datagram");
        assert_eq!(route(&input, 0), Route::Stream, "no datagrams at all");
        for reliable in [ping, chat, leave] {
            assert_eq!(route(&reliable, 1200), Route::Stream);
        }
    }

    #[test]
    fn arrivals_become_whole_messages() {
        use tickwire_shared::stream_frame::write_frame;
        let mut u = Unframer::default();
        let mut stream = Vec::new();
        write_frame(b"welcome", &mut stream);
        write_frame(b"pong", &mut stream);
        let (a, b) = stream.split_at(9);
        assert_eq!(u.messages(Arrival::StreamChunk, a.to_vec()).unwrap(), Vec::<Vec<u8>>::new());
        let got = u.messages(Arrival::StreamChunk, b.to_vec()).unwrap();
        assert_eq!(got, vec![b"welcome".to_vec(), b"pong".to_vec()]);
        assert_eq!(u.messages(Arrival::Datagram, vec![1, 2]).unwrap(), vec![vec![1, 2]]);
        // A unidirectional stream carries one message; a cut one is dropped, not an error.
        let uni = tickwire_shared::stream_frame::framed(b"big snapshot");
        let got = u.messages(Arrival::UniStream, uni.clone()).unwrap();
        assert_eq!(got, vec![b"big snapshot".to_vec()]);
        let cut = uni[..uni.len() - 1].to_vec();
        assert_eq!(u.messages(Arrival::UniStream, cut).unwrap(), Vec::<Vec<u8>>::new());
        // A stream frame over the limit breaks the session.
        let huge = ((MAX_SERVER_MESSAGE_BYTES + 1) as u32).to_le_bytes().to_vec();
        assert!(u.messages(Arrival::StreamChunk, huge).is_err());
        assert_eq!(
            [0, 1, 2, 3].map(Arrival::from_kind),
            [Some(Arrival::Datagram), Some(Arrival::StreamChunk), Some(Arrival::UniStream), None]
        );
    }

    #[test]
    fn labels_and_names() {
        assert_eq!(Transport::WebTransport.label(), "webtransport");
        assert_eq!(Transport::WebSocket.label(), "websocket");
        assert_eq!(Transport::WebTransport.name(), "WebTransport");
        assert_eq!(Transport::WebSocket.name(), "WebSocket");
    }
}
