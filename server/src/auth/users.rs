//! The users file (`--users users.toml`): each user's name and the SHA-256 of its bearer
//! token, never the token. Tokens are 256 random bits, so a plain hash is as good as a
//! slow one and lets every request be checked in microseconds. Here: reading the file,
//! and what `catalog-server user add|list|remove|rotate` do to it.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// The SHA-256 of a bearer token.
pub type TokenHash = [u8; 32];

/// The SHA-256 of a token as presented.
pub fn hash_token(token: &str) -> TokenHash {
    Sha256::digest(token.as_bytes()).into()
}

/// The users a `--users` file names.
#[derive(Debug, Default)]
pub struct Users {
    /// (name, SHA-256 of the token), in the file's order.
    entries: Vec<(String, TokenHash)>,
}

impl Users {
    /// Reads a users file. A missing file, a malformed one, or one without users is an
    /// error: starting open by mistake when tokens were meant would be worse than not
    /// starting (and a reload that meets one keeps the users it had).
    pub fn load(path: &Path) -> anyhow::Result<Users> {
        let text = std::fs::read_to_string(path).with_context(|| {
            format!(
                "reading the users file {} (create it with: catalog-server user add NAME --users {})",
                path.display(),
                path.display()
            )
        })?;
        let users = Self::parse(&text).with_context(|| format!("in {}", path.display()))?;
        if users.entries.is_empty() {
            bail!(
                "{} names no users; add one with: catalog-server user add NAME --users {}",
                path.display(),
                path.display()
            );
        }
        warn_if_readable_by_others(path);
        Ok(users)
    }

    pub(super) fn parse(text: &str) -> anyhow::Result<Users> {
        let doc: toml_edit::DocumentMut = text.parse().context("the file is not valid TOML")?;
        let mut entries = Vec::new();
        let Some(table) = doc.get("users") else {
            return Ok(Users { entries });
        };
        let table = table
            .as_table_like()
            .context("`users` must be a table of [users.NAME] entries")?;
        for (name, user) in table.iter() {
            let digits = user
                .get("token_sha256")
                .and_then(|v| v.as_str())
                .with_context(|| format!("user {name} has no token_sha256 string"))?;
            let hash = parse_hash(digits)
                .with_context(|| format!("user {name}: token_sha256 must be 64 hex digits"))?;
            check_name(name)?;
            entries.push((name.to_string(), hash));
        }
        Ok(Users { entries })
    }

    /// The user whose token hashes to `presented`. Every stored hash is compared, each in
    /// constant time, so the time taken says nothing about which user or how many bytes
    /// matched.
    pub fn user_of(&self, presented: &TokenHash) -> Option<&str> {
        let mut found = None;
        for (name, hash) in &self.entries {
            if bool::from(presented.ct_eq(hash)) {
                found = Some(name.as_str());
            }
        }
        found
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.entries.iter().map(|(n, _)| n.as_str())
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }
}

fn parse_hash(digits: &str) -> Option<TokenHash> {
    let mut out = [0u8; 32];
    hex::decode_to_slice(digits, &mut out).ok()?;
    Some(out)
}

/// User names are what `updated_by` shows: 1 to 64 of letters, digits, `.`, `_`, `-`, `@`
/// (so the file needs no quoting and a log line no escaping).
fn check_name(name: &str) -> anyhow::Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'@'));
    if !ok {
        bail!("user name {name:?} must be 1 to 64 of A-Z a-z 0-9 . _ - @");
    }
    Ok(())
}

#[cfg(unix)]
fn warn_if_readable_by_others(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(meta) = std::fs::metadata(path)
        && meta.permissions().mode() & 0o077 != 0
    {
        tracing::warn!(
            "the users file {} can be read by other users of this machine; chmod 600 it",
            path.display()
        );
    }
}

#[cfg(not(unix))]
fn warn_if_readable_by_others(_: &Path) {}

/// A new random token and its hash as the file stores it.
fn new_token() -> anyhow::Result<(String, String)> {
    let mut secret = [0u8; 32];
    getrandom::fill(&mut secret)
        .map_err(|e| anyhow::anyhow!("reading random bytes from the system: {e}"))?;
    let token = format!("cat_{}", hex::encode(secret));
    let hash = hex::encode(hash_token(&token));
    Ok((token, hash))
}

