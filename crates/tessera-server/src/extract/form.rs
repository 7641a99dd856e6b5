//! Strict `application/x-www-form-urlencoded` parsing. Unlike lenient parsers, malformed
//! percent-escapes, invalid UTF-8 after decoding and control characters are refused
//! rather than silently replaced, so what reaches the core is exactly what was sent.

use percent_encoding::percent_decode;

/// Why a form or query string was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FormError {
    /// A `%` not followed by two hex digits.
    BadEscape,
    /// The decoded bytes are not UTF-8.
    NotUtf8,
    /// A decoded name or value holds a control character (NUL, CR, LF, ...).
    ControlCharacter,
}

impl FormError {
    /// A fixed description for error bodies.
    pub(crate) fn describe(self) -> &'static str {
        match self {
            FormError::BadEscape => "malformed percent-encoding",
            FormError::NotUtf8 => "parameters must be UTF-8",
            FormError::ControlCharacter => "parameters must not contain control characters",
        }
    }
}

/// Decodes one form-encoded component: `+` is a space, `%XX` a byte.
pub(crate) fn decode_component(raw: &[u8]) -> Result<String, FormError> {
    let decoded = if memchr::memchr2(b'%', b'+', raw).is_some() {
        decode_escaped(raw)?
    } else {
        // Nothing to decode, as in nearly every token and client id: the bytes are the
        // value once they are UTF-8, with no copy but the one returned.
        std::str::from_utf8(raw)
            .map_err(|_| FormError::NotUtf8)?
            .to_owned()
    };
    if has_control_character(&decoded) {
        return Err(FormError::ControlCharacter);
    }
    Ok(decoded)
}

/// Whether `text` holds a control character (Unicode's Cc: C0, DEL and C1). Nearly every
/// value is ASCII, whose bytes are checked without decoding characters.
fn has_control_character(text: &str) -> bool {
    if text.is_ascii() {
        text.bytes().any(|byte| byte.is_ascii_control())
    } else {
        text.chars().any(char::is_control)
    }
}

/// Decodes a component holding a `+` or a `%`, refusing a `%` without two hex digits.
fn decode_escaped(raw: &[u8]) -> Result<String, FormError> {
    let mut index = 0;
    while index < raw.len() {
        if raw[index] == b'%' {
            let valid = raw
                .get(index + 1..index + 3)
                .is_some_and(|hex| hex.iter().all(u8::is_ascii_hexdigit));
            if !valid {
                return Err(FormError::BadEscape);
            }
            index += 3;
        } else {
            index += 1;
        }
    }
    // A `+` is a space, and a `%2B` a plus: each run between two `+` is percent-decoded
    // on its own, straight into the one buffer the value needs.
    let mut decoded = Vec::with_capacity(raw.len());
    for (index, run) in raw.split(|&b| b == b'+').enumerate() {
        if index > 0 {
            decoded.push(b' ');
        }
        decoded.extend(percent_decode(run));
    }
    String::from_utf8(decoded).map_err(|_| FormError::NotUtf8)
}

/// Parses `name=value&...` into decoded pairs, in order; empty segments are skipped.
pub(crate) fn parse_pairs(input: &[u8]) -> Result<Vec<(String, String)>, FormError> {
    input
        .split(|&b| b == b'&')
        .filter(|segment| !segment.is_empty())
        .map(|segment| {
            let (name, value) = match segment.iter().position(|&b| b == b'=') {
                Some(at) => (&segment[..at], &segment[at + 1..]),
                None => (segment, &segment[segment.len()..]),
            };
            Ok((decode_component(name)?, decode_component(value)?))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_plus_and_percent_escapes() {
        assert_eq!(
            parse_pairs(b"a=b+c&d=%26%3D%2B&e&f=+%2B++%2b+&%5Fg=tsa%5Fk1%5F%2D"),
            Ok(vec![
                ("a".into(), "b c".into()),
                ("d".into(), "&=+".into()),
                ("e".into(), String::new()),
                ("f".into(), " +  + ".into()),
                ("_g".into(), "tsa_k1_-".into()),
            ])
        );
    }

    #[test]
    fn refuses_malformed_escapes_bad_utf8_and_control_characters() {
        assert_eq!(parse_pairs(b"a=%zz"), Err(FormError::BadEscape));
        assert_eq!(parse_pairs(b"a=%2"), Err(FormError::BadEscape));
        assert_eq!(parse_pairs(b"a=%C0%AF"), Err(FormError::NotUtf8));
        assert_eq!(parse_pairs(b"a=%FF"), Err(FormError::NotUtf8));
        assert_eq!(parse_pairs(b"a=x%00y"), Err(FormError::ControlCharacter));
        assert_eq!(parse_pairs(b"a=x%0D%0Ay"), Err(FormError::ControlCharacter));
    }

    #[test]
    fn refuses_unescaped_bad_utf8_and_control_characters_too() {
        assert_eq!(parse_pairs(b"a=\xff"), Err(FormError::NotUtf8));
        assert_eq!(parse_pairs(b"a=\xc3"), Err(FormError::NotUtf8));
        assert_eq!(parse_pairs(b"a=x\x01y"), Err(FormError::ControlCharacter));
        assert_eq!(parse_pairs(b"a=x\x7fy"), Err(FormError::ControlCharacter));
        // U+0085, a C1 control character, as raw UTF-8.
        assert_eq!(
            parse_pairs(b"a=x\xc2\x85y"),
            Err(FormError::ControlCharacter)
        );
        assert_eq!(
            parse_pairs("a=caf\u{e9}&b=tsa_k1_AbC-d".as_bytes()),
            Ok(vec![
                ("a".into(), "caf\u{e9}".into()),
                ("b".into(), "tsa_k1_AbC-d".into()),
            ])
        );
    }
}
