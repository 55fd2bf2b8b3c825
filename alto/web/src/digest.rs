//! HTTP Digest access authentication (RFC 7616) with SHA-256 and `qop=auth`: RFC 7285
//! §8.3.5's mandatory mechanism where client authentication is wanted. No I/O: the clock
//! and the server's secret come in as arguments.
//!
//! - The server keeps a users file of hashed credentials, one `user:realm:HA1` per line,
//!   `HA1` being the hex SHA-256 of `user:realm:password` (RFC 7616 §3.4.2), so the file
//!   holds no password. [`ha1`] makes a line's hash.
//! - Nonces are stateless: the time they were made and a SHA-256 over it, the realm and the
//!   server's secret; they are good for [`NONCE_SECS`] and a stale one is answered with
//!   `stale=true`, so the client retries without asking its user again.
//! - Replays are refused: [`NonceCounts`] keeps, for each nonce still good, the highest
//!   nonce count (`nc`) seen, and a request must count higher (RFC 7616 §3.4). It holds at
//!   most [`MAX_NONCES`] nonces; when full, new nonces are refused as stale until old ones
//!   expire, so memory stays bounded under a flood.
//! - [`respond`] is the client's side: the `Authorization` value for a challenge.

use sha2::{Digest as _, Sha256};
use std::collections::HashMap;

/// Seconds a nonce is good for.
pub const NONCE_SECS: u64 = 300;

/// Most nonces whose counts are kept at once.
pub const MAX_NONCES: usize = 100_000;

/// The highest nonce count seen per nonce still good, and when that nonce was made.
#[derive(Debug, Default)]
pub struct NonceCounts {
    seen: HashMap<String, (u64, u32)>,
}

impl NonceCounts {
    /// Takes count `nc` of `nonce` (made at `made`) at `now`: `false` for a replay (a
    /// count not above the last), or when the table is full of nonces still good.
    fn take(&mut self, nonce: &str, made: u64, nc: u32, now: u64) -> bool {
        if let Some((_, last)) = self.seen.get_mut(nonce) {
            if nc <= *last {
                return false;
            }
            *last = nc;
            return true;
        }
        if self.seen.len() >= MAX_NONCES {
            self.seen
                .retain(|_, (m, _)| now.saturating_sub(*m) <= NONCE_SECS);
            if self.seen.len() >= MAX_NONCES {
                return false;
            }
        }
        self.seen.insert(nonce.to_owned(), (made, nc));
        true
    }
}

fn sha256_hex(s: &str) -> String {
    alto_model::hex(&Sha256::digest(s.as_bytes()))
}

/// The `HA1` of a users file line: hex SHA-256 of `user:realm:password`.
pub fn ha1(user: &str, realm: &str, password: &str) -> String {
    sha256_hex(&format!("{user}:{realm}:{password}"))
}

/// The users of one realm: name to `HA1`.
#[derive(Clone, Debug, Default)]
pub struct Users {
    realm: String,
    ha1: HashMap<String, String>,
}

/// A users file that cannot be read.
#[derive(Debug, thiserror::Error)]
#[error("line {line}: {why}")]
pub struct UsersError {
    /// The line at fault (1-based).
    pub line: usize,
    /// Why.
    pub why: String,
}

impl Users {
    /// Parses a users file of `user:realm:HA1` lines for `realm` (blank lines and `#`
    /// comments skipped; lines of other realms ignored).
    pub fn parse(text: &str, realm: &str) -> Result<Self, UsersError> {
        let mut ha1 = HashMap::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let bad = |why: &str| UsersError {
                line: i + 1,
                why: why.into(),
            };
            let mut parts = line.splitn(3, ':');
            let (Some(user), Some(r), Some(h)) = (parts.next(), parts.next(), parts.next()) else {
                return Err(bad("not user:realm:HA1"));
            };
            if h.len() != 64 || !h.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(bad("HA1 is not 64 hex digits (SHA-256)"));
            }
            if r == realm {
                ha1.insert(user.to_owned(), h.to_ascii_lowercase());
            }
        }
        Ok(Users {
            realm: realm.to_owned(),
            ha1,
        })
    }

    /// The realm.
    pub fn realm(&self) -> &str {
        &self.realm
    }
}

/// The nonce number `serial` (unique per challenge: two clients challenged in the same
/// second must not share a nonce, or the second's first count would look replayed), made at
/// `now` (seconds) under `secret`.
pub fn nonce(secret: &[u8], realm: &str, now: u64, serial: u64) -> String {
    let mut h = Sha256::new();
    h.update(secret);
    h.update(realm.as_bytes());
    h.update(now.to_be_bytes());
    h.update(serial.to_be_bytes());
    format!(
        "{now:x}-{serial:x}-{}",
        &alto_model::hex(&h.finalize())[..32]
    )
}

