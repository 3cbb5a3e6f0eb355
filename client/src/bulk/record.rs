//! The file format of `catalog export` and `catalog import`: one row per product, with the
//! ETag it had when it was exported. CSV (RFC 4180, UTF-8, header
//! `id,etag,sku,name,price,status,description`, prices like `399.00`) or JSON, one product
//! per line as the server represents it. Rows are read one at a time, never the whole file.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;

use anyhow::{Context, bail};
use catalog_shared::product::{
    FieldError, Product, ProductFields, Status, check_description, check_name, check_price_cents,
    check_sku, parse_price,
};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// The columns of an export, in order. An import needs these; it ignores any other.
pub const HEADER: [&str; 7] = [
    "id",
    "etag",
    "sku",
    "name",
    "price",
    "status",
    "description",
];

/// The file formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// RFC 4180 CSV with a header line, what spreadsheets open.
    Csv,
    /// One JSON object per line, as the server represents a product.
    Json,
}

/// A price in cents as a spreadsheet cell: `39900` -> `399.00`.
///
/// ```
/// assert_eq!(catalog_client::bulk::record::price_cell(39900), "399.00");
/// assert_eq!(catalog_client::bulk::record::price_cell(5), "0.05");
/// ```
pub fn price_cell(cents: i64) -> String {
    let sign = if cents < 0 { "-" } else { "" };
    let c = cents.unsigned_abs();
    format!("{sign}{}.{:02}", c / 100, c % 100)
}

/// One row of an import file, as the file has it (cells as text).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    /// Where the row starts in its file (1 is the first line).
    pub line: u64,
    /// The product the row edits; `None` for a new product.
    pub id: Option<i64>,
    /// The ETag the product had when the row was exported.
    pub etag: Option<String>,
    pub sku: String,
    pub name: String,
    pub price: String,
    pub status: String,
    pub description: String,
}

impl Row {
    /// A product as an export writes it.
    pub fn of_product(p: &Product) -> Row {
        Row {
            line: 0,
            id: Some(p.id),
            etag: Some(p.etag.clone()),
            sku: p.sku.clone(),
            name: p.name.clone(),
            price: price_cell(p.price_cents),
            status: p.status.as_str().to_string(),
            description: p.description.clone(),
        }
    }

    /// The seven cells, in [`HEADER`]'s order.
    pub fn cells(&self) -> [String; 7] {
        [
            self.id.map(|i| i.to_string()).unwrap_or_default(),
            self.etag.clone().unwrap_or_default(),
            self.sku.clone(),
            self.name.clone(),
            self.price.clone(),
            self.status.clone(),
            self.description.clone(),
        ]
    }

    /// The product fields the row asks for, or every invalid cell named by its column
    /// (the server's rules, checked before anything is sent).
    pub fn fields(&self) -> Result<ProductFields, Vec<FieldError>> {
        let mut errors = Vec::new();
        let mut check = |field: &str, r: Result<(), String>| {
            if let Err(message) = r {
                errors.push(FieldError {
                    field: field.into(),
                    message,
                });
            }
        };
        check("sku", check_sku(&self.sku));
        check("name", check_name(&self.name));
        check("description", check_description(&self.description));
        let price = parse_price(&self.price);
        let price_cents = *price.as_ref().unwrap_or(&0);
        check(
            "price",
            price
                .map(|_| ())
                .and_then(|_| check_price_cents(price_cents)),
        );
        let status = self.status.parse::<Status>();
        check("status", status.as_ref().map(|_| ()).map_err(String::clone));
        match status {
            Ok(status) if errors.is_empty() => Ok(ProductFields {
                sku: self.sku.clone(),
                name: self.name.clone(),
                description: self.description.clone(),
                price_cents,
                status,
            }),
            _ => Err(errors),
        }
    }

    /// The Idempotency-Key of this row's write: the same file read again gives every row
    /// the same key (so the server recognises a write it already made), and any change to
    /// the file, or the same row on another line, gives another.
    pub fn idempotency_key(&self, file_digest: &[u8; 32]) -> String {
        let mut h = Sha256::new();
        h.update(file_digest);
        h.update(self.line.to_le_bytes());
        for cell in self.cells() {
            h.update((cell.len() as u64).to_le_bytes());
            h.update(cell.as_bytes());
        }
        format!("catalog-import-{}", hex(&h.finalize()))
    }

