//! Reading CSV and JSON inputs with errors that say where: file, line and column.
//!
//! Every problem becomes one [`InputError`] whose display is a single line such as
//! `contributions.csv:14: column `amount`: `-3` is negative; amounts must be zero or more`.
//! Readers load the whole input before anything is computed, so bad input changes nothing.

use serde::de::DeserializeOwned;
use std::fmt;
use std::path::Path;

/// One input problem, located.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputError {
    /// The file (as given by the user) or a label such as `<stdin>`.
    pub file: String,
    /// 1-based line, when known.
    pub line: Option<u64>,
    /// Column (CSV header) or field (JSON path), when known.
    pub field: Option<String>,
    /// What was wrong and what was expected.
    pub message: String,
}

impl InputError {
    /// An error about a whole file.
    pub fn file(file: impl Into<String>, message: impl Into<String>) -> Self {
        InputError { file: file.into(), line: None, field: None, message: message.into() }
    }

    /// An error at a line and field.
    pub fn at(file: impl Into<String>, line: u64, field: impl Into<String>, message: impl Into<String>) -> Self {
        InputError { file: file.into(), line: Some(line), field: Some(field.into()), message: message.into() }
    }
}

impl fmt::Display for InputError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file)?;
        if let Some(l) = self.line {
            write!(f, ":{l}")?;
        }
        if let Some(c) = &self.field {
            write!(f, ": column `{c}`")?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for InputError {}

/// A CSV file held in memory with its header, each row remembering its line number.
#[derive(Debug, Clone)]
pub struct Table {
    /// The file name used in errors.
    pub file: String,
    /// Header names, trimmed, BOM removed.
    pub headers: Vec<String>,
    rows: Vec<(u64, csv::StringRecord)>,
}

/// A row of a [`Table`]: its line number and fields.
#[derive(Debug, Clone, Copy)]
pub struct Row<'a> {
    /// 1-based line number of the row in the file.
    pub line: u64,
    record: &'a csv::StringRecord,
}

impl<'a> Row<'a> {
    /// The field at column index `col` (empty when the row is short).
    pub fn get(&self, col: usize) -> &'a str {
        self.record.get(col).unwrap_or("").trim()
    }
}

impl Table {
    /// Reads a CSV file. Refuses an empty file, a file with only a header, duplicate header names and
    /// rows whose field count differs from the header's.
    pub fn read(path: &Path) -> Result<Table, InputError> {
        Table::read_with_progress(path, &mut |_, _| {})
    }

    /// Like [`Table::read`], calling `progress(bytes_read, total_bytes)` as the file is read, for
    /// progress bars on large inputs.
    pub fn read_with_progress(path: &Path, progress: &mut dyn FnMut(u64, u64)) -> Result<Table, InputError> {
        use std::io::Read;
        let name = path.display().to_string();
        let cannot = |e: std::io::Error| InputError::file(&name, format!("cannot read: {e}"));
        let mut f = std::fs::File::open(path).map_err(cannot)?;
        let total = f.metadata().map(|m| m.len()).unwrap_or(0);
        let mut bytes = Vec::with_capacity(total as usize);
        let mut chunk = vec![0u8; 1 << 20];
        loop {
            let n = f.read(&mut chunk).map_err(cannot)?;
            if n == 0 {
                break;
            }
            bytes.extend_from_slice(&chunk[..n]);
            progress(bytes.len() as u64, total);
        }
        Table::from_bytes(&name, &bytes)
    }

    /// Parses CSV bytes, naming them `name` in errors.
    pub fn from_bytes(name: &str, bytes: &[u8]) -> Result<Table, InputError> {
        let bytes = bytes.strip_prefix(&[0xEF, 0xBB, 0xBF][..]).unwrap_or(bytes);
        if bytes.iter().all(|b| b.is_ascii_whitespace()) {
            return Err(InputError {
                file: name.to_string(),
                line: Some(1),
                field: None,
                message: "file is empty (expected a header row and at least one data row)".into(),
            });
        }
        let mut rdr = csv::ReaderBuilder::new().has_headers(true).flexible(false).from_reader(bytes);
        let headers: Vec<String> =
            rdr.headers().map_err(|e| csv_error(name, e))?.iter().map(|h| h.trim().to_string()).collect();
        for (i, h) in headers.iter().enumerate() {
            if h.is_empty() && headers.len() > 1 {
                // pandas index columns are unnamed; allow, but not twice
                if headers.iter().filter(|x| x.is_empty()).count() > 1 {
                    return Err(InputError::at(name, 1, format!("#{}", i + 1), "more than one unnamed header"));
                }
            } else if headers[..i].contains(h) {
                return Err(InputError::at(
                    name,
                    1,
                    h.clone(),
                    "duplicate header name; every column needs a distinct name",
                ));
            }
        }
        let mut rows = Vec::new();
        for rec in rdr.records() {
            let rec = rec.map_err(|e| csv_error(name, e))?;
            let line = rec.position().map(|p| p.line()).unwrap_or(0);
            if rec.iter().all(|f| f.trim().is_empty()) {
                continue;
            }
            rows.push((line, rec));
        }
        if rows.is_empty() {
            return Err(InputError {
                file: name.to_string(),
                line: Some(2),
                field: None,
                message: "has a header but no data rows".into(),
            });
        }
        Ok(Table { file: name.to_string(), headers, rows })
    }

    /// The rows, in file order.
    pub fn rows(&self) -> impl Iterator<Item = Row<'_>> + '_ {
        self.rows.iter().map(|(line, record)| Row { line: *line, record })
    }

