//! How protocol messages travel over a byte stream (a QUIC/WebTransport stream), and which
//! travel unreliably. A WebSocket frames messages itself; a QUIC stream is only bytes, so each
//! message on it is a 4-byte little-endian length followed by the message ([`write_frame`],
//! [`FrameDecoder`]). Sans-IO: the server, the bots and the browser share this code.
//!
//! The WebTransport session (path [`WEBTRANSPORT_PATH`], the same join query as the WebSocket's
//! `/ws`):
//! - the server opens one bidirectional stream at once: every reliable message both ways
//!   (welcome, chat, events, pongs, the disconnect; the client's chat, pings, leave and inputs
//!   too large for a datagram), framed;
//! - server → client datagrams carry snapshots; a snapshot too large for a datagram comes alone
//!   on a fresh unidirectional stream (framed; a newer one may reset it);
//! - client → server datagrams carry inputs ([`is_unreliable_client_message`]);
//! - an empty datagram is a heartbeat: the server sends one every ping interval and the client
//!   answers with one;
//! - the server ends a session with `Disconnect` on the stream, then closes the session with the
//!   WebSocket close code of the reason and its text.

use thiserror::Error;

/// The WebTransport session's path.
pub const WEBTRANSPORT_PATH: &str = "/wt";

/// Bytes of the length before each message on a stream.
pub const FRAME_HEADER_BYTES: usize = 4;

/// Appends `message`, framed, to `out`.
pub fn write_frame(message: &[u8], out: &mut Vec<u8>) {
    // Messages are bounded far below 4 GiB by the codec; saturate rather than wrap.
    let len = u32::try_from(message.len()).unwrap_or(u32::MAX);
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(message);
}

/// `message` framed, as a new buffer.
#[must_use]
pub fn framed(message: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(FRAME_HEADER_BYTES + message.len());
    write_frame(message, &mut out);
    out
}

/// The length a frame header announces.
#[must_use]
pub fn frame_len(header: [u8; FRAME_HEADER_BYTES]) -> usize {
    u32::from_le_bytes(header) as usize
}

/// A frame announced more bytes than the limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[error("stream message of {len} bytes exceeds the limit of {limit}")]
pub struct FrameTooLarge {
    /// The announced length.
    pub len: usize,
    /// The limit.
    pub limit: usize,
}

/// Splits a byte stream into messages of at most `max` bytes. It holds at most one partial
/// frame (header plus `max` bytes) beyond the chunk last pushed.
#[derive(Debug, Clone)]
pub struct FrameDecoder {
    buf: Vec<u8>,
    start: usize,
    max: usize,
}

impl FrameDecoder {
    /// A decoder for messages of at most `max` bytes.
    #[must_use]
    pub fn new(max: usize) -> FrameDecoder {
        FrameDecoder { buf: Vec::new(), start: 0, max }
    }

    /// Adds bytes read from the stream.
    pub fn push(&mut self, chunk: &[u8]) {
        if self.start > 0 && self.start == self.buf.len() {
            self.buf.clear();
            self.start = 0;
        }
        self.buf.extend_from_slice(chunk);
    }

    /// The next whole message, `Ok(None)` when more bytes are needed. After an error the stream
    /// is unusable (its framing is lost).
    pub fn next_frame(&mut self) -> Result<Option<Vec<u8>>, FrameTooLarge> {
        let rest = &self.buf[self.start..];
        let Some(header) = rest.first_chunk::<FRAME_HEADER_BYTES>() else { return Ok(None) };
        let len = frame_len(*header);
        if len > self.max {
            return Err(FrameTooLarge { len, limit: self.max });
        }
        let Some(body) = rest.get(FRAME_HEADER_BYTES..FRAME_HEADER_BYTES + len) else {
            // Compact so that a partial frame never keeps consumed bytes alive.
            self.buf.drain(..self.start);
            self.start = 0;
            return Ok(None);
        };
        let message = body.to_vec();
        self.start += FRAME_HEADER_BYTES + len;
        Ok(Some(message))
    }

    /// Bytes held (consumed ones included until the next compaction).
    #[must_use]
    pub fn buffered(&self) -> usize {
        self.buf.len() - self.start
    }
}

/// Whether an encoded client message goes as a datagram: inputs do (each batch repeats the
/// frames before it, so a lost one costs nothing); chat, pings and leave go on the stream. The
/// codec's first byte is the variant (bincode's varint tag; `Input` is variant 0).
#[must_use]
pub fn is_unreliable_client_message(encoded: &[u8]) -> bool {
    encoded.first() == Some(&0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec;
    use crate::protocol::ClientMessage;

    #[test]
    fn frames_split_across_and_within_chunks() {
        let mut stream = Vec::new();
        write_frame(b"hello", &mut stream);
        write_frame(b"", &mut stream);
        write_frame(&[7; 300], &mut stream);
        for chunk_size in [1, 3, 4, 5, 9, 1000] {
            let mut d = FrameDecoder::new(300);
            let mut got = Vec::new();
            for chunk in stream.chunks(chunk_size) {
                d.push(chunk);
                while let Some(m) = d.next_frame().unwrap() {
                    got.push(m);
                }
            }
            assert_eq!(got, vec![b"hello".to_vec(), Vec::new(), vec![7; 300]], "{chunk_size}");
            assert_eq!(d.buffered(), 0);
        }
    }

    #[test]
    fn a_frame_over_the_limit_is_refused_before_its_body_arrives() {
        let mut d = FrameDecoder::new(10);
        d.push(&framed(&[0; 11])[..FRAME_HEADER_BYTES]);
        assert_eq!(d.next_frame(), Err(FrameTooLarge { len: 11, limit: 10 }));
        let mut d = FrameDecoder::new(10);
        d.push(&u32::MAX.to_le_bytes());
        assert!(d.next_frame().is_err());
    }

    #[test]
    fn only_inputs_are_unreliable() {
        let ping = codec::encode_client(&ClientMessage::Ping { id: 1, client_time_us: 2 }).unwrap();
        let leave = codec::encode_client(&ClientMessage::Leave).unwrap();
        let chat = codec::encode_client(&ClientMessage::Chat { text: "hi".into() }).unwrap();
        assert!(![ping, leave, chat].iter().any(|m| is_unreliable_client_message(m)));
        assert!(!is_unreliable_client_message(&[]));
        let input =
            crate::protocol::InputBatch { ack: None, first_seq: 0, frames: vec![1, 2], view: None };
        let input = codec::encode_client(&ClientMessage::Input(input)).unwrap();
        assert!(is_unreliable_client_message(&input));
    }
}
