//! Saves and deletes: each with its action's Idempotency-Key, sent again with the same
//! key when the reply is lost, and what the answer means for the person who sent it.

use std::time::Duration;

use catalog_shared::product::{Product, ProductFields};
use reqwest::{Method, StatusCode};

use super::{Answer, Api, Failure, SavePurpose, UNAUTHORIZED, WriteOutcome};

impl Api {
    pub(super) async fn save(
        &self,
        purpose: SavePurpose,
        id: Option<i64>,
        fields: &ProductFields,
        if_match: Option<&str>,
        key: &str,
    ) -> WriteOutcome {
        let body = match serde_json::to_vec(fields) {
            Ok(b) => b,
            Err(e) => return WriteOutcome::Failed(format!("could not encode the product ({e})")),
        };
        let (method, path) = match id {
            Some(id) if purpose != SavePurpose::Recreate => {
                (Method::PUT, format!("/products/{id}"))
            }
            _ => (Method::POST, "/products".to_string()),
        };
        match self
            .keyed_write(method, &path, if_match, Some(body), key)
            .await
        {
            Ok((reply, resent)) => match write_outcome(&reply) {
                WriteOutcome::Done(Some(p)) if resent => WriteOutcome::Confirmed(Box::new(p)),
                outcome => outcome,
            },
            Err(f) if f.maybe_sent => WriteOutcome::Unknown(format!(
                "{}; sent again {RESENDS} times with the same Idempotency-Key, without an answer",
                f.message
            )),
            Err(f) => WriteOutcome::Failed(f.message),
        }
    }

    /// A write with its action's Idempotency-Key. After an ambiguous failure (no reply, the
    /// connection lost after sending, or a 500, 502 or 504) the same request is sent again
    /// with the same key, a few times with backoff: the server applies it at most once, and
    /// its answer decides (2xx: it is mine; 412: a conflict). A 409 for the key means the
    /// first request is still being served, and a 408, 429 or 503 to a re-send turns only
    /// that re-send away: wait and ask again. Returns the answer and whether it came to a
    /// re-send.
    pub(super) async fn keyed_write(
        &self,
        method: Method,
        path: &str,
        if_match: Option<&str>,
        body: Option<Vec<u8>>,
        key: &str,
    ) -> Result<(Answer, bool), Failure> {
        let mut ambiguous: Option<Failure> = None;
        let mut delay = Duration::from_millis(250);
        for attempt in 0..=RESENDS {
            if attempt > 0 {
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(2));
            }
            match self
                .exchange_keyed(method.clone(), path, if_match, body.clone(), Some(key))
                .await
            {
                Ok(reply) if reply.status == StatusCode::CONFLICT && key_in_flight(&reply) => {
                    ambiguous.get_or_insert(Failure {
                        message: "the first request with this key was still being served".into(),
                        maybe_sent: true,
                    });
                }
                Ok(reply) if maybe_applied(&reply) => {
                    ambiguous = Some(Failure {
                        message: reply.explain(),
                        maybe_sent: true,
                    });
                }
                // This request was turned away for now; after an ambiguous one that says
                // nothing of the first, which may have been made: keep asking.
                Ok(reply) if ambiguous.is_some() && turned_away(&reply) => {}
                Ok(reply) => return Ok((reply, ambiguous.is_some())),
                // Nothing was sent: a first attempt that never connected is simply not
                // saved; after an ambiguous one, keep asking.
                Err(f) if !f.maybe_sent && ambiguous.is_none() => return Err(f),
                Err(f) if f.maybe_sent => ambiguous = Some(f),
                Err(_) => {}
            }
        }
        Err(ambiguous.unwrap_or(Failure {
            message: "no answer".into(),
            maybe_sent: true,
        }))
    }
}

/// How many times a write without an answer is sent again with its key.
pub const RESENDS: u32 = 4;

/// The request header naming a write (the IETF httpapi draft's Idempotency-Key).
pub const IDEMPOTENCY_KEY: &str = "Idempotency-Key";

/// A fresh Idempotency-Key for one user action: a UUID of version 7 (RFC 9562), the
/// milliseconds since 1970 in its first 48 bits and 74 random bits after. Keys made later
/// sort later, so the server's key table, indexed by user and key, grows at one end for
/// each user instead of taking each new key at a random place: with random keys a keyed
/// write cost a tenth more than an unkeyed one, against a twentieth (BENCHMARKS.md).
pub fn new_key() -> String {
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    key_at(ms, fastrand::u128(..))
}

