//! The three-way field merge behind the conflict panel: base (the version an edit started
//! from), mine (the edit) and theirs (the server's current version), compared field by field.

use crate::product::{Field, ProductFields};

/// How one field compares across base, mine and theirs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldOutcome {
    /// Nobody changed it.
    Unchanged,
    /// Only I changed it: the result takes mine.
    Mine,
    /// Only they changed it: the result takes theirs.
    Theirs,
    /// Both changed it to the same value.
    Same,
    /// Both changed it, differently: a person must pick.
    Conflict,
}

/// Which side a person picked for a conflicting field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Mine,
    Theirs,
}

/// A three-way comparison of one record, and the merged result for given picks.
///
/// ```
/// use catalog_shared::merge::{ThreeWayMerge, FieldOutcome, Side};
/// use catalog_shared::product::{Field, ProductFields, Status};
/// let base = ProductFields { sku: "BBQ-1".into(), name: "Grill".into(), description: "".into(), price_cents: 39900, status: Status::InStock };
/// let mine = ProductFields { status: Status::OutOfStock, ..base.clone() };
/// let theirs = ProductFields { price_cents: 30000, ..base.clone() };
/// let merge = ThreeWayMerge::new(base, mine, theirs);
/// assert!(merge.conflicts().is_empty());
/// let result = merge.result(|_| Side::Mine);
/// assert_eq!((result.price_cents, result.status), (30000, Status::OutOfStock));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThreeWayMerge {
    pub base: ProductFields,
    pub mine: ProductFields,
    pub theirs: ProductFields,
}

impl ThreeWayMerge {
    pub fn new(base: ProductFields, mine: ProductFields, theirs: ProductFields) -> Self {
        ThreeWayMerge { base, mine, theirs }
    }

    /// How `field` compares.
    pub fn outcome(&self, field: Field) -> FieldOutcome {
        let mine_changed = !self.base.same(&self.mine, field);
        let theirs_changed = !self.base.same(&self.theirs, field);
        match (mine_changed, theirs_changed) {
            (false, false) => FieldOutcome::Unchanged,
            (true, false) => FieldOutcome::Mine,
            (false, true) => FieldOutcome::Theirs,
            (true, true) if self.mine.same(&self.theirs, field) => FieldOutcome::Same,
            (true, true) => FieldOutcome::Conflict,
        }
    }

    /// The fields changed differently on both sides, in editor order.
    pub fn conflicts(&self) -> Vec<Field> {
        Field::ALL
            .into_iter()
            .filter(|f| self.outcome(*f) == FieldOutcome::Conflict)
            .collect()
    }

    /// The merged record: each side's one-sided changes, and `pick(field)` for conflicts.
    pub fn result(&self, pick: impl Fn(Field) -> Side) -> ProductFields {
        let mut out = self.theirs.clone();
        for field in Field::ALL {
            let from_mine = match self.outcome(field) {
                FieldOutcome::Mine => true,
                FieldOutcome::Conflict => pick(field) == Side::Mine,
                _ => false,
            };
            if from_mine {
                out.take(&self.mine, field);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::product::Status;
    use proptest::prelude::*;

    fn fields() -> impl Strategy<Value = ProductFields> {
        (
            prop_oneof![Just("A"), Just("B")],
            prop_oneof![Just("n1"), Just("n2")],
            prop_oneof![Just(""), Just("d")],
            prop_oneof![Just(100i64), Just(200)],
            prop_oneof![Just(Status::InStock), Just(Status::OutOfStock)],
        )
            .prop_map(|(s, n, d, p, st)| ProductFields {
                sku: s.into(),
                name: n.into(),
                description: d.into(),
                price_cents: p,
                status: st,
            })
    }

    proptest! {
        #[test]
        fn one_sided_changes_are_kept(base in fields(), mine in fields(), theirs in fields(), all_mine in any::<bool>()) {
            let m = ThreeWayMerge::new(base.clone(), mine.clone(), theirs.clone());
            let side = if all_mine { Side::Mine } else { Side::Theirs };
            let r = m.result(|_| side);
            for f in Field::ALL {
                match m.outcome(f) {
                    FieldOutcome::Unchanged => prop_assert!(r.same(&base, f)),
                    FieldOutcome::Mine | FieldOutcome::Same => prop_assert!(r.same(&mine, f)),
                    FieldOutcome::Theirs => prop_assert!(r.same(&theirs, f)),
                    FieldOutcome::Conflict => {
                        let want = if all_mine { &mine } else { &theirs };
                        prop_assert!(r.same(want, f));
                    }
                }
            }
        }

        #[test]
        fn without_conflicts_picks_do_not_matter(base in fields(), mine in fields(), theirs in fields()) {
            let m = ThreeWayMerge::new(base, mine, theirs);
            if m.conflicts().is_empty() {
                prop_assert_eq!(m.result(|_| Side::Mine), m.result(|_| Side::Theirs));
            }
        }

        #[test]
        fn identities(base in fields(), x in fields()) {
            // Only I changed things: the result is mine. Only they did: theirs.
            let only_mine = ThreeWayMerge::new(base.clone(), x.clone(), base.clone());
            prop_assert!(only_mine.conflicts().is_empty());
            prop_assert_eq!(only_mine.result(|_| Side::Theirs), x.clone());
            let only_theirs = ThreeWayMerge::new(base.clone(), base.clone(), x.clone());
            prop_assert_eq!(only_theirs.result(|_| Side::Mine), x.clone());
            // Both made the same edit: no conflict.
            let same = ThreeWayMerge::new(base, x.clone(), x.clone());
            prop_assert!(same.conflicts().is_empty());
            prop_assert_eq!(same.result(|_| Side::Mine), x);
        }

        #[test]
        fn all_mine_and_all_theirs_are_the_sides_on_conflicts(base in fields(), mine in fields(), theirs in fields()) {
            let m = ThreeWayMerge::new(base, mine.clone(), theirs.clone());
            let r = m.result(|_| Side::Theirs);
            for f in m.conflicts() { prop_assert!(r.same(&theirs, f)); prop_assert!(!r.same(&mine, f)); }
        }
    }
}
