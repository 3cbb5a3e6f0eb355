//! The guided demo: a line above the status bar that walks a newcomer through the classic
//! race on the seeded BBQ (product 1), one step at a time, names the window each step is
//! for, and says what really happened on the wire: the other window's save, a third
//! writer's (a bot's) edit, a 410 for a deleted product, a merge. A pure function of the
//! state and the server's answers, so it follows whatever the person does, on script or
//! off it.

use catalog_shared::product::{Field, Status, parse_price};

use crate::screens::Screen;
use crate::state::State;

pub use crate::model::Role;

const BBQ: i64 = 1;
const NEW_PRICE: i64 = 30000;

/// The other window's role, as the demo lays them out.
fn partner(role: Role) -> &'static str {
    match role {
        Role::Price => "the other window (bob, on the right)",
        Role::Stock => "the other window (alice, on the left)",
    }
}

/// Whether a change by `by` to the BBQ is the other window's scripted one.
fn is_partner_change(role: Role, by: &str, me: &str, fields: &[Field]) -> bool {
    let theirs = match role {
        Role::Price => Field::Status,
        Role::Stock => Field::Price,
    };
    by != me && by != "seed" && fields.iter().all(|f| *f == theirs)
}

/// The 412 this client received last: (If-Match sent, the server's ETag).
fn last_412(state: &State) -> Option<(String, String)> {
    state
        .model
        .log
        .iter()
        .rev()
        .find(|e| e.status == Some(412))
        .map(|e| {
            (
                e.if_match.clone().unwrap_or_default(),
                e.etag.clone().unwrap_or_default(),
            )
        })
}

/// The guide's line for a window `width` columns wide: below 60 columns the ETags show
/// their first 8 digits, so the sentences fit.
pub fn text(state: &State, width: u16) -> Option<String> {
    let line = line(state)?;
    Some(if width < 60 {
        crate::screens::short_etags(&line)
    } else {
        line
    })
}

