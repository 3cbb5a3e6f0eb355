//! Unsaved work on disk. While an edit has unsaved changes it is written to a draft file
//! (at most once a second, atomically and durably: a new file synced and renamed over
//! the old, then the directory synced), so a crash, a
//! closed terminal or a kill leaves it behind; it is removed once the edit is saved or
//! discarded. At start the client lists the drafts it finds and can reopen them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context;
use catalog_shared::product::{Field, ProductFields};
use serde::{Deserialize, Serialize};

/// A draft as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Draft {
    pub server: String,
    pub user: String,
    /// `None` for a product that was being created.
    pub product_id: Option<i64>,
    pub based_on_version: Option<i64>,
    pub based_on_etag: Option<String>,
    /// The Idempotency-Key of a save sent from this edit whose outcome is not known: the
    /// same save after a restart goes with it, so it cannot apply twice.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending_key: Option<String>,
    /// That save's request as it went out (its fields and If-Match), which the typing in
    /// `fields` may have moved on from: only that request goes with that key again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending: Option<PendingRequest>,
    /// The fields exactly as typed (they may not be valid yet), by label.
    pub fields: BTreeMap<String, String>,
    /// Milliseconds since the epoch.
    #[serde(default)]
    pub saved_at_ms: u64,
}

impl Draft {
    /// The typed text of one field.
    pub fn text(&self, field: Field) -> Option<&str> {
        self.fields.get(field.label()).map(String::as_str)
    }
}

/// The request of a draft's save whose outcome is not known.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingRequest {
    pub fields: ProductFields,
    pub if_match: Option<String>,
}

/// A draft found on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DraftFile {
    pub path: PathBuf,
    pub draft: Draft,
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

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// What the keeper needs to know of the open edit (the app takes it from the state).
pub struct Edit<'a> {
    pub user: &'a str,
    /// The open editor's token, if an editor is open.
    pub token: Option<u64>,
    /// The open edit as a draft, if it has unsaved changes.
    pub draft: Option<Draft>,
    /// The draft file the open edit was reopened from, if any.
    pub reopened: Option<&'a Path>,
}

/// Writes `draft` to `path` atomically and durably: a reader (or a crash, or a power cut)
/// sees the old file or the new one, never half of one. The new file is written beside
/// the old one, synced, renamed over it, and the directory is synced so the rename itself
/// survives. If anything fails, the temporary file is removed (dropping it deletes it).
pub fn write_atomically(path: &Path, draft: &Draft) -> anyhow::Result<()> {
    use std::io::Write;
    let dir = path.parent().context("a draft path has a directory")?;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut draft = draft.clone();
    draft.saved_at_ms = now_ms();
    let json = serde_json::to_vec_pretty(&draft)?;
    // Not `.json`: a half-written file is never listed as a draft.
    let mut tmp = tempfile::Builder::new()
        .prefix(".draft-")
        .suffix(".tmp")
        .tempfile_in(dir)
        .with_context(|| format!("creating a temporary file in {}", dir.display()))?;
    tmp.write_all(&json)
        .and_then(|()| tmp.as_file().sync_all())
        .with_context(|| format!("writing {}", tmp.path().display()))?;
    tmp.persist(path)
        .map_err(|e| e.error)
        .with_context(|| format!("renaming to {}", path.display()))?;
    sync_dir(dir).with_context(|| format!("syncing {}", dir.display()))?;
    Ok(())
}

/// Makes a rename in `dir` durable (on Unix a directory is synced through a handle to it).
fn sync_dir(dir: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        std::fs::File::open(dir)?.sync_all()
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        Ok(())
    }
}

/// Keeps the open edit's draft file in step with the editor: written when the edit has
/// unsaved changes that differ from what is on disk, removed when the edit is saved or
/// discarded. Call it on every tick; it touches the disk only when something changed.
#[derive(Default)]
pub struct Keeper {
    /// The file of the current edit, and the edit's token.
    current: Option<(u64, PathBuf)>,
    /// Whether that file exists because of this edit (written, or opened from).
    owned: bool,
    written: Option<Draft>,
    /// The reopened draft file last removed, so it is removed once.
    removed: Option<PathBuf>,
}

