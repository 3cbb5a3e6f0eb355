//! The listening socket and its connections: a connection whose client stops reading is
//! dropped after `--write-timeout`, its kernel send buffer is capped, its reads tell the
//! connection's [`Activity`] when a request head starts (for the header timeout), and
//! hyper's own bodiless refusals leave it as problem+json ([`super::refusal`]).

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio_io_timeout::TimeoutStream;

use super::Activity;
use super::refusal;

/// A TCP listener whose connections fail a write that makes no progress for
/// `write_timeout`: a peer that stops reading (an event stream nobody reads, whose socket
/// buffers are full) is dropped instead of being held forever. Each connection's kernel
/// send buffer is capped, so such a peer also costs a bounded amount of kernel memory and
/// of work (an event stream stops being produced once the buffer is full).
pub struct DroppingListener {
    inner: TcpListener,
    write_timeout: Duration,
    send_buffer: usize,
}

impl DroppingListener {
    pub fn new(inner: TcpListener, write_timeout: Duration, send_buffer: usize) -> Self {
        DroppingListener {
            inner,
            write_timeout,
            send_buffer,
        }
    }
}

impl axum::serve::Listener for DroppingListener {
    type Io = Watched;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            match self.inner.accept().await {
                Ok((stream, addr)) => {
                    let _ = stream.set_nodelay(true);
                    if self.send_buffer > 0 {
                        let _ =
                            socket2::SockRef::from(&stream).set_send_buffer_size(self.send_buffer);
                    }
                    let mut stream = TimeoutStream::new(stream);
                    stream.set_write_timeout(Some(self.write_timeout));
                    let io = Watched {
                        inner: Box::pin(stream),
                        peer: addr,
                        timeout: self.write_timeout,
                        activity: None,
                        replacing: None,
                    };
                    return (io, addr);
                }
                Err(e) => {
                    // Out of file descriptors and the like: wait, do not spin or exit.
                    tracing::warn!("accepting a connection: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.inner.local_addr()
    }
}

/// A connection that says so in the log when it is dropped because its client stopped
/// reading, and tells its [`Activity`] when request bytes arrive (for the header timeout).
pub struct Watched {
    inner: Pin<Box<TimeoutStream<TcpStream>>>,
    peer: SocketAddr,
    timeout: Duration,
    activity: Option<Arc<Activity>>,
    /// A refusal of hyper's being written as problem+json instead.
    replacing: Option<Replacing>,
}

struct Replacing {
    bytes: Vec<u8>,
    written: usize,
    /// How many of hyper's bytes it stands for (reported written when it is).
    stands_for: usize,
}

impl Watched {
    pub fn track(&mut self, activity: Arc<Activity>) {
        self.activity = Some(activity);
    }

    /// Tells the connection's activity whether the write could go on, and logs a client
    /// dropped for reading nothing.
    fn note<T>(&self, result: Poll<std::io::Result<T>>) -> Poll<std::io::Result<T>> {
        if let Some(activity) = &self.activity {
            activity.wrote(result.is_pending());
        }
        if let Poll::Ready(Err(e)) = &result
            && e.kind() == std::io::ErrorKind::TimedOut
        {
            tracing::warn!(
                peer = %self.peer,
                "dropped a connection: its client read nothing for {:?}",
                self.timeout
            );
        }
        result
    }
}

impl Watched {
    /// Writes the pending replacement; done, it reports hyper's bytes as written.
    fn write_replacement(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<std::io::Result<usize>> {
        let this = &mut *self;
        let Some(r) = this.replacing.as_mut() else {
            return Poll::Ready(Ok(0));
        };
        while r.written < r.bytes.len() {
            match this.inner.as_mut().poll_write(cx, &r.bytes[r.written..]) {
                Poll::Ready(Ok(0)) => return Poll::Ready(Ok(0)),
                Poll::Ready(Ok(n)) => r.written += n,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            }
        }
        let n = r.stands_for;
        this.replacing = None;
        Poll::Ready(Ok(n))
    }
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let result = self.inner.as_mut().poll_read(cx, buf);
        if buf.filled().len() > before
            && let Some(activity) = &self.activity
        {
            activity.bytes_read();
        }
        result
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        if self.replacing.is_none()
            && let Some(bytes) = refusal::replacement(buf)
        {
            self.replacing = Some(Replacing {
                bytes,
                written: 0,
                stands_for: buf.len(),
            });
        }
        if self.replacing.is_some() {
            let result = self.as_mut().write_replacement(cx);
            return self.note(result);
        }
        let result = self.inner.as_mut().poll_write(cx, buf);
        self.note(result)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        // hyper's refusal is a head alone, in one slice.
        if let Some(first) = bufs.iter().find(|b| !b.is_empty())
            && (self.replacing.is_some() || refusal::replacement(first).is_some())
        {
            return self.poll_write(cx, first);
        }
        let result = self.inner.as_mut().poll_write_vectored(cx, bufs);
        self.note(result)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let result = self.inner.as_mut().poll_flush(cx);
        self.note(result)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        self.inner.as_mut().poll_shutdown(cx)
    }
}