    /// A JSON line: a product as the server represents it (`price_cents`), or with a
    /// `price` like `399.00`; `id` and `etag` absent or null for a new product.
    fn from_json(line: u64, text: &str) -> Result<Row, String> {
        let value: Value =
            serde_json::from_str(text).map_err(|e| format!("not a JSON object ({e})"))?;
        let Some(obj) = value.as_object() else {
            return Err("not a JSON object".into());
        };
        let text = |name: &str| -> Result<String, String> {
            match obj.get(name) {
                None | Some(Value::Null) => Ok(String::new()),
                Some(Value::String(s)) => Ok(s.clone()),
                Some(_) => Err(format!("{name}: must be a string")),
            }
        };
        let id = match obj.get("id") {
            None | Some(Value::Null) => None,
            Some(v) => Some(
                v.as_i64()
                    .ok_or("id: must be a product id (a whole number)")?,
            ),
        };
        let etag = entity_tag(&text("etag")?);
        let price = match (obj.get("price_cents"), obj.get("price")) {
            (Some(Value::Number(n)), _) => match n.as_i64() {
                Some(c) => price_cell(c),
                None => return Err("price_cents: must be a whole number of cents".into()),
            },
            (Some(_), _) => return Err("price_cents: must be a whole number of cents".into()),
            (None, _) => text("price")?,
        };
        Ok(Row {
            line,
            id,
            etag,
            sku: text("sku")?,
            name: text("name")?,
            price,
            status: text("status")?,
            description: text("description")?,
        })
    }
}

