//! The part of HTTP/3 (RFC 9114), QPACK (RFC 9204) and WebTransport over HTTP/3
//! (draft-ietf-webtrans-http3, as browsers speak it) that a WebTransport server needs: the
//! control stream's SETTINGS, the extended CONNECT request and its answer, and the headers of
//! WebTransport streams and datagrams. Sans-IO: bytes in, bytes out; [`crate::quic`] moves them.
//!
//! Only what a session needs, and nothing that costs memory per connection: QPACK is static
//! only (the server's SETTINGS give the peer a dynamic table of 0 bytes, so a request that
//! refers to one is malformed), and the HTTP/3 connection carries one session, no requests.

use thiserror::Error;

/// A malformed piece of HTTP/3 from the peer.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum H3Error {
    /// A variable-length integer or a prefixed integer is too long or cut short.
    #[error("a bad integer")]
    Integer,
    /// A frame or a field section is larger than this server takes.
    #[error("a frame of {0} bytes is over the limit")]
    TooLarge(u64),
    /// A field line refers to QPACK's dynamic table, which this server does not give the peer.
    #[error("a field line refers to the dynamic table")]
    DynamicTable,
    /// A static table index past its end.
    #[error("no static table entry {0}")]
    StaticIndex(u64),
    /// A string literal that is not valid Huffman or UTF-8.
    #[error("a string literal is not valid")]
    String,
    /// A frame that has no place here.
    #[error("unexpected frame type {0:#x}")]
    UnexpectedFrame(u64),
}

/// The largest value of a QUIC variable-length integer.
pub const VARINT_MAX: u64 = (1 << 62) - 1;

/// Reads a QUIC variable-length integer (RFC 9000 §16) from the front of `bytes`: the value
/// and its length, or `None` when `bytes` holds only part of one.
#[must_use]
pub fn read_varint(bytes: &[u8]) -> Option<(u64, usize)> {
    let first = *bytes.first()?;
    let len = 1usize << (first >> 6);
    let bytes = bytes.get(..len)?;
    let mut value = u64::from(first & 0x3f);
    for &b in &bytes[1..] {
        value = (value << 8) | u64::from(b);
    }
    Some((value, len))
}

/// Appends `value` as a QUIC variable-length integer in its shortest form (values past
/// [`VARINT_MAX`] are clamped to it: every caller's values are far below).
pub fn write_varint(value: u64, out: &mut Vec<u8>) {
    let value = value.min(VARINT_MAX);
    if value < 1 << 6 {
        out.push(value as u8);
    } else if value < 1 << 14 {
        out.extend_from_slice(&(0x4000 | value as u16).to_be_bytes());
    } else if value < 1 << 30 {
        out.extend_from_slice(&(0x8000_0000 | value as u32).to_be_bytes());
    } else {
        out.extend_from_slice(&(0xc000_0000_0000_0000 | value).to_be_bytes());
    }
}

/// Unidirectional stream types.
pub mod stream_type {
    /// HTTP/3's control stream (one each way, open for the connection's life).
    pub const CONTROL: u64 = 0x00;
    /// QPACK's encoder stream.
    pub const QPACK_ENCODER: u64 = 0x02;
    /// QPACK's decoder stream.
    pub const QPACK_DECODER: u64 = 0x03;
    /// A WebTransport unidirectional stream (followed by its session's id).
    pub const WEBTRANSPORT: u64 = 0x54;
}

/// Frame types.
pub mod frame_type {
    /// DATA.
    pub const DATA: u64 = 0x00;
    /// HEADERS.
    pub const HEADERS: u64 = 0x01;
    /// SETTINGS.
    pub const SETTINGS: u64 = 0x04;
    /// The signal that opens a WebTransport bidirectional stream (followed by its session's id).
    pub const WEBTRANSPORT_STREAM: u64 = 0x41;
}

/// The capsule (RFC 9297) a peer sends on the CONNECT stream to end a WebTransport session.
pub const CAPSULE_CLOSE_WEBTRANSPORT_SESSION: u64 = 0x2843;