/// The `WWW-Authenticate` value of a 401: the fresh nonce number `serial`, `stale=true` when
/// the client's was only too old.
pub fn challenge(secret: &[u8], realm: &str, now: u64, serial: u64, stale: bool) -> String {
    format!(
        "Digest realm=\"{realm}\", qop=\"auth\", algorithm=SHA-256, nonce=\"{}\"{}",
        nonce(secret, realm, now, serial),
        if stale { ", stale=true" } else { "" }
    )
}

/// Why a request is not authenticated.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    /// No `Authorization: Digest …`.
    #[error("no Digest credentials")]
    Missing,
    /// Credentials that do not parse or use another algorithm, qop or realm.
    #[error("unusable credentials: {0}")]
    Malformed(String),
    /// A nonce this server did not make.
    #[error("a nonce this server did not make")]
    BadNonce,
    /// A nonce of this server, too old: retry with the new one.
    #[error("the nonce expired")]
    Stale,
    /// An unknown user or a wrong password.
    #[error("wrong user or password")]
    Wrong,
    /// A request seen before (its nonce count is not above the last one).
    #[error("a replayed request")]
    Replayed,
}

/// The `key=value` pairs of a `Digest …` header value (values quoted or not).
fn params(value: &str) -> Option<HashMap<String, String>> {
    let rest = value.trim().strip_prefix("Digest")?.trim_start();
    let mut out = HashMap::new();
    let mut s = rest;
    while !s.is_empty() {
        let (key, after) = s.split_once('=')?;
        let key = key.trim().to_ascii_lowercase();
        let after = after.trim_start();
        let (val, next) = if let Some(q) = after.strip_prefix('"') {
            let end = q.find('"')?;
            (q[..end].to_owned(), &q[end + 1..])
        } else {
            let end = after.find(',').unwrap_or(after.len());
            (after[..end].trim().to_owned(), &after[end..])
        };
        out.insert(key, val);
        s = next.trim_start().trim_start_matches(',').trim_start();
    }
    Some(out)
}

fn equal(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |x, (p, q)| x | (p ^ q)) == 0
}

/// Checks the `Authorization` value of a request with `method` to `uri` (its request
/// target) at `now`, counting its nonce in `counts`; the user's name when it holds.
pub fn verify(
    users: &Users,
    secret: &[u8],
    counts: &mut NonceCounts,
    method: &str,
    uri: &str,
    authorization: Option<&str>,
    now: u64,
) -> Result<String, Refused> {
    let p = params(authorization.ok_or(Refused::Missing)?).ok_or(Refused::Missing)?;
    let get = |k: &str| {
        p.get(k)
            .map(String::as_str)
            .ok_or_else(|| Refused::Malformed(format!("no {k}")))
    };
    let (user, realm, nonce_got, got_uri) =
        (get("username")?, get("realm")?, get("nonce")?, get("uri")?);
    let (response, qop, nc, cnonce) = (get("response")?, get("qop")?, get("nc")?, get("cnonce")?);
    if !p
        .get("algorithm")
        .is_some_and(|a| a.eq_ignore_ascii_case("SHA-256"))
    {
        return Err(Refused::Malformed("algorithm must be SHA-256".into()));
    }
    if qop != "auth" || realm != users.realm {
        return Err(Refused::Malformed("qop must be auth, in this realm".into()));
    }
    if got_uri != uri {
        return Err(Refused::Malformed("uri is not the request's".into()));
    }
    let mut fields = nonce_got.splitn(3, '-');
    let mut number = || {
        fields
            .next()
            .and_then(|f| u64::from_str_radix(f, 16).ok())
            .ok_or(Refused::BadNonce)
    };
    let (made, serial) = (number()?, number()?);
    if !equal(nonce_got, &nonce(secret, realm, made, serial)) {
        return Err(Refused::BadNonce);
    }
    if now.saturating_sub(made) > NONCE_SECS || made > now + 5 {
        return Err(Refused::Stale);
    }
    let Some(ha1) = users.ha1.get(user) else {
        return Err(Refused::Wrong);
    };
    let ha2 = sha256_hex(&format!("{method}:{uri}"));
    let want = sha256_hex(&format!("{ha1}:{nonce_got}:{nc}:{cnonce}:{qop}:{ha2}"));
    if !equal(&want, &response.to_ascii_lowercase()) {
        return Err(Refused::Wrong);
    }
    let nc = u32::from_str_radix(nc, 16).map_err(|_| Refused::Malformed("nc".into()))?;
    if !counts.take(nonce_got, made, nc, now) {
        return Err(Refused::Replayed);
    }
    Ok(user.to_owned())
}

