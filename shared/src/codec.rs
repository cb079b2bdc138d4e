//! The codec: messages to bytes and back. This is the one module that uses bincode (2.0.1,
//! standard configuration: little-endian, varint integers), so changing the codec is one file.
//!
//! Decoding is bounded twice: a message longer than its direction's limit is refused before
//! decoding, and bincode's own allocation limit refuses a length prefix that claims more than
//! the message could hold. Every failure is a [`CodecError`]; nothing here panics on input.

use bincode::config::{self, Configuration, Limit, LittleEndian, Varint};
use serde::Serialize;
use serde::de::DeserializeOwned;
use thiserror::Error;

use crate::protocol::{
    ClientMessage, MAX_INPUT_FRAMES, ProtocolError, ServerMessage, SnapshotHeader,
};

/// Largest client→server message, in bytes. An input batch of eight frames is under 80 bytes
/// and a chat line under 210; 1 KiB leaves room and keeps a hostile client's cost tiny.
pub const MAX_CLIENT_MESSAGE_BYTES: usize = 1024;

/// Largest server→client message, in bytes. A full snapshot of the entities one client can see
/// (hundreds) is a few KiB; 256 KiB bounds the worst case without truncating a real one.
pub const MAX_SERVER_MESSAGE_BYTES: usize = 256 * 1024;

type ClientConfig = Configuration<LittleEndian, Varint, Limit<MAX_CLIENT_MESSAGE_BYTES>>;
type ServerConfig = Configuration<LittleEndian, Varint, Limit<MAX_SERVER_MESSAGE_BYTES>>;

fn client_config() -> ClientConfig {
    config::standard().with_limit::<MAX_CLIENT_MESSAGE_BYTES>()
}

fn server_config() -> ServerConfig {
    config::standard().with_limit::<MAX_SERVER_MESSAGE_BYTES>()
}

/// Why bytes did not become a message (or a message did not become bytes).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CodecError {
    /// The message is longer than its direction's limit.
    #[error("message of {len} bytes exceeds the limit of {limit}")]
    TooLarge {
        /// Its length.
        len: usize,
        /// The limit.
        limit: usize,
    },
    /// The bytes are not a valid encoding (bincode's reason).
    #[error("malformed message: {0}")]
    Malformed(String),
    /// Bytes were left after the message.
    #[error("{0} trailing bytes after the message")]
    TrailingBytes(usize),
    /// It decoded but breaks the protocol's rules.
    #[error(transparent)]
    Invalid(#[from] ProtocolError),
    /// Encoding failed (a message over the limit).
    #[error("cannot encode: {0}")]
    Encode(String),
}

/// Appends to a `Vec<u8>` so that buffers can be reused.
struct VecWriter<'a>(&'a mut Vec<u8>);

impl bincode::enc::write::Writer for VecWriter<'_> {
    fn write(&mut self, bytes: &[u8]) -> Result<(), bincode::error::EncodeError> {
        self.0.extend_from_slice(bytes);
        Ok(())
    }
}

fn encode_into<T: Serialize, C: config::Config>(
    msg: &T,
    out: &mut Vec<u8>,
    cfg: C,
    limit: usize,
) -> Result<(), CodecError> {
    let start = out.len();
    bincode::serde::encode_into_writer(msg, VecWriter(out), cfg)
        .map_err(|e| CodecError::Encode(e.to_string()))?;
    let len = out.len() - start;
    if len > limit {
        out.truncate(start);
        return Err(CodecError::TooLarge { len, limit });
    }
    Ok(())
}

fn decode<T: DeserializeOwned, C: config::Config>(
    bytes: &[u8],
    cfg: C,
    limit: usize,
) -> Result<T, CodecError> {
    if bytes.len() > limit {
        return Err(CodecError::TooLarge { len: bytes.len(), limit });
    }
    let (msg, used) = bincode::serde::decode_from_slice::<T, C>(bytes, cfg)
        .map_err(|e| CodecError::Malformed(e.to_string()))?;
    if used != bytes.len() {
        return Err(CodecError::TrailingBytes(bytes.len() - used));
    }
    Ok(msg)
}

/// Appends the encoding of a client message to `out`.
pub fn encode_client_into(msg: &ClientMessage, out: &mut Vec<u8>) -> Result<(), CodecError> {
    encode_into(msg, out, client_config(), MAX_CLIENT_MESSAGE_BYTES)
}

/// Encodes a client message.
pub fn encode_client(msg: &ClientMessage) -> Result<Vec<u8>, CodecError> {
    let mut out = Vec::with_capacity(64);
    encode_client_into(msg, &mut out)?;
    Ok(out)
}

/// Decodes and validates a client message. The server calls this on every untrusted frame.
pub fn decode_client(bytes: &[u8]) -> Result<ClientMessage, CodecError> {
    let msg: ClientMessage = decode(bytes, client_config(), MAX_CLIENT_MESSAGE_BYTES)?;
    msg.validate()?;
    Ok(msg)
}

/// Appends the encoding of a server message to `out`.
pub fn encode_server_into(msg: &ServerMessage, out: &mut Vec<u8>) -> Result<(), CodecError> {
    encode_into(msg, out, server_config(), MAX_SERVER_MESSAGE_BYTES)
}

/// `ServerMessage::Snapshot` with a borrowed body, for [`encode_snapshot_into`]: the same
/// variant index and field order, so the same bytes.
#[derive(Serialize)]
enum SnapshotEnvelope<'a> {
    _Welcome,
    Snapshot(SnapshotRef<'a>),
}