    /// Number of data rows.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Whether there are no data rows (never true for a table that was read successfully).
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The index of a column, case-insensitively; the error lists the columns that exist.
    pub fn column(&self, name: &str) -> Result<usize, InputError> {
        self.find_column(&[name]).ok_or_else(|| self.header_error(format!("missing column `{name}`")))
    }

    /// The first of `candidates` present as a column, or an error on line 1 naming what was looked for.
    pub fn require_one_of(&self, candidates: &[&str], what: &str) -> Result<usize, InputError> {
        self.find_column(candidates).ok_or_else(|| {
            let looked: Vec<String> = candidates.iter().map(|c| format!("`{c}`")).collect();
            self.header_error(format!("missing {what} column (looked for {})", looked.join(", ")))
        })
    }

    /// An error about the header (line 1), listing the columns that exist.
    pub fn header_error(&self, message: impl Into<String>) -> InputError {
        InputError {
            file: self.file.clone(),
            line: Some(1),
            field: None,
            message: format!("{} (the header has: {})", message.into(), self.headers.join(", ")),
        }
    }

    /// The first of `candidates` present as a column (case-insensitive).
    pub fn find_column(&self, candidates: &[&str]) -> Option<usize> {
        candidates.iter().find_map(|c| self.headers.iter().position(|h| h.eq_ignore_ascii_case(c)))
    }

    /// An error located at a row and column of this table.
    pub fn error(&self, row: Row<'_>, col: usize, message: impl Into<String>) -> InputError {
        InputError::at(&self.file, row.line, self.headers.get(col).cloned().unwrap_or_default(), message)
    }

    /// A finite number from a field, or an error naming the row and column.
    pub fn parse_f64(&self, row: Row<'_>, col: usize) -> Result<f64, InputError> {
        let s = row.get(col);
        match s.parse::<f64>() {
            Ok(v) if v.is_finite() => Ok(v),
            _ if s.is_empty() => Err(self.error(row, col, "empty; expected a number")),
            _ => Err(self.error(row, col, format!("`{s}` is not a finite number"))),
        }
    }

    /// A finite, non-negative number from a field.
    pub fn parse_non_negative(&self, row: Row<'_>, col: usize) -> Result<f64, InputError> {
        let v = self.parse_f64(row, col)?;
        if v < 0.0 {
            return Err(self.error(row, col, format!("`{}` is negative; expected zero or more", row.get(col))));
        }
        Ok(v)
    }
}

fn csv_error(name: &str, e: csv::Error) -> InputError {
    let line = e.position().map(|p| p.line());
    let message = match e.kind() {
        csv::ErrorKind::UnequalLengths { expected_len, len, .. } => {
            format!("row has {len} fields but the header has {expected_len}")
        }
        csv::ErrorKind::Utf8 { .. } => "not valid UTF-8".to_string(),
        _ => e.to_string(),
    };
    InputError { file: name.to_string(), line, field: None, message }
}

/// Reads and deserialises a JSON file; a syntax or shape error names the line and column.
pub fn read_json<T: DeserializeOwned>(path: &Path) -> Result<T, InputError> {
    let name = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|e| InputError::file(&name, format!("cannot read: {e}")))?;
    json_from_bytes(&name, &bytes)
}

/// Deserialises JSON bytes, naming them `name` in errors.
pub fn json_from_bytes<T: DeserializeOwned>(name: &str, bytes: &[u8]) -> Result<T, InputError> {
    if bytes.iter().all(|b| b.is_ascii_whitespace()) {
        return Err(InputError::file(name, "file is empty (expected JSON)"));
    }
    serde_json::from_slice(bytes).map_err(|e| InputError {
        file: name.to_string(),
        line: Some(e.line() as u64),
        field: None,
        message: format!("{} (column {})", strip_position(&e.to_string()), e.column()),
    })
}

fn strip_position(s: &str) -> &str {
    s.rsplit_once(" at line ").map(|(a, _)| a).unwrap_or(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_name_file_line_and_column() {
        let t = Table::from_bytes("c.csv", b"donor,project,amount\na,p,1\nb,p,x\n").unwrap();
        let col = t.column("amount").unwrap();
        let row = t.rows().nth(1).unwrap();
        let e = t.parse_f64(row, col).unwrap_err();
        assert_eq!(e.to_string(), "c.csv:3: column `amount`: `x` is not a finite number");
    }

    #[test]
    fn refuses_empty_duplicate_header_and_ragged_rows() {
        assert!(Table::from_bytes("e.csv", b"").unwrap_err().to_string().contains("empty"));
        assert!(Table::from_bytes("h.csv", b"a,b\n").unwrap_err().to_string().contains("no data rows"));
        let e = Table::from_bytes("d.csv", b"a,b,a\n1,2,3\n").unwrap_err();
        assert_eq!(e.to_string(), "d.csv:1: column `a`: duplicate header name; every column needs a distinct name");
        let e = Table::from_bytes("r.csv", b"a,b\n1,2\n1,2,3\n").unwrap_err();
        assert_eq!(e.to_string(), "r.csv:3: row has 3 fields but the header has 2");
        let t = Table::from_bytes("m.csv", b"a,b\n1,2\n").unwrap();
        assert_eq!(t.column("c").unwrap_err().to_string(), "m.csv:1: missing column `c` (the header has: a, b)");
    }

    #[test]
    fn json_errors_have_line_and_column() {
        let e = json_from_bytes::<serde_json::Value>("v.json", b"{\n \"a\": 1,\n}").unwrap_err();
        assert_eq!(e.line, Some(3));
        assert!(e.to_string().starts_with("v.json:3: "));
    }
}
