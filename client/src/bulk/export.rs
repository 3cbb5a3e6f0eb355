//! `catalog export`: every product, paging through `GET /products`, written as CSV or JSON
//! lines to standard output or, atomically, to a file. Each row carries the product's ETag,
//! which makes every later import of the row a conditional write.

use std::io::Write;
use std::path::Path;

use anyhow::Context;

use super::Connection;
use super::record::{Format, Writer};

/// Products per page: the most the server lists at once.
const PAGE: usize = 1000;

/// Writes every product to `output` (standard output when `None`) and returns how many.
/// A file is written under a temporary name beside it and renamed when complete, so it is
/// never seen half-written, and an export that fails leaves an older file as it was.
pub async fn run(conn: &Connection, format: Format, output: Option<&Path>) -> anyhow::Result<u64> {
    let Some(path) = output else {
        let out = std::io::BufWriter::new(std::io::stdout());
        return match write_all(conn, format, out).await {
            // A reader that stops early (`| head`) is not an error.
            Err(e) if is_broken_pipe(&e) => Ok(0),
            other => other.map(|(n, _)| n),
        };
    };
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let tmp = tempfile::Builder::new()
        .prefix(".catalog-export-")
        .tempfile_in(dir)
        .with_context(|| format!("creating a temporary file in {}", dir.display()))?;
    let (n, out) = write_all(conn, format, std::io::BufWriter::new(tmp)).await?;
    let tmp = out
        .into_inner()
        .map_err(|e| e.into_error())
        .with_context(|| format!("writing {}", path.display()))?;
    tmp.as_file()
        .sync_all()
        .with_context(|| format!("writing {}", path.display()))?;
    // A temporary file is private (0600); the export gets the permissions of the file it
    // replaces, or ordinary ones.
    let permissions = match std::fs::metadata(path) {
        Ok(m) => m.permissions(),
        Err(_) => {
            use std::os::unix::fs::PermissionsExt;
            std::fs::Permissions::from_mode(0o644)
        }
    };
    let _ = tmp.as_file().set_permissions(permissions);
    tmp.persist(path)
        .map_err(|e| e.error)
        .with_context(|| format!("renaming the export to {}", path.display()))?;
    Ok(n)
}

async fn write_all<W: Write>(
    conn: &Connection,
    format: Format,
    out: W,
) -> anyhow::Result<(u64, W)> {
    let mut writer = Writer::new(format, out).context("writing the export")?;
    let mut path = format!("/products?limit={PAGE}");
    let mut n = 0;
    loop {
        // One page in memory at a time.
        let page = conn.page(&path).await?;
        for p in &page.items {
            writer.product(p).context("writing the export")?;
            n += 1;
        }
        match page.next {
            Some(next) => path = next,
            None => break,
        }
    }
    let mut out = writer.finish().context("writing the export")?;
    out.flush().context("writing the export")?;
    Ok((n, out))
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}