/// The server's SETTINGS: no dynamic QPACK table and no blocked streams (so no QPACK state per
/// connection), extended CONNECT, HTTP datagrams, and WebTransport (both the draft-02 flag
/// browsers check and the later drafts' session count) with one session per connection.
pub const SERVER_SETTINGS: [(u64, u64); 6] = [
    (0x01, 0),        // SETTINGS_QPACK_MAX_TABLE_CAPACITY
    (0x07, 0),        // SETTINGS_QPACK_BLOCKED_STREAMS
    (0x08, 1),        // SETTINGS_ENABLE_CONNECT_PROTOCOL
    (0x33, 1),        // SETTINGS_H3_DATAGRAM
    (0x2b60_3742, 1), // SETTINGS_ENABLE_WEBTRANSPORT (draft-02)
    (0xc671_706a, 1), // SETTINGS_WEBTRANSPORT_MAX_SESSIONS
];

/// Appends a frame of `frame_type` holding `payload`.
pub fn write_frame(frame_type: u64, payload: &[u8], out: &mut Vec<u8>) {
    write_varint(frame_type, out);
    write_varint(payload.len() as u64, out);
    out.extend_from_slice(payload);
}

/// What the server writes first on its control stream: the stream type and its SETTINGS.
#[must_use]
pub fn control_stream_preamble() -> Vec<u8> {
    control_stream_preamble_with(&SERVER_SETTINGS)
}

/// What a peer writes first on its control stream: the stream type and `settings`.
#[must_use]
pub fn control_stream_preamble_with(settings_list: &[(u64, u64)]) -> Vec<u8> {
    let mut settings = Vec::new();
    for &(id, value) in settings_list {
        write_varint(id, &mut settings);
        write_varint(value, &mut settings);
    }
    let mut out = Vec::with_capacity(settings.len() + 4);
    write_varint(stream_type::CONTROL, &mut out);
    write_frame(frame_type::SETTINGS, &settings, &mut out);
    out
}

/// What opens a bidirectional WebTransport stream of `session`.
#[must_use]
pub fn bidi_stream_header(session: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(10);
    write_varint(frame_type::WEBTRANSPORT_STREAM, &mut out);
    write_varint(session, &mut out);
    out
}

/// What opens a unidirectional WebTransport stream of `session`.
#[must_use]
pub fn uni_stream_header(session: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(10);
    write_varint(stream_type::WEBTRANSPORT, &mut out);
    write_varint(session, &mut out);
    out
}

/// The prefix of every datagram of `session`: its quarter stream id (RFC 9297).
#[must_use]
pub fn datagram_prefix(session: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(8);
    write_varint(session / 4, &mut out);
    out
}

/// The payload of a datagram of `session`, or `None` when it belongs to no session of this
/// connection (or is cut short).
#[must_use]
pub fn datagram_payload(session: u64, datagram: &[u8]) -> Option<usize> {
    let (quarter, len) = read_varint(datagram)?;
    (quarter == session / 4).then_some(len)
}

/// A frame header at the front of `bytes`: its type, its header's length and its payload's
/// length; `None` when the header is not all there yet.
#[must_use]
pub fn read_frame_header(bytes: &[u8]) -> Option<(u64, usize, u64)> {
    let (frame_type, a) = read_varint(bytes)?;
    let (len, b) = read_varint(&bytes[a..])?;
    Some((frame_type, a + b, len))
}

/// The pseudo-headers and headers of a WebTransport session request that the server reads;
/// every other field is decoded (to check it) and dropped.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Request {
    /// `:method`.
    pub method: String,
    /// `:protocol` (extended CONNECT).
    pub protocol: String,
    /// `:scheme`.
    pub scheme: String,
    /// `:authority`.
    pub authority: String,
    /// `:path`.
    pub path: String,
    /// `origin`.
    pub origin: Option<String>,
    /// `authorization`.
    pub authorization: Option<String>,
}

impl Request {
    fn set(&mut self, name: &str, value: String) {
        match name {
            ":method" => self.method = value,
            ":protocol" => self.protocol = value,
            ":scheme" => self.scheme = value,
            ":authority" => self.authority = value,
            ":path" => self.path = value,
            "origin" => self.origin = Some(value),
            "authorization" => self.authorization = Some(value),
            _ => {}
        }
    }

    /// Whether this is a WebTransport session request (extended CONNECT over https).
    #[must_use]
    pub fn is_webtransport(&self) -> bool {
        self.method == "CONNECT" && self.protocol == "webtransport" && self.scheme == "https"
    }
}

