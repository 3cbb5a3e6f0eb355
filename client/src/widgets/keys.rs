//! A key binding as the status bar and the help show it; each screen keeps a table of
//! them, so neither the bar nor the help can drift from the keys.

/// One key binding as a person reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hint {
    pub keys: &'static str,
    pub does: &'static str,
    /// Shown in the status bar (the rest only in help).
    pub bar: bool,
}

pub const fn h(keys: &'static str, does: &'static str, bar: bool) -> Hint {
    Hint { keys, does, bar }
}
