//! The refusals hyper writes by itself, before any of our code sees a request (a request
//! line or header line it cannot parse: 400; a head past its hard cap: 431; a target past
//! its fixed 64 KiB: 414), have no body. Every refusal of this server is problem+json, so
//! the connection recognises them on their way out and writes the problem instead. Our
//! router never answers a 4xx without a body, so nothing else can match.

/// If `buf` is one of hyper's own refusals (a whole 400, 414 or 431 head with
/// `content-length: 0`, no `content-type` and nothing after it), the response to send in
/// its place.
pub fn replacement(buf: &[u8]) -> Option<Vec<u8>> {
    let rest = buf.strip_prefix(b"HTTP/1.1 ")?;
    // Every response passes here: the status alone turns away all but a few, before any
    // scan of the head.
    if !matches!(rest.get(..4)?, b"400 " | b"414 " | b"431 ") {
        return None;
    }
    let end = buf.windows(4).position(|w| w == b"\r\n\r\n")?;
    if end + 4 != buf.len() {
        return None;
    }
    let head = buf[..end].to_ascii_lowercase();
    let has = |needle: &[u8]| head.windows(needle.len()).any(|w| w == needle);
    if !has(b"\r\ncontent-length: 0\r\n") && !head.ends_with(b"\r\ncontent-length: 0") {
        return None;
    }
    if has(b"\r\ncontent-type:") {
        return None;
    }
    let (slug, title, detail) = match rest.get(..4)? {
        b"400 " => (
            "bad-request",
            "Bad Request",
            "The request could not be read as HTTP/1.1: its request line or a header line is malformed. Nothing was done.",
        ),
        b"414 " => (
            "uri-too-long",
            "URI Too Long",
            "The request target is longer than this server reads (64 KiB; it serves targets of up to 8 KiB). Nothing was done.",
        ),
        b"431 " => (
            "headers-too-large",
            "Request Header Fields Too Large",
            "The request head is larger than this server reads (more than 100 header lines, or far more bytes than --max-header-bytes). Nothing was done; send fewer or shorter headers.",
        ),
        _ => return None,
    };
    let status = std::str::from_utf8(&rest[..3]).ok()?;
    let body = serde_json::json!({
        "type": format!("/problems/{slug}"),
        "title": title,
        "status": status.parse::<u16>().ok()?,
        "detail": detail,
    })
    .to_string();
    Some(
        format!(
            "HTTP/1.1 {status} {title}\r\ncontent-type: application/problem+json\r\ncache-control: no-store\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        )
        .into_bytes(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hypers_bare_refusals_become_problems_and_nothing_else_does() {
        let bare = b"HTTP/1.1 414 URI Too Long\r\ncontent-length: 0\r\ndate: Sun, 06 Dec 2026 04:40:00 GMT\r\n\r\n";
        let text = String::from_utf8(replacement(bare).expect("replaced")).unwrap();
        assert!(text.starts_with("HTTP/1.1 414 URI Too Long\r\n"), "{text}");
        assert!(text.contains("content-type: application/problem+json"));
        let body = text.split("\r\n\r\n").nth(1).unwrap();
        let problem: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(problem["status"], 414);
        assert!(text.contains(&format!("content-length: {}\r\n", body.len())));
        for status in ["400 Bad Request", "431 Request Header Fields Too Large"] {
            let bare = format!("HTTP/1.1 {status}\r\ncontent-length: 0\r\n\r\n");
            assert!(replacement(bare.as_bytes()).is_some(), "{status}");
        }
        // Our own answers pass as they are.
        for ours in [
            &b"HTTP/1.1 414 URI Too Long\r\ncontent-type: application/problem+json\r\ncontent-length: 0\r\n\r\n"[..],
            b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n",
            b"HTTP/1.1 400 Bad Request\r\ncontent-length: 10\r\n\r\n",
            b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\nmore",
            b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n",
            b"{\"sku\":1}",
        ] {
            assert!(replacement(ours).is_none(), "{}", String::from_utf8_lossy(ours));
        }
    }
}
