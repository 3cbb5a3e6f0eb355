//! A real terminal for end-to-end tests: a private tmux server (its own socket, no user
//! config, `escape-time 0`, fixed pane sizes) that runs the real client binary, types
//! into it with `send-keys`, and reads the screen with `capture-pane`.

use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

static NEXT: AtomicU32 = AtomicU32::new(0);

pub struct Tmux {
    pub socket: String,
    started: bool,
    /// Each test's clients keep their drafts here (`XDG_STATE_HOME`), never in the home
    /// of whoever runs the tests, and never where another test's clients would find them.
    state_home: tempfile::TempDir,
}

impl Default for Tmux {
    fn default() -> Self {
        Self::new()
    }
}

impl Tmux {
    pub fn new() -> Tmux {
        let n = NEXT.fetch_add(1, Ordering::SeqCst);
        Tmux {
            socket: format!("catalog-e2e-{}-{n}", std::process::id()),
            started: false,
            state_home: tempfile::tempdir().expect("a temporary directory"),
        }
    }

    fn cmd(&self) -> Command {
        let mut c = Command::new("tmux");
        c.args(["-L", &self.socket, "-f", "/dev/null"]);
        // CI has no terminal of its own; tmux needs a TERM to describe the panes.
        if std::env::var_os("TERM").is_none_or(|t| t.is_empty() || t == "dumb") {
            c.env("TERM", "xterm-256color");
        }
        c
    }

    pub fn run(&self, args: &[&str]) -> anyhow::Result<String> {
        let out = self
            .cmd()
            .args(args)
            .output()
            .context("running tmux (is it installed?)")?;
        if !out.status.success() {
            bail!(
                "tmux {args:?} failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Starts `command` (a shell command line) in a new session `name` of the given size.
    pub fn start(
        &mut self,
        name: &str,
        width: u16,
        height: u16,
        command: &str,
    ) -> anyhow::Result<()> {
        let state_home = format!("XDG_STATE_HOME={}", self.state_home.path().display());
        self.run(&[
            "new-session",
            "-d",
            "-e",
            &state_home,
            "-s",
            name,
            "-x",
            &width.to_string(),
            "-y",
            &height.to_string(),
            command,
        ])?;
        if !self.started {
            self.run(&["set-option", "-g", "escape-time", "0"])?;
            self.run(&["set-option", "-g", "remain-on-exit", "on"])?;
            self.started = true;
        }
        Ok(())
    }

    /// Where this test's clients keep their drafts (their `XDG_STATE_HOME`).
    pub fn state_home(&self) -> &std::path::Path {
        self.state_home.path()
    }

    /// Sends keys by tmux name (`Enter`, `Tab`, `C-s`, `Down`, `q`).
    pub fn keys(&self, target: &str, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", target];
        args.extend_from_slice(keys);
        self.run(&args).expect("send-keys");
    }

    /// Types literal text.
    pub fn type_text(&self, target: &str, text: &str) {
        self.run(&["send-keys", "-t", target, "-l", text])
            .expect("send-keys -l");
    }

    /// The visible screen of a pane, as text.
    pub fn screen(&self, target: &str) -> String {
        self.run(&["capture-pane", "-p", "-t", target])
            .unwrap_or_default()
    }

    /// The screen plus up to 200 lines of scrollback, wrapped lines joined: for what a
    /// program printed after it left the alternate screen.
    pub fn transcript(&self, target: &str) -> String {
        self.run(&["capture-pane", "-p", "-J", "-S", "-200", "-t", target])
            .unwrap_or_default()
    }

    /// Waits until the pane shows `needle` (also when a long message wraps across lines);
    /// on timeout, fails with the screen it had.
    pub fn wait_for(
        &self,
        target: &str,
        needle: &str,
        timeout: Duration,
    ) -> anyhow::Result<String> {
        self.wait_until(
            target,
            |s| s.contains(needle) || flat(s).contains(needle),
            timeout,
        )
        .with_context(|| format!("waiting for {needle:?} on {target}"))
    }

    pub fn wait_until(
        &self,
        target: &str,
        done: impl Fn(&str) -> bool,
        timeout: Duration,
    ) -> anyhow::Result<String> {
        self.wait_on(target, done, timeout, Self::screen)
    }

    /// Waits until the transcript (screen and scrollback, wrapped lines joined) shows
    /// `needle`: for what a program printed as it exited, which may have scrolled.
    pub fn wait_for_printed(
        &self,
        target: &str,
        needle: &str,
        timeout: Duration,
    ) -> anyhow::Result<String> {
        self.wait_on(
            target,
            |s| s.contains(needle) || flat(s).contains(needle),
            timeout,
            Self::transcript,
        )
        .with_context(|| format!("waiting for {needle:?} to be printed on {target}"))
    }

    fn wait_on(
        &self,
        target: &str,
        done: impl Fn(&str) -> bool,
        timeout: Duration,
        read: fn(&Self, &str) -> String,
    ) -> anyhow::Result<String> {
        let deadline = Instant::now() + timeout;
        loop {
            let screen = read(self, target);
            if done(&screen) {
                return Ok(screen);
            }
            if Instant::now() > deadline {
                bail!("the screen never matched within {timeout:?}; it shows:\n{screen}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.cmd().arg("kill-server").output();
    }
}

/// The screen as one line: lines trimmed and joined by single spaces, so text that the
/// client wrapped reads as it was written.
pub fn flat(screen: &str) -> String {
    screen.split_whitespace().collect::<Vec<_>>().join(" ")
}
