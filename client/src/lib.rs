//! The catalog terminal client: a live table of products with their ETags, an editor,
//! and a conflict panel that turns a 412 into an informed reload, overwrite or merge.
//!
//! `app` runs the loop and routes messages; `state` holds the data and the pure `update`;
//! `screens` has one module per screen (its state, its keys, its drawing); `widgets` what
//! several screens share; `net` does HTTP and the event stream and knows no UI type;
//! `keymap` builds the status bar and the help from the screens' key tables. `bulk` is
//! `catalog export` and `catalog import`, apart from the terminal UI.

pub mod action;
pub mod app;
pub mod bot;
pub mod bulk;
pub mod draft;
pub mod guide;
pub mod keymap;
pub mod net;
pub mod screens;
pub mod state;
pub mod widgets;

#[cfg(test)]
mod fixtures;
#[cfg(test)]
mod tests;