/// The key made at `ms` milliseconds since 1970 with the bits of `random`.
fn key_at(ms: u128, random: u128) -> String {
    let ms = ms & ((1 << 48) - 1);
    // 48 bits of time, version 7, 12 random bits, variant 0b10, 62 random bits.
    let n = (ms << 80)
        | (0x7 << 76)
        | (((random >> 64) & 0xfff) << 64)
        | (0b10 << 62)
        | (random & ((1 << 62) - 1));
    let h = format!("{n:032x}");
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// The key as the draft's sf-string: quoted, `"` and `\` escaped.
pub(super) fn quoted_key(key: &str) -> String {
    format!("\"{}\"", key.replace('\\', "\\\\").replace('"', "\\\""))
}

/// Whether a 5xx leaves open that the write was made, so it is no answer to it: a gateway
/// that gave up waiting for the server (502, 504) while the server went on, or a server
/// error that may follow a commit (500). A 503 is the server saying nothing was changed.
fn maybe_applied(reply: &Answer) -> bool {
    matches!(reply.status.as_u16(), 500 | 502 | 504)
}

/// Whether the answer turns this request away for now (408, 429, 503): nothing was done
/// with it, and nothing is said of an earlier request with the key.
fn turned_away(reply: &Answer) -> bool {
    matches!(reply.status.as_u16(), 408 | 429 | 503)
}

/// Whether a 409 says the key's first request is still in flight (not a duplicate sku).
fn key_in_flight(reply: &Answer) -> bool {
    reply
        .problem()
        .is_some_and(|p| p.kind.ends_with("/idempotency-key-in-flight"))
}

/// What a write's reply means for the person who sent it.
pub fn write_outcome(reply: &Answer) -> WriteOutcome {
    match reply.status.as_u16() {
        200 | 201 => match serde_json::from_slice::<Product>(&reply.body) {
            Ok(p) => WriteOutcome::Done(Some(p)),
            Err(e) => WriteOutcome::Failed(format!("the saved product is unreadable ({e})")),
        },
        204 => WriteOutcome::Done(None),
        412 => match reply.problem().and_then(|p| p.current) {
            Some(current) => WriteOutcome::Conflict(Box::new(current)),
            None => WriteOutcome::Failed(reply.explain()),
        },
        410 => {
            let p = reply.problem().unwrap_or_default();
            WriteOutcome::Gone {
                by: p.deleted_by.unwrap_or_else(|| "someone".into()),
                at: p.deleted_at.unwrap_or_else(|| "an unknown time".into()),
            }
        }
        422 => match reply.problem().and_then(|p| p.errors) {
            Some(errors) => WriteOutcome::Invalid(errors),
            None => WriteOutcome::Failed(reply.explain()),
        },
        // A duplicate sku is a problem with one field: say so on that field.
        409 => match reply.problem().and_then(|p| p.conflicting_id) {
            Some(other) => WriteOutcome::Invalid(vec![catalog_shared::product::FieldError {
                field: "sku".into(),
                message: format!("is already used by product {other}"),
            }]),
            None => WriteOutcome::Failed(reply.explain()),
        },
        401 => WriteOutcome::Failed(UNAUTHORIZED.to_string()),
        428 => WriteOutcome::Failed(
            "the server requires If-Match: this save was refused, nothing changed".into(),
        ),
        _ => WriteOutcome::Failed(reply.explain()),
    }
}

#[cfg(test)]
mod tests {
    use super::{key_at, new_key};

    #[test]
    fn a_key_is_a_uuid_v7_and_later_keys_sort_later() {
        let a = new_key();
        let parts: Vec<&str> = a.split('-').collect();
        assert_eq!(
            parts.iter().map(|p| p.len()).collect::<Vec<_>>(),
            [8, 4, 4, 4, 12]
        );
        assert!(a.bytes().all(|b| b == b'-' || b.is_ascii_hexdigit()));
        assert!(parts[2].starts_with('7'), "version 7: {a}");
        assert!(
            matches!(&parts[3][..1], "8" | "9" | "a" | "b"),
            "variant: {a}"
        );
        // Its first 48 bits are the time of its making, in milliseconds.
        let ms = u64::from_str_radix(&format!("{}{}", parts[0], parts[1]), 16).unwrap();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64;
        assert!(now.abs_diff(ms) < 60_000, "{ms} against {now}");
        // A key made in a later millisecond sorts after, whatever its random bits.
        assert!(key_at(1_765_000_000_001, 0) > key_at(1_765_000_000_000, u128::MAX));
        // Keys are never equal.
        let many: std::collections::HashSet<String> = (0..10_000).map(|_| new_key()).collect();
        assert_eq!(many.len(), 10_000);
    }
}