/// The guide's current line, or `None` when there is no guide.
pub fn line(state: &State) -> Option<String> {
    let role = state.model.guide?;
    let me = &state.model.user;
    // Deleted, seen in the conflict panel (a save answered 410) or in the catalog.
    if state.screen() == Screen::Conflict
        && let Some(panel) = state.conflict().filter(|c| c.id == BBQ)
        && let Some((by, _)) = &panel.deleted
    {
        return Some(format!(
            "{by} deleted the BBQ, so the server answered your save 410 Gone (not 412: there is nothing left to merge with). c recreates it from your edit as a new product (a POST), x discards your edit."
        ));
    }
    let Some(bbq) = state.model.products.get(&BBQ) else {
        return Some(if state.model.tombstones.contains(&BBQ) {
            "Someone deleted the BBQ, so the race is over: a save now gets 410 Gone. Quit (q in both windows) and run ./demo.sh again for a fresh catalog.".into()
        } else if state.model.loaded {
            "The BBQ (product 1) is not in this catalog: start the demo on a fresh database.".into()
        } else {
            "Loading the catalog…".into()
        });
    };
    let editing_bbq = state
        .editor()
        .filter(|e| e.id == Some(BBQ) && state.screen() == Screen::Editor);
    let price_done = bbq.price_cents == NEW_PRICE;
    let stock_done = bbq.status == Status::OutOfStock;

    if state.model.lost_update.is_some() {
        return Some(
            "That was a lost update: the server took your save without If-Match and nothing stopped it. Quit (q in both windows) and run ./demo.sh without --lost-update to see If-Match catch the same race.".into(),
        );
    }
    if price_done && stock_done {
        return Some(format!(
            "Done: version {} of the BBQ has the $300.00 price and out_of_stock. Both edits survived; press l for the headers that did it, h for its history, q to quit.",
            bbq.version
        ));
    }
    if state.screen() == Screen::Conflict
        && let Some(panel) = state.conflict()
    {
        let wire = match last_412(state) {
            Some((sent, current)) => format!(
                "{me} sent If-Match {sent}, the server's ETag is {current}: 412 Precondition Failed."
            ),
            None => "The server answered 412 Precondition Failed.".into(),
        };
        let by = &panel.theirs.updated_by;
        let both = panel.merge.conflicts();
        let next = if both.is_empty() {
            format!(
                "Press m to merge: your change plus {by}'s (no field was changed on both sides)."
            )
        } else {
            let names = both
                .iter()
                .map(|f| f.label())
                .collect::<Vec<_>>()
                .join(", ");
            format!(
                "You and {by} both changed {names}: press m, then pick mine (←) or theirs (→) for each, and Ctrl-S."
            )
        };
        let who = if is_partner_change(role, by, me, &panel.merge.base.changed(&panel.merge.theirs))
        {
            String::new()
        } else {
            format!(
                " Off script: {by} is not the other window but a third writer; the server treats everyone alike."
            )
        };
        return Some(format!("{wire} Nothing was lost.{who} {next}"));
    }
    // Alice saved her price, and someone later put another price over it.
    let my_price_saved = state
        .model
        .log
        .iter()
        .any(|e| e.method == "PUT" && e.path == "/products/1" && e.status == Some(200))
        && role == Role::Price;
    if my_price_saved && !price_done && &bbq.updated_by != me && editing_bbq.is_none() {
        return Some(format!(
            "Your $300.00 is gone: {} saved version {} with the price at {}. With If-Match the server would have refused that save (412); without it, this is a lost update. h shows the history.",
            bbq.updated_by,
            bbq.version,
            catalog_shared::product::format_price(bbq.price_cents)
        ));
    }
    let step = match (role, editing_bbq) {
        (Role::Price, None) if price_done => format!(
            "Saved: the BBQ is now version {} with ETag {}. Now switch to {}: its save is still based on the old ETag.",
            bbq.version,
            bbq.etag,
            partner(role)
        ),
        (Role::Stock, None) if price_done && !stock_done => {
            "The price changed before you opened the BBQ, so no conflict this time. Press Enter on it, set out_of_stock and save: it just works.".into()
        }
        (_, None) => format!(
            "Step 1: both windows open the BBQ. Select BBQ-KETTLE-57 (row 1, ETag {}) and press Enter.",
            bbq.etag
        ),
        (Role::Price, Some(e)) if e.stale.is_some() => {
            let stale = e.stale.as_ref().map(|st| (st.by.clone(), st.fields.clone()));
            let (by, fields) = stale.unwrap_or_default();
            let names = fields.iter().map(|f| f.label()).collect::<Vec<_>>().join(", ");
            if is_partner_change(role, &by, me, &fields) {
                format!(
                    "Off script, but fine: {by} saved the status first this time, so your save will get 412 and the conflict panel; merge with m and both edits survive."
                )
            } else {
                format!(
                    "Off script: {by} (a third writer, not the other window) changed the BBQ's {names} while you edited. Your save will be refused (412) and the conflict panel will show their change: press Ctrl-S."
                )
            }
        }
        (Role::Price, Some(e)) => {
            if parse_price(&e.text(Field::Price)) == Ok(NEW_PRICE) {
                format!(
                    "Step 3: press Ctrl-S. It sends PUT with If-Match: {}, which is still current, so it wins.",
                    e.base.as_ref().map(|b| b.etag.clone()).unwrap_or_default()
                )
            } else {
                format!(
                    "Step 2 (this window, alice): lower the price. Tab twice to price, then Home, Ctrl-K, type 300.00; save once {} has set the status.",
                    partner(role)
                )
            }
        }
        (Role::Stock, Some(e)) => {
            let status_set = e.text(Field::Status) == "out_of_stock";
            let base = e.base.as_ref().map(|b| b.etag.clone()).unwrap_or_default();
            match (&e.stale, status_set) {
                (_, false) => "Step 2 (this window, bob): mark it out of stock. Tab 3 times to status and press ↓ until it says out_of_stock. Don't save yet.".into(),
                (None, true) => format!(
                    "Step 3: now switch to {} and save its price first (Ctrl-S there). Then come back and watch this editor: a banner appears the moment it lands.",
                    partner(role)
                ),
                (Some(stale), true)
                    if !is_partner_change(role, &stale.by, me, &stale.fields) =>
                {
                    format!(
                        "Off script: {} (a third writer, not the other window) changed the BBQ's {} while you edited (now ETag {}). Your save will be refused all the same (412) and the conflict panel will show their change: press Ctrl-S.",
                        stale.by,
                        stale
                            .fields
                            .iter()
                            .map(|f| f.label())
                            .collect::<Vec<_>>()
                            .join(", "),
                        stale.etag
                    )
                }
                (Some(stale), true) if state.model.unsafe_saves => format!(
                    "Step 4: {} saved first. This client was started with --no-if-match: Ctrl-S sends no If-Match at all. Press Ctrl-S and see what is lost.",
                    stale.by
                ),
                // What to do first: in a small window the sentences after it may not fit.
                (Some(stale), true) => format!(
                    "Step 4: {} saved first; press Ctrl-S anyway. It sends If-Match: {base}, which is stale (the server's ETag is {}), and the server will refuse it.",
                    stale.by, stale.etag
                ),
            }
        }
    };
    // Presence: who else is in the BBQ right now, before anyone saves.
    let step = match (&editing_bbq, state.model.editing(BBQ).first()) {
        (Some(_), Some(other)) => format!("{step} ({} is in this product too.)", other.user),
        _ => step,
    };
    Some(step)
}