/// QPACK's static table (RFC 9204, appendix A).
const STATIC_TABLE: [(&str, &str); 99] = [
    (":authority", ""),
    (":path", "/"),
    ("age", "0"),
    ("content-disposition", ""),
    ("content-length", "0"),
    ("cookie", ""),
    ("date", ""),
    ("etag", ""),
    ("if-modified-since", ""),
    ("if-none-match", ""),
    ("last-modified", ""),
    ("link", ""),
    ("location", ""),
    ("referer", ""),
    ("set-cookie", ""),
    (":method", "CONNECT"),
    (":method", "DELETE"),
    (":method", "GET"),
    (":method", "HEAD"),
    (":method", "OPTIONS"),
    (":method", "POST"),
    (":method", "PUT"),
    (":scheme", "http"),
    (":scheme", "https"),
    (":status", "103"),
    (":status", "200"),
    (":status", "304"),
    (":status", "404"),
    (":status", "503"),
    ("accept", "*/*"),
    ("accept", "application/dns-message"),
    ("accept-encoding", "gzip, deflate, br"),
    ("accept-ranges", "bytes"),
    ("access-control-allow-headers", "cache-control"),
    ("access-control-allow-headers", "content-type"),
    ("access-control-allow-origin", "*"),
    ("cache-control", "max-age=0"),
    ("cache-control", "max-age=2592000"),
    ("cache-control", "max-age=604800"),
    ("cache-control", "no-cache"),
    ("cache-control", "no-store"),
    ("cache-control", "public, max-age=31536000"),
    ("content-encoding", "br"),
    ("content-encoding", "gzip"),
    ("content-type", "application/dns-message"),
    ("content-type", "application/javascript"),
    ("content-type", "application/json"),
    ("content-type", "application/x-www-form-urlencoded"),
    ("content-type", "image/gif"),
    ("content-type", "image/jpeg"),
    ("content-type", "image/png"),
    ("content-type", "text/css"),
    ("content-type", "text/html; charset=utf-8"),
    ("content-type", "text/plain"),
    ("content-type", "text/plain;charset=utf-8"),
    ("range", "bytes=0-"),
    ("strict-transport-security", "max-age=31536000"),
    ("strict-transport-security", "max-age=31536000; includesubdomains"),
    ("strict-transport-security", "max-age=31536000; includesubdomains; preload"),
    ("vary", "accept-encoding"),
    ("vary", "origin"),
    ("x-content-type-options", "nosniff"),
    ("x-xss-protection", "1; mode=block"),
    (":status", "100"),
    (":status", "204"),
    (":status", "206"),
    (":status", "302"),
    (":status", "400"),
    (":status", "403"),
    (":status", "421"),
    (":status", "425"),
    (":status", "500"),
    ("accept-language", ""),
    ("access-control-allow-credentials", "FALSE"),
    ("access-control-allow-credentials", "TRUE"),
    ("access-control-allow-headers", "*"),
    ("access-control-allow-methods", "get"),
    ("access-control-allow-methods", "get, post, options"),
    ("access-control-allow-methods", "options"),
    ("access-control-expose-headers", "content-length"),
    ("access-control-request-headers", "content-type"),
    ("access-control-request-method", "get"),
    ("access-control-request-method", "post"),
    ("alt-svc", "clear"),
    ("authorization", ""),
    ("content-security-policy", "script-src 'none'; object-src 'none'; base-uri 'none'"),
    ("early-data", "1"),
    ("expect-ct", ""),
    ("forwarded", ""),
    ("if-range", ""),
    ("origin", ""),
    ("purpose", "prefetch"),
    ("server", ""),
    ("timing-allow-origin", "*"),
    ("upgrade-insecure-requests", "1"),
    ("user-agent", ""),
    ("x-forwarded-for", ""),
    ("x-frame-options", "deny"),
    ("x-frame-options", "sameorigin"),
];

fn static_entry(index: u64) -> Result<(&'static str, &'static str), H3Error> {
    usize::try_from(index)
        .ok()
        .and_then(|i| STATIC_TABLE.get(i))
        .copied()
        .ok_or(H3Error::StaticIndex(index))
}

/// A reader of QPACK's primitives (RFC 9204 §4.1) over a field section.
struct Fields<'a> {
    bytes: &'a [u8],
}