/// An etag cell as an If-Match value. An export writes the ETag exactly, quotes included;
/// a cell whose quotes a spreadsheet or a person dropped gets them back.
fn entity_tag(cell: &str) -> Option<String> {
    let cell = cell.trim();
    if cell.is_empty() {
        None
    } else if cell.starts_with('"') || cell.starts_with("W/\"") {
        Some(cell.to_string())
    } else {
        Some(format!("\"{cell}\""))
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The format of an import file: JSON when its name ends in `.json`, `.jsonl` or
/// `.ndjson`, or when its first character is `{`; CSV otherwise.
pub fn detect_format(path: &Path) -> anyhow::Result<Format> {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    if matches!(ext.as_str(), "json" | "jsonl" | "ndjson") {
        return Ok(Format::Json);
    }
    let mut head = [0u8; 512];
    let mut file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let n = file
        .read(&mut head)
        .with_context(|| format!("reading {}", path.display()))?;
    let head = head[..n]
        .strip_prefix(b"\xEF\xBB\xBF")
        .unwrap_or(&head[..n]);
    let first = head.iter().find(|b| !b.is_ascii_whitespace());
    Ok(if first == Some(&b'{') {
        Format::Json
    } else {
        Format::Csv
    })
}

/// A reader that hashes what passes through it.
struct Hashing<R> {
    inner: R,
    hash: Sha256,
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hash.update(&buf[..n]);
        Ok(n)
    }
}

/// A first pass over the file: the SHA-256 of its bytes (the base of every row's
/// Idempotency-Key) and how many rows it has (for the progress bar).
pub fn survey(path: &Path, format: Format) -> anyhow::Result<([u8; 32], u64)> {
    let file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut reader = Hashing {
        inner: file,
        hash: Sha256::new(),
    };
    let rows = match format {
        Format::Csv => {
            let mut csv = csv_reader(&mut reader);
            let mut record = csv::ByteRecord::new();
            let mut rows = 0;
            // A broken record is counted too: it becomes a failed row in the second pass.
            loop {
                match csv.read_byte_record(&mut record) {
                    Ok(true) => rows += 1,
                    Ok(false) => break,
                    Err(e) if e.is_io_error() => {
                        return Err(e).with_context(|| format!("reading {}", path.display()));
                    }
                    Err(_) => rows += 1,
                }
            }
            rows
        }
        Format::Json => {
            let mut rows = 0;
            for line in BufReader::new(&mut reader).split(b'\n') {
                let line = line.with_context(|| format!("reading {}", path.display()))?;
                if !line.trim_ascii().is_empty() {
                    rows += 1;
                }
            }
            rows
        }
    };
    // Whatever the parser left unread (nothing, normally) is part of the file too.
    std::io::copy(&mut reader, &mut std::io::sink())
        .with_context(|| format!("reading {}", path.display()))?;
    Ok((reader.hash.finalize().into(), rows))
}

fn csv_reader<R: Read>(r: R) -> csv::Reader<R> {
    // Flexible: a spreadsheet may drop empty cells at the end of a row.
    csv::ReaderBuilder::new().flexible(true).from_reader(r)
}

/// A row, or why the row at `line` could not be read.
pub type Read1 = Result<Row, (u64, String)>;

/// Reads an import file one row at a time.
pub enum Rows {
    Csv {
        csv: csv::Reader<BufReader<File>>,
        /// The same file, to correct the csv crate's line numbers (below).
        raw: File,
        /// The index of each of [`HEADER`]'s columns in this file.
        columns: [usize; 7],
        record: csv::ByteRecord,
    },
    Json {
        lines: std::io::Split<BufReader<File>>,
        line: u64,
    },
}

impl Rows {
    pub fn open(path: &Path, format: Format) -> anyhow::Result<Rows> {
        let file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
        let raw = file
            .try_clone()
            .with_context(|| format!("opening {}", path.display()))?;
        let file = BufReader::new(file);
        match format {
            Format::Json => Ok(Rows::Json {
                lines: file.split(b'\n'),
                line: 0,
            }),
            Format::Csv => {
                let mut csv = csv_reader(file);
                let header = csv
                    .byte_headers()
                    .with_context(|| format!("reading the header line of {}", path.display()))?
                    .clone();
                let names: Vec<String> = header
                    .iter()
                    .map(|h| {
                        String::from_utf8_lossy(h)
                            .trim_start_matches('\u{feff}')
                            .trim()
                            .to_ascii_lowercase()
                    })
                    .collect();
                let mut columns = [0usize; 7];
                let mut missing = Vec::new();
                for (slot, name) in columns.iter_mut().zip(HEADER) {
                    match names.iter().position(|n| n == name) {
                        Some(i) => *slot = i,
                        None => missing.push(name),
                    }
                }
                if !missing.is_empty() {
                    bail!(
                        "{} has no column {}: its first line must name the columns {} \
                         (as `catalog export` writes them)",
                        path.display(),
                        missing.join(", "),
                        HEADER.join(",")
                    );
                }
                Ok(Rows::Csv {
                    csv,
                    raw,
                    columns,
                    record: csv::ByteRecord::new(),
                })
            }
        }
    }

    /// The next row; `None` at the end of the file.
    pub fn next_row(&mut self) -> Option<Read1> {
        match self {
            Rows::Csv {
                csv,
                raw,
                columns,
                record,
            } => {
                let here = csv.position().clone();
                match csv.read_byte_record(record) {
                    Ok(false) => None,
                    Ok(true) => {
                        let line = line_of(raw, record.position().unwrap_or(&here));
                        Some(csv_row(line, record, columns))
                    }
                    Err(e) => {
                        let line = line_of(raw, e.position().unwrap_or(&here));
                        Some(Err((line, format!("not a CSV record ({e})"))))
                    }
                }
            }
            Rows::Json { lines, line } => loop {
                *line += 1;
                match lines.next()? {
                    Err(e) => return Some(Err((*line, format!("cannot be read ({e})")))),
                    Ok(bytes) if bytes.trim_ascii().is_empty() => continue,
                    Ok(bytes) => {
                        let n = *line;
                        return Some(match std::str::from_utf8(&bytes) {
                            Ok(text) => Row::from_json(n, text).map_err(|e| (n, e)),
                            Err(_) => Err((n, "is not UTF-8 text".into())),
                        });
                    }
                }
            },
        }
    }
}

/// The line a record starts on. The csv crate counts a line at each `\n`, and after a
/// `\r\n` (what spreadsheets write) it places the next record's start on the `\n`, one
/// line too early: seen from the file itself, and corrected.
fn line_of(raw: &File, start: &csv::Position) -> u64 {
    use std::os::unix::fs::FileExt;
    let mut two = [0u8; 2];
    let on_crlf = start.byte() > 0
        && raw.read_at(&mut two, start.byte() - 1).ok() == Some(2)
        && two == *b"\r\n";
    start.line() + u64::from(on_crlf)
}

fn csv_row(line: u64, record: &csv::ByteRecord, columns: &[usize; 7]) -> Read1 {
    let mut cells: [String; 7] = Default::default();
    for ((cell, &column), name) in cells.iter_mut().zip(columns).zip(HEADER) {
        let bytes = record.get(column).unwrap_or(b"");
        *cell = std::str::from_utf8(bytes)
            .map_err(|_| {
                (
                    line,
                    format!("{name}: is not UTF-8 text (save the file as UTF-8)"),
                )
            })?
            .to_string();
    }
    let [id, etag, sku, name, price, status, description] = cells;
    let id = match id.trim() {
        "" => None,
        text => Some(text.parse::<i64>().map_err(|_| {
            (
                line,
                "id: must be a product id (a whole number), or empty for a new product".into(),
            )
        })?),
    };
    let etag = entity_tag(&etag);
    Ok(Row {
        line,
        id,
        etag,
        sku,
        name,
        price,
        status,
        description,
    })
}

/// Writes products, one row each, in either format.
pub enum Writer<W: std::io::Write> {
    Csv(Box<csv::Writer<W>>),
    Json(W),
}

impl<W: std::io::Write> Writer<W> {
    /// A writer that has written the CSV header line (CSV) or nothing yet (JSON).
    pub fn new(format: Format, out: W) -> std::io::Result<Writer<W>> {
        Ok(match format {
            Format::Csv => {
                let mut csv = csv::Writer::from_writer(out);
                csv.write_record(HEADER).map_err(std::io::Error::from)?;
                Writer::Csv(Box::new(csv))
            }
            Format::Json => Writer::Json(out),
        })
    }

    pub fn product(&mut self, p: &Product) -> std::io::Result<()> {
        match self {
            Writer::Csv(csv) => csv
                .write_record(Row::of_product(p).cells())
                .map_err(std::io::Error::from),
            Writer::Json(out) => {
                serde_json::to_writer(&mut *out, p)?;
                out.write_all(b"\n")
            }
        }
    }

    /// Flushes, and gives the inner writer back.
    pub fn finish(self) -> std::io::Result<W> {
        match self {
            Writer::Csv(csv) => csv.into_inner().map_err(|e| e.into_error()),
            Writer::Json(mut out) => {
                out.flush()?;
                Ok(out)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows_of(text: &str) -> Vec<Read1> {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let path = dir.path().join("rows.csv");
        std::fs::write(&path, text).expect("written");
        let mut rows = Rows::open(&path, Format::Csv).expect("a CSV file");
        std::iter::from_fn(|| rows.next_row()).collect()
    }

    #[test]
    fn rows_carry_the_line_they_start_on_with_lf_or_crlf() {
        for end in ["\n", "\r\n"] {
            let text = [
                "id,etag,sku,name,price,status,description",
                "1,\"\"\"a\"\"\",A-1,Lamp,1.00,in_stock,\"two",
                "lines\"",
                ",,B-2,Chair,2.00,in_stock,",
                "",
            ]
            .join(end);
            let lines: Vec<u64> = rows_of(&text)
                .into_iter()
                .map(|r| r.expect("a row").line)
                .collect();
            assert_eq!(lines, [2, 4], "line ends {end:?}");
        }
    }

    #[test]
    fn columns_are_found_by_name_and_others_ignored() {
        let rows = rows_of(
            "note,price,description,status,name,sku,etag,id\nhi,3,,in_stock,Lamp,A-1,abc,7\n",
        );
        let row = rows[0].as_ref().expect("a row");
        assert_eq!(row.id, Some(7));
        assert_eq!(row.etag.as_deref(), Some("\"abc\""), "quotes restored");
        assert_eq!(row.fields().expect("valid").price_cents, 300);
    }

    #[test]
    fn a_missing_column_is_named() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let path = dir.path().join("rows.csv");
        std::fs::write(&path, "id,etag,sku,name,status,description\n").expect("written");
        let err = Rows::open(&path, Format::Csv).err().expect("refused");
        assert!(format!("{err}").contains("has no column price"), "{err}");
    }

    #[test]
    fn invalid_cells_are_named_by_their_column() {
        let rows =
            rows_of("id,etag,sku,name,price,status,description\n1,\"\"\"a\"\"\",a b,,lots,sold,\n");
        let errors = rows[0]
            .as_ref()
            .expect("a row")
            .fields()
            .expect_err("invalid");
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["sku", "name", "price", "status"]);
    }

    #[test]
    fn the_key_is_the_same_for_the_same_file_and_row_only() {
        let row = Row {
            line: 2,
            id: Some(1),
            etag: Some("\"a\"".into()),
            sku: "A-1".into(),
            name: "Lamp".into(),
            price: "1.00".into(),
            status: "in_stock".into(),
            description: String::new(),
        };
        let file = [7u8; 32];
        let key = row.idempotency_key(&file);
        assert_eq!(key, row.clone().idempotency_key(&file));
        assert!(key.len() <= 255 && key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'));
        assert_ne!(key, row.idempotency_key(&[8u8; 32]), "another file");
        let other_line = Row {
            line: 3,
            ..row.clone()
        };
        assert_ne!(key, other_line.idempotency_key(&file), "another line");
        let other_price = Row {
            price: "1.01".into(),
            ..row
        };
        assert_ne!(key, other_price.idempotency_key(&file), "another cell");
    }
}
