//! The catalog terminal client: a live table of products with their ETags, an editor,
//! and a conflict panel that turns a 412 into an informed reload, overwrite or merge.
//!
//! `app` runs the loop; `state` holds the open screen and the pure `update`, which sends
//! keys and replies to the screen they belong to and applies the effects the screens
//! return; `model` is the data every screen shares; `screens` has one module per screen
//! (its state, its keys, its update, its drawing); `view` draws the frame around them;
//! `widgets` what several screens share; `net` does HTTP and the event stream and knows no
//! UI type; `keymap` builds the status bar from the keys the open screen reports. Arrows
//! point one way: app -> state -> screens -> model, and nothing below imports above. `bulk`
//! is `catalog export` and `catalog import`, apart from the terminal UI.

pub mod action;
pub mod app;
pub mod bot;
pub mod bulk;
pub mod draft;
pub mod guide;
pub mod keymap;
pub mod model;
pub mod net;
pub mod screens;
pub mod state;
pub mod view;
pub mod widgets;

#[cfg(test)]
mod fixtures;
#[cfg(test)]
mod tests;