impl Fields<'_> {
    /// A prefixed integer (RFC 7541 §5.1) whose prefix is the low `bits` of the next byte.
    fn integer(&mut self, bits: u32) -> Result<u64, H3Error> {
        let (&first, rest) = self.bytes.split_first().ok_or(H3Error::Integer)?;
        self.bytes = rest;
        let mask = (1u64 << bits) - 1;
        let mut value = u64::from(first) & mask;
        if value < mask {
            return Ok(value);
        }
        let mut shift = 0u32;
        loop {
            let (&b, rest) = self.bytes.split_first().ok_or(H3Error::Integer)?;
            self.bytes = rest;
            if shift > 56 {
                return Err(H3Error::Integer);
            }
            value += u64::from(b & 0x7f) << shift;
            shift += 7;
            if b & 0x80 == 0 {
                return Ok(value);
            }
        }
    }

    /// A string literal whose Huffman flag is bit `bits` of the next byte and whose length is
    /// a prefixed integer of the `bits` below it.
    fn string(&mut self, bits: u32) -> Result<String, H3Error> {
        let huffman = self.bytes.first().is_some_and(|b| b & (1 << bits) != 0);
        let len = usize::try_from(self.integer(bits)?).map_err(|_| H3Error::String)?;
        if len > self.bytes.len() {
            return Err(H3Error::String);
        }
        let (raw, rest) = self.bytes.split_at(len);
        self.bytes = rest;
        let bytes = if huffman {
            let mut out = Vec::with_capacity(len * 8 / 5 + 1);
            httlib_huffman::decode(raw, &mut out, httlib_huffman::DecoderSpeed::FourBits)
                .map_err(|_| H3Error::String)?;
            out
        } else {
            raw.to_vec()
        };
        String::from_utf8(bytes).map_err(|_| H3Error::String)
    }
}

/// Decodes a HEADERS frame's field section (static QPACK only) into a [`Request`].
///
/// # Errors
///
/// A reference to the dynamic table, an index past the static table, a bad integer or string.
pub fn decode_request(section: &[u8]) -> Result<Request, H3Error> {
    let mut request = Request::default();
    decode_fields(section, |name, value| request.set(name, value))?;
    Ok(request)
}

/// Decodes a field section (static QPACK only), handing each field to `field` in order.
///
/// # Errors
///
/// As [`decode_request`].
pub fn decode_fields(section: &[u8], mut field: impl FnMut(&str, String)) -> Result<(), H3Error> {
    let mut fields = Fields { bytes: section };
    // Required Insert Count, then the sign and Delta Base: with no dynamic table both are 0.
    if fields.integer(8)? != 0 {
        return Err(H3Error::DynamicTable);
    }
    fields.integer(7)?;
    while let Some(&first) = fields.bytes.first() {
        if first & 0x80 != 0 {
            // Indexed field line: 1 T index(6).
            if first & 0x40 == 0 {
                return Err(H3Error::DynamicTable);
            }
            let (name, value) = static_entry(fields.integer(6)?)?;
            field(name, value.to_owned());
        } else if first & 0x40 != 0 {
            // Literal field line with name reference: 0 1 N T index(4), then the value.
            if first & 0x10 == 0 {
                return Err(H3Error::DynamicTable);
            }
            let (name, _) = static_entry(fields.integer(4)?)?;
            let value = fields.string(7)?;
            field(name, value);
        } else if first & 0x20 != 0 {
            // Literal field line with literal name: 0 0 1 N H length(3), then the value.
            let name = fields.string(3)?;
            let value = fields.string(7)?;
            field(&name, value);
        } else {
            // Post-base forms (0001…, 0000…) exist only with a dynamic table.
            return Err(H3Error::DynamicTable);
        }
    }
    Ok(())
}

fn write_prefixed(value: u64, bits: u32, flags: u8, out: &mut Vec<u8>) {
    let mask = (1u64 << bits) - 1;
    if value < mask {
        out.push(flags | value as u8);
        return;
    }
    out.push(flags | mask as u8);
    let mut rest = value - mask;
    while rest >= 0x80 {
        out.push(0x80 | (rest & 0x7f) as u8);
        rest >>= 7;
    }
    out.push(rest as u8);
}

