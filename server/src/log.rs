//! The server's log, written to stderr by a thread of its own. Each line (one per request)
//! is appended to a buffer in memory; the first line into an empty buffer wakes the thread,
//! which lets lines gather for a millisecond and writes them in one `write`: under load
//! that is many lines per system call instead of one each (an unbuffered `write` per request was 12% of the server's CPU under GET
//! load, BENCHMARKS.md), and a line still reaches stderr within about a millisecond. The
//! guard [`init`] returns writes what is left when `main` ends, before an error of `main`
//! is printed.

use std::io::Write;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

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

/// One event's text, appended to the pending lines.
pub struct Appender(Pending);

impl Write for Appender {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        let (lines, arrived) = &*(self.0).0;
        let was_empty = match lines.lock() {
            Ok(mut pending) => {
                let was_empty = pending.is_empty();
                pending.extend_from_slice(bytes);
                was_empty
            }
            Err(_) => false,
        };
        // Only the first line of a batch wakes the writer.
        if was_empty {
            arrived.notify_one();
        }
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

/// The writer for tracing, and the guard that writes the last lines at the end of `main`.
/// Starts the thread that writes the lines out.
pub fn init() -> (Writer, Guard) {
    let pending = Pending::default();
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