impl Keeper {
    pub fn sync(&mut self, edit: Edit<'_>) -> anyhow::Result<()> {
        let Edit {
            user,
            token,
            draft,
            reopened,
        } = edit;
        // An edit reopened from a draft file and then saved or discarded (possibly before
        // this keeper ever wrote it): its file goes.
        if draft.is_none()
            && let Some(path) = reopened
            && self.removed.as_deref() != Some(path)
        {
            let _ = std::fs::remove_file(path);
            self.removed = Some(path.to_path_buf());
        }
        // The edit the file belongs to is gone or clean: saved or discarded.
        let same_edit = matches!((&self.current, token), (Some((t, _)), Some(now)) if *t == now);
        if !same_edit || draft.is_none() {
            if let Some((_, path)) = self.current.take()
                && self.owned
            {
                let _ = std::fs::remove_file(&path);
            }
            self.owned = false;
            self.written = None;
        }
        let (Some(draft), Some(token)) = (draft, token) else {
            return Ok(());
        };
        if self.current.is_none() {
            let path = match reopened {
                Some(p) => {
                    self.owned = true;
                    p.to_path_buf()
                }
                None => dir().join(file_name(user, &draft, token)),
            };
            self.current = Some((token, path));
        }
        if self.written.as_ref() == Some(&draft) {
            return Ok(());
        }
        if let Some((_, path)) = &self.current {
            write_atomically(path, &draft)?;
            self.written = Some(draft);
            self.owned = true;
        }
        Ok(())
    }

    /// The file holding the open edit, if there is one.
    pub fn path(&self) -> Option<&Path> {
        self.current
            .as_ref()
            .filter(|_| self.owned)
            .map(|(_, p)| p.as_path())
    }
}

fn file_name(user: &str, draft: &Draft, token: u64) -> String {
    let user: String = user
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    match draft.product_id {
        Some(id) => format!("{user}-product-{id}.json"),
        None => format!("{user}-new-{}-{token}.json", now_ms()),
    }
}

/// The drafts of `user` for `server` found on disk, newest first. Unreadable files are
/// skipped (and left alone).
pub fn list(user: &str, server: &str) -> Vec<DraftFile> {
    let Ok(entries) = std::fs::read_dir(dir()) else {
        return vec![];
    };
    let mut found: Vec<DraftFile> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .filter_map(|path| {
            let bytes = std::fs::read(&path).ok()?;
            let draft: Draft = serde_json::from_slice(&bytes).ok()?;
            (draft.user == user
                && draft.server.trim_end_matches('/') == server.trim_end_matches('/'))
            .then_some(DraftFile { path, draft })
        })
        .collect();
    found.sort_by_key(|f| std::cmp::Reverse(f.draft.saved_at_ms));
    found
}

/// Writes the open edit to its draft file if it has unsaved changes (at exit); returns
/// the path.
pub fn save_if_unsaved(edit: Edit<'_>, keeper: &mut Keeper) -> anyhow::Result<Option<PathBuf>> {
    keeper.sync(edit)?;
    Ok(keeper.path().map(Path::to_path_buf))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn draft() -> Draft {
        Draft {
            server: "http://127.0.0.1:8080".into(),
            user: "alice".into(),
            product_id: Some(1),
            based_on_version: Some(1),
            based_on_etag: None,
            pending_key: None,
            pending: None,
            fields: BTreeMap::from([("price".to_string(), "123.45".to_string())]),
            saved_at_ms: 0,
        }
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn a_draft_is_written_whole_and_replaced_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("alice-product-1.json");
        write_atomically(&path, &draft()).unwrap();
        let mut second = draft();
        second.fields.insert("price".into(), "99.00".into());
        write_atomically(&path, &second).unwrap();
        let read: Draft = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        assert_eq!(read.text(Field::Price), Some("99.00"));
        assert_eq!(
            names(dir.path()),
            vec!["alice-product-1.json"],
            "no temporary file"
        );
    }

    #[test]
    fn a_failed_rename_leaves_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        // A directory where the draft should go: the rename over it fails.
        let path = dir.path().join("alice-product-1.json");
        std::fs::create_dir(&path).unwrap();
        std::fs::write(path.join("keep"), b"x").unwrap();
        let err = write_atomically(&path, &draft()).unwrap_err();
        assert!(format!("{err:#}").contains("renaming to"), "{err:#}");
        assert_eq!(
            names(dir.path()),
            vec!["alice-product-1.json"],
            "no temporary file"
        );
    }
}
