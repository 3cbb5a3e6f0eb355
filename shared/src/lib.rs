//! Types and rules shared by the catalog server and client: the product model and its
//! validation, entity tags and precondition evaluation (RFC 9110), the change-event format,
//! problem details (RFC 9457), and the three-way field merge. No I/O.

#[cfg(feature = "utoipa")]
pub mod body;
pub mod etag;
pub mod event;
pub mod merge;
pub mod precondition;
pub mod presence;
pub mod problem;
pub mod product;

/// The header that names the acting user.
pub const USER_HEADER: &str = "X-User";
