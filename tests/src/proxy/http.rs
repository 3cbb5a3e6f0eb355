//! HTTP/1.1 framing for the proxy: a buffered read half, request and reply heads, and
//! bodies framed by `Content-Length`, chunked encoding or the end of the connection.

use std::io;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// A read half with its own buffer, so heads and bodies can be taken out piece by piece.
/// Every read is cancel-safe: bytes read are kept in `buf`.
pub(super) struct Reader<R> {
    pub(super) io: R,
    pub(super) buf: Vec<u8>,
}

/// The most a request or reply head may take.
const MAX_HEAD: usize = 64 * 1024;

impl<R: AsyncRead + Unpin> Reader<R> {
    pub(super) fn new(io: R) -> Self {
        Reader {
            io,
            buf: Vec::new(),
        }
    }

    /// Reads more into `buf`; 0 means the peer closed.
    pub(super) async fn fill(&mut self) -> io::Result<usize> {
        let mut tmp = [0u8; 16 * 1024];
        let n = self.io.read(&mut tmp).await?;
        self.buf.extend_from_slice(&tmp[..n]);
        Ok(n)
    }

    /// The bytes up to and including the first `delim`, at most `max` of them.
    /// `None` if the peer closed before sending anything.
    pub(super) async fn until(&mut self, delim: &[u8], max: usize) -> io::Result<Option<Vec<u8>>> {
        let mut searched = 0;
        loop {
            if let Some(i) = find(&self.buf[searched..], delim) {
                let end = searched + i + delim.len();
                return Ok(Some(self.buf.drain(..end).collect()));
            }
            if self.buf.len() > max {
                return Err(invalid("header section or chunk line too long"));
            }
            searched = self.buf.len().saturating_sub(delim.len() - 1);
            if self.fill().await? == 0 {
                return if self.buf.is_empty() {
                    Ok(None)
                } else {
                    Err(io::ErrorKind::UnexpectedEof.into())
                };
            }
        }
    }

    /// A message head, through its blank line; `None` if the peer closed cleanly first.
    pub(super) async fn head(&mut self) -> io::Result<Option<Vec<u8>>> {
        // Tolerate empty lines before a request line (RFC 9112 section 2.2).
        while self.buf.starts_with(b"\r\n") {
            self.buf.drain(..2);
        }
        self.until(b"\r\n\r\n", MAX_HEAD).await
    }

    /// One CRLF-terminated line (chunk sizes, trailers).
    pub(super) async fn line(&mut self) -> io::Result<Vec<u8>> {
        self.until(b"\r\n", MAX_HEAD)
            .await?
            .ok_or_else(|| io::ErrorKind::UnexpectedEof.into())
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn invalid(msg: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.to_string())
}

/// How a message body is delimited.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) enum Body {
    Empty,
    Length(u64),
    Chunked,
    UntilClose,
}

/// Copies one body from `src` to `out`, framing included, writing each piece as it
/// arrives (so a stream into a socket stays live).
pub(super) async fn copy_body<R, W>(src: &mut Reader<R>, body: Body, out: &mut W) -> io::Result<()>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    match body {
        Body::Empty => Ok(()),
        Body::Length(n) => copy_exact(src, n, out).await,
        Body::Chunked => loop {
            let line = src.line().await?;
            out.write_all(&line).await?;
            let size = chunk_size(&line)?;
            if size == 0 {
                // Trailer fields, up to the blank line.
                loop {
                    let line = src.line().await?;
                    out.write_all(&line).await?;
                    if line == b"\r\n" {
                        return out.flush().await;
                    }
                }
            }
            // The data and its CRLF.
            copy_exact(src, size + 2, out).await?;
            out.flush().await?;
        },
        Body::UntilClose => loop {
            out.write_all(&std::mem::take(&mut src.buf)).await?;
            out.flush().await?;
            if src.fill().await? == 0 {
                return Ok(());
            }
        },
    }
}

async fn copy_exact<R, W>(src: &mut Reader<R>, mut n: u64, out: &mut W) -> io::Result<()>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    while n > 0 {
        if src.buf.is_empty() && src.fill().await? == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        let take = src.buf.len().min(usize::try_from(n).unwrap_or(usize::MAX));
        out.write_all(&src.buf[..take]).await?;
        src.buf.drain(..take);
        n -= take as u64;
    }
    Ok(())
}

