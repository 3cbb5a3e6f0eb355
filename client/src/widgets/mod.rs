//! What several screens draw or declare.

pub mod keys;
pub mod text;
