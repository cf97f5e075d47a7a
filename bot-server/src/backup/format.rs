//! The backup's content, before compression and sealing: one record per line.
//!
//! ```text
//! H {"format":"generalbot-backup","version":1,"schema":9,"takenAt":"…","tables":["users",…]}
//! T users
//! R {"id":"…",…}          one row, as PostgreSQL's row_to_json wrote it
//! E users 1234            the table's end and its row count
//! D 5678                  the end of the backup and the total row count
//! ```
//!
//! [`Reader`] checks the order and the counts as it goes, so a backup that is cut or
//! out of order is refused by name, whatever the seal said.

use serde::{Deserialize, Serialize};

/// The format's name.
pub const FORMAT: &str = "generalbot-backup";
/// Its version.
pub const VERSION: u32 = 1;

/// The first record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Header {
    /// Always [`FORMAT`].
    pub format: String,
    /// Always [`VERSION`].
    pub version: u32,
    /// The schema version of the database it was taken from.
    pub schema: i64,
    /// When it was taken (RFC 3339).
    pub taken_at: String,
    /// Its tables, in load order (a table after every table it refers to).
    pub tables: Vec<String>,
}

/// A malformed backup.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FormatError {
    /// A record that is not what the format allows here.
    #[error("backup record {line}: {what}")]
    Record {
        /// The line number (1-based).
        line: u64,
        /// What is wrong.
        what: String,
    },
    /// The backup ends early.
    #[error("the backup ends before its last record (after line {line}): it is incomplete")]
    Incomplete {
        /// The last line read.
        line: u64,
    },
}

/// Writes records.
pub fn header(h: &Header) -> String {
    format!("H {}\n", serde_json::to_string(h).unwrap_or_default())
}
/// A table's start.
pub fn table(name: &str) -> String {
    format!("T {name}\n")
}
/// Appends one row (`json` from `row_to_json`, which has no newline) to `out`.
pub fn row(out: &mut Vec<u8>, json: &str) {
    out.extend_from_slice(b"R ");
    out.extend_from_slice(json.as_bytes());
    out.push(b'\n');
}
/// A table's end.
pub fn end(name: &str, rows: u64) -> String {
    format!("E {name} {rows}\n")
}
/// The backup's end.
pub fn done(rows: u64) -> String {
    format!("D {rows}\n")
}

