//! The last resort for unsaved work: when the client quits with unsaved edits (after a `q`
//! that asked, or `Ctrl-C`), the edit is written to a draft file and its path printed, as
//! `kubectl edit` does when a save fails. Nothing typed is ever silently thrown away.

use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context;
use catalog_shared::product::Field;
use serde::Serialize;

use crate::state::State;

#[derive(Serialize)]
struct Draft<'a> {
    server: &'a str,
    user: &'a str,
    /// `None` for a product that was being created.
    product_id: Option<i64>,
    based_on_version: Option<i64>,
    based_on_etag: Option<&'a str>,
    /// The fields exactly as typed (they may not be valid yet).
    fields: std::collections::BTreeMap<&'static str, String>,
}

/// Where drafts go: `$XDG_STATE_HOME/catalog/drafts`, else `~/.local/state/catalog/drafts`,
/// else the temporary directory.
pub fn dir() -> PathBuf {
    let base = std::env::var_os("XDG_STATE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME")
                .filter(|v| !v.is_empty())
                .map(|h| PathBuf::from(h).join(".local/state"))
        })
        .unwrap_or_else(std::env::temp_dir);
    base.join("catalog").join("drafts")
}

/// Writes the open edit to a draft file if it has unsaved changes; returns its path.
pub fn save_if_unsaved(state: &State) -> anyhow::Result<Option<PathBuf>> {
    let Some(editor) = state.editor.as_ref().filter(|e| e.is_dirty()) else {
        return Ok(None);
    };
    let draft = Draft {
        server: &state.server,
        user: &state.user,
        product_id: editor.id,
        based_on_version: editor.base.as_ref().map(|b| b.version),
        based_on_etag: editor.base.as_ref().map(|b| b.etag.as_str()),
        fields: Field::ALL
            .iter()
            .map(|f| (f.label(), editor.text(*f)))
            .collect(),
    };
    let dir = dir();
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let stamp = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0);
    let what = editor
        .id
        .map(|id| format!("product-{id}"))
        .unwrap_or_else(|| "new-product".into());
    let path = dir.join(format!("{}-{what}-{stamp}.json", state.user));
    let json = serde_json::to_vec_pretty(&draft)?;
    std::fs::write(&path, json).with_context(|| format!("writing {}", path.display()))?;
    Ok(Some(path))
}
