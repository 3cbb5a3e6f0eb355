//! A minimal SSE client on a raw tokio `TcpStream`: a thousand of these cost little (no
//! HTTP client per watcher). Accepts event ids as `<dbid>:<seq>` and as a bare `<seq>`.

use std::io;
use std::net::SocketAddr;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpSocket, TcpStream};

/// One event.
#[derive(Debug, Default, Clone)]
pub struct SseEvent {
    pub id: String,
    pub event: String,
    pub data: String,
}

impl SseEvent {
    /// The sequence number of the event's id (`<dbid>:<seq>` or `<seq>`).
    pub fn seq(&self) -> Option<i64> {
        seq_of(&self.id)
    }
}

pub fn seq_of(id: &str) -> Option<i64> {
    id.rsplit(':').next()?.trim().parse().ok()
}

fn request(addr: SocketAddr, last_event_id: Option<&str>) -> String {
    let mut r = format!("GET /events HTTP/1.1\r\nHost: {addr}\r\nAccept: text/event-stream\r\n");
    if let Some(id) = last_event_id {
        r.push_str(&format!("Last-Event-ID: {id}\r\n"));
    }
    r.push_str("\r\n");
    r
}

/// An open event stream being read.
pub struct SseStream {
    reader: BufReader<TcpStream>,
    chunked: bool,
    /// Decoded body bytes not yet returned as lines.
    body: Vec<u8>,
}

impl SseStream {
    /// Connects, sends GET /events, and reads the response head (which must be 200).
    pub async fn open(addr: SocketAddr, last_event_id: Option<&str>) -> io::Result<SseStream> {
        let mut stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        stream
            .write_all(request(addr, last_event_id).as_bytes())
            .await?;
        let mut reader = BufReader::new(stream);
        let mut status = String::new();
        reader.read_line(&mut status).await?;
        if !status.starts_with("HTTP/1.1 200") {
            return Err(io::Error::other(format!(
                "GET /events answered {:?}",
                status.trim()
            )));
        }
        let mut chunked = false;
        loop {
            let mut header = String::new();
            if reader.read_line(&mut header).await? == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            let header = header.trim();
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':')
                && name.eq_ignore_ascii_case("transfer-encoding")
                && value.to_ascii_lowercase().contains("chunked")
            {
                chunked = true;
            }
        }
        Ok(SseStream {
            reader,
            chunked,
            body: Vec::new(),
        })
    }

    /// Reads more of the body; false at its end.
    async fn fill(&mut self) -> io::Result<bool> {
        if !self.chunked {
            let mut buf = [0u8; 4096];
            let n = self.reader.read(&mut buf).await?;
            self.body.extend_from_slice(&buf[..n]);
            return Ok(n > 0);
        }
        let mut size = String::new();
        if self.reader.read_line(&mut size).await? == 0 {
            return Ok(false);
        }
        let hex = size.trim().split(';').next().unwrap_or("");
        let size = usize::from_str_radix(hex, 16)
            .map_err(|_| io::Error::other(format!("bad chunk size {hex:?}")))?;
        if size == 0 {
            return Ok(false);
        }
        let start = self.body.len();
        self.body.resize(start + size, 0);
        self.reader.read_exact(&mut self.body[start..]).await?;
        let mut crlf = [0u8; 2];
        self.reader.read_exact(&mut crlf).await?;
        Ok(true)
    }

    async fn line(&mut self) -> io::Result<Option<String>> {
        loop {
            if let Some(end) = self.body.iter().position(|b| *b == b'\n') {
                let mut line: Vec<u8> = self.body.drain(..=end).collect();
                line.pop();
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                return Ok(Some(String::from_utf8_lossy(&line).into_owned()));
            }
            if !self.fill().await? {
                return Ok(None);
            }
        }
    }

    /// The next event; `None` when the stream ends. Comments (keep-alives) are skipped.
    pub async fn next_event(&mut self) -> io::Result<Option<SseEvent>> {
        let mut event = SseEvent::default();
        let mut any = false;
        loop {
            let Some(line) = self.line().await? else {
                return Ok(None);
            };
            if line.is_empty() {
                if any {
                    if event.event.is_empty() {
                        event.event = "message".into();
                    }
                    return Ok(Some(event));
                }
                continue;
            }
            if line.starts_with(':') {
                continue;
            }
            let (field, value) = line.split_once(':').unwrap_or((&line, ""));
            let value = value.strip_prefix(' ').unwrap_or(value);
            any = true;
            match field {
                "id" => event.id = value.to_string(),
                "event" => event.event = value.to_string(),
                "data" => {
                    if !event.data.is_empty() {
                        event.data.push('\n');
                    }
                    event.data.push_str(value);
                }
                _ => {}
            }
        }
    }
}

/// A stream that is requested and then never read: its socket's receive buffer is set
/// small before connecting, so the backlog waits in the server, not in this process's
/// kernel buffers.
pub async fn open_unread(
    addr: SocketAddr,
    last_event_id: &str,
    receive_buffer: u32,
) -> io::Result<TcpStream> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.set_recv_buffer_size(receive_buffer)?;
    let mut stream = socket.connect(addr).await?;
    stream
        .write_all(request(addr, Some(last_event_id)).as_bytes())
        .await?;
    Ok(stream)
}
