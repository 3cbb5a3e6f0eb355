//! A fault-injecting HTTP/1.1 proxy for black-box tests: put it between a client and the
//! real server, then make replies slow, lose them after the server has acted, or refuse
//! requests outright — for every request, or only for some method and path.
//!
//! ```no_run
//! # async fn demo(server: std::net::SocketAddr) -> std::io::Result<()> {
//! use catalog_tests::proxy::{Fault, Proxy};
//! let proxy = Proxy::start(server).await?;
//! // The next PUT to product 1 reaches the server, but its reply never reaches the client.
//! proxy.set(Fault::times(1, Fault::only("PUT", "/products/1", Fault::DropReply)));
//! let url = proxy.url("/products/1");
//! # Ok(()) }
//! ```
//!
//! How it works: every client connection gets its own upstream connection, opened when the
//! first request is forwarded. Requests are handled one at a time, in order (keep-alive
//! works; pipelined requests are answered in order): the proxy reads a request head and
//! body from the client, decides its fault, forwards it, reads the reply head and body
//! from the server, applies the fault, and forwards the reply. Bodies are framed by
//! `Content-Length` or chunked encoding (requests and replies); a reply with neither is
//! read until the server closes.
//!
//! Event streams are never buffered: a reply with `Content-Type: text/event-stream`, or
//! one whose body runs until the connection closes, is passed on as it arrives. Such a
//! stream, and any request that asks for one (`Accept: text/event-stream`), is touched only
//! by a fault inside an [`Fault::Only`] that matches it, so a plain `DelayReply`, say,
//! slows every ordinary reply but leaves the client's `GET /events` live.
//!
//! Not supported: `Expect: 100-continue` (the proxy waits for the whole body before it
//! forwards anything), and faults on the bytes that follow a `101 Switching Protocols`
//! (those are copied both ways untouched).

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};

/// A fault-injecting proxy listening on `127.0.0.1` (a free port), forwarding to one
/// upstream address. Dropping it stops it and closes every connection through it.
pub struct Proxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
    accept: JoinHandle<()>,
}

/// What the proxy does to a request and its reply. Set with [`Proxy::set`].
#[derive(Clone, Debug, PartialEq)]
pub enum Fault {
    /// Forward everything untouched.
    None,
    /// Read the whole reply from the server, then hold it this long before forwarding it.
    /// A streamed reply (see the module docs) has its head held this long.
    DelayReply(Duration),
    /// Read the whole reply from the server, then hold it until [`Proxy::release`]: a
    /// slow reply whose arrival the test decides, without guessing at timing.
    HoldReply,
    /// Forward the request and read the server's whole reply, then close the client's
    /// connection without forwarding any of it: the request took effect, the client never
    /// learns it. A streamed reply is cut off as soon as its head arrives.
    DropReply,
    /// Close the client's connection as soon as a request (head and body) has arrived,
    /// without forwarding it: the server never sees it.
    Refuse,
    /// Forward the request and read the server's whole reply, then answer the client
    /// `504 Gateway Timeout` instead, as a reverse proxy does when its upstream was slow:
    /// the request took effect, the client is told only that no answer came. A streamed
    /// reply is cut off as for `DropReply`.
    GatewayTimeout,
    /// Answer the client `503 Service Unavailable` without forwarding the request, as a
    /// gateway with no upstream to send it to: the server never sees it.
    Unavailable,
    /// `fault` applies only to requests with this method (ASCII case-insensitive) whose
    /// request target (path and query) starts with `path_prefix`; others pass untouched.
    /// The prefix is plain text: `/products/1` also matches `/products/12` and
    /// `/products/1/versions`.
    Only {
        method: String,
        path_prefix: String,
        fault: Box<Fault>,
    },
    /// Apply the inner fault to the next N requests it applies to, then behave as `None`.
    /// The count goes down as requests arrive; [`Proxy::fault`] shows what is left.
    Times(usize, Box<Fault>),
    /// The first fault until it is used up (a `Times` down to 0), then the second.
    Then(Box<Fault>, Box<Fault>),
}

impl Fault {
    /// [`Fault::Only`], without the boxing and the `String`s.
    pub fn only(method: &str, path_prefix: &str, fault: Fault) -> Fault {
        Fault::Only {
            method: method.to_string(),
            path_prefix: path_prefix.to_string(),
            fault: Box::new(fault),
        }
    }

    /// [`Fault::Times`], without the boxing.
    pub fn times(n: usize, fault: Fault) -> Fault {
        Fault::Times(n, Box::new(fault))
    }