/// `catalog-server user add NAME --users FILE`: adds a user with a new random token to
/// the file (creating it, readable by its owner only), and returns the token, which is
/// stored nowhere else.
pub fn add_user(path: &Path, name: &str) -> anyhow::Result<String> {
    check_name(name)?;
    let existing = match std::fs::read_to_string(path) {
        Ok(text) => Some(text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    if let Some(text) = &existing {
        let users = Users::parse(text).with_context(|| format!("in {}", path.display()))?;
        if users.names().any(|n| n == name) {
            bail!(
                "{} already has a user {name}; to give it a new token: catalog-server user rotate {name} --users {}",
                path.display(),
                path.display()
            );
        }
    }
    let (token, hash) = new_token()?;
    let mut text = String::new();
    if existing.is_none() {
        text.push_str(
            "# catalog-server users. Only the SHA-256 of each token is kept here.\n\
             # Add one with: catalog-server user add NAME --users THIS_FILE\n",
        );
    } else if existing.as_deref().is_some_and(|t| !t.ends_with('\n')) {
        text.push('\n');
    }
    text.push_str(&format!("\n[users.{name}]\ntoken_sha256 = \"{hash}\"\n"));
    let mut file = open_for_append(path, existing.is_none())?;
    file.write_all(text.as_bytes())
        .and_then(|()| file.sync_all())
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(token)
}

fn open_for_append(path: &Path, create: bool) -> anyhow::Result<std::fs::File> {
    let mut options = std::fs::OpenOptions::new();
    options.append(true);
    if create {
        options.create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    }
    options
        .open(path)
        .with_context(|| format!("opening {} for writing", path.display()))
}

/// `catalog-server user list`: the names, in the file's order.
pub fn list_users(path: &Path) -> anyhow::Result<Vec<String>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading the users file {}", path.display()))?;
    let users = Users::parse(&text).with_context(|| format!("in {}", path.display()))?;
    Ok(users.names().map(str::to_string).collect())
}

/// `catalog-server user remove NAME`: the file without the user (comments and the other
/// users kept as they were).
pub fn remove_user(path: &Path, name: &str) -> anyhow::Result<()> {
    edit_user(path, name, |users| {
        users.remove(name);
        Ok(())
    })
}

/// `catalog-server user rotate NAME`: a new token for the user, returned; the old one is
/// no longer in the file.
pub fn rotate_user(path: &Path, name: &str) -> anyhow::Result<String> {
    let (token, hash) = new_token()?;
    edit_user(path, name, |users| {
        let user = users
            .get_mut(name)
            .and_then(|u| u.as_table_like_mut())
            .with_context(|| format!("user {name} is not a table"))?;
        user.insert("token_sha256", toml_edit::value(hash));
        Ok(())
    })?;
    Ok(token)
}

/// Changes the `users` table of the file for one existing user, and writes the file anew
/// in one step (a server reloading it meanwhile reads the old file or the new, never half).
fn edit_user(
    path: &Path,
    name: &str,
    change: impl FnOnce(&mut dyn toml_edit::TableLike) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading the users file {}", path.display()))?;
    // Refuse to rewrite a file the server could not read either.
    let users = Users::parse(&text).with_context(|| format!("in {}", path.display()))?;
    if !users.names().any(|n| n == name) {
        let names: Vec<&str> = users.names().collect();
        bail!(
            "{} has no user {name} (it has: {})",
            path.display(),
            if names.is_empty() {
                "none".to_string()
            } else {
                names.join(", ")
            }
        );
    }
    let mut doc: toml_edit::DocumentMut = text.parse().context("the file is not valid TOML")?;
    let table = doc
        .get_mut("users")
        .and_then(|t| t.as_table_like_mut())
        .context("`users` must be a table of [users.NAME] entries")?;
    change(table)?;
    replace_file(path, doc.to_string().as_bytes())
}

/// Writes `bytes` to a new file beside `path` with the same permissions, then renames it
/// over `path`.
fn replace_file(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let name = path
        .file_name()
        .with_context(|| format!("{} names no file", path.display()))?;
    let mut temp_name = std::ffi::OsString::from(".");
    temp_name.push(name);
    temp_name.push(".new");
    let temp: PathBuf = path.with_file_name(temp_name);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options
        .open(&temp)
        .with_context(|| format!("creating {}", temp.display()))?;
    if let Ok(meta) = std::fs::metadata(path) {
        let _ = file.set_permissions(meta.permissions());
    }
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .with_context(|| format!("writing {}", temp.display()))?;
    std::fs::rename(&temp, path)
        .with_context(|| format!("replacing {} with {}", path.display(), temp.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_added_user_is_found_by_its_token_and_only_by_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("users.toml");
        let alice = add_user(&path, "alice").unwrap();
        let bob = add_user(&path, "bob").unwrap();
        assert_ne!(alice, bob);
        assert!(alice.len() > 60);
        let users = Users::load(&path).unwrap();
        assert_eq!(users.len(), 2);
        assert_eq!(users.user_of(&hash_token(&alice)), Some("alice"));
        assert_eq!(users.user_of(&hash_token(&bob)), Some("bob"));
        assert_eq!(users.user_of(&hash_token("cat_guess")), None);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(!text.contains(&alice), "the file holds no token");
        assert!(add_user(&path, "alice").is_err(), "no duplicate names");
        assert!(add_user(&path, "a b").is_err());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn remove_and_rotate_keep_the_rest_of_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("users.toml");
        let alice = add_user(&path, "alice").unwrap();
        let bob = add_user(&path, "bob").unwrap();
        let carol = add_user(&path, "carol").unwrap();
        remove_user(&path, "bob").unwrap();
        assert_eq!(list_users(&path).unwrap(), ["alice", "carol"]);
        let new_carol = rotate_user(&path, "carol").unwrap();
        assert_ne!(new_carol, carol);
        let users = Users::load(&path).unwrap();
        assert_eq!(users.user_of(&hash_token(&alice)), Some("alice"));
        assert_eq!(users.user_of(&hash_token(&bob)), None);
        assert_eq!(users.user_of(&hash_token(&carol)), None);
        assert_eq!(users.user_of(&hash_token(&new_carol)), Some("carol"));
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.starts_with("# catalog-server users."), "{text}");
        assert!(remove_user(&path, "bob").is_err(), "no such user");
        assert!(rotate_user(&path, "dave").is_err(), "no such user");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn a_broken_users_file_is_an_error_not_open_mode() {
        assert!(Users::parse("[users.a]\ntoken_sha256 = \"xyz\"\n").is_err());
        assert!(Users::parse("not toml [").is_err());
        assert!(Users::parse("").unwrap().entries.is_empty());
    }
}
