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

use tokio::io::{AsyncRead, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};

mod http;

use http::{Body, Reader, RequestHead, ResponseHead, copy_body};

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
