//! Idempotency-Key (the IETF httpapi draft "The Idempotency-Key HTTP Header Field"; Stripe's
//! idempotent requests are the model): a retried write is recognised by the key its client
//! sent with it, never by its content. Here: reading the header, the request's fingerprint,
//! and the keys whose first request is still in flight in this process. The key's record
//! itself is written by the storage, in the write's own transaction.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use axum::http::{HeaderMap, Method};
use sha2::{Digest, Sha256};

/// The request header.
pub const HEADER: &str = "idempotency-key";
/// Set on an answer that repeats a recorded outcome rather than making a new one.
pub const REPLAYED: &str = "idempotent-replayed";
/// The longest key accepted, in characters.
pub const MAX_LEN: usize = 255;

/// Why an `Idempotency-Key` field cannot be used: said in a 400.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("Idempotency-Key was sent {0} times; send it once")]
    Repeated(usize),
    #[error("Idempotency-Key is empty")]
    Empty,
    #[error("Idempotency-Key is {0} characters long; at most {MAX_LEN} are accepted")]
    TooLong(usize),
    #[error(
        "Idempotency-Key is neither a quoted string (\"8e03978e-40d5\", RFC 8941) nor a bare key of visible ASCII without quotes"
    )]
    Malformed,
}

/// The key a request carries: `None` without the field. The draft defines the field as an
/// RFC 8941 sf-string (`"…"`, with `\"` and `\\` escapes); the bare form (`8e03978e-40d5`,
/// visible ASCII without `"` or `\`) is accepted too, as many clients send it.
pub fn from_headers(headers: &HeaderMap) -> Result<Option<String>, KeyError> {
    let mut values = headers.get_all(HEADER).iter();
    let Some(first) = values.next() else {
        return Ok(None);
    };
    let more = values.count();
    if more > 0 {
        return Err(KeyError::Repeated(more + 1));
    }
    parse(first.as_bytes()).map(Some)
}

/// One field value, as [`from_headers`] reads it.
pub fn parse(raw: &[u8]) -> Result<String, KeyError> {
    let trimmed = raw.trim_ascii();
    let key = match trimmed {
        [b'"', inner @ .., b'"'] => unquote(inner)?,
        [b'"', ..] => return Err(KeyError::Malformed),
        bare => {
            if !bare
                .iter()
                .all(|b| (0x21..=0x7e).contains(b) && *b != b'"' && *b != b'\\')
            {
                return Err(KeyError::Malformed);
            }
            String::from_utf8_lossy(bare).into_owned()
        }
    };
    if key.is_empty() {
        return Err(KeyError::Empty);
    }
    if key.len() > MAX_LEN {
        return Err(KeyError::TooLong(key.len()));
    }
    Ok(key)
}

/// The inside of an sf-string: printable ASCII, `\` escaping only `"` and `\`.
fn unquote(inner: &[u8]) -> Result<String, KeyError> {
    let mut out = String::with_capacity(inner.len());
    let mut bytes = inner.iter();
    while let Some(&b) = bytes.next() {
        match b {
            b'\\' => match bytes.next() {
                Some(&e @ (b'"' | b'\\')) => out.push(char::from(e)),
                _ => return Err(KeyError::Malformed),
            },
            b'"' => return Err(KeyError::Malformed),
            0x20..=0x7e => out.push(char::from(b)),
            _ => return Err(KeyError::Malformed),
        }
    }
    Ok(out)
}

