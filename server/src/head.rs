//! Checks on the request head that hyper leaves to us, answered as problem+json before
//! routing, authentication or any body is read: `Host` (RFC 9112 section 3.2), the size
//! of the target and of the header section.
//!
//! hyper itself refuses heads past a hard cap (a multiple of ours in bytes; 100 header
//! lines) with a bare 431 and malformed request lines or header lines with a bare 400
//! (both become problem documents in `serve::refusal`); everything between our cap and
//! hyper's gets a problem document from here, with the sizes.

use axum::extract::Request;
use axum::http::{StatusCode, Version, header, uri::Authority};

use crate::problem::ApiError;

/// Limits on the request head.
#[derive(Debug, Clone, Copy)]
pub struct HeadLimits {
    /// Bytes of the request target.
    pub max_uri: usize,
    /// Bytes of the header section (names, values, and 4 per line for `: ` and CRLF).
    pub max_header_bytes: usize,
}

/// The refusal of a request whose head breaks a limit or the `Host` rules, if it does.
pub fn refuse(limits: &HeadLimits, req: &Request) -> Option<ApiError> {
    let uri_len = target_len(req.uri());
    if uri_len > limits.max_uri {
        return Some(ApiError::new(
            StatusCode::URI_TOO_LONG,
            "uri-too-long",
            "URI Too Long",
            format!(
                "The request target has {uri_len} bytes; this server takes at most {}.",
                limits.max_uri
            ),
        ));
    }
    let lines = req.headers().len();
    let bytes: usize = req
        .headers()
        .iter()
        .map(|(n, v)| n.as_str().len() + v.len() + 4)
        .sum();
    if bytes > limits.max_header_bytes {
        return Some(ApiError::new(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "headers-too-large",
            "Request Header Fields Too Large",
            format!(
                "The request has {lines} header lines of {bytes} bytes; this server takes at most 100 lines and {} bytes. Send fewer or shorter headers.",
                limits.max_header_bytes
            ),
        ));
    }
    host_problem(req)
}

/// The request target's length as `uri.to_string()` writes it, without writing it out:
/// scheme `://` authority, the path (`/` when an absolute form has none), `?` and the
/// query.
fn target_len(uri: &axum::http::Uri) -> usize {
    let prefix = match (uri.scheme_str(), uri.authority()) {
        (Some(scheme), Some(authority)) => scheme.len() + 3 + authority.as_str().len(),
        (None, Some(authority)) => authority.as_str().len(),
        _ => 0,
    };
    prefix + uri.path().len() + uri.query().map_or(0, |q| q.len() + 1)
}

/// RFC 9112 section 3.2: a server MUST answer 400 to an HTTP/1.1 request without `Host`,
/// with more than one, or with an invalid one; an absolute-form target names the host
/// itself, and the two must agree.
fn host_problem(req: &Request) -> Option<ApiError> {
    let bad = |detail: &str| {
        Some(ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad-host",
            "Bad Host",
            format!("{detail} (RFC 9112 section 3.2). Send exactly one Host: <host>[:port]."),
        ))
    };
    let mut hosts = req.headers().get_all(header::HOST).iter();
    let host = hosts.next();
    if hosts.next().is_some() {
        return bad("The request has more than one Host header");
    }
    let Some(host) = host else {
        if req.version() == Version::HTTP_11 {
            return bad("An HTTP/1.1 request must carry a Host header");
        }
        return None;
    };
    // An empty Host is what a client sends for a target without an authority.
    if host.is_empty() {
        return None;
    }
    let Ok(authority) = host
        .to_str()
        .ok()
        .and_then(|h| h.parse::<Authority>().ok())
        .ok_or(())
    else {
        return bad("The Host header is not a valid host[:port]");
    };
    if authority.as_str().contains('@') {
        return bad("The Host header must not carry user information");
    }
    if let Some(target) = req.uri().authority()
        && !target.as_str().eq_ignore_ascii_case(authority.as_str())
    {
        return bad("The absolute-form target names another host than the Host header");
    }
    None
}

#[cfg(test)]
mod tests {
    use super::target_len;

    #[test]
    fn a_targets_length_is_that_of_its_text() {
        for target in [
            "/products/1",
            "/products?after=12&limit=3",
            "http://example.com:8080/products/1?x=1",
            "http://example.com",
            "http://example.com?a=1",
            "/?",
            "example.com:443",
            "*",
            "/",
        ] {
            let uri: axum::http::Uri = target.parse().expect("a valid target");
            assert_eq!(target_len(&uri), uri.to_string().len(), "{target}");
        }
    }
}
