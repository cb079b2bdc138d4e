//! The join request that rides on the WebSocket handshake's query string:
//! `/ws?v=1&token=…&room=…&name=…&resume=…`. Browsers cannot set headers on a WebSocket, so the
//! query carries everything; the server validates it before upgrading and answers an HTTP error
//! that says what is wrong.

use thiserror::Error;

use crate::protocol::MAX_NAME_CHARS;

/// Longest room id, in bytes (`[A-Za-z0-9_-]`).
pub const MAX_ROOM_ID_BYTES: usize = 32;

/// Longest token or resume token, in bytes.
pub const MAX_TOKEN_BYTES: usize = 1024;

/// A parsed, validated join query.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct JoinRequest {
    /// The protocol version from `v` (the subprotocol may carry it instead).
    pub version: Option<u16>,
    /// The auth token from `token` (the `Authorization` header may carry it instead).
    pub token: Option<String>,
    /// The room to join; matchmaking picks one when absent.
    pub room: Option<String>,
    /// The player's display name (trimmed; control characters removed).
    pub name: String,
    /// A resume token from an earlier `Welcome`.
    pub resume: Option<String>,
    /// The game of a new room ([`crate::games`]); the server's default when absent.
    pub game: Option<String>,
    /// A seat in a room a cluster's matchmaker reserved (`GET /api/matchmake`), signed by the
    /// cluster; it names the room, so `room` may be left out.
    pub seat: Option<String>,
}