/// The client's `Authorization` value answering the `WWW-Authenticate` value `challenge`
/// for `method` on `uri` as `user` with `password`; `cnonce` is the client's random
/// string. `None` if the challenge is no SHA-256 Digest challenge with `qop=auth`.
pub fn respond(
    challenge: &str,
    method: &str,
    uri: &str,
    user: &str,
    password: &str,
    cnonce: &str,
) -> Option<String> {
    let p = params(challenge)?;
    if !p.get("algorithm")?.eq_ignore_ascii_case("SHA-256")
        || !p.get("qop")?.split(',').any(|q| q.trim() == "auth")
    {
        return None;
    }
    let (realm, nonce) = (p.get("realm")?, p.get("nonce")?);
    let nc = "00000001";
    let ha2 = sha256_hex(&format!("{method}:{uri}"));
    let response = sha256_hex(&format!(
        "{}:{nonce}:{nc}:{cnonce}:auth:{ha2}",
        ha1(user, realm, password)
    ));
    Some(format!(
        "Digest username=\"{user}\", realm=\"{realm}\", uri=\"{uri}\", algorithm=SHA-256, \
         nonce=\"{nonce}\", nc={nc}, cnonce=\"{cnonce}\", qop=auth, response=\"{response}\""
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"server secret";

    fn users() -> Users {
        let text = format!(
            "# users of the ALTO server\n{}\nbob:other:{}\n",
            format_args!("alice:alto:{}", ha1("alice", "alto", "wonderland")),
            ha1("bob", "other", "x")
        );
        Users::parse(&text, "alto").unwrap()
    }

    #[test]
    fn a_client_answering_the_challenge_is_let_in_and_nobody_else() {
        let u = users();
        let verify = |u: &Users, secret: &[u8], m: &str, uri: &str, a: Option<&str>, now: u64| {
            verify(u, secret, &mut NonceCounts::default(), m, uri, a, now)
        };
        let c = challenge(SECRET, "alto", 1000, 1, false);
        let auth = respond(&c, "POST", "/pidhead/join", "alice", "wonderland", "c1").unwrap();
        assert_eq!(
            verify(&u, SECRET, "POST", "/pidhead/join", Some(&auth), 1010),
            Ok("alice".into())
        );
        // Wrong password, another path, another method, another server's secret, no header.
        let wrong = respond(&c, "POST", "/pidhead/join", "alice", "looking-glass", "c1").unwrap();
        assert_eq!(
            verify(&u, SECRET, "POST", "/pidhead/join", Some(&wrong), 1010),
            Err(Refused::Wrong)
        );
        assert!(matches!(
            verify(&u, SECRET, "POST", "/pidhead/lease", Some(&auth), 1010),
            Err(Refused::Malformed(_))
        ));
        assert_eq!(
            verify(&u, SECRET, "GET", "/pidhead/join", Some(&auth), 1010),
            Err(Refused::Wrong)
        );
        assert_eq!(
            verify(&u, b"other", "POST", "/pidhead/join", Some(&auth), 1010),
            Err(Refused::BadNonce)
        );
        assert_eq!(
            verify(&u, SECRET, "POST", "/pidhead/join", None, 1010),
            Err(Refused::Missing)
        );
        // A user of another realm is unknown here.
        let bob = respond(&c, "POST", "/pidhead/join", "bob", "x", "c1").unwrap();
        assert_eq!(
            verify(&u, SECRET, "POST", "/pidhead/join", Some(&bob), 1010),
            Err(Refused::Wrong)
        );
        // The nonce goes stale; MD5 is refused.
        assert_eq!(
            verify(
                &u,
                SECRET,
                "POST",
                "/pidhead/join",
                Some(&auth),
                1000 + NONCE_SECS + 1
            ),
            Err(Refused::Stale)
        );
        let md5 = auth.replace("SHA-256", "MD5");
        assert!(matches!(
            verify(&u, SECRET, "POST", "/pidhead/join", Some(&md5), 1010),
            Err(Refused::Malformed(_))
        ));
        assert!(respond(&c.replace("SHA-256", "MD5"), "POST", "/", "a", "b", "c").is_none());
    }

    #[test]
    fn a_replayed_request_is_refused_and_a_higher_count_is_not() {
        let u = users();
        let mut counts = NonceCounts::default();
        let c = challenge(SECRET, "alto", 1000, 1, false);
        let auth = respond(&c, "POST", "/pidhead/join", "alice", "wonderland", "c1").unwrap();
        let mut check = |a: &str| {
            verify(
                &u,
                SECRET,
                &mut counts,
                "POST",
                "/pidhead/join",
                Some(a),
                1010,
            )
        };
        assert_eq!(check(&auth), Ok("alice".into()));
        assert_eq!(check(&auth), Err(Refused::Replayed));
        // The same nonce with the next count, as a client reusing it would send.
        let next = auth.replace("nc=00000001", "nc=00000002");
        let p = params(&next).unwrap();
        let ha2 = sha256_hex("POST:/pidhead/join");
        let resp = sha256_hex(&format!(
            "{}:{}:00000002:c1:auth:{ha2}",
            ha1("alice", "alto", "wonderland"),
            p["nonce"]
        ));
        let next = next.replace(&p["response"], &resp);
        assert_eq!(check(&next), Ok("alice".into()));
    }

    #[test]
    fn a_users_file_with_a_bad_line_is_refused_naming_it() {
        let e = Users::parse("alice:alto:abc\n", "alto").unwrap_err();
        assert_eq!(e.line, 1);
        assert!(Users::parse("nobody\n", "alto").is_err());
    }
}
