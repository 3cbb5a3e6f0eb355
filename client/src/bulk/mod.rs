//! `catalog export` and `catalog import`: bulk edits from a spreadsheet without lost
//! updates. Every exported row keeps its product's ETag, and the import turns each row into
//! a conditional write carrying an Idempotency-Key, so a product a colleague changed since
//! the export becomes a conflict (written to a file the person fixes and imports again),
//! never an overwrite, and running the same file twice never writes a row twice.
//!
//! Knows no UI type: `record` is the file format, `server` the few HTTP requests,
//! `export` and `import` the two commands, `conflicts` the file of rows that met a 412,
//! `progress` what the person sees meanwhile.

pub mod conflicts;
pub mod export;
pub mod import;
mod progress;
pub mod record;
mod server;

pub use server::Connection;