/// What is wrong with a join query.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum JoinError {
    /// `%` not followed by two hex digits, or not UTF-8 after decoding.
    #[error("query parameter {0} is not valid percent-encoded UTF-8")]
    Encoding(String),
    /// `v` is not a number.
    #[error("protocol version {0:?} is not a number")]
    Version(String),
    /// The room id is empty, too long or has characters other than `[A-Za-z0-9_-]`.
    #[error("room id must be 1-{MAX_ROOM_ID_BYTES} characters of A-Z a-z 0-9 _ -")]
    Room,
    /// The name is empty after cleaning or longer than [`MAX_NAME_CHARS`].
    #[error("name must be 1-{MAX_NAME_CHARS} printable characters")]
    Name,
    /// A token is longer than [`MAX_TOKEN_BYTES`].
    #[error("{0} is longer than {MAX_TOKEN_BYTES} bytes")]
    TokenTooLong(&'static str),
    /// No game has this name.
    #[error(transparent)]
    Game(#[from] crate::games::UnknownGame),
    /// The same parameter twice.
    #[error("query parameter {0} given twice")]
    Duplicate(String),
}

/// `text` cut to at most `max` bytes at a character boundary.
#[must_use]
pub fn truncate_utf8(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Decodes `application/x-www-form-urlencoded` text (`+` is a space).
pub fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hi = hex(*bytes.get(i + 1)?)?;
                let lo = hex(*bytes.get(i + 2)?)?;
                out.push(hi << 4 | lo);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

/// Encodes text for a query value: unreserved characters as they are, the rest as `%XX`.
#[must_use]
pub fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for &b in s.as_bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Whether `c` is invisible or reorders text: bidi controls (overrides, embeddings, isolates,
/// marks), zero-width characters and joiners, the soft hyphen, fillers and tags. Stripped from
/// names and chat so that nobody can look like somebody else or turn the rest of a line around.
fn is_invisible(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}'
            | '\u{034F}'
            | '\u{061C}'
            | '\u{115F}'
            | '\u{1160}'
            | '\u{17B4}'
            | '\u{17B5}'
            | '\u{180B}'..='\u{180F}'
            | '\u{200B}'..='\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{206F}'
            | '\u{3164}'
            | '\u{FEFF}'
            | '\u{FFA0}'
            | '\u{1D173}'..='\u{1D17A}'
            | '\u{E0000}'..='\u{E007F}'
    )
}

/// Cleans a display name or chat line: control, bidi and zero-width characters removed, then
/// normalised to NFC (so "é" is one character however it was typed; removing first means
/// nothing removed can keep marks from composing or from their canonical order), whitespace
/// runs kept, ends trimmed. An empty result means nothing printable was given; cleaning a
/// cleaned text changes nothing.
#[must_use]
pub fn clean_text(s: &str) -> String {
    use unicode_normalization::UnicodeNormalization as _;
    s.chars()
        .filter(|&c| !c.is_control() && !is_invisible(c))
        .nfc()
        .collect::<String>()
        .trim()
        .to_owned()
}

/// Whether `room` is a valid room id: 1-[`MAX_ROOM_ID_BYTES`] bytes of `[A-Za-z0-9_-]`.
#[must_use]
pub fn valid_room(room: &str) -> bool {
    !room.is_empty()
        && room.len() <= MAX_ROOM_ID_BYTES
        && room.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

impl JoinRequest {
    /// Parses and validates a query string (without the leading `?`). Unknown parameters are
    /// ignored, so newer clients can add some; a missing name becomes `"player"`.
    pub fn from_query(query: &str) -> Result<JoinRequest, JoinError> {
        let mut req = JoinRequest::default();
        let mut name = None;
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (key, raw) = pair.split_once('=').unwrap_or((pair, ""));
            let value = percent_decode(raw).ok_or_else(|| JoinError::Encoding(key.to_owned()))?;
            let slot_taken = match key {
                "v" => {
                    let v = value.parse().map_err(|_| JoinError::Version(value.clone()))?;
                    req.version.replace(v).is_some()
                }
                "token" => {
                    if value.len() > MAX_TOKEN_BYTES {
                        return Err(JoinError::TokenTooLong("token"));
                    }
                    req.token.replace(value).is_some()
                }
                "resume" => {
                    if value.len() > MAX_TOKEN_BYTES {
                        return Err(JoinError::TokenTooLong("resume"));
                    }
                    req.resume.replace(value).is_some()
                }
                "seat" => {
                    if value.len() > MAX_TOKEN_BYTES {
                        return Err(JoinError::TokenTooLong("seat"));
                    }
                    req.seat.replace(value).is_some()
                }
                "room" => {
                    if !valid_room(&value) {
                        return Err(JoinError::Room);
                    }
                    req.room.replace(value).is_some()
                }
                "name" => name.replace(value).is_some(),
                "game" => {
                    if !crate::games::exists(&value) {
                        // Cut: the text goes back in the refusal.
                        let shown = truncate_utf8(&value, MAX_ROOM_ID_BYTES).to_owned();
                        return Err(crate::games::UnknownGame(shown).into());
                    }
                    req.game.replace(value).is_some()
                }
                _ => false,
            };
            if slot_taken {
                return Err(JoinError::Duplicate(key.to_owned()));
            }
        }
        req.name = match name {
            None => "player".to_owned(),
            Some(raw) => {
                let cleaned = clean_text(&raw);
                if cleaned.is_empty() || cleaned.chars().count() > MAX_NAME_CHARS {
                    return Err(JoinError::Name);
                }
                cleaned
            }
        };
        Ok(req)
    }

    /// The query string for this request (without `?`); [`JoinRequest::from_query`] reads it
    /// back.
    #[must_use]
    pub fn to_query(&self) -> String {
        let mut parts = Vec::new();
        if let Some(v) = self.version {
            parts.push(format!("v={v}"));
        }
        if let Some(t) = &self.token {
            parts.push(format!("token={}", percent_encode(t)));
        }
        if let Some(r) = &self.room {
            parts.push(format!("room={}", percent_encode(r)));
        }
        parts.push(format!("name={}", percent_encode(&self.name)));
        if let Some(r) = &self.resume {
            parts.push(format!("resume={}", percent_encode(r)));
        }
        if let Some(g) = &self.game {
            parts.push(format!("game={}", percent_encode(g)));
        }
        if let Some(s) = &self.seat {
            parts.push(format!("seat={}", percent_encode(s)));
        }
        parts.join("&")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_round_trips() {
        let req = JoinRequest {
            version: Some(1),
            token: Some("a.b.c".into()),
            room: Some("arena-1".into()),
            name: "Zoë & co".into(),
            resume: Some("r/+=".into()),
            game: Some("arena".into()),
            seat: Some("h.p.s".into()),
        };
        assert_eq!(JoinRequest::from_query(&req.to_query()), Ok(req));
    }

    #[test]
    fn text_is_normalised_and_stripped_of_what_hides_or_reorders() {
        assert_eq!(clean_text("  Ze\u{301}ro\u{202E}\u{200B} "), "Zéro");
        assert_eq!(clean_text("a\u{2066}b\u{2069}c\u{FEFF}\u{E0041}"), "abc");
        assert_eq!(clean_text("tab\there"), "tabhere");
        assert_eq!(clean_text("\u{200D}\u{202E}"), "");
        assert_eq!(clean_text("日本 🎮"), "日本 🎮");
    }

    /// Found by the `join_query` fuzz target: removing a control character after normalising
    /// left combining marks out of canonical order (or uncomposed), so cleaned text was not NFC
    /// and cleaning it again changed it. "Zoe", BEL, U+0308 looked like "Zoë" and was not equal
    /// to it, which let a second "Zoë" join a room without the duplicate-name suffix.
    #[test]
    fn cleaned_text_is_nfc_and_cleaning_again_changes_nothing() {
        assert_eq!(clean_text("Zoe\u{7}\u{308}"), "Zo\u{eb}");
        let fuzzed = "\u{5c4}\u{0}\u{5b5}";
        assert_eq!(clean_text(fuzzed), "\u{5b5}\u{5c4}");
        assert_eq!(clean_text(&clean_text(fuzzed)), clean_text(fuzzed));
    }

    #[test]
    fn bad_queries_say_why() {
        let check = |q: &str, want: JoinError| assert_eq!(JoinRequest::from_query(q), Err(want));
        check("room=a%20b", JoinError::Room);
        check("room=", JoinError::Room);
        check("name=%ZZ", JoinError::Encoding("name".into()));
        check("name=%FF", JoinError::Encoding("name".into()));
        check("v=x", JoinError::Version("x".into()));
        check("name=%01%02", JoinError::Name);
        check("name=aaaaaaaaaaaaaaaaaaaaaaaaa", JoinError::Name);
        check("v=1&v=1", JoinError::Duplicate("v".into()));
        check("game=chess", JoinError::Game(crate::games::UnknownGame("chess".into())));
    }

    #[test]
    fn missing_name_defaults_and_unknown_keys_pass() {
        let req = JoinRequest::from_query("x=1&v=1").unwrap();
        assert_eq!(req.name, "player");
        assert_eq!(req.version, Some(1));
    }
}
