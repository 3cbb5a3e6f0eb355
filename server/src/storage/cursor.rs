//! Positions in the change log, as event ids carry them. Each backend has its own form:
//! SQLite's sequence number (its one writer logs in commit order), and PostgreSQL's
//! (transaction id, row id), published below the snapshot horizon in that order
//! (STORAGE.md). An event id is `<database>:<cursor>`; a cursor is read back only in the
//! form of the backend that wrote it, so an id of the other form names no position here.

use std::fmt;

/// One position in the change log: the last change a subscriber (or the publisher) has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Cursor {
    /// SQLite: the change's sequence number.
    Seq(i64),
    /// PostgreSQL: the id of the transaction that logged the change, and the row's id.
    Tx { tx: u64, id: i64 },
}

/// Which form of cursor a backend uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CursorKind {
    Seq,
    Tx,
}

impl CursorKind {
    /// Before the first change.
    pub fn start(self) -> Cursor {
        match self {
            CursorKind::Seq => Cursor::Seq(0),
            CursorKind::Tx => Cursor::Tx { tx: 0, id: 0 },
        }
    }

    /// A cursor as [`Cursor`]'s `Display` writes it in this form; `None` for anything else
    /// (the other form included).
    pub fn parse(self, text: &str) -> Option<Cursor> {
        let number = |s: &str| -> Option<u64> {
            (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
                .then(|| s.parse().ok())
                .flatten()
        };
        match self {
            CursorKind::Seq => number(text)
                .and_then(|n| i64::try_from(n).ok())
                .map(Cursor::Seq),
            CursorKind::Tx => {
                let (tx, id) = text.split_once('.')?;
                Some(Cursor::Tx {
                    tx: number(tx)?,
                    id: i64::try_from(number(id)?).ok()?,
                })
            }
        }
    }
}

impl Cursor {
    /// Whether this is the change right after `prev` with nothing possible between them
    /// (only sequence numbers say so; PostgreSQL's positions are known only from the log).
    pub fn follows(self, prev: Cursor) -> bool {
        matches!((prev, self), (Cursor::Seq(p), Cursor::Seq(n)) if n == p + 1)
    }

    /// The number `ChangeEvent.seq`, `ready` and `reset` carry: the sequence number, or
    /// the change-log row's id.
    pub fn number(self) -> i64 {
        match self {
            Cursor::Seq(n) => n,
            Cursor::Tx { id, .. } => id,
        }
    }
}

impl fmt::Display for Cursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Cursor::Seq(n) => write!(f, "{n}"),
            Cursor::Tx { tx, id } => write!(f, "{tx}.{id}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_form_reads_back_its_own_text_and_nothing_else() {
        let seq = Cursor::Seq(42);
        let tx = Cursor::Tx {
            tx: 7_000_000_123,
            id: 9,
        };
        assert_eq!(CursorKind::Seq.parse(&seq.to_string()), Some(seq));
        assert_eq!(CursorKind::Tx.parse(&tx.to_string()), Some(tx));
        assert_eq!(tx.to_string(), "7000000123.9");
        for bad in ["", "-1", "+1", "1.", ".1", "1.2.3", "a", "1 "] {
            assert_eq!(CursorKind::Seq.parse(bad), None, "{bad:?}");
            assert_eq!(CursorKind::Tx.parse(bad), None, "{bad:?}");
        }
        assert_eq!(CursorKind::Seq.parse("7.9"), None, "the other form");
        assert_eq!(CursorKind::Tx.parse("42"), None, "the other form");
    }

    #[test]
    fn transaction_order_comes_before_row_order() {
        let a = Cursor::Tx { tx: 5, id: 100 };
        let b = Cursor::Tx { tx: 6, id: 3 };
        assert!(a < b);
        assert!(Cursor::Seq(3).follows(Cursor::Seq(2)));
        assert!(!b.follows(a));
    }
}