/// What a line means to the loader.
#[derive(Debug, PartialEq, Eq)]
pub enum Event<'a> {
    /// The header, checked.
    Header(Header),
    /// A table starts.
    Table(&'a str),
    /// A row of the current table.
    Row(&'a str),
    /// The current table ended with as many rows as it said.
    End(&'a str),
    /// The backup ended with as many rows as it said.
    Done,
}

/// Reads records in order, checking it and the counts.
#[derive(Debug, Default)]
pub struct Reader {
    line: u64,
    header: Option<Header>,
    table: Option<String>,
    next_table: usize,
    table_rows: u64,
    rows: u64,
    done: bool,
}

impl Reader {
    fn bad(&self, what: impl Into<String>) -> FormatError {
        FormatError::Record {
            line: self.line,
            what: what.into(),
        }
    }

    /// Reads one line (without its newline).
    pub fn read<'a>(&mut self, line: &'a str) -> Result<Event<'a>, FormatError> {
        self.line += 1;
        if self.done {
            return Err(self.bad("a record after the end"));
        }
        let (tag, rest) = line.split_at_checked(2).unwrap_or((line, ""));
        match (tag, &self.header, &self.table) {
            ("H ", None, _) if self.line == 1 => {
                let h: Header = serde_json::from_str(rest)
                    .map_err(|e| self.bad(format!("header is not valid: {e}")))?;
                if h.format != FORMAT || h.version != VERSION {
                    return Err(self.bad(format!(
                        "format {:?} version {}, expected {FORMAT:?} version {VERSION}",
                        h.format, h.version
                    )));
                }
                self.header = Some(h.clone());
                Ok(Event::Header(h))
            }
            (_, None, _) => Err(self.bad("the backup does not start with its header")),
            ("T ", Some(h), None) => {
                if h.tables.get(self.next_table).map(String::as_str) != Some(rest) {
                    return Err(self.bad(format!(
                        "table {rest:?} is not the next one the header lists"
                    )));
                }
                self.next_table += 1;
                self.table = Some(rest.to_owned());
                self.table_rows = 0;
                Ok(Event::Table(rest))
            }
            ("R ", Some(_), Some(_)) => {
                self.table_rows += 1;
                self.rows += 1;
                Ok(Event::Row(rest))
            }
            ("E ", Some(_), Some(t)) => {
                let t = t.clone();
                let (name, count) = rest.rsplit_once(' ').unwrap_or((rest, ""));
                if name != t {
                    return Err(self.bad(format!("end of {name:?} inside table {t:?}")));
                }
                if count.parse::<u64>().ok() != Some(self.table_rows) {
                    return Err(self.bad(format!(
                        "table {t:?} says {count} rows, {} were read",
                        self.table_rows
                    )));
                }
                self.table = None;
                Ok(Event::End(name))
            }
            ("D ", Some(h), None) => {
                if self.next_table != h.tables.len() {
                    return Err(self.bad(format!(
                        "the backup ends after {} of its {} tables",
                        self.next_table,
                        h.tables.len()
                    )));
                }
                if rest.parse::<u64>().ok() != Some(self.rows) {
                    return Err(self.bad(format!(
                        "the backup says {rest} rows, {} were read",
                        self.rows
                    )));
                }
                self.done = true;
                Ok(Event::Done)
            }
            _ => Err(self.bad(format!("unexpected record {:?}", tag.trim()))),
        }
    }

    /// Checks the backup ended with its last record.
    pub fn finish(&self) -> Result<u64, FormatError> {
        if self.done {
            Ok(self.rows)
        } else {
            Err(FormatError::Incomplete { line: self.line })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> String {
        let h = Header {
            format: FORMAT.into(),
            version: VERSION,
            schema: 9,
            taken_at: "2026-11-30T00:00:00Z".into(),
            tables: vec!["users".into(), "bots".into()],
        };
        let mut rows = Vec::new();
        row(&mut rows, r#"{"id":"a"}"#);
        row(&mut rows, r#"{"id":"b"}"#);
        format!(
            "{}{}{}{}{}{}{}",
            header(&h),
            table("users"),
            String::from_utf8(rows).unwrap(),
            end("users", 2),
            table("bots"),
            end("bots", 0),
            done(2)
        )
    }

    fn read_all(text: &str) -> Result<u64, FormatError> {
        let mut r = Reader::default();
        for line in text.lines() {
            r.read(line)?;
        }
        r.finish()
    }

    #[test]
    fn a_whole_backup_reads_and_counts() {
        assert_eq!(read_all(&sample()), Ok(2));
    }

    #[test]
    fn cut_reordered_or_miscounted_backups_are_refused_by_line() {
        let s = sample();
        let cut: String = s.lines().take(4).map(|l| format!("{l}\n")).collect();
        assert_eq!(read_all(&cut), Err(FormatError::Incomplete { line: 4 }));
        let swapped = s.replace("T users", "T bots");
        assert!(
            read_all(&swapped)
                .unwrap_err()
                .to_string()
                .contains("record 2: table \"bots\" is not the next")
        );
        let miscount = s.replace("E users 2", "E users 3");
        assert!(
            read_all(&miscount)
                .unwrap_err()
                .to_string()
                .contains("says 3 rows, 2 were read")
        );
        let no_header = s.lines().skip(1).collect::<Vec<_>>().join("\n");
        assert!(
            read_all(&no_header)
                .unwrap_err()
                .to_string()
                .contains("does not start with its header")
        );
        let early = s.replace("E bots 0\n", "");
        assert!(read_all(&early).is_err());
        let foreign = s.replace("generalbot-backup", "other");
        assert!(
            read_all(&foreign)
                .unwrap_err()
                .to_string()
                .contains("format \"other\"")
        );
    }
}
