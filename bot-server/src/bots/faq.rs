//! FAQ knowledge bases: entries and their CSV import (columns `question`, `answer` and,
//! optionally, `keywords` separated by `;` or `,`). Every refusal names the line.

use serde::{Deserialize, Serialize};

/// The most entries one knowledge base may hold.
pub const MAX_ENTRIES: usize = 50_000;
/// The longest question or keyword list, in bytes.
pub const MAX_QUESTION: usize = 1_024;
/// The longest answer, in bytes.
pub const MAX_ANSWER: usize = 16 * 1_024;

/// One question and its answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FaqEntry {
    /// The question as people ask it.
    pub question: String,
    /// The answer the bot gives.
    pub answer: String,
    /// Words that, when asked, point strongly at this entry.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub keywords: Vec<String>,
}

/// Why a knowledge base was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FaqError {
    /// The CSV cannot be read.
    #[error("FAQ CSV line {line}: {reason}")]
    Csv {
        /// 1-based line of the input.
        line: u64,
        /// What is wrong there.
        reason: String,
    },
    /// The header row is not what the importer reads.
    #[error(
        "FAQ CSV line 1: the header must name the columns question, answer and (optionally) keywords; found {found:?}"
    )]
    Header {
        /// The header as read.
        found: Vec<String>,
    },
    /// An entry breaks a rule.
    #[error("FAQ entry {index} ({question:?}): {reason}")]
    Entry {
        /// 1-based position in the knowledge base.
        index: usize,
        /// The start of its question.
        question: String,
        /// What to fix.
        reason: String,
    },
    /// Too many entries.
    #[error("the FAQ has {count} entries; at most {MAX_ENTRIES} are allowed")]
    TooMany {
        /// How many.
        count: usize,
    },
}

/// Splits a keywords cell into keywords.
fn keywords_of(cell: &str) -> Vec<String> {
    cell.split([';', ','])
        .map(str::trim)
        .filter(|k| !k.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Reads a CSV knowledge base.
pub fn parse_csv(input: &str) -> Result<Vec<FaqEntry>, FaqError> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .trim(csv::Trim::All)
        .from_reader(input.as_bytes());
    let csv_error = |e: csv::Error| FaqError::Csv {
        line: e.position().map_or(0, csv::Position::line),
        reason: match e.kind() {
            csv::ErrorKind::UnequalLengths {
                expected_len, len, ..
            } => format!("{len} fields where the header has {expected_len}"),
            csv::ErrorKind::Utf8 { .. } => "not valid UTF-8".to_owned(),
            _ => e.to_string(),
        },
    };
    let header: Vec<String> = reader
        .headers()
        .map_err(csv_error)?
        .iter()
        .map(|h| h.to_ascii_lowercase())
        .collect();
    let column = |name: &str| header.iter().position(|h| h == name);
    let (Some(q), Some(a)) = (column("question"), column("answer")) else {
        return Err(FaqError::Header { found: header });
    };
    let k = column("keywords");
    if header.len() > 2 + usize::from(k.is_some()) {
        return Err(FaqError::Header { found: header });
    }
    let mut entries = Vec::new();
    for record in reader.records() {
        let record = record.map_err(csv_error)?;
        let line = record.position().map_or(0, csv::Position::line);
        let cell = |i: usize| record.get(i).unwrap_or_default();
        let entry = FaqEntry {
            question: cell(q).to_owned(),
            answer: cell(a).to_owned(),
            keywords: k.map(|k| keywords_of(cell(k))).unwrap_or_default(),
        };
        if let Err(reason) = check_entry(&entry) {
            return Err(FaqError::Csv { line, reason });
        }
        entries.push(entry);
        if entries.len() > MAX_ENTRIES {
            return Err(FaqError::TooMany {
                count: entries.len(),
            });
        }
    }
    Ok(entries)
}

/// What is wrong with one entry, if anything.
fn check_entry(e: &FaqEntry) -> Result<(), String> {
    if e.question.trim().is_empty() {
        return Err("the question is empty".into());
    }
    if e.answer.trim().is_empty() {
        return Err("the answer is empty".into());
    }
    if e.question.len() > MAX_QUESTION {
        return Err(format!("the question is longer than {MAX_QUESTION} bytes"));
    }
    if e.answer.len() > MAX_ANSWER {
        return Err(format!("the answer is longer than {MAX_ANSWER} bytes"));
    }
    if e.keywords.iter().map(String::len).sum::<usize>() > MAX_QUESTION {
        return Err(format!("the keywords are longer than {MAX_QUESTION} bytes"));
    }
    Ok(())
}

/// Checks entries given inline (in YAML or JSON) by the same rules as the CSV import.
pub fn check(entries: &[FaqEntry]) -> Result<(), FaqError> {
    if entries.len() > MAX_ENTRIES {
        return Err(FaqError::TooMany {
            count: entries.len(),
        });
    }
    for (i, e) in entries.iter().enumerate() {
        check_entry(e).map_err(|reason| FaqError::Entry {
            index: i + 1,
            question: e.question.chars().take(40).collect(),
            reason,
        })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_quoted_cells_and_keywords() {
        let csv = "question,answer,keywords\n\"How do I reset my password?\",\"Use the link, then sign in.\",password; reset\nWhere are you?,In Lisbon.,\n";
        let entries = parse_csv(csv).unwrap();
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[0].answer, "Use the link, then sign in.");
        assert_eq!(entries[0].keywords, ["password", "reset"]);
        assert!(entries[1].keywords.is_empty());
    }

    #[test]
    fn keywords_column_is_optional_and_order_free() {
        let entries = parse_csv("answer,question\nYes.,Open?\n").unwrap();
        assert_eq!(entries[0].question, "Open?");
    }

    #[test]
    fn refusals_name_the_line() {
        let e = parse_csv("question,answer\nA?,Yes\nB?\nC?,No\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "FAQ CSV line 3: 1 fields where the header has 2"
        );
        let e = parse_csv("question,answer\nA?,Yes\n,No\n").unwrap_err();
        assert_eq!(e.to_string(), "FAQ CSV line 3: the question is empty");
        let e = parse_csv("q,a\nA?,Yes\n").unwrap_err();
        assert!(
            e.to_string().starts_with("FAQ CSV line 1: the header"),
            "{e}"
        );
        let e = parse_csv("question,answer,extra\nA?,Yes,x\n").unwrap_err();
        assert!(matches!(e, FaqError::Header { .. }), "{e}");
        let bad_utf8 = b"question,answer\nA?,\xff\xfe\n";
        let e = parse_csv(&String::from_utf8_lossy(bad_utf8)).unwrap();
        assert_eq!(e.len(), 1, "lossy input is still text");
    }

    proptest::proptest! {
        #[test]
        fn never_panics(input in ".{0,400}") {
            let _ = parse_csv(&input);
        }
    }
}