/// Appends one field line: indexed when the static table has the pair, else a literal with a
/// static name reference when it has the name, else a literal name; values are never
/// Huffman-coded (a few bytes more, no table to carry).
fn encode_field(name: &str, value: &str, out: &mut Vec<u8>) {
    if let Some(index) = STATIC_TABLE.iter().position(|&entry| entry == (name, value)) {
        write_prefixed(index as u64, 6, 0xc0, out);
        return;
    }
    match STATIC_TABLE.iter().position(|&(n, _)| n == name) {
        Some(index) => write_prefixed(index as u64, 4, 0x50, out),
        None => {
            write_prefixed(name.len() as u64, 3, 0x20, out);
            out.extend_from_slice(name.as_bytes());
        }
    }
    write_prefixed(value.len() as u64, 7, 0, out);
    out.extend_from_slice(value.as_bytes());
}

fn headers_frame<'a>(fields: impl IntoIterator<Item = (&'a str, &'a str)>) -> Vec<u8> {
    // No dynamic table: Required Insert Count 0, Delta Base 0.
    let mut section = vec![0, 0];
    for (name, value) in fields {
        encode_field(name, value, &mut section);
    }
    let mut out = Vec::with_capacity(section.len() + 4);
    write_frame(frame_type::HEADERS, &section, &mut out);
    out
}

/// A HEADERS frame answering a request with `status` (and nothing else).
#[must_use]
pub fn response_frame(status: u16) -> Vec<u8> {
    headers_frame([(":status", status.to_string().as_str())])
}

/// The HEADERS frame of `request` (what a client sends; the tests' and the fuzzer's encoder).
#[must_use]
pub fn request_frame(request: &Request) -> Vec<u8> {
    let mut fields = vec![
        (":method", request.method.as_str()),
        (":protocol", request.protocol.as_str()),
        (":scheme", request.scheme.as_str()),
        (":authority", request.authority.as_str()),
        (":path", request.path.as_str()),
    ];
    fields.extend(request.origin.as_deref().map(|o| ("origin", o)));
    fields.extend(request.authorization.as_deref().map(|a| ("authorization", a)));
    headers_frame(fields)
}

/// The largest HEADERS frame a request may have: a long token fits many times.
pub const MAX_REQUEST_BYTES: u64 = 16 * 1024;