fn chunk_size(line: &[u8]) -> io::Result<u64> {
    let line = std::str::from_utf8(line).map_err(|_| invalid("chunk size is not text"))?;
    let hex = line.trim_end().split(';').next().unwrap_or("").trim();
    u64::from_str_radix(hex, 16).map_err(|_| invalid("bad chunk size"))
}

/// The header fields of a head (after its first line), names lower-cased.
fn fields(head: &str) -> impl Iterator<Item = (String, &str)> {
    head.split("\r\n").skip(1).filter_map(|line| {
        let (name, value) = line.split_once(':')?;
        Some((name.trim().to_ascii_lowercase(), value.trim()))
    })
}

fn has_token(value: &str, token: &str) -> bool {
    value
        .split(',')
        .any(|t| t.trim().eq_ignore_ascii_case(token))
}

/// What the proxy needs to know of a request.
pub(super) struct RequestHead {
    pub(super) method: String,
    /// Path and query, whatever form the request target took.
    pub(super) path: String,
    pub(super) body: Body,
    /// The client asked for the connection to close after this exchange.
    pub(super) close: bool,
    /// `Accept: text/event-stream`.
    pub(super) wants_stream: bool,
}

impl RequestHead {
    pub(super) fn parse(raw: &[u8]) -> io::Result<RequestHead> {
        let head = std::str::from_utf8(raw).map_err(|_| invalid("request head is not text"))?;
        let mut words = head.lines().next().unwrap_or("").split(' ');
        let (Some(method), Some(target), Some(version)) =
            (words.next(), words.next(), words.next())
        else {
            return Err(invalid("bad request line"));
        };
        // Absolute form (`http://host/path`) as well as origin form (`/path`).
        let path = match target.split_once("://") {
            Some((_, rest)) => match rest.find('/') {
                Some(i) => &rest[i..],
                None => "/",
            },
            None => target,
        };
        let mut req = RequestHead {
            method: method.to_string(),
            path: path.to_string(),
            body: Body::Empty,
            close: version == "HTTP/1.0",
            wants_stream: false,
        };
        let mut chunked = false;
        for (name, value) in fields(head) {
            match name.as_str() {
                "content-length" if !chunked => {
                    let n = value.parse().map_err(|_| invalid("bad Content-Length"))?;
                    req.body = Body::Length(n);
                }
                "transfer-encoding" if has_token(value, "chunked") => chunked = true,
                "connection" if has_token(value, "close") => req.close = true,
                "connection" if has_token(value, "keep-alive") => req.close = false,
                "accept" if value.contains("text/event-stream") => req.wants_stream = true,
                _ => {}
            }
        }
        if chunked {
            req.body = Body::Chunked;
        }
        Ok(req)
    }
}

/// What the proxy needs to know of a reply.
pub(super) struct ResponseHead {
    pub(super) status: u16,
    pub(super) body: Body,
    /// The server will close the connection after this reply.
    pub(super) close: bool,
    /// `Content-Type: text/event-stream`.
    pub(super) event_stream: bool,
}

impl ResponseHead {
    pub(super) fn parse(raw: &[u8], request_method: &str) -> io::Result<ResponseHead> {
        let head = std::str::from_utf8(raw).map_err(|_| invalid("reply head is not text"))?;
        let mut words = head.lines().next().unwrap_or("").split(' ');
        let version = words.next().unwrap_or("");
        let status: u16 = words
            .next()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| invalid("bad status line"))?;
        let mut resp = ResponseHead {
            status,
            body: Body::UntilClose,
            close: version == "HTTP/1.0",
            event_stream: false,
        };
        let mut chunked = false;
        for (name, value) in fields(head) {
            match name.as_str() {
                "content-length" if !chunked => {
                    let n = value.parse().map_err(|_| invalid("bad Content-Length"))?;
                    resp.body = Body::Length(n);
                }
                "transfer-encoding" if has_token(value, "chunked") => chunked = true,
                "connection" if has_token(value, "close") => resp.close = true,
                "connection" if has_token(value, "keep-alive") => resp.close = false,
                "content-type" if value.starts_with("text/event-stream") => {
                    resp.event_stream = true;
                }
                _ => {}
            }
        }
        if chunked {
            resp.body = Body::Chunked;
        }
        if request_method.eq_ignore_ascii_case("HEAD")
            || (100..200).contains(&status)
            || status == 204
            || status == 304
        {
            resp.body = Body::Empty;
        }
        Ok(resp)
    }
}
