//! The loop: terminal input, actions from the network tasks and a clock tick are merged
//! into one stream of actions; a burst of them is applied before one frame is drawn.
//! Network calls run on their own tasks, never on the render path.

use std::time::{Duration, SystemTime};

use anyhow::bail;
use crossterm::event::{Event, EventStream};
use futures_util::StreamExt;
use ratatui::DefaultTerminal;
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};
use tokio::task::JoinHandle;

use crate::action::Action;
use crate::net::{Api, Command};
use crate::state::{State, update};
use crate::view;

/// A client: its state, and the tasks that talk to the server for it.
pub struct App {
    pub state: State,
    api: Api,
    tx: UnboundedSender<Action>,
    rx: UnboundedReceiver<Action>,
    events: Option<JoinHandle<()>>,
    /// The open edit's draft file, kept in step on every tick.
    pub drafts: crate::draft::Keeper,
}

impl App {
    /// A client for `server` acting as `user`. Call inside a tokio runtime.
    pub fn new(server: &str, user: &str) -> anyhow::Result<App> {
        let (tx, rx) = unbounded_channel();
        let replies = tx.clone();
        let sink: crate::net::Sink = std::sync::Arc::new(move |reply| {
            // The receiver is gone only when the client is quitting.
            let _ = replies.send(Action::Net(reply));
        });
        let api = Api::new(server, user, sink)?;
        let mut state = State::new(user, server, SystemTime::now());
        state.model.client_id = api.client_id().to_string();
        Ok(App {
            state,
            api,
            tx,
            rx,
            events: None,
            drafts: crate::draft::Keeper::default(),
        })
    }

    /// Sends `Authorization: Bearer <token>` with every request (a server with `--users`).
    pub fn set_token(&mut self, token: Option<&str>) {
        self.api.set_token(token);
    }

    /// Lists the drafts on disk and starts following the event stream. The catalog is
    /// loaded once the stream is established (its `ready` event), so no change falls in
    /// between.
    pub fn start(&mut self) {
        self.dispatch(Action::DraftsFound(crate::draft::list(
            &self.state.model.user,
            &self.state.model.server,
        )));
        self.events = Some(tokio::spawn(self.api.clone().follow_events()));
    }

    /// A sender for injecting actions (keys, in tests).
    pub fn sender(&self) -> UnboundedSender<Action> {
        self.tx.clone()
    }

    /// Applies one action, starts the requests it asks for, and removes the draft files
    /// the user discarded.
    pub fn dispatch(&mut self, action: Action) {
        for command in update(&mut self.state, action) {
            // A save's key goes to disk with its draft before the request goes out:
            // after a crash, the same save re-sent carries the same key.
            if matches!(command, Command::Save { .. }) {
                self.sync_draft();
            }
            self.api.run(command);
        }
        for path in std::mem::take(&mut self.state.discarded_drafts) {
            if let Err(e) = std::fs::remove_file(&path)
                && e.kind() != std::io::ErrorKind::NotFound
            {
                let message = format!("removing {}: {e}", path.display());
                self.dispatch(Action::DraftFailed(message));
            }
        }
    }

    /// Applies every action that has arrived until `done` holds, or fails after `timeout`.
    pub async fn run_until(
        &mut self,
        timeout: Duration,
        done: impl Fn(&State) -> bool,
    ) -> anyhow::Result<()> {
        let deadline = tokio::time::Instant::now() + timeout;
        while !done(&self.state) {
            match tokio::time::timeout_at(deadline, self.rx.recv()).await {
                Ok(Some(action)) => {
                    self.state.model.now = SystemTime::now();
                    self.dispatch(action);
                }
                Ok(None) => bail!("the action channel closed"),
                Err(_) => bail!("the expected state was not reached within {timeout:?}"),
            }
        }
        Ok(())
    }

    /// Writes the open edit's draft if it changed (or removes it once saved or discarded).
    fn sync_draft(&mut self) {
        if let Err(e) = self.drafts.sync(self.state.edit_for_drafts()) {
            self.dispatch(Action::DraftFailed(format!("{e:#}")));
        }
    }

    /// The interactive loop, until the user quits or the process is told to stop
    /// (SIGTERM, or SIGHUP when the terminal is closed).
    pub async fn run(&mut self, terminal: &mut DefaultTerminal) -> anyhow::Result<()> {
        let mut input = EventStream::new();
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        let mut stop = stop_signals();
        let size = terminal.size()?;
        self.dispatch(Action::Resize(size.width, size.height));
        terminal.draw(|f| view::draw(f, &mut self.state))?;
        loop {
            tokio::select! {
                event = input.next() => match event {
                    Some(Ok(Event::Key(key))) => self.dispatch(Action::Key(key)),
                    Some(Ok(Event::Resize(w, h))) => self.dispatch(Action::Resize(w, h)),
                    Some(Ok(Event::Mouse(m))) => self.dispatch(Action::Mouse(m)),
                    Some(Ok(_)) => continue,
                    Some(Err(e)) => bail!("reading the terminal failed: {e}"),
                    None => break,
                },
                Some(action) = self.rx.recv() => {
                    self.state.model.now = SystemTime::now();
                    self.dispatch(action);
                    // A burst of events becomes one frame, but a flood never keeps the
                    // screen from being drawn for more than 50 ms.
                    let budget = std::time::Instant::now() + Duration::from_millis(50);
                    while std::time::Instant::now() < budget
                        && let Ok(more) = self.rx.try_recv()
                    {
                        self.dispatch(more);
                    }
                }
                _ = tick.tick() => {
                    self.dispatch(Action::Tick(SystemTime::now()));
                    self.sync_draft();
                }
                Some(()) = stop.recv() => break,
            }
            if self.state.quit {
                break;
            }
            terminal.draw(|f| view::draw(f, &mut self.state))?;
        }
        Ok(())
    }
}

/// SIGTERM and SIGHUP (the terminal was closed) end the loop like a quit, so the caller
/// writes the draft and restores the terminal.
fn stop_signals() -> UnboundedReceiver<()> {
    let (tx, rx) = unbounded_channel();
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        for kind in [SignalKind::terminate(), SignalKind::hangup()] {
            if let Ok(mut s) = signal(kind) {
                let tx = tx.clone();
                tokio::spawn(async move {
                    while s.recv().await.is_some() {
                        let _ = tx.send(());
                    }
                });
            }
        }
    }
    rx
}

impl Drop for App {
    fn drop(&mut self) {
        if let Some(h) = self.events.take() {
            h.abort();
        }
    }
}