#[derive(Serialize)]
struct SnapshotRef<'a> {
    // A nested struct is its fields in order: the same bytes as the message's own fields.
    header: SnapshotHeader,
    #[serde(with = "bytes")]
    body: &'a [u8],
}

/// Appends the encoding of `ServerMessage::Snapshot(SnapshotMessage { .. })` to `out` without
/// the message owning `body`: byte for byte what [`encode_server_into`] writes for it. The
/// server encodes one shared body into many clients' envelopes this way.
pub fn encode_snapshot_into(
    header: SnapshotHeader,
    body: &[u8],
    out: &mut Vec<u8>,
) -> Result<(), CodecError> {
    let msg = SnapshotEnvelope::Snapshot(SnapshotRef { header, body });
    encode_into(&msg, out, server_config(), MAX_SERVER_MESSAGE_BYTES)
}

/// Encodes a server message.
pub fn encode_server(msg: &ServerMessage) -> Result<Vec<u8>, CodecError> {
    let mut out = Vec::with_capacity(128);
    encode_server_into(msg, &mut out)?;
    Ok(out)
}

/// Encodes a game's input frames (oldest first) for [`crate::protocol::InputBatch::frames`]:
/// their count in one byte, then each frame.
///
/// # Errors
///
/// When there are no frames or more than [`MAX_INPUT_FRAMES`], or they do not fit a client
/// message.
pub fn encode_inputs<I: Serialize>(frames: &[I]) -> Result<Vec<u8>, CodecError> {
    let n = frames.len();
    if n == 0 || n > MAX_INPUT_FRAMES {
        return Err(CodecError::Invalid(ProtocolError::FrameCount(n)));
    }
    let mut out = Vec::with_capacity(1 + 8 * n);
    out.push(n as u8);
    for frame in frames {
        encode_into(frame, &mut out, client_config(), MAX_CLIENT_MESSAGE_BYTES)?;
    }
    Ok(out)
}

/// Decodes what [`encode_inputs`] wrote into `out` (cleared first): the frames, oldest first.
/// Untrusted bytes: the count is checked (1 to [`MAX_INPUT_FRAMES`]) before anything is
/// allocated, and every byte must be used.
///
/// # Errors
///
/// A bad count, a malformed frame or trailing bytes.
pub fn decode_inputs<I: DeserializeOwned>(
    bytes: &[u8],
    out: &mut Vec<I>,
) -> Result<(), CodecError> {
    out.clear();
    let (&n, mut rest) = bytes.split_first().ok_or(ProtocolError::FrameCount(0))?;
    let n = usize::from(n);
    if n == 0 || n > MAX_INPUT_FRAMES {
        return Err(ProtocolError::FrameCount(n).into());
    }
    out.reserve(n);
    for _ in 0..n {
        let (frame, used) = bincode::serde::decode_from_slice::<I, _>(rest, client_config())
            .map_err(|e| CodecError::Malformed(e.to_string()))?;
        out.push(frame);
        rest = &rest[used..];
    }
    if !rest.is_empty() {
        return Err(CodecError::TrailingBytes(rest.len()));
    }
    Ok(())
}

/// Encodes a game event for [`ServerMessage::GameEvent`].
///
/// # Errors
///
/// When it does not fit a server message.
pub fn encode_game_event<E: Serialize>(event: &E) -> Result<Vec<u8>, CodecError> {
    let mut out = Vec::with_capacity(32);
    encode_into(event, &mut out, server_config(), MAX_SERVER_MESSAGE_BYTES)?;
    Ok(out)
}

/// Decodes a game event (untrusted: size-limited, every byte used).
///
/// # Errors
///
/// When the bytes are not an event of type `E`.
pub fn decode_game_event<E: DeserializeOwned>(bytes: &[u8]) -> Result<E, CodecError> {
    decode(bytes, server_config(), MAX_SERVER_MESSAGE_BYTES)
}

/// Decodes a server message (clients: the browser, bots, tests).
pub fn decode_server(bytes: &[u8]) -> Result<ServerMessage, CodecError> {
    decode(bytes, server_config(), MAX_SERVER_MESSAGE_BYTES)
}

/// Serde adapter for byte buffers: written as a length and raw bytes, read through
/// `deserialize_byte_buf`, so the decoder's limit is checked before anything is allocated
/// (serde's sequence path would preallocate up to 1 MiB from a hostile length).
pub mod bytes {
    use serde::de::{Error, SeqAccess, Visitor};
    use serde::{Deserializer, Serializer};

    /// Serializes `bytes` as a byte string.
    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(bytes)
    }

    /// Deserializes a byte string.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        d.deserialize_byte_buf(BytesVisitor)
    }

    struct BytesVisitor;

    impl<'de> Visitor<'de> for BytesVisitor {
        type Value = Vec<u8>;

        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a byte string")
        }

        fn visit_bytes<E: Error>(self, v: &[u8]) -> Result<Vec<u8>, E> {
            Ok(v.to_vec())
        }

        fn visit_byte_buf<E: Error>(self, v: Vec<u8>) -> Result<Vec<u8>, E> {
            Ok(v)
        }

        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<u8>, A::Error> {
            // Self-describing formats may send a sequence; grow as elements really arrive.
            let mut out = Vec::new();
            while let Some(b) = seq.next_element()? {
                out.push(b);
            }
            Ok(out)
        }
    }
}