    /// [`Fault::Then`], without the boxing.
    pub fn then(self, next: Fault) -> Fault {
        Fault::Then(Box::new(self), Box::new(next))
    }

    /// What to do with this request, counting it against any `Times` it uses up.
    /// `explicit`: an enclosing `Only` matched. Returns the action and whether it was
    /// explicit (only explicit actions touch event streams).
    fn decide(&mut self, req: &RequestHead, explicit: bool) -> (Action, bool) {
        let leaf = |action| {
            if req.wants_stream && !explicit {
                (Action::Pass, false)
            } else {
                (action, explicit)
            }
        };
        match self {
            Fault::None => (Action::Pass, explicit),
            Fault::DelayReply(d) => leaf(Action::Delay(*d)),
            Fault::HoldReply => leaf(Action::Hold),
            Fault::DropReply => leaf(Action::Drop),
            Fault::Refuse => leaf(Action::Refuse),
            Fault::GatewayTimeout => leaf(Action::GatewayTimeout),
            Fault::Unavailable => leaf(Action::Unavailable),
            Fault::Then(first, next) => match **first {
                Fault::Times(0, _) => next.decide(req, explicit),
                _ => first.decide(req, explicit),
            },
            Fault::Only {
                method,
                path_prefix,
                fault,
            } => {
                if req.method.eq_ignore_ascii_case(method) && req.path.starts_with(&**path_prefix) {
                    fault.decide(req, true)
                } else {
                    (Action::Pass, explicit)
                }
            }
            Fault::Times(n, fault) => {
                if *n == 0 {
                    return (Action::Pass, explicit);
                }
                let decided = fault.decide(req, explicit);
                if decided.0 != Action::Pass {
                    *n -= 1;
                }
                decided
            }
        }
    }
}

impl Proxy {
    /// Binds `127.0.0.1:0` and spawns the accept loop on the current tokio runtime.
    pub async fn start(upstream: SocketAddr) -> io::Result<Proxy> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            upstream,
            fault: Mutex::new(Fault::None),
            released: tokio::sync::watch::channel(0).0,
            held: AtomicUsize::new(0),
            requests: AtomicUsize::new(0),
            connections: AtomicUsize::new(0),
        });
        let accept = tokio::spawn(accept_loop(listener, shared.clone()));
        Ok(Proxy {
            addr,
            shared,
            accept,
        })
    }

    /// The address clients should connect to.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://<addr><path>`; `path` starts with `/`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// Replaces the fault. It applies to requests whose head and body arrive from now on;
    /// requests already forwarded keep the fault they were given.
    pub fn set(&self, fault: Fault) {
        *self.shared.fault.lock().unwrap_or_else(|e| e.into_inner()) = fault;
    }

    /// The fault now in force, with what is left of any `Times` count.
    pub fn fault(&self) -> Fault {
        self.shared
            .fault
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// How many requests were forwarded to the server (refused ones are not counted).
    pub fn requests_seen(&self) -> usize {
        self.shared.requests.load(Ordering::SeqCst)
    }

    /// Lets every reply held by [`Fault::HoldReply`] go on to its client.
    pub fn release(&self) {
        self.shared.released.send_modify(|n| *n += 1);
    }

    /// How many replies are held now (the request reached the server and was answered).
    pub fn held_replies(&self) -> usize {
        self.shared.held.load(Ordering::SeqCst)
    }

    /// How many client connections the proxy has accepted.
    pub fn connections_accepted(&self) -> usize {
        self.shared.connections.load(Ordering::SeqCst)
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        // The accept task owns the connection tasks; aborting it drops (aborts) them all.
        self.accept.abort();
    }
}

struct Shared {
    upstream: SocketAddr,
    fault: Mutex<Fault>,
    /// Bumped by [`Proxy::release`]: every reply held until then goes on.
    released: tokio::sync::watch::Sender<u64>,
    /// Replies held now.
    held: AtomicUsize,
    requests: AtomicUsize,
    connections: AtomicUsize,
}

impl Shared {
    /// Holds a reply until the next [`Proxy::release`].
    async fn hold(&self) {
        let mut released = self.released.subscribe();
        released.mark_unchanged();
        self.held.fetch_add(1, Ordering::SeqCst);
        let _ = released.changed().await;
        self.held.fetch_sub(1, Ordering::SeqCst);
    }

