//! Query strings of tracker requests (BEP 3): `key=value` pairs separated by `&`, values
//! percent-decoded to raw bytes. Clients differ in what they escape and in the case of hex
//! digits; `+` is taken literally, since binary info hashes may hold the byte 0x2B.
//!
//! Written by hand on purpose: form decoders (`url::form_urlencoded`) yield UTF-8 text and
//! read `+` as a space, and a lenient decoder would let a mangled escape through silently.

/// Why a query string was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid percent-encoding in `{0}`")]
pub struct BadEscape(pub String);

/// A `%` not followed by two hex digits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InvalidEscape;

/// A decoded `(key, value)` pair of a query.
pub type Pair = (Vec<u8>, Vec<u8>);

/// Percent-decodes `input` into `out`.
pub fn percent_decode(input: &[u8], out: &mut Vec<u8>) -> Result<(), InvalidEscape> {
    let mut i = 0;
    while i < input.len() {
        let b = input[i];
        if b == b'%' {
            let hi = input
                .get(i + 1)
                .and_then(|&c| (c as char).to_digit(16))
                .ok_or(InvalidEscape)?;
            let lo = input
                .get(i + 2)
                .and_then(|&c| (c as char).to_digit(16))
                .ok_or(InvalidEscape)?;
            out.push((hi * 16 + lo) as u8);
            i += 3;
        } else {
            out.push(b);
            i += 1;
        }
    }
    Ok(())
}

/// Splits a query into decoded `(key, value)` pairs, in order. A pair without `=` has an
/// empty value; empty pairs (`&&`) are skipped.
pub fn pairs(query: &[u8]) -> Result<Vec<Pair>, BadEscape> {
    let mut out = Vec::with_capacity(12);
    for part in query.split(|&b| b == b'&') {
        if part.is_empty() {
            continue;
        }
        let (k, v) = match part.iter().position(|&b| b == b'=') {
            Some(i) => (&part[..i], &part[i + 1..]),
            None => (part, &part[part.len()..]),
        };
        let mut key = Vec::with_capacity(k.len());
        let name = || String::from_utf8_lossy(k).into_owned();
        percent_decode(k, &mut key).map_err(|_| BadEscape(name()))?;
        let mut value = Vec::with_capacity(v.len());
        percent_decode(v, &mut value).map_err(|_| BadEscape(name()))?;
        out.push((key, value));
    }
    Ok(out)
}

/// Percent-encodes bytes for a query value, escaping everything but unreserved characters
/// (RFC 3986 §2.3).
pub fn percent_encode(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 3);
    for &b in bytes {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            s.push(b as char);
        } else {
            s.push_str(&format!("%{b:02X}"));
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_either_case_and_keeps_plus() {
        let p = pairs(b"info_hash=%aB%CD+x&&flag&port=6881").unwrap();
        assert_eq!(p[0], (b"info_hash".to_vec(), vec![0xab, 0xcd, b'+', b'x']));
        assert_eq!(p[1], (b"flag".to_vec(), vec![]));
        assert_eq!(p[2], (b"port".to_vec(), b"6881".to_vec()));
    }

    #[test]
    fn refuses_broken_escapes() {
        assert_eq!(
            pairs(b"info_hash=%G1").unwrap_err(),
            BadEscape("info_hash".into())
        );
        assert!(pairs(b"a=%4").is_err());
        assert!(pairs(b"a=%").is_err());
    }

    #[test]
    fn encode_then_decode_is_identity() {
        let bytes: Vec<u8> = (0..=255).collect();
        let enc = percent_encode(&bytes);
        let mut out = Vec::new();
        percent_decode(enc.as_bytes(), &mut out).unwrap();
        assert_eq!(out, bytes);
    }
}
