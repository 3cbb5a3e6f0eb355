//! The server's log, written to stderr by a thread of its own. Each line (one per request)
//! is appended to a buffer in memory; the first line into an empty buffer wakes the thread,
//! which lets lines gather for a millisecond and writes them in one `write`: under load
//! that is many lines per system call instead of one each (an unbuffered `write` per request was 12% of the server's CPU under GET
//! load, BENCHMARKS.md), and a line still reaches stderr within about a millisecond. The
//! guard [`init`] returns writes what is left when `main` ends, before an error of `main`
//! is printed.

use std::borrow::Cow;
use std::fmt;
use std::io::Write;
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::{Duration, SystemTime};

use tracing_subscriber::fmt::MakeWriter;

/// How long a line may wait in memory.
const EVERY: Duration = Duration::from_millis(1);

/// Lines waiting to be written, and the signal that some arrived.
#[derive(Clone, Default)]
struct Pending(Arc<(Mutex<Vec<u8>>, Condvar)>);

impl Pending {
    /// Waits until a line is waiting.
    fn wait(&self) {
        let (lines, arrived) = &*self.0;
        let Ok(mut pending) = lines.lock() else {
            return;
        };
        while pending.is_empty() {
            pending = match arrived.wait(pending) {
                Ok(p) => p,
                Err(_) => return,
            };
        }
    }

    /// Writes what is waiting to stderr. A log that can no longer be written (its reader
    /// went away) must not stop the serving: the lines are dropped.
    fn write_out(&self) {
        let lines = match self.0.0.lock() {
            Ok(mut pending) if !pending.is_empty() => std::mem::take(&mut *pending),
            _ => return,
        };
        let _ = std::io::stderr().lock().write_all(&lines);
    }
}

impl Pending {
    /// Appends what `write` puts in the buffer; only the first line of a batch wakes the
    /// writer.
    fn append(&self, write: impl FnOnce(&mut Vec<u8>)) {
        let (lines, arrived) = &*self.0;
        let was_empty = match lines.lock() {
            Ok(mut pending) => {
                let was_empty = pending.is_empty();
                write(&mut pending);
                was_empty
            }
            Err(_) => false,
        };
        if was_empty {
            arrived.notify_one();
        }
    }
}

/// One event's text, appended to the pending lines.
pub struct Appender(Pending);

impl Write for Appender {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.append(|pending| pending.extend_from_slice(bytes));
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The writer tracing's formatter is given.
#[derive(Clone)]
pub struct Writer(Pending);

impl<'a> MakeWriter<'a> for Writer {
    type Writer = Appender;

    fn make_writer(&'a self) -> Appender {
        Appender(self.0.clone())
    }
}

/// Writes what is left when dropped.
pub struct Guard(Pending);

impl Drop for Guard {
    fn drop(&mut self) {
        self.0.write_out();
    }
}

/// Where [`request`] appends its lines: set by [`init`] when the log is plain text (not a
/// terminal, where tracing colours it).
static PLAIN: OnceLock<Pending> = OnceLock::new();

/// The request log's line (`catalog_server::app`, INFO), written straight into the pending
/// lines in the very format tracing's formatter gives it, without the formatter: it cost
/// about 12% of the server's instructions per request under 304 load (its time stamp, its
/// escaping writer, its visitor; BENCHMARKS.md). The filter (`RUST_LOG`) still decides
/// whether it is written. At a terminal, and before [`init`], tracing writes it, coloured.
pub fn request(message: fmt::Arguments<'_>) {
    const TARGET: &str = "catalog_server::app";
    if !tracing::enabled!(target: TARGET, tracing::Level::INFO) {
        return;
    }
    let Some(pending) = PLAIN.get() else {
        tracing::info!(target: TARGET, "{message}");
        return;
    };
    let now = humantime::format_rfc3339_micros(SystemTime::now());
    pending.append(|line| {
        let _ = writeln!(line, "{now}  INFO {TARGET}: {message}");
    });
}

/// `text` with the characters a terminal could take for a control sequence written as
/// `\u{..}` escapes: every C0 control but tab, DEL, and the C1 controls (tracing's
/// formatter escapes ESC, BEL, BS, FF, DEL and C1 as `\x1b` or `\u{9b}`; this escapes
/// more, and writes them all one way). What a client sends cannot move the cursor or
/// recolour the terminal of whoever reads the log. Borrowed when nothing needs it, as
/// almost always. (A backslash is not escaped: a client can write text that looks like an
/// escape, but not a control character.)
pub fn clean(text: &str) -> Cow<'_, str> {
    let control = |c: char| (c < ' ' && c != '\t') || ('\x7f'..='\u{9f}').contains(&c);
    if !text.chars().any(control) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if control(c) {
            out.push_str(&format!("\\u{{{:x}}}", c as u32));
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// The writer for tracing, and the guard that writes the last lines at the end of `main`.
/// Starts the thread that writes the lines out. `plain`: the log is not coloured (see
/// [`request`]).
pub fn init(plain: bool) -> (Writer, Guard) {
    let pending = Pending::default();
    if plain {
        let _ = PLAIN.set(pending.clone());
    }
    let thread_pending = pending.clone();
    let started = std::thread::Builder::new()
        .name("log-writer".into())
        .spawn(move || {
            loop {
                thread_pending.wait();
                std::thread::sleep(EVERY);
                thread_pending.write_out();
            }
        });
    if let Err(e) = started {
        // Without the thread the lines would only come out at exit: say so at once.
        let _ = writeln!(
            std::io::stderr(),
            "catalog-server: no thread for the log ({e}); log lines are written at exit"
        );
    }
    (Writer(pending.clone()), Guard(pending))
}

#[cfg(test)]
mod tests {
    use super::clean;

    #[test]
    fn control_characters_are_escaped_and_the_rest_is_borrowed() {
        assert!(matches!(
            clean("GET /products/1 \"abc\"\tx"),
            std::borrow::Cow::Borrowed(_)
        ));
        assert_eq!(
            clean("a\x1b[31mb\u{9b}c\x7f"),
            "a\\u{1b}[31mb\\u{9b}c\\u{7f}"
        );
        assert_eq!(clean("caf\u{e9}"), "caf\u{e9}");
    }
}