    fn decide(&self, req: &RequestHead) -> (Action, bool) {
        self.fault
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .decide(req, false)
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Action {
    Pass,
    Delay(Duration),
    Hold,
    Drop,
    Refuse,
    GatewayTimeout,
    Unavailable,
}

/// What a reverse proxy answers when its upstream did not answer in time (nginx's page).
/// What a reverse proxy answers when it has no upstream to send a request to.
const UNAVAILABLE: &[u8] = b"HTTP/1.1 503 Service Temporarily Unavailable\r\nContent-Type: text/html\r\nContent-Length: 70\r\nConnection: close\r\n\r\n<html><body><h1>503 Service Temporarily Unavailable</h1></body></html>";
const GATEWAY_TIMEOUT: &[u8] = b"HTTP/1.1 504 Gateway Time-out\r\nContent-Type: text/html\r\nContent-Length: 55\r\nConnection: close\r\n\r\n<html><body><h1>504 Gateway Time-out</h1></body></html>";

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    shared.connections.fetch_add(1, Ordering::SeqCst);
                    let shared = shared.clone();
                    connections.spawn(async move {
                        // An error only ends this connection, as a real network would.
                        let _ = serve(stream, &shared).await;
                    });
                }
                // Out of file descriptors and the like: try again shortly.
                Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

/// One client connection, request by request.
async fn serve(client: TcpStream, shared: &Shared) -> io::Result<()> {
    let _ = client.set_nodelay(true);
    let (client_read, mut client_write) = client.into_split();
    let mut client_read = Reader::new(client_read);
    let mut upstream: Option<(Reader<OwnedReadHalf>, OwnedWriteHalf)> = None;
    loop {
        // Wait for the next request; if the server closes the idle upstream connection
        // meanwhile, close the client's too, as the server would have.
        let head = tokio::select! {
            head = client_read.head() => head?,
            () = upstream_closed(&mut upstream) => return Ok(()),
        };
        let Some(head) = head else {
            return Ok(());
        };
        let req = RequestHead::parse(&head)?;
        let mut request = head;
        copy_body(&mut client_read, req.body, &mut request).await?;

        let (action, explicit) = shared.decide(&req);
        if action == Action::Refuse {
            return Ok(());
        }
        if action == Action::Unavailable {
            client_write.write_all(UNAVAILABLE).await?;
            let _ = client_write.shutdown().await;
            return Ok(());
        }

        let (up_read, up_write) = match &mut upstream {
            Some(up) => up,
            None => upstream.insert(connect(shared.upstream).await?),
        };
        up_write.write_all(&request).await?;
        shared.requests.fetch_add(1, Ordering::SeqCst);

        // Interim (1xx) replies go straight through; then the final reply.
        let (reply_head, resp) = loop {
            let Some(h) = up_read.head().await? else {
                return Ok(()); // the server closed without answering: so does the proxy
            };
            let resp = ResponseHead::parse(&h, &req.method)?;
            if (100..200).contains(&resp.status) && resp.status != 101 {
                client_write.write_all(&h).await?;
                continue;
            }
            break (h, resp);
        };

        if resp.status == 101 {
            if matches!(action, Action::Drop | Action::GatewayTimeout) {
                return Ok(());
            }
            if let Action::Delay(d) = action {
                tokio::time::sleep(d).await;
            }
            if action == Action::Hold {
                shared.hold().await;
            }
            client_write.write_all(&reply_head).await?;
            return tunnel(client_read, client_write, up_read, up_write).await;
        }

        let streamed = resp.event_stream || resp.body == Body::UntilClose;
        if streamed {
            match if explicit { action } else { Action::Pass } {
                Action::Drop | Action::GatewayTimeout => return Ok(()),
                Action::Delay(d) => tokio::time::sleep(d).await,
                Action::Hold => shared.hold().await,
                Action::Pass | Action::Refuse | Action::Unavailable => {}
            }
            client_write.write_all(&reply_head).await?;
            // Pass the body on as it comes; stop if the client hangs up meanwhile.
            tokio::select! {
                done = copy_body(up_read, resp.body, &mut client_write) => done?,
                () = closed(&mut client_read) => return Ok(()),
            }
        } else {
            let mut reply = reply_head;
            copy_body(up_read, resp.body, &mut reply).await?;
            match action {
                Action::Drop => return Ok(()),
                Action::GatewayTimeout => {
                    client_write.write_all(GATEWAY_TIMEOUT).await?;
                    let _ = client_write.shutdown().await;
                    return Ok(());
                }
                Action::Delay(d) => tokio::time::sleep(d).await,
                Action::Hold => shared.hold().await,
                Action::Pass | Action::Refuse | Action::Unavailable => {}
            }
            client_write.write_all(&reply).await?;
        }

        if req.close || resp.close || resp.body == Body::UntilClose {
            let _ = client_write.shutdown().await;
            return Ok(());
        }
    }
}

async fn connect(addr: SocketAddr) -> io::Result<(Reader<OwnedReadHalf>, OwnedWriteHalf)> {
    let stream = TcpStream::connect(addr).await?;
    let _ = stream.set_nodelay(true);
    let (read, write) = stream.into_split();
    Ok((Reader::new(read), write))
}

/// Resolves when an open upstream connection closes (or fails); never if there is none.
async fn upstream_closed(upstream: &mut Option<(Reader<OwnedReadHalf>, OwnedWriteHalf)>) {
    match upstream {
        Some((read, _)) => closed(read).await,
        None => std::future::pending().await,
    }
}

/// Reads (keeping what arrives) until the peer closes or the connection fails.
async fn closed<R: AsyncRead + Unpin>(reader: &mut Reader<R>) {
    while let Ok(n) = reader.fill().await {
        if n == 0 {
            return;
        }
    }
}

/// Copies bytes both ways, untouched, until either side closes.
async fn tunnel(
    mut client_read: Reader<OwnedReadHalf>,
    mut client_write: OwnedWriteHalf,
    up_read: &mut Reader<OwnedReadHalf>,
    up_write: &mut OwnedWriteHalf,
) -> io::Result<()> {
    client_write
        .write_all(&std::mem::take(&mut up_read.buf))
        .await?;
    up_write
        .write_all(&std::mem::take(&mut client_read.buf))
        .await?;
    let down = tokio::io::copy(&mut up_read.io, &mut client_write);
    let up = tokio::io::copy(&mut client_read.io, up_write);
    tokio::select! {
        r = down => r.map(drop),
        r = up => r.map(drop),
    }
}

/// A read half with its own buffer, so heads and bodies can be taken out piece by piece.
/// Every read is cancel-safe: bytes read are kept in `buf`.
struct Reader<R> {
    io: R,
    buf: Vec<u8>,
}

/// The most a request or reply head may take.
const MAX_HEAD: usize = 64 * 1024;

impl<R: AsyncRead + Unpin> Reader<R> {
    fn new(io: R) -> Self {
        Reader {
            io,
            buf: Vec::new(),
        }
    }

