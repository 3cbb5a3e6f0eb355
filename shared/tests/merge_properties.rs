//! Property tests of the three-way field merge (`catalog_shared::merge`): identity, one-sided
//! changes, picks, and the mine/theirs symmetry, on records drawn from small value sets (so
//! that sides often agree) and sometimes from arbitrary text.

use catalog_shared::merge::{FieldOutcome, Side, ThreeWayMerge};
use catalog_shared::product::{Field, ProductFields, Status};
use proptest::prelude::*;

fn text(few: &'static [&'static str]) -> impl Strategy<Value = String> {
    prop_oneof![
        4 => prop::sample::select(few).prop_map(str::to_string),
        1 => "\\PC{0,8}",
    ]
}

fn fields() -> impl Strategy<Value = ProductFields> {
    (
        text(&["A-1", "B-2"]),
        text(&["Lamp", "Desk lamp"]),
        text(&["", "Brass"]),
        prop_oneof![4 => prop::sample::select(vec![100i64, 200]), 1 => any::<i64>()],
        prop::sample::select(Status::ALL.to_vec()),
    )
        .prop_map(
            |(sku, name, description, price_cents, status)| ProductFields {
                sku,
                name,
                description,
                price_cents,
                status,
            },
        )
}

/// A pick for each field, as a person would make them in the conflict panel.
fn picks() -> impl Strategy<Value = [Side; 5]> {
    prop::array::uniform5(prop_oneof![Just(Side::Mine), Just(Side::Theirs)])
}

fn index(f: Field) -> usize {
    Field::ALL.iter().position(|x| *x == f).unwrap()
}

fn flip(s: Side) -> Side {
    match s {
        Side::Mine => Side::Theirs,
        Side::Theirs => Side::Mine,
    }
}

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|c| c.parse().ok())
            .unwrap_or(4096),
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config())]

    /// Merging a record with itself on all three sides is the record, with no conflict.
    #[test]
    fn identical_sides_are_the_identity(x in fields(), p in picks()) {
        let m = ThreeWayMerge::new(x.clone(), x.clone(), x.clone());
        prop_assert!(m.conflicts().is_empty());
        for f in Field::ALL {
            prop_assert_eq!(m.outcome(f), FieldOutcome::Unchanged);
        }
        prop_assert_eq!(m.result(|f| p[index(f)]), x);
    }

    /// A field changed on one side only takes that side's value, whatever the picks; a
    /// field changed on neither keeps the base.
    #[test]
    fn a_one_sided_change_takes_that_side(base in fields(), mine in fields(), theirs in fields(), p in picks()) {
        let m = ThreeWayMerge::new(base.clone(), mine.clone(), theirs.clone());
        let r = m.result(|f| p[index(f)]);
        for f in Field::ALL {
            let mine_changed = !base.same(&mine, f);
            let theirs_changed = !base.same(&theirs, f);
            match (mine_changed, theirs_changed) {
                (true, false) => {
                    prop_assert_eq!(m.outcome(f), FieldOutcome::Mine);
                    prop_assert!(r.same(&mine, f), "{:?}", f);
                }
                (false, true) => {
                    prop_assert_eq!(m.outcome(f), FieldOutcome::Theirs);
                    prop_assert!(r.same(&theirs, f), "{:?}", f);
                }
                (false, false) => {
                    prop_assert_eq!(m.outcome(f), FieldOutcome::Unchanged);
                    prop_assert!(r.same(&base, f), "{:?}", f);
                }
                (true, true) => {}
            }
        }
    }

    /// Every field of the result is one of base, mine or theirs: the picked side on a
    /// conflict, the common value when both made the same change. A conflict is exactly a
    /// field where all three differ, and only conflicts consult the picks.
    #[test]
    fn every_field_comes_from_a_side_and_picks_decide_only_conflicts(base in fields(), mine in fields(), theirs in fields(), p in picks()) {
        let m = ThreeWayMerge::new(base.clone(), mine.clone(), theirs.clone());
        let consulted = std::cell::RefCell::new(Vec::new());
        let r = m.result(|f| { consulted.borrow_mut().push(f); p[index(f)] });
        let mut conflicts = Vec::new();
        for f in Field::ALL {
            prop_assert!(r.same(&base, f) || r.same(&mine, f) || r.same(&theirs, f), "{:?}", f);
            let all_differ = !base.same(&mine, f) && !base.same(&theirs, f) && !mine.same(&theirs, f);
            prop_assert_eq!(m.outcome(f) == FieldOutcome::Conflict, all_differ, "{:?}", f);
            match m.outcome(f) {
                FieldOutcome::Conflict => {
                    conflicts.push(f);
                    let want = if p[index(f)] == Side::Mine { &mine } else { &theirs };
                    prop_assert!(r.same(want, f), "{:?}", f);
                }
                FieldOutcome::Same => prop_assert!(r.same(&mine, f) && r.same(&theirs, f)),
                _ => {}
            }
        }
        prop_assert_eq!(m.conflicts(), conflicts.clone());
        let mut asked = consulted.into_inner();
        asked.sort();
        asked.dedup();
        prop_assert!(asked.iter().all(|f| conflicts.contains(f)), "picks asked for {:?}, conflicts {:?}", asked, conflicts);
    }

    /// Swapping mine and theirs swaps the one-sided outcomes, keeps the conflicts, and
    /// with the picks flipped gives the same record.
    #[test]
    fn swapping_sides_is_symmetric(base in fields(), mine in fields(), theirs in fields(), p in picks()) {
        let m = ThreeWayMerge::new(base.clone(), mine.clone(), theirs.clone());
        let s = ThreeWayMerge::new(base, theirs, mine);
        for f in Field::ALL {
            let swapped = match m.outcome(f) {
                FieldOutcome::Mine => FieldOutcome::Theirs,
                FieldOutcome::Theirs => FieldOutcome::Mine,
                other => other,
            };
            prop_assert_eq!(s.outcome(f), swapped, "{:?}", f);
        }
        prop_assert_eq!(m.conflicts(), s.conflicts());
        prop_assert_eq!(m.result(|f| p[index(f)]), s.result(|f| flip(p[index(f)])));
    }

    /// Merging again on top of a merge changes nothing: the result against theirs is only
    /// my side's changes, and the result against itself is the identity.
    #[test]
    fn a_merged_record_merges_to_itself(base in fields(), mine in fields(), theirs in fields(), p in picks()) {
        let r = ThreeWayMerge::new(base, mine, theirs.clone()).result(|f| p[index(f)]);
        let again = ThreeWayMerge::new(theirs.clone(), r.clone(), theirs);
        prop_assert!(again.conflicts().is_empty());
        prop_assert_eq!(again.result(|f| p[index(f)]), r);
    }
}