/// What identifies a request beside its key: method, target, If-Match and body, hashed
/// (SHA-256, hex). The same key with another fingerprint is another request: 422.
pub fn fingerprint(method: &Method, target: &str, headers: &HeaderMap, body: &[u8]) -> String {
    let mut hash = Sha256::new();
    hash.update(method.as_str().as_bytes());
    hash.update([0]);
    hash.update(target.as_bytes());
    hash.update([0]);
    for line in headers.get_all(axum::http::header::IF_MATCH) {
        hash.update(line.as_bytes());
        hash.update([b'\n']);
    }
    hash.update([0]);
    hash.update(body);
    hash.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// The keys whose first request is being served by this process now. A second request
/// with such a key is answered 409 (with Retry-After) instead of racing the first.
/// Across instances of one PostgreSQL database, the key's unique row settles the race:
/// the later request waits for the earlier one's commit and then replays its outcome.
#[derive(Debug, Default)]
pub struct InFlight {
    keys: Mutex<HashSet<(String, String)>>,
}

/// A claim on a key in flight: released when dropped.
#[derive(Debug)]
pub struct Claim {
    set: Arc<InFlight>,
    entry: (String, String),
}

impl InFlight {
    /// Claims `key` of `user`, or `None` when a request with it is in flight.
    pub fn claim(self: &Arc<Self>, user: &str, key: &str) -> Option<Claim> {
        let entry = (user.to_string(), key.to_string());
        let mut keys = self.keys.lock().unwrap_or_else(|p| p.into_inner());
        if !keys.insert(entry.clone()) {
            return None;
        }
        Some(Claim {
            set: self.clone(),
            entry,
        })
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        let mut keys = self.set.keys.lock().unwrap_or_else(|p| p.into_inner());
        keys.remove(&self.entry);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_quoted_and_the_bare_form_are_read() {
        assert_eq!(parse(br#""8e03978e-40d5""#).unwrap(), "8e03978e-40d5");
        assert_eq!(parse(b"8e03978e-40d5").unwrap(), "8e03978e-40d5");
        assert_eq!(parse(br#"  "a b"  "#).unwrap(), "a b");
        assert_eq!(parse(br#""say \"hi\" \\ ok""#).unwrap(), r#"say "hi" \ ok"#);
    }

    #[test]
    fn anything_else_is_refused() {
        for bad in [
            &b"\"open"[..],
            b"a b",
            b"\"bad \\x escape\"",
            b"\"in\"side\"",
            b"tab\there",
            b"caf\xc3\xa9",
            b"back\\slash",
        ] {
            assert_eq!(parse(bad), Err(KeyError::Malformed), "{bad:?}");
        }
        assert_eq!(parse(b"\"\""), Err(KeyError::Empty));
        assert_eq!(parse(b""), Err(KeyError::Empty));
        assert_eq!(parse(&[b'k'; 255]).map(|k| k.len()), Ok(255));
        assert_eq!(parse(&[b'k'; 256]), Err(KeyError::TooLong(256)));
    }

    #[test]
    fn two_fields_are_refused() {
        let mut h = HeaderMap::new();
        h.append(HEADER, "a".parse().unwrap());
        h.append(HEADER, "b".parse().unwrap());
        assert_eq!(from_headers(&h), Err(KeyError::Repeated(2)));
    }

    #[test]
    fn the_fingerprint_covers_method_target_if_match_and_body() {
        let mut h = HeaderMap::new();
        h.insert("if-match", "\"a\"".parse().unwrap());
        let base = fingerprint(&Method::PUT, "/products/1", &h, b"{}");
        assert_eq!(base, fingerprint(&Method::PUT, "/products/1", &h, b"{}"));
        assert_ne!(base, fingerprint(&Method::PATCH, "/products/1", &h, b"{}"));
        assert_ne!(base, fingerprint(&Method::PUT, "/products/2", &h, b"{}"));
        assert_ne!(base, fingerprint(&Method::PUT, "/products/1", &h, b"{ }"));
        let mut other = HeaderMap::new();
        other.insert("if-match", "\"b\"".parse().unwrap());
        assert_ne!(
            base,
            fingerprint(&Method::PUT, "/products/1", &other, b"{}")
        );
    }

    #[test]
    fn a_key_is_in_flight_until_its_claim_is_dropped() {
        let set = Arc::new(InFlight::default());
        let claim = set.claim("alice", "k").unwrap();
        assert!(set.claim("alice", "k").is_none());
        assert!(set.claim("bob", "k").is_some(), "keys are per user");
        drop(claim);
        assert!(set.claim("alice", "k").is_some());
    }
}