    /// Reads more into `buf`; 0 means the peer closed.
    async fn fill(&mut self) -> io::Result<usize> {
        let mut tmp = [0u8; 16 * 1024];
        let n = self.io.read(&mut tmp).await?;
        self.buf.extend_from_slice(&tmp[..n]);
        Ok(n)
    }

    /// The bytes up to and including the first `delim`, at most `max` of them.
    /// `None` if the peer closed before sending anything.
    async fn until(&mut self, delim: &[u8], max: usize) -> io::Result<Option<Vec<u8>>> {
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
    async fn head(&mut self) -> io::Result<Option<Vec<u8>>> {
        // Tolerate empty lines before a request line (RFC 9112 section 2.2).
        while self.buf.starts_with(b"\r\n") {
            self.buf.drain(..2);
        }
        self.until(b"\r\n\r\n", MAX_HEAD).await
    }

    /// One CRLF-terminated line (chunk sizes, trailers).
    async fn line(&mut self) -> io::Result<Vec<u8>> {
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
enum Body {
    Empty,
    Length(u64),
    Chunked,
    UntilClose,
}

/// Copies one body from `src` to `out`, framing included, writing each piece as it
/// arrives (so a stream into a socket stays live).
async fn copy_body<R, W>(src: &mut Reader<R>, body: Body, out: &mut W) -> io::Result<()>
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
struct RequestHead {
    method: String,
    /// Path and query, whatever form the request target took.
    path: String,
    body: Body,
    /// The client asked for the connection to close after this exchange.
    close: bool,
    /// `Accept: text/event-stream`.
    wants_stream: bool,
}

impl RequestHead {
    fn parse(raw: &[u8]) -> io::Result<RequestHead> {
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
struct ResponseHead {
    status: u16,
    body: Body,
    /// The server will close the connection after this reply.
    close: bool,
    /// `Content-Type: text/event-stream`.
    event_stream: bool,
}

impl ResponseHead {
    fn parse(raw: &[u8], request_method: &str) -> io::Result<ResponseHead> {
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
