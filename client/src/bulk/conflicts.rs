//! The conflicts file of an import: each row that met a 412, as the file had it but with the
//! product's current ETag, beside the server's current values and what each side changed,
//! in a form a person fixes in a spreadsheet and imports again. Written under a temporary
//! name beside its path and renamed when the import ends, so it is never seen half-written.

use std::path::{Path, PathBuf};

use anyhow::Context;
use catalog_shared::product::Product;

use super::record::{HEADER, Row};

/// The columns of the conflicts file: an import file's (so it can be imported once
/// fixed), with `etag` holding the server's current ETag, then the server's current values
/// beside the row's, the fields the row changed and those the colleague changed since the
/// row's ETag, who changed it and when, and the row's line in the first file.
pub const CONFLICT_HEADER: [&str; 17] = [
    "id",
    "etag",
    "sku",
    "name",
    "price",
    "status",
    "description",
    "current_sku",
    "current_name",
    "current_price",
    "current_status",
    "current_description",
    "you_changed",
    "they_changed",
    "changed_by",
    "changed_at",
    "line",
];

/// The default conflicts file of `file`: `<FILE>.conflicts.csv`.
pub fn default_conflicts_path(file: &Path) -> PathBuf {
    let mut name = file.as_os_str().to_owned();
    name.push(".conflicts.csv");
    PathBuf::from(name)
}

/// The conflicts file, written under a temporary name and renamed when the import ends.
pub(crate) struct ConflictsFile {
    csv: csv::Writer<std::io::BufWriter<tempfile::NamedTempFile>>,
}

impl ConflictsFile {
    pub(crate) fn create(path: &Path) -> anyhow::Result<ConflictsFile> {
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        let tmp = tempfile::Builder::new()
            .prefix(".catalog-conflicts-")
            .tempfile_in(dir)
            .with_context(|| format!("creating a temporary file in {}", dir.display()))?;
        let mut csv = csv::Writer::from_writer(std::io::BufWriter::new(tmp));
        csv.write_record(CONFLICT_HEADER)
            .context("writing the conflicts file")?;
        Ok(ConflictsFile { csv })
    }

    /// The row as the file had it, but with the current ETag (so that, once fixed, it
    /// applies unless the product changes yet again), and the server's current values.
    pub(crate) fn write(
        &mut self,
        row: &Row,
        current: &Product,
        mine: &str,
        theirs: &str,
    ) -> anyhow::Result<()> {
        let mut cells = row.cells().to_vec();
        cells[1] = current.etag.clone();
        let now = Row::of_product(current).cells();
        cells.extend_from_slice(&now[2..]);
        cells.push(mine.to_string());
        cells.push(theirs.to_string());
        cells.push(current.updated_by.clone());
        cells.push(current.updated_at.clone());
        cells.push(row.line.to_string());
        debug_assert_eq!(cells.len(), CONFLICT_HEADER.len());
        debug_assert_eq!(&CONFLICT_HEADER[..7], &HEADER[..]);
        self.csv
            .write_record(&cells)
            .context("writing the conflicts file")
    }

    pub(crate) fn persist(self, path: &Path) -> anyhow::Result<()> {
        let out = self
            .csv
            .into_inner()
            .map_err(|e| e.into_error())
            .context("writing the conflicts file")?;
        let tmp = out
            .into_inner()
            .map_err(|e| e.into_error())
            .context("writing the conflicts file")?;
        {
            use std::os::unix::fs::PermissionsExt;
            let _ = tmp
                .as_file()
                .set_permissions(std::fs::Permissions::from_mode(0o644));
        }
        tmp.persist(path)
            .map_err(|e| e.error)
            .with_context(|| format!("writing the conflicts file {}", path.display()))?;
        Ok(())
    }
}
