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
use crate::api::Api;
use crate::state::{State, update};
use crate::views;

/// A client: its state, and the tasks that talk to the server for it.
pub struct App {
    pub state: State,
    api: Api,
    tx: UnboundedSender<Action>,
    rx: UnboundedReceiver<Action>,
    events: Option<JoinHandle<()>>,
}

impl App {
    /// A client for `server` acting as `user`. Call inside a tokio runtime.
    pub fn new(server: &str, user: &str) -> anyhow::Result<App> {
        let (tx, rx) = unbounded_channel();
        let api = Api::new(server, user, tx.clone())?;
        Ok(App {
            state: State::new(user, server, SystemTime::now()),
            api,
            tx,
            rx,
            events: None,
        })
    }

    /// Loads the catalog and starts following the event stream.
    pub fn start(&mut self) {
        for command in self.state.start() {
            self.api.run(command);
        }
        self.events = Some(tokio::spawn(self.api.clone().follow_events()));
    }

    /// A sender for injecting actions (keys, in tests).
    pub fn sender(&self) -> UnboundedSender<Action> {
        self.tx.clone()
    }

    /// Applies one action and starts the commands it asks for.
    pub fn dispatch(&mut self, action: Action) {
        for command in update(&mut self.state, action) {
            self.api.run(command);
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
                    self.state.now = SystemTime::now();
                    self.dispatch(action);
                }
                Ok(None) => bail!("the action channel closed"),
                Err(_) => bail!("the expected state was not reached within {timeout:?}"),
            }
        }
        Ok(())
    }

    /// The interactive loop, until the user quits.
    pub async fn run(&mut self, terminal: &mut DefaultTerminal) -> anyhow::Result<()> {
        let mut input = EventStream::new();
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        terminal.draw(|f| views::draw(f, &self.state))?;
        loop {
            tokio::select! {
                event = input.next() => match event {
                    Some(Ok(Event::Key(key))) => self.dispatch(Action::Key(key)),
                    Some(Ok(Event::Resize(_, _))) => self.dispatch(Action::Resize),
                    Some(Ok(_)) => continue,
                    Some(Err(e)) => bail!("reading the terminal failed: {e}"),
                    None => break,
                },
                Some(action) = self.rx.recv() => {
                    self.state.now = SystemTime::now();
                    self.dispatch(action);
                    // A burst of events becomes one frame.
                    while let Ok(more) = self.rx.try_recv() {
                        self.dispatch(more);
                    }
                }
                _ = tick.tick() => self.dispatch(Action::Tick(SystemTime::now())),
            }
            if self.state.quit {
                break;
            }
            terminal.draw(|f| views::draw(f, &self.state))?;
        }
        Ok(())
    }
}

impl Drop for App {
    fn drop(&mut self) {
        if let Some(h) = self.events.take() {
            h.abort();
        }
    }
}