/// Looks for the request's HEADERS frame at the front of `buffered` (frames of unknown types
/// before it are skipped, as HTTP/3 requires): the request and the bytes it took, or `None`
/// when more bytes are needed.
///
/// # Errors
///
/// A DATA or SETTINGS frame first, a frame over [`MAX_REQUEST_BYTES`], a bad field section.
pub fn parse_request(buffered: &[u8]) -> Result<Option<(Request, usize)>, H3Error> {
    let mut at = 0;
    loop {
        let Some((frame_type, header, len)) = read_frame_header(&buffered[at..]) else {
            return Ok(None);
        };
        if len > MAX_REQUEST_BYTES {
            return Err(H3Error::TooLarge(len));
        }
        let end = at + header + len as usize;
        if buffered.len() < end {
            return Ok(None);
        }
        match frame_type {
            frame_type::HEADERS => {
                return decode_request(&buffered[at + header..end]).map(|r| Some((r, end)));
            }
            frame_type::DATA | frame_type::SETTINGS | frame_type::WEBTRANSPORT_STREAM => {
                return Err(H3Error::UnexpectedFrame(frame_type));
            }
            _ => at = end,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn varint(v: u64) -> Vec<u8> {
        let mut out = Vec::new();
        write_varint(v, &mut out);
        out
    }

    #[test]
    fn varints_round_trip_in_their_shortest_form() {
        // RFC 9000 §A.1's examples.
        assert_eq!(
            read_varint(&[0xc2, 0x19, 0x7c, 0x5e, 0xff, 0x14, 0xe8, 0x8c]).unwrap(),
            (151_288_809_941_952_652, 8)
        );
        assert_eq!(read_varint(&[0x9d, 0x7f, 0x3e, 0x7d]).unwrap(), (494_878_333, 4));
        assert_eq!(read_varint(&[0x7b, 0xbd]).unwrap(), (15_293, 2));
        assert_eq!(read_varint(&[0x25]).unwrap(), (37, 1));
        assert_eq!(read_varint(&[0x40, 0x25]).unwrap(), (37, 2));
        assert_eq!(read_varint(&[0x7b]), None);
        assert_eq!(read_varint(&[]), None);
        for v in [0, 63, 64, 16_383, 16_384, (1 << 30) - 1, 1 << 30, VARINT_MAX] {
            let bytes = varint(v);
            assert_eq!(read_varint(&bytes), Some((v, bytes.len())), "{v}");
        }
        assert_eq!(varint(0x54), [0x40, 0x54]);
        assert_eq!(varint(u64::MAX), varint(VARINT_MAX));
    }

    #[test]
    fn the_static_table_has_the_rfcs_landmarks() {
        assert_eq!(STATIC_TABLE[0], (":authority", ""));
        assert_eq!(STATIC_TABLE[15], (":method", "CONNECT"));
        assert_eq!(STATIC_TABLE[23], (":scheme", "https"));
        assert_eq!(STATIC_TABLE[25], (":status", "200"));
        assert_eq!(STATIC_TABLE[63], (":status", "100"));
        assert_eq!(STATIC_TABLE[84], ("authorization", ""));
        assert_eq!(STATIC_TABLE[90], ("origin", ""));
        assert_eq!(STATIC_TABLE[98], ("x-frame-options", "sameorigin"));
    }

    /// A request the way a browser encodes one: indexed entries, literals with a static name
    /// (one of them Huffman-coded), and literal names.
    #[test]
    fn a_request_decodes_from_static_qpack() {
        let mut section = vec![0x00, 0x00];
        section.push(0xc0 | 15); // :method CONNECT
        section.push(0xc0 | 23); // :scheme https
        // :authority, literal "localhost:4433" with a static name reference (index 0).
        section.push(0x50);
        section.push(14);
        section.extend_from_slice(b"localhost:4433");
        // :path (index 1), Huffman-coded.
        let mut huff = Vec::new();
        httlib_huffman::encode(b"/wt?v=7&name=ann", &mut huff).unwrap();
        section.push(0x51);
        section.push(0x80 | huff.len() as u8);
        section.extend_from_slice(&huff);
        // :protocol webtransport, a literal name (its length 9 ≥ 7 continues).
        section.push(0x20 | 7);
        section.push(9 - 7);
        section.extend_from_slice(b":protocol");
        section.push(12);
        section.extend_from_slice(b"webtransport");
        // origin (index 90 ≥ 15: the integer continues), literal value.
        section.push(0x5f);
        section.push(90 - 15);
        section.push(21);
        section.extend_from_slice(b"https://localhost:443");
        // A field the server ignores.
        section.push(0xc0 | 17);
        let request = decode_request(&section).unwrap();
        assert_eq!(request.method, "GET", "the last :method wins");
        assert_eq!(request.scheme, "https");
        assert_eq!(request.authority, "localhost:4433");
        assert_eq!(request.path, "/wt?v=7&name=ann");
        assert_eq!(request.protocol, "webtransport");
        assert_eq!(request.origin.as_deref(), Some("https://localhost:443"));
        assert_eq!(request.authorization, None);
    }

    #[test]
    fn dynamic_references_and_bad_input_are_refused() {
        // Required Insert Count ≠ 0.
        assert_eq!(decode_request(&[0x01, 0x00]), Err(H3Error::DynamicTable));
        // Indexed, dynamic.
        assert_eq!(decode_request(&[0, 0, 0x80]), Err(H3Error::DynamicTable));
        // Literal with a dynamic name reference.
        assert_eq!(decode_request(&[0, 0, 0x40, 0]), Err(H3Error::DynamicTable));
        // Post-base forms.
        assert_eq!(decode_request(&[0, 0, 0x10]), Err(H3Error::DynamicTable));
        assert_eq!(decode_request(&[0, 0, 0x00]), Err(H3Error::DynamicTable));
        // Past the table.
        assert_eq!(decode_request(&[0, 0, 0xff, 99 - 63]), Err(H3Error::StaticIndex(99)));
        // A string longer than what is left; an integer that never ends.
        assert_eq!(decode_request(&[0, 0, 0x50, 5, b'a']), Err(H3Error::String));
        assert_eq!(decode_request(&[0, 0, 0xff, 0xff, 0xff]), Err(H3Error::Integer));
        assert_eq!(decode_request(&[0, 0, 0xff, 0x80 | 5]), Err(H3Error::Integer));
        // Bad Huffman (EOS padding longer than 7 bits), bad UTF-8.
        assert_eq!(decode_request(&[0, 0, 0x50, 0x82, 0xff, 0xff]), Err(H3Error::String));
        assert_eq!(decode_request(&[0, 0, 0x50, 1, 0xff]), Err(H3Error::String));
        // Nothing at all.
        assert_eq!(decode_request(&[]), Err(H3Error::Integer));
    }

    #[test]
    fn responses_encode_the_status() {
        assert_eq!(response_frame(200), [0x01, 3, 0, 0, 0xc0 | 25]);
        assert_eq!(response_frame(404), [0x01, 3, 0, 0, 0xc0 | 27]);
        // 403 is entry 68 ≥ 63: the integer continues.
        assert_eq!(response_frame(403), [0x01, 4, 0, 0, 0xff, 68 - 63]);
        // 429 is not in the table: ":status" by reference, the value literal.
        assert_eq!(response_frame(429), [0x01, 8, 0, 0, 0x5f, 24 - 15, 3, b'4', b'2', b'9']);
        for status in [200, 403, 404, 429] {
            let frame = response_frame(status);
            let (ty, header, len) = read_frame_header(&frame).unwrap();
            assert_eq!((ty, header + len as usize), (frame_type::HEADERS, frame.len()));
            // The same decoder reads it back (":status" is not a request field: only checked).
            decode_request(&frame[header..]).unwrap();
        }
    }

    #[test]
    fn an_encoded_request_decodes_to_itself() {
        let request = Request {
            method: "CONNECT".into(),
            protocol: "webtransport".into(),
            scheme: "https".into(),
            authority: "127.0.0.1:4433".into(),
            path: "/wt?v=7&name=Zo%C3%AB".into(),
            origin: Some("http://localhost:8080".into()),
            authorization: Some("Bearer a.b.c".into()),
        };
        assert!(request.is_webtransport());
        let frame = request_frame(&request);
        assert_eq!(parse_request(&frame), Ok(Some((request, frame.len()))));
        assert!(!Request::default().is_webtransport());
    }

    #[test]
    fn the_request_frame_is_found_after_unknown_frames() {
        let mut section = vec![0, 0, 0xc0 | 15];
        section.extend_from_slice(&[0x50, 1, b'h']);
        let mut bytes = Vec::new();
        write_frame(0x21, b"grease", &mut bytes); // a reserved frame type
        write_frame(frame_type::HEADERS, &section, &mut bytes);
        bytes.extend_from_slice(b"capsules after");
        for cut in 0..bytes.len() - 14 {
            assert_eq!(parse_request(&bytes[..cut]), Ok(None), "{cut}");
        }
        let (request, used) = parse_request(&bytes).unwrap().unwrap();
        assert_eq!((request.method.as_str(), request.authority.as_str()), ("CONNECT", "h"));
        assert_eq!(used, bytes.len() - 14);
        let mut data_first = Vec::new();
        write_frame(frame_type::DATA, b"x", &mut data_first);
        assert_eq!(parse_request(&data_first), Err(H3Error::UnexpectedFrame(0)));
        let mut huge = Vec::new();
        write_varint(frame_type::HEADERS, &mut huge);
        write_varint(MAX_REQUEST_BYTES + 1, &mut huge);
        assert_eq!(parse_request(&huge), Err(H3Error::TooLarge(MAX_REQUEST_BYTES + 1)));
    }

    #[test]
    fn stream_and_datagram_headers_name_the_session() {
        let preamble = control_stream_preamble();
        assert_eq!(preamble[0], 0x00);
        let (ty, header, len) = read_frame_header(&preamble[1..]).unwrap();
        assert_eq!((ty, 1 + header + len as usize), (frame_type::SETTINGS, preamble.len()));
        assert_eq!(bidi_stream_header(4), [0x40, 0x41, 4]);
        assert_eq!(uni_stream_header(8), [0x40, 0x54, 8]);
        let mut datagram = datagram_prefix(400);
        datagram.extend_from_slice(b"hi");
        assert_eq!(datagram_payload(400, &datagram), Some(datagram.len() - 2));
        assert_eq!(datagram_payload(404, &datagram), None);
        assert_eq!(datagram_payload(0, &[]), None);
    }
}
