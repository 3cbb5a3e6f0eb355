//! The catalog terminal client: a live table of products with their ETags, an editor,
//! and a conflict panel that turns a 412 into an informed reload, overwrite or merge.
//!
//! `state` holds the data and the pure `update`; `views` draws it; `api` does HTTP and
//! the event stream; `app` runs the loop.

pub mod action;
pub mod app;
pub mod bot;
pub mod draft;
pub mod guide;
pub mod keymap;
pub mod net;
pub mod state;
pub mod views;

#[cfg(test)]
mod fixtures;
#[cfg(test)]
mod tests;
